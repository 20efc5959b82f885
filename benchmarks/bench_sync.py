"""Incremental sync on SciFact written as files: from scratch, after changing 1%, and no-op;
plus search latency while the from-scratch ingest is running.

    python benchmarks/bench_sync.py [--limit N] [--change-pct 1]

Writes benchmarks/results/sync.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from common import SCIFACT, WORK, write_result
from ragkeep import Keep
from ragkeep.eval.beir import load_dataset
from ragkeep.eval.runner import percentile


def write_files(folder: Path, limit: int | None) -> list[Path]:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    paths = []
    for i, doc in enumerate(load_dataset(SCIFACT).corpus()):
        if limit is not None and i >= limit:
            break
        path = folder / f"{doc.doc_id}.txt"
        path.write_text(f"{doc.title}\n\n{doc.text}\n", encoding="utf-8")
        paths.append(path)
    return paths


def cli(data: Path, *args: str) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGKEEP_")}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "ragkeep", "--data-dir", str(data), "-q", *args],
                   check=True, env=env, stdout=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - started


def search_while(data: Path, running: threading.Event, queries: list[str]) -> list[float]:
    times: list[float] = []
    while not (data / "ragkeep.db").exists():
        time.sleep(0.05)
    with Keep(data) as keep:
        i = 0
        while running.is_set():
            started = time.perf_counter()
            keep.search(queries[i % len(queries)], 10, "hybrid")
            times.append((time.perf_counter() - started) * 1000)
            i += 1
            time.sleep(0.05)  # a user typing queries, not a load generator
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--change-pct", type=float, default=1.0)
    args = parser.parse_args()
    folder, data = WORK / "files", WORK / "files-index"
    paths = write_files(folder, args.limit)
    shutil.rmtree(data, ignore_errors=True)
    queries = list(load_dataset(SCIFACT).queries.values())

    running = threading.Event()
    running.set()
    latencies: list[float] = []
    reader = threading.Thread(
        target=lambda: latencies.extend(search_while(data, running, queries)), daemon=True
    )
    reader.start()
    scratch = cli(data, "add", str(folder))
    running.clear()
    reader.join()

    changed = random.Random(1).sample(paths, max(1, round(len(paths) * args.change_pct / 100)))
    for path in changed:  # an edit at the end: the unchanged chunks keep their vectors
        with path.open("a", encoding="utf-8") as fh:
            fh.write("\nEditor's note: this abstract was revised.\n")
    resync = cli(data, "sync")
    noop_cli = cli(data, "sync")
    with Keep(data) as keep:
        started = time.perf_counter()
        report = keep.sync()
        noop_in_process = time.perf_counter() - started
        assert report.ok and all(r.outcome.value == "unchanged" for r in report.results)
        docs = keep.status().documents

    write_result(
        "sync",
        {
            "command": "python benchmarks/bench_sync.py"
            + (f" --limit {args.limit}" if args.limit else ""),
            "files": len(paths),
            "documents": docs,
            "from_scratch_s": round(scratch, 2),
            "changed_files": len(changed),
            "resync_after_change_s": round(resync, 2),
            "speedup": round(scratch / resync, 1),
            "noop_sync_cli_s": round(noop_cli, 3),
            "noop_sync_in_process_s": round(noop_in_process, 3),
            "search_during_ingest": {
                "searches": len(latencies),
                "p50_ms": round(percentile(latencies, 50), 1) if latencies else None,
                "p95_ms": round(percentile(latencies, 95), 1) if latencies else None,
            },
        },
    )
    print(json.dumps({"ok": True}))


if __name__ == "__main__":
    main()
