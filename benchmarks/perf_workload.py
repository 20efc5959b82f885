"""One side's workloads for the performance gate (run by benchmarks/perf_gate.py).

    <venv>/bin/python benchmarks/perf_workload.py prepare --scifact DIR --dir WORK ...
    <venv>/bin/python benchmarks/perf_workload.py run WORKLOAD --scifact DIR --dir WORK ...

Executed by the python of each side's venv (the baseline commit's or the working tree's), so
it uses only what every compared version has: the `ragkeep` CLI, `Keep(data_dir,
overrides=...)`, `Keep.search/index_texts/add/sync/embedder` and
`ragkeep.ingest.pipeline.TextDocument`. It reads SciFact itself rather than through
ragkeep.eval. Prints one JSON object: {"figures": {...}, "info": {...}}; every figure is
"higher = worse".

`prepare` (untimed, once per side and gate run) writes the first --sync-files SciFact
abstracts as files, `add`s them, and indexes further documents as text up to --query-docs:
that index serves the query workloads and the no-op sync.

When the environment variable PERF_GATE_INJECT is set (the gate sets it on the candidate
side only, for `--inject-slowdown`), `Keep.search` and/or `Keep.index_texts` are wrapped so
that each call busy-waits for the given fraction of its own duration. This exists only to
prove that the gate can fail; the source files are never changed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from perf_stats import INJECT_ENV, parse_slowdown, percentile, slowed

WORKLOADS = ("ingest", "hybrid", "bm25", "dense", "cold_search", "noop_sync", "cached_query")
PATH_PREFIX = "beir:"  # the label eval uses for BEIR documents indexed as text


# -- SciFact, read directly (BEIR layout) ----------------------------------------------


def corpus(root: Path) -> Iterator[tuple[str, str, str]]:
    with (root / "corpus.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                o = json.loads(line)
                yield str(o["_id"]), str(o.get("title") or ""), str(o.get("text") or "")


def test_queries(root: Path) -> list[str]:
    """The test split's query texts in qrels order (as bench_query.py uses them)."""
    texts: dict[str, str] = {}
    with (root / "queries.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                o = json.loads(line)
                texts[str(o["_id"])] = str(o["text"])
    order: list[str] = []
    with (root / "qrels" / "test.tsv").open(encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            qid = line.split("\t", 1)[0].strip()
            if i == 0 and qid == "query-id":
                continue
            if qid in texts and qid not in order:
                order.append(qid)
    return [texts[q] for q in order]


def take(items: list[str], n: int) -> list[str]:
    """n items, cycling through the list if it is shorter."""
    return [items[i % len(items)] for i in range(n)]


def text_docs(root: Path, start: int, stop: int | None) -> list[Any]:
    from ragkeep.ingest.pipeline import TextDocument

    docs = []
    for i, (doc_id, title, text) in enumerate(corpus(root)):
        if stop is not None and i >= stop:
            break
        if i >= start:
            docs.append(TextDocument(f"{PATH_PREFIX}{doc_id}", title, f"{title} {text}".strip()))
    return docs


# -- helpers -------------------------------------------------------------------------------


def open_keep(data_dir: Path, **overrides: Any) -> Any:
    from ragkeep import Keep

    return Keep(data_dir, overrides=overrides or None)


def cli_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("RAGKEEP_")}


def ragkeep_exe() -> str:
    return str(Path(sys.executable).with_name("ragkeep"))


def cold_cmd(data_dir: Path, query: str) -> list[str]:
    # Result cache off: every run must really search, not replay an earlier run's result.
    return [ragkeep_exe(), "--data-dir", str(data_dir), "--set", "flags.caching=false",
            "search", query, "--json"]  # fmt: skip


def install_injection() -> dict[str, float]:
    spec = os.environ.get(INJECT_ENV, "")
    if not spec:
        return {}
    fractions = parse_slowdown(spec)
    from ragkeep import Keep

    if fractions.get("search"):
        Keep.search = slowed(Keep.search, fractions["search"])
    if fractions.get("ingest"):
        Keep.index_texts = slowed(Keep.index_texts, fractions["ingest"])
    return fractions


# -- prepare -------------------------------------------------------------------------------


def prepare(args: argparse.Namespace) -> dict[str, Any]:
    work: Path = args.dir
    files, index = work / "files", work / "index"
    shutil.rmtree(files, ignore_errors=True)
    shutil.rmtree(index, ignore_errors=True)
    files.mkdir(parents=True)
    for i, (doc_id, title, text) in enumerate(corpus(args.scifact)):
        if i >= args.sync_files:
            break
        (files / f"{doc_id}.txt").write_text(f"{title}\n\n{text}\n", encoding="utf-8")
    started = time.perf_counter()
    with open_keep(index) as keep:
        report = keep.add([files])
        if not report.ok:
            raise SystemExit(f"prepare: adding {files} failed")
        added = time.perf_counter() - started
        rest = text_docs(args.scifact, args.sync_files, args.query_docs)
        if rest:
            keep.index_texts(rest)
        for mode in ("bm25", "dense", "hybrid"):  # writes the derived vector file
            keep.search("warm-up", 10, mode)
        documents = keep.status().documents
    total = time.perf_counter() - started
    # A first CLI search fills the per-venv model cache and the OS file cache.
    subprocess.run(cold_cmd(index, "warm-up"), check=True, capture_output=True, env=cli_env())
    return {
        "figures": {},
        "info": {
            "documents": documents,
            "files": args.sync_files,
            "text_documents": len(rest),
            "add_files_s": round(added, 2),
            "build_s": round(total, 2),
        },
    }


# -- the timed workloads ----------------------------------------------------------------


def run_ingest(args: argparse.Namespace) -> dict[str, Any]:
    docs = text_docs(args.scifact, 0, args.ingest_docs)
    data = args.dir / f"ingest-{os.getpid()}"
    shutil.rmtree(data, ignore_errors=True)
    try:
        with open_keep(data) as keep:
            keep.embedder()  # the model load is start-up cost, not ingest throughput
            started = time.perf_counter()
            report = keep.index_texts(docs)
            seconds = time.perf_counter() - started
            if not report.ok:
                raise SystemExit("ingest: index_texts reported failures")
    finally:
        shutil.rmtree(data, ignore_errors=True)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    return {
        "figures": {"s_per_doc": seconds / len(docs), "peak_rss_mb": rss_mb},
        "info": {"documents": len(docs), "seconds": seconds, "docs_per_s": len(docs) / seconds},
    }


def run_warm(args: argparse.Namespace, mode: str) -> dict[str, Any]:
    queries = take(test_queries(args.scifact), args.queries)
    # Result cache off: first-time queries, the cost of a real search.
    with open_keep(args.dir / "index", **{"flags.caching": False}) as keep:
        for q in ("warm-up", *queries[:3]):
            keep.search(q, 10, mode)
        times = []
        for q in queries:
            started = time.perf_counter()
            keep.search(q, 10, mode)
            times.append((time.perf_counter() - started) * 1000)
    return {
        "figures": {"p95_ms": percentile(times, 95), "p50_ms": percentile(times, 50)},
        "info": {"queries": len(times), "max_ms": max(times)},
    }


def run_cold(args: argparse.Namespace) -> dict[str, Any]:
    index, env = args.dir / "index", cli_env()
    # A different query every run (the last ones of the split), after one untimed run that
    # brings this side's files back into the OS cache.
    queries = take(test_queries(args.scifact)[::-1], args.cold_runs)
    subprocess.run(cold_cmd(index, "warm-up"), check=True, capture_output=True, env=env)
    walls = []
    for q in queries:
        started = time.perf_counter()
        subprocess.run(cold_cmd(index, q), check=True, capture_output=True, env=env)
        walls.append(time.perf_counter() - started)
    return {
        "figures": {"median_s": statistics.median(walls)},
        "info": {"runs": len(walls), "min_s": min(walls), "max_s": max(walls)},
    }


def run_noop_sync(args: argparse.Namespace) -> dict[str, Any]:
    times = []
    with open_keep(args.dir / "index") as keep:
        # Untimed first sync: it imports the ingest pipeline, which a search never loads.
        # The figure is the steady cost of finding nothing to do (scanning the files).
        keep.sync()
        for _ in range(args.sync_repeats):
            started = time.perf_counter()
            report = keep.sync()
            times.append(time.perf_counter() - started)
            changed = [r for r in report.results if str(r.outcome.value) != "unchanged"]
            if not report.ok or changed:
                raise SystemExit(f"noop_sync: the sync was not a no-op: {changed[:3]}")
    return {
        "figures": {"median_s": statistics.median(times)},
        "info": {"repeats": len(times), "files": len(report.results), "min_s": min(times)},
    }


def run_cached(args: argparse.Namespace) -> dict[str, Any]:
    queries = test_queries(args.scifact)[: args.cached_queries]
    times = []
    with open_keep(args.dir / "index", **{"flags.caching": True}) as keep:
        for q in queries:  # fill the cache
            keep.search(q, 10, "hybrid")
        for _ in range(args.cached_repeats):
            for q in queries:
                started = time.perf_counter()
                keep.search(q, 10, "hybrid")
                times.append((time.perf_counter() - started) * 1e6)
    return {
        "figures": {"median_us": statistics.median(times)},
        "info": {"searches": len(times), "p95_us": percentile(times, 95)},
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    injected = install_injection()
    w = args.workload
    if w == "ingest":
        out = run_ingest(args)
    elif w in ("hybrid", "bm25", "dense"):
        out = run_warm(args, w)
    elif w == "cold_search":
        out = run_cold(args)
    elif w == "noop_sync":
        out = run_noop_sync(args)
    else:
        out = run_cached(args)
    if injected:
        out["info"]["injected_slowdown"] = injected
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["prepare", "run"])
    parser.add_argument("workload", nargs="?", choices=WORKLOADS)
    parser.add_argument("--scifact", type=Path, required=True)
    parser.add_argument("--dir", type=Path, required=True, help="this side's work folder")
    parser.add_argument("--query-docs", type=int, default=None, help="None: the whole corpus")
    parser.add_argument("--sync-files", type=int, default=2000)
    parser.add_argument("--ingest-docs", type=int, default=500)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--cold-runs", type=int, default=15)
    parser.add_argument("--sync-repeats", type=int, default=5)
    parser.add_argument("--cached-queries", type=int, default=20)
    parser.add_argument("--cached-repeats", type=int, default=50)
    args = parser.parse_args()
    if args.command == "run" and args.workload is None:
        parser.error("run needs a WORKLOAD")
    import ragkeep

    out = prepare(args) if args.command == "prepare" else run(args)
    out["info"]["ragkeep_file"] = ragkeep.__file__
    print(json.dumps(out))


if __name__ == "__main__":
    main()
