"""Ingest throughput and peak memory on SciFact, against the raw embedder on the same texts.

    python benchmarks/bench_ingest.py [--limit N]

Writes benchmarks/results/ingest.json. The index it builds (benchmarks/.work/scifact) is
reused by bench_query.py.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time

from common import SCIFACT, WORK, write_result
from ragkeep.embed.registry import EmbedderConfig, get_embedder
from ragkeep.eval.beir import load_dataset


def run_worker(data_dir: str, limit: int | None) -> tuple[dict[str, float], float]:
    cmd = [
        sys.executable,
        os.path.join(os.path.dirname(__file__), "ingest_worker.py"),
        str(SCIFACT),
        data_dir,
    ]
    if limit:
        cmd.append(str(limit))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    assert proc.stdout is not None
    out = proc.stdout.read()
    if status != 0:
        raise SystemExit(f"ingest worker failed ({status})")
    return json.loads(out), usage.ru_maxrss / 1024  # Linux reports KiB


def raw_embed_seconds(texts: list[str]) -> float:
    embedder = get_embedder(EmbedderConfig())
    embedder.embed(texts[:8])  # warm-up
    started = time.perf_counter()
    for i in range(0, len(texts), 128):  # same group size as the pipeline
        embedder.embed(texts[i : i + 128])
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=None, help="index only the first N documents")
    args = parser.parse_args()
    data_dir = WORK / "scifact"
    shutil.rmtree(data_dir, ignore_errors=True)
    ingest, peak_rss_mb = run_worker(str(data_dir), args.limit)
    docs = ingest["documents"]
    ingest_dps = docs / ingest["seconds"]

    db = sqlite3.connect(data_dir / "ragkeep.db")
    chunk_texts = [r[0] for r in db.execute("SELECT text FROM chunks ORDER BY id")]
    db.close()
    raw_chunks_s = raw_embed_seconds(chunk_texts)
    full_texts = [d.full_text for d in load_dataset(SCIFACT).corpus()][: args.limit]
    raw_docs_s = raw_embed_seconds(full_texts)

    write_result(
        "ingest",
        {
            "command": "python benchmarks/bench_ingest.py"
            + (f" --limit {args.limit}" if args.limit else ""),
            "documents": docs,
            "chunks": ingest["chunks"],
            "ingest_seconds": round(ingest["seconds"], 2),
            "ingest_docs_per_s": round(ingest_dps, 2),
            "raw_embedder_same_chunks_docs_per_s": round(docs / raw_chunks_s, 2),
            "ratio_vs_raw_embedder_same_chunks": round(ingest_dps / (docs / raw_chunks_s), 3),
            "raw_embedder_whole_docs_truncated_docs_per_s": round(docs / raw_docs_s, 2),
            "ratio_vs_raw_embedder_whole_docs": round(ingest_dps / (docs / raw_docs_s), 3),
            "peak_rss_mb": round(peak_rss_mb, 1),
        },
    )


if __name__ == "__main__":
    main()
