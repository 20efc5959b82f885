"""Hybrid fusion methods (and BM25 stop words) compared by nDCG@10 on SciFact.

    python benchmarks/fusion_sweep.py [--group fusion|stopwords|max_df|all]

Reuses the index built by bench_ingest.py; each row is one `ragkeep eval` run with the
settings shown, so any row can be rerun by hand. Writes benchmarks/results/fusion.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from common import SCIFACT, WORK, write_result

# The train split (809 queries) is where a choice is made; test (300) confirms it.
GROUPS: dict[str, list[tuple[list[str], str, str]]] = {
    "fusion": [
        (settings, "hybrid", split)
        for split in ("train", "test")
        for settings in (
            ["search.fusion=rrf", "search.rrf_k=60"],
            ["search.fusion=rrf", "search.rrf_k=20"],
            ["search.fusion=score", "search.dense_weight=0.3"],
            ["search.fusion=score", "search.dense_weight=0.5"],
            ["search.fusion=score", "search.dense_weight=0.7"],
        )
    ],
    "stopwords": [
        (["search.bm25_stopwords=true"], "bm25", "test"),
        (["search.bm25_stopwords=false"], "bm25", "test"),
    ],
    "max_df": [
        ([f"search.bm25_max_df={df}"], mode, split)
        for split in ("train", "test")
        for mode in ("bm25", "hybrid")
        for df in ("1.0", "0.3", "0.2", "0.1")
    ],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--group", choices=[*GROUPS, "all"], default="all")
    args = parser.parse_args()
    data_dir = WORK / "scifact"
    if not (data_dir / "ragkeep.db").exists():
        raise SystemExit("no index: run benchmarks/bench_ingest.py first")
    groups = list(GROUPS) if args.group == "all" else [args.group]
    rows = []
    for settings, mode, split in (run for g in groups for run in GROUPS[g]):
        sets = [arg for s in settings for arg in ("--set", s)]
        cmd = [*sets, "eval", str(SCIFACT), "--split", split, "--data-dir", str(data_dir),
               "--mode", mode, "--json"]  # fmt: skip
        out = subprocess.run(
            [sys.executable, "-m", "ragkeep", *cmd], check=True, capture_output=True, text=True
        )
        result = json.loads(out.stdout)["modes"][0]
        row = {"settings": settings, "split": split, "command": "ragkeep " + " ".join(cmd),
               **result}  # fmt: skip
        print(json.dumps(row), flush=True)
        rows.append(row)
    name = "fusion" if args.group == "all" else f"fusion-{args.group}"
    write_result(name, {"runs": rows})


if __name__ == "__main__":
    main()
