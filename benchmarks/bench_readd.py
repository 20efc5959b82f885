"""Undoing a `remove`: remove a folder of SciFact abstracts and add it back, with the removed
folder's vectors collected at once (store.keep_unreferenced_mb=0, the old behaviour for a
big folder) and kept (the default). Then what kept vectors cost a search: a fresh process's
first dense search, warm latency and peak memory, with a removed folder's vectors kept and
after `gc` freed them.

    python benchmarks/bench_readd.py [--limit 400]
    python benchmarks/bench_readd.py --reload [--chunks 20000]

Prints the figures and writes benchmarks/results/readd.json; asserts nothing. `--reload`
instead times what kept vectors add to rebuilding the vector matrix from the database (done
after every commit by a long-running process): an index of `--chunks` chunks with synthetic
vectors, and 0, 64 MB and 256 MB of unreferenced ones; it writes results/readd-reload.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import SCIFACT, WORK, cpu_probe_ms, write_result
from ragkeep.eval.beir import load_dataset

ROOT = WORK / "readd"
# One process: open the index, time the first dense search (it loads the vectors), then
# warm ones, then loading the vectors from the database alone; the peak RSS.
# Run as `python -c PROBE DATA_DIR QUERY...`.
PROBE = """
import json, resource, statistics, sys, time
from ragkeep import Keep
data, queries = sys.argv[1], sys.argv[2:]
started = time.perf_counter()
with Keep(data) as keep:
    keep.search(queries[0], 10, "dense")
    first = time.perf_counter() - started
    warm = []
    for q in queries[1:]:
        t = time.perf_counter()
        keep.search(q, 10, "dense")
        warm.append(time.perf_counter() - t)
    loads = []  # what a dense search loads: the vectors chunks refer to (kept ones?)
    for _ in range(5):
        with keep.store.read() as c:
            t = time.perf_counter()
            table = keep.store.load_vectors(c)
            loads.append(time.perf_counter() - t)
