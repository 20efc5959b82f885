"""Where the time goes on each path: ingest, a warm hybrid query, a cold `ragkeep search`.

    python benchmarks/profile_paths.py [--docs 300] [--queries 300]

A benchmark, not a test: it prints a stage-by-stage profile and writes
results/profile.json. It uses the SciFact index that `make bench` builds
(benchmarks/.work/scifact) for the query paths, and indexes --docs abstracts into a
temporary folder for the ingest path. docs/performance.md explains the figures.

- ingest: wall time of `Keep.index_texts`, and the part of it spent inside the embedder.
- warm hybrid: each stage of a search timed on its own (query embedding, BM25, dense, row
  fetch), then whole searches, over the SciFact test queries with the result cache off; and
  the queries' length in model tokens (special tokens included), which sets the embedding's
  cost.
- cold search: the phases of one process (interpreter and CLI imports, settings and store,
  the embedding runtime's import and session, the search itself), median of --cold-runs
  processes, next to the wall time of the real `ragkeep search` command.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import SCIFACT, WORK, write_result
from perf_workload import cli_env, cold_cmd, percentile, test_queries, text_docs

INDEX = WORK / "scifact"
COLD_PHASES = """
import time, sys, json
t0 = time.perf_counter()
import ragkeep.cli.app
t1 = time.perf_counter()
from ragkeep import Keep
keep = Keep(sys.argv[1], overrides={"flags.caching": False})
keep.status()
t2 = time.perf_counter()
import onnxruntime
t3 = time.perf_counter()
keep.embedder()
t4 = time.perf_counter()
keep.search(sys.argv[2], 10, "hybrid")
t5 = time.perf_counter()
print(json.dumps({"cli imports": t1 - t0, "settings and store": t2 - t1,
    "onnxruntime + numpy import": t3 - t2, "model session": t4 - t3, "search": t5 - t4}))
"""


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def profile_ingest(docs: int) -> dict[str, Any]:
    from ragkeep import Keep

    items = text_docs(SCIFACT, 0, docs)
    with tempfile.TemporaryDirectory() as tmp, Keep(Path(tmp)) as keep:
        embedder = keep.embedder()
        inside = 0.0
        real_embed = embedder.embed

        def counted(texts: Any) -> Any:
            nonlocal inside
            started = time.perf_counter()
            try:
                return real_embed(texts)
            finally:
                inside += time.perf_counter() - started

        embedder.embed = counted  # type: ignore[method-assign]
        started = time.perf_counter()
        keep.index_texts(items)
        wall = time.perf_counter() - started
    return {
        "documents": docs,
        "seconds": round(wall, 2),
        "docs_per_s": round(docs / wall, 2),
        "embedding_share": round(inside / wall, 3),
    }


def profile_warm(queries: int) -> dict[str, Any]:
    from ragkeep import Keep
    from ragkeep.embed.onnx import minilm_tokenizer
    from ragkeep.search.terms import lexical_query

    qs = test_queries(SCIFACT)[:queries]
    stages: dict[str, list[float]] = {k: [] for k in ("embed", "bm25", "dense", "rows", "whole")}
    with Keep(INDEX, overrides={"flags.caching": False}) as keep:
        searcher = keep.querying._searcher
        embedder = keep.embedder()
        for q in qs[:5]:
            keep.search(q, 10, "hybrid")
        for q in qs:
            t0 = time.perf_counter()
            vector = embedder.embed([q])[0]
            t1 = time.perf_counter()
            with keep.store.snapshot() as snap:
                terms = lexical_query(q, keep.settings.search.bm25_stopwords)
                terms = searcher._rare_terms(snap, terms)
                t2 = time.perf_counter()
                snap.lexical.search(terms, keep.settings.search.candidates)
                t3 = time.perf_counter()
                dense = snap.dense.search(vector, keep.settings.search.candidates)
                t4 = time.perf_counter()
                snap.chunk_rows([cid for cid, _ in dense.ranking[:10]])
                t5 = time.perf_counter()
            keep.search(q, 10, "hybrid")
            t6 = time.perf_counter()
            for name, dt in zip(stages, (t1 - t0, t3 - t2, t4 - t3, t5 - t4, t6 - t5), strict=True):
                stages[name].append(dt)
    lengths = [len(e.ids) for e in minilm_tokenizer().encode_for_model(qs)]
    return {
        "query_tokens": {"p50": statistics.median(lengths), "p95": percentile(lengths, 95)},
        **{
            name: {"p50_ms": ms(statistics.median(v)), "p95_ms": ms(percentile(v, 95))}
            for name, v in stages.items()
        },
    }


def profile_cold(runs: int) -> dict[str, Any]:
    qs = test_queries(SCIFACT)[::-1][:runs]
    phases: dict[str, list[float]] = {}
    walls: list[float] = []
    subprocess.run(cold_cmd(INDEX, "warm-up"), check=True, capture_output=True, env=cli_env())
    for q in qs:
        out = subprocess.run(
            [sys.executable, "-c", COLD_PHASES, str(INDEX), q],
            check=True,
            capture_output=True,
            text=True,
            env=cli_env(),
        )
        for name, dt in json.loads(out.stdout).items():
            phases.setdefault(name, []).append(dt)
        started = time.perf_counter()
        subprocess.run(cold_cmd(INDEX, q), check=True, capture_output=True, env=cli_env())
        walls.append(time.perf_counter() - started)
    result = {name: ms(statistics.median(v)) for name, v in phases.items()}
    result["ragkeep search (wall, whole process)"] = ms(statistics.median(walls))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=300)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--cold-runs", type=int, default=9)
    args = parser.parse_args()
    if not (INDEX / "ragkeep.db").is_file():
        raise SystemExit(f"no SciFact index at {INDEX}: run `make bench` first")
    ingest = profile_ingest(args.docs)
    print(f"ingest: {ingest}", flush=True)
    warm = profile_warm(args.queries)
    tokens = warm.pop("query_tokens")
    print(f"warm hybrid (ms), queries of {tokens['p50']} tokens (p50), {tokens['p95']} (p95):")
    for name, v in warm.items():
        print(f"  {name:8s} p50 {v['p50_ms']:7.2f}  p95 {v['p95_ms']:7.2f}")
    cold = profile_cold(args.cold_runs)
    print("cold search (ms, medians):")
    for name, v in cold.items():
        print(f"  {name:40s} {v:8.1f}")
    write_result(
        "profile",
        {
            "command": "python benchmarks/profile_paths.py " + " ".join(sys.argv[1:]),
            "ingest": ingest,
            "warm_hybrid_ms": warm,
            "query_tokens": tokens,
            "cold_search_ms": cold,
        },
        echo=False,
    )


if __name__ == "__main__":
    main()
