"""Hybrid fusion methods (and BM25 stop words) compared by nDCG@10 on SciFact.

    python benchmarks/fusion_sweep.py

Reuses the index built by bench_ingest.py; each row is one `ragkeep eval` run with the
settings shown, so any row can be rerun by hand. Writes benchmarks/results/fusion.json.
"""

from __future__ import annotations

import json
import subprocess
import sys

from common import SCIFACT, WORK, write_result

RUNS: list[tuple[list[str], str]] = [
    (["search.fusion=rrf", "search.rrf_k=60"], "hybrid"),
    (["search.fusion=rrf", "search.rrf_k=20"], "hybrid"),
    (["search.fusion=score", "search.dense_weight=0.3"], "hybrid"),
    (["search.fusion=score", "search.dense_weight=0.5"], "hybrid"),
    (["search.fusion=score", "search.dense_weight=0.7"], "hybrid"),
    (["search.bm25_stopwords=true"], "bm25"),
    (["search.bm25_stopwords=false"], "bm25"),
]


def main() -> None:
    data_dir = WORK / "scifact"
    if not (data_dir / "ragkeep.db").exists():
        raise SystemExit("no index: run benchmarks/bench_ingest.py first")
    rows = []
    for settings, mode in RUNS:
        sets = [arg for s in settings for arg in ("--set", s)]
        cmd = [*sets, "eval", str(SCIFACT), "--data-dir", str(data_dir), "--mode", mode, "--json"]
        out = subprocess.run(
            [sys.executable, "-m", "ragkeep", *cmd], check=True, capture_output=True, text=True
        )
        result = json.loads(out.stdout)["modes"][0]
        row = {"settings": settings, "command": "ragkeep " + " ".join(cmd), **result}
        print(json.dumps(row), flush=True)
        rows.append(row)
    write_result("fusion", {"runs": rows})


if __name__ == "__main__":
    main()