print(json.dumps({
    "matrix_rows": int(table.matrix.shape[0]),
    "load_vectors_ms": round(statistics.median(loads) * 1000, 2),
    "first_search_ms": round(first * 1000, 1),
    "warm_p50_ms": round(statistics.median(warm) * 1000, 2),
    "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
}))
"""


def write_files(folder: Path, docs: list[tuple[str, str]]) -> None:
    folder.mkdir(parents=True)
    for doc_id, text in docs:
        (folder / f"{doc_id}.txt").write_text(text, encoding="utf-8")


def _env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGKEEP_")}
    return env | {f"RAGKEEP_{k.upper()}": v for k, v in settings.items()}


def cli(data: Path, keep_mb: str | None, *args: str) -> tuple[float, dict[str, Any]]:
    """Run `ragkeep ... --json` as a user would: (seconds, its JSON)."""
    env = _env(store__keep_unreferenced_mb=keep_mb) if keep_mb is not None else _env()
    cmd = [sys.executable, "-m", "ragkeep", "--data-dir", str(data), *args, "--json"]
    started = time.perf_counter()
    out = subprocess.run(cmd, check=True, env=env, capture_output=True, text=True).stdout
    return time.perf_counter() - started, json.loads(out)


def remove_and_readd(folder: Path, data: Path, keep_mb: str | None) -> dict[str, Any]:
    shutil.rmtree(data, ignore_errors=True)
    add_s, added = cli(data, keep_mb, "add", str(folder))
    remove_s, removed = cli(data, keep_mb, "remove", str(folder))
    readd_s, readded = cli(data, keep_mb, "add", str(folder))
    return {
        "keep_unreferenced_mb": keep_mb or "default",
        "first_add_s": round(add_s, 2),
        "first_add_embedded_chunks": added["embedded_chunks"],
        "remove_s": round(remove_s, 2),
        "kept_vectors": removed["unreferenced_vectors"],
        "collected_vectors": removed["collected_vectors"],
        "readd_s": round(readd_s, 2),
        "readd_embedded_chunks": readded["embedded_chunks"],
        "remove_plus_readd_s": round(remove_s + readd_s, 2),
    }


def probe(data: Path, queries: list[str]) -> dict[str, Any]:
    """Twice, fresh processes: the first may build derived files, the second reads them.
    Without the result cache: every search is a real one."""
    cmd, env = [sys.executable, "-c", PROBE, str(data), *queries], _env(flags__caching="false")
    runs = [
        json.loads(subprocess.run(cmd, check=True, env=env, capture_output=True, text=True).stdout)
        for _ in range(2)
    ]
    return {"first_process": runs[0], "second_process": runs[1]}


def search_cost(folder: Path, other: Path, data: Path, queries: list[str]) -> dict[str, Any]:
    """`data` holds `folder` (just re-added): add `other`, remove `folder` (its vectors are
    kept), probe; `gc`; probe again."""
    cli(data, None, "add", str(other))
    _, removed = cli(data, None, "remove", str(folder))
    _, status = cli(data, None, "status")
    kept = probe(data, queries)
    _, freed = cli(data, None, "gc")
    _, after = cli(data, None, "status")
    return {
        "indexed_chunks": status["chunks"],
        "kept_vectors": removed["unreferenced_vectors"],
        "with_kept_vectors": {**kept, "database_bytes": status["database_bytes"]},
        "gc": freed,
        "after_gc": {**probe(data, queries), "database_bytes": after["database_bytes"]},
    }


def reload_cost(chunks: int) -> None:
    import hashlib

    import numpy as np

    from ragkeep.store.records import FileStamp, NewChunk, NewDocument
    from ragkeep.store.sqlite.store import SqliteStore

    rng, results = np.random.default_rng(0), []
    for kept_mb in (0, 64, 256):
        path = ROOT / f"reload-{kept_mb}" / "ragkeep.db"
        shutil.rmtree(path.parent, ignore_errors=True)
        store = SqliteStore(path, model_id="bench", dimension=384)
        kept = int(kept_mb * 1024 * 1024 / (384 * 4 + 64 + len("bench")))
        for start in range(0, chunks + kept, 10000):
            n = min(10000, chunks + kept - start)
            matrix = rng.standard_normal((n, 384), dtype=np.float32)
            hashes = [hashlib.sha256(b"%d" % i).hexdigest() for i in range(start, start + n)]
            store.add_vectors({h: matrix[j].tobytes() for j, h in enumerate(hashes)})
        for d in range(0, chunks, 1000):  # documents of 1,000 chunks use the first vectors
            doc = NewDocument(f"/doc{d}", "t", FileStamp(0, 0, 0), f"c{d}", None)
            texts = [(i, hashlib.sha256(b"%d" % i).hexdigest()) for i in range(d, d + 1000)]
            cs = [NewChunk(i - d, "x" * 800, h, 0, 800, None, 200) for i, h in texts]
            store.replace_document(doc, cs, {})
        times = []
        for _ in range(5):
            with store.read() as c:
                started = time.perf_counter()
                table = store.load_vectors(c)
                times.append(time.perf_counter() - started)
        unused = store.unreferenced_vectors()
        store.close()
        results.append(
            {
                "kept_vectors": unused.count,
                "kept_mb": round(unused.bytes / 1e6, 1),
                "matrix_rows": int(table.matrix.shape[0]),
                "load_vectors_ms_best": round(min(times) * 1000, 1),
                "load_vectors_ms_median": round(sorted(times)[2] * 1000, 1),
            }
        )
        shutil.rmtree(path.parent, ignore_errors=True)
    write_result(
        "readd-reload",
        {
            "command": f"python benchmarks/bench_readd.py --reload --chunks {chunks}",
            "indexed_chunks": chunks,
            "runs": results,
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=400, help="abstracts removed and re-added")
    parser.add_argument("--reload", action="store_true", help="time the matrix reload only")
    parser.add_argument("--chunks", type=int, default=20000, help="indexed chunks (--reload)")
    args = parser.parse_args()
    if args.reload:
        reload_cost(args.chunks)
        return
    dataset = load_dataset(SCIFACT)
    docs = zip(range(args.limit * 2), dataset.corpus(), strict=False)
    corpus = [(d.doc_id, f"{d.title}\n\n{d.text}\n") for _, d in docs]
    shutil.rmtree(ROOT, ignore_errors=True)
    folder, other = ROOT / "removed", ROOT / "other"
    write_files(folder, corpus[: args.limit])
    write_files(other, corpus[args.limit : args.limit + args.limit // 2])
    queries = list(dataset.queries.values())[:21]

    probe_before = cpu_probe_ms()
    before = remove_and_readd(folder, ROOT / "data-collect", "0")
    after = remove_and_readd(folder, ROOT / "data-keep", None)
    cost = search_cost(folder, other, ROOT / "data-keep", queries)
    write_result(
        "readd",
        {
            "command": f"python benchmarks/bench_readd.py --limit {args.limit}",
            "files": args.limit,
            "cpu_probe_ms": [probe_before, cpu_probe_ms()],
            "before_collect_at_once": before,
            "after_keep_default": after,
            "speedup_remove_plus_readd": round(
                before["remove_plus_readd_s"] / after["remove_plus_readd_s"], 1
            ),
            "search_with_kept_vectors": cost,
        },
    )


if __name__ == "__main__":
    main()
