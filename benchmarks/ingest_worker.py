"""Index the SciFact corpus into DATA_DIR and print what it took (run by bench_ingest.py)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from ragkeep import Keep
from ragkeep.eval.beir import load_dataset
from ragkeep.eval.runner import PATH_PREFIX
from ragkeep.ingest.pipeline import TextDocument


def main() -> None:
    dataset_dir, data_dir = Path(sys.argv[1]), Path(sys.argv[2])
    limit = int(sys.argv[3]) if len(sys.argv) > 3 else None
    docs = [
        TextDocument(f"{PATH_PREFIX}{d.doc_id}", d.title, d.full_text)
        for d in load_dataset(dataset_dir).corpus()
    ][:limit]
    with Keep(data_dir) as keep:
        keep.embedder()  # model load is start-up cost, not ingest throughput
        started = time.perf_counter()
        report = keep.index_texts(docs)
        seconds = time.perf_counter() - started
        status = keep.status()
    print(
        json.dumps(
            {"documents": len(docs), "seconds": seconds, "ok": report.ok, "chunks": status.chunks}
        )
    )


if __name__ == "__main__":
    main()
