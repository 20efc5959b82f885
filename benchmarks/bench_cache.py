"""Caching: repeat-query latency, a repeated CLI search, and the hit rate on a Zipf trace.

    python benchmarks/bench_cache.py [--queries 10000] [--distinct 200] [--write-every 1000]

Works on a copy of the SciFact index built by bench_ingest.py (the trace writes to it).
Writes benchmarks/results/cache.json.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import SCIFACT, WORK, write_result
from ragkeep import Keep
from ragkeep.eval.beir import load_dataset
from ragkeep.eval.runner import percentile
from ragkeep.ingest.pipeline import TextDocument


def copy_index(dst: Path) -> None:
    dst.mkdir(parents=True)
    src = sqlite3.connect(WORK / "scifact" / "ragkeep.db")
    out = sqlite3.connect(dst / "ragkeep.db")
    src.backup(out)
    out.execute("DELETE FROM result_cache")
    out.execute("DELETE FROM cache_stats")
    out.commit()
    src.close()
    out.close()


def repeat_latency(data: Path, queries: list[str], repeats: int) -> dict[str, float]:
    times: list[float] = []
    with Keep(data) as keep:
        for q in queries:
            keep.search(q, 10, "hybrid")  # miss: computes and stores
            for _ in range(repeats):
                started = time.perf_counter()
                keep.search(q, 10, "hybrid")
                times.append((time.perf_counter() - started) * 1000)
    return {
        "searches": len(times),
        "p50_ms": round(percentile(times, 50), 3),
        "p95_ms": round(percentile(times, 95), 3),
        "max_ms": round(max(times), 3),
    }


def repeated_cli_search(data: Path, query: str) -> dict[str, object]:
    exe = str(Path(sys.executable).with_name("ragkeep"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGKEEP_")}
    walls = []
    for _ in range(2):
        started = time.perf_counter()
        subprocess.run([exe, "--data-dir", str(data), "search", query, "--json"],
                       check=True, capture_output=True, env=env)  # fmt: skip
        walls.append(round(time.perf_counter() - started, 3))
    with Keep(data) as keep:
        stats = keep.cache_stats()
    return {
        "command": f'ragkeep --data-dir DIR search "{query}" --json  (twice, new processes)',
        "first_s": walls[0],
        "second_s": walls[1],
        "persistent_hits": stats.persistent.hits,
        "persistent_misses": stats.persistent.misses,
    }


def zipf_trace(n: int, distinct: int, s: float, seed: int) -> list[int]:
    rng = random.Random(seed)
    weights = [1 / (rank**s) for rank in range(1, distinct + 1)]
    return rng.choices(range(distinct), weights=weights, k=n)


def trace_hit_rate(data: Path, queries: list[str], trace: list[int], write_every: int) -> dict:
    ideal_hits = 0
    seen: set[int] = set()
    with Keep(data) as keep:
        keep.clear_cache()  # the trace starts cold, as the ideal hit rate assumes
        before = keep.cache_stats()
        started = time.perf_counter()
        for i, qi in enumerate(trace):
            if i and i % write_every == 0:
                keep.index_texts([TextDocument(f"bench:write-{i}", "write", f"write number {i}")])
                seen.clear()  # a commit: every earlier result is out of date
            ideal_hits += qi in seen
            seen.add(qi)
            keep.search(queries[qi], 10, "hybrid")
        seconds = time.perf_counter() - started
        after = keep.cache_stats()
    lookups = after.memory.hits + after.memory.misses
    lookups -= before.memory.hits + before.memory.misses
    hits = after.memory.hits + after.persistent.hits
    hits -= before.memory.hits + before.persistent.hits
    return {
        "queries": len(trace),
        "writes": (len(trace) - 1) // write_every,
        "hit_rate": round(hits / lookups, 4),
        "ideal_hit_rate": round(ideal_hits / len(trace), 4),
        "gap_points": round(100 * (ideal_hits / len(trace) - hits / lookups), 2),
        "seconds": round(seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--distinct", type=int, default=200)
    parser.add_argument("--write-every", type=int, default=1000)
    parser.add_argument("--zipf-s", type=float, default=1.1)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if not (WORK / "scifact" / "ragkeep.db").exists():
        raise SystemExit("no index: run benchmarks/bench_ingest.py first")
    queries = list(load_dataset(SCIFACT).queries.values())[: args.distinct]
    with tempfile.TemporaryDirectory(prefix="ragkeep-bench-cache-") as tmp:
        data = Path(tmp) / "data"
        copy_index(data)
        repeat = repeat_latency(data, queries[:100], repeats=5)
        cli = repeated_cli_search(data, queries[150])
        trace = zipf_trace(args.queries, len(queries), args.zipf_s, args.seed)
        zipf = trace_hit_rate(data, queries, trace, args.write_every)
    write_result(
        "cache",
        {
            "command": "python benchmarks/bench_cache.py",
            "repeat_query_in_process": repeat,
            "repeated_cli_search": cli,
            "zipf": {"s": args.zipf_s, "distinct": len(queries), "seed": args.seed, **zipf},
        },
    )


if __name__ == "__main__":
    main()
