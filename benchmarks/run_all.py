"""`make bench`: every benchmark in turn (they share one SciFact index), results as JSON.

    python benchmarks/run_all.py [--limit N]

Runs one at a time on purpose: on a 2-core machine concurrent benchmarks measure each other.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from common import RESULTS, SCIFACT, WORK, write_result

HERE = Path(__file__).resolve().parent


def run(*args: str) -> None:
    print("+", " ".join(args), flush=True)
    subprocess.run([sys.executable, *args], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=None, help="index only the first N docs")
    args = parser.parse_args()
    limit = ["--limit", str(args.limit)] if args.limit else []
    run(str(HERE / "bench_ingest.py"), *limit)
    if not args.limit:  # quality is only meaningful on the whole corpus
        cmd = ["-m", "ragkeep", "eval", str(SCIFACT), "--data-dir", str(WORK / "scifact"), "--json"]
        print("+ ragkeep", " ".join(cmd[2:]), flush=True)
        out = subprocess.run([sys.executable, *cmd], check=True, capture_output=True, text=True)
        write_result("eval", {"command": "ragkeep " + " ".join(cmd[2:]), **json.loads(out.stdout)})
        run(str(HERE / "fusion_sweep.py"))
    run(str(HERE / "bench_query.py"))
    run(str(HERE / "bench_cache.py"))
    run(str(HERE / "logging_overhead.py"))  # its own small index: SciFact abstracts
    run(str(HERE / "bench_metrics.py"))
    run(str(HERE / "bench_sync.py"), *limit)
    run(str(HERE / "bench_backup.py"), *limit)  # copies the SciFact index (or builds N docs)
    if not args.limit:  # both start their own PostgreSQL; bench_postgres needs the full index
        run(str(HERE / "bench_postgres.py"))
    run(str(HERE / "bench_servers.py"))
    print(f"results in {RESULTS}")


if __name__ == "__main__":
    main()
