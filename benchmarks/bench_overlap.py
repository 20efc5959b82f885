"""Chunk overlap against retrieval quality and index size, on SciFact.

    python benchmarks/bench_overlap.py [--overlaps 0,16,32]

A benchmark, not a test: for each overlap it runs
`ragkeep --set chunking.overlap_tokens=N eval SCIFACT --json` (a fresh index each time, about
20 minutes per overlap on 2 cores) and writes results/overlap.json with the chunk count (the
embedding work), ingest speed, and nDCG@10 / Recall@100 per mode.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from common import SCIFACT, write_result
from perf_workload import cli_env


def eval_command(overlap: int) -> list[str]:
    exe = str(Path(sys.executable).with_name("ragkeep"))
    return [exe, "--set", f"chunking.overlap_tokens={overlap}", "eval", str(SCIFACT), "--json"]


def summary(overlap: int, report: dict[str, Any]) -> dict[str, Any]:
    return {
        "overlap_tokens": overlap,
        "command": " ".join(eval_command(overlap)[1:]),
        "chunks": report["chunks"],
        "ingest_docs_per_s": report["ingest_docs_per_s"],
        "modes": {
            m["mode"]: {"ndcg_at_10": m["ndcg_at_10"], "recall_at_100": m["recall_at_100"]}
            for m in report["modes"]
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--overlaps", default="0,16,32")
    args = parser.parse_args()
    runs = []
    for overlap in (int(o) for o in args.overlaps.split(",")):
        out = subprocess.run(
            eval_command(overlap), check=True, capture_output=True, text=True, env=cli_env()
        )
        runs.append(summary(overlap, json.loads(out.stdout)))
        print(json.dumps(runs[-1]), flush=True)
    write_result("overlap", {"command": "python benchmarks/bench_overlap.py", "runs": runs})


if __name__ == "__main__":
    main()
