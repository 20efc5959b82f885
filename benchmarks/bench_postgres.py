"""The PostgreSQL backend next to SQLite, from one run: SciFact quality and search latency,
ingest speed, `ragkeep migrate`'s speed, and pgvector's HNSW against exact search.

    python benchmarks/bench_postgres.py [--source DIR] [--ingest-docs 300] [--postgres-url URL]

Needs a SciFact index in `--source` (default benchmarks/.work/scifact, made by
`ragkeep eval ../shared/eval/scifact --data-dir benchmarks/.work/scifact`, ~10 min). Starts
its own PostgreSQL (scripts/postgres_server.py) unless given `--postgres-url` (a superuser
URL: it creates and drops databases). Then:

- **migrate**: `Keep.migration.migrate_to` copies the SQLite index into a new database
  (no re-embedding) and verifies it; its wall time and documents/s;
- **quality and warm search**: `ragkeep eval`'s runner on both indexes, the same queries in
  the same process: nDCG@10, Recall@100, MRR@10 and per-query p50/p95 (hybrid, bm25, dense;
  caching off, so every query is searched);
- **ingest**: the first `--ingest-docs` SciFact abstracts into a new SQLite index and a new
  PostgreSQL database, each with an empty store (so every chunk is embedded), docs/s;
- **HNSW**: recall@10 of pgvector's HNSW against exact search over the same vectors, for
  several ef_search values, with p50/p95 of the dense search alone (query vectors made
  beforehand).

Prints the figures and writes benchmarks/results/postgres.json; asserts nothing.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from common import ROOT, SCIFACT, WORK, cpu_probe_ms, write_result
from ragkeep import Keep
from ragkeep.eval.beir import Dataset, load_dataset
from ragkeep.eval.runner import percentile, run_eval
from ragkeep.ingest.pipeline import TextDocument
from ragkeep.models import SearchMode
from ragkeep.store.base import DenseOptions

MODES = (SearchMode.HYBRID, SearchMode.BM25, SearchMode.DENSE)
EF_SEARCH = (20, 40, 100, 200)
K = 10
NO_CACHE = {"flags.caching": False}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=WORK / "scifact")
    parser.add_argument("--ingest-docs", type=int, default=300)
    parser.add_argument("--postgres-url", default="")
    args = parser.parse_args()
    if not (args.source / "ragkeep.db").is_file():
        sys.exit(f"no SciFact index in {args.source}: run `ragkeep eval` first (see --help)")
    dataset = load_dataset(SCIFACT)
    probe_before = cpu_probe_ms()
    with postgres_server(args.postgres_url) as admin:
        out: dict[str, Any] = {
            "command": "python benchmarks/bench_postgres.py " + " ".join(sys.argv[1:]),
            "cpu_probe_ms": [probe_before],
            "postgres": postgres_versions(admin),
        }
        with new_database(admin) as url:
            out["migrate"] = _migrate(args.source, url)
            out["eval"] = {
                "sqlite": _eval(Keep(args.source, overrides=NO_CACHE), dataset),
                "postgresql": _eval(_pg_keep(url), dataset),
            }
            out["hnsw"] = _hnsw(url, dataset)
            out["sizes_mb"] = _sizes(url)
        out["ingest"] = _ingest(admin, dataset, args.ingest_docs)
    out["cpu_probe_ms"].append(cpu_probe_ms())
    write_result("postgres", out)


# -- the server and its databases -----------------------------------------------------------


@contextmanager
def postgres_server(url: str) -> Iterator[str]:
    if url:
        yield url
        return
    server = _server_module()
    directory = Path(tempfile.mkdtemp(prefix="ragkeep-bench-pg-"))
    try:
        yield server.start(directory)
    finally:
        server.stop(directory)
        shutil.rmtree(directory, ignore_errors=True)


def _server_module() -> Any:
    """scripts/postgres_server.py (a script, not a package), imported once."""
    if "pg_server" not in sys.modules:
        path = ROOT / "scripts/postgres_server.py"
        spec = importlib.util.spec_from_file_location("pg_server", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["pg_server"] = module
        spec.loader.exec_module(module)
    return sys.modules["pg_server"]


def new_database(admin: str) -> AbstractContextManager[str]:
    """A new database with pgvector on the server, dropped afterwards."""
    return _server_module().temporary_database(admin, "bench")  # type: ignore[no-any-return]


def postgres_versions(admin: str) -> dict[str, str]:
    import psycopg

    with psycopg.connect(admin) as conn:
        server = conn.execute("SHOW server_version").fetchone()
        vector = conn.execute(
            "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'"
        ).fetchone()
    return {
        "server": str(server[0] if server else "?"),
        "pgvector": str(vector[0] if vector else "?"),
    }


def _pg_keep(url: str, extra: dict[str, Any] | None = None) -> Keep:
    data = Path(tempfile.mkdtemp(prefix="ragkeep-bench-data-"))
    return Keep(data, overrides={"store.url": url, **NO_CACHE, **(extra or {})})


# -- the measurements ------------------------------------------------------------------------


def _migrate(source: Path, url: str) -> dict[str, Any]:
    with Keep(source) as keep:
        report = keep.migration.migrate_to(url)
    print(f"migrate: {report.documents} documents in {report.seconds:.1f} s, ok={report.ok}")
    return {
        "documents": report.documents,
        "chunks": report.chunks,
        "seconds": round(report.seconds, 2),
        "docs_per_s": round(report.documents / report.seconds, 1),
        "verified": report.ok,
        "target_bytes": _database_bytes(url),
        "checks": [f"{c.name}: {c.detail}" for c in report.verification.checks],
    }


def _database_bytes(url: str) -> int:
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    return int(row[0]) if row else 0


def _eval(keep: Keep, dataset: Dataset) -> dict[str, Any]:
    with keep:
        report = run_eval(keep, dataset, MODES)
    modes = {m.mode.value: m for m in report.modes}
    for name, m in modes.items():
        print(f"{keep.store.location}: {name} nDCG@10 {m.ndcg_at_10} p50 {m.query_p50_ms} ms")
    return {
        "documents": report.documents,
        "chunks": report.chunks,
        "modes": {
            name: {
                "ndcg_at_10": m.ndcg_at_10,
                "recall_at_100": m.recall_at_100,
                "mrr_at_10": m.mrr_at_10,
                "query_p50_ms": m.query_p50_ms,
                "query_p95_ms": m.query_p95_ms,
            }
            for name, m in modes.items()
        },
    }


def _hnsw(url: str, dataset: Dataset) -> dict[str, Any]:
    with _pg_keep(url) as keep:
        store = keep.store
        vectors = keep.embedder().embed(list(dataset.queries.values()))
        started = time.perf_counter()
        store.ensure_hnsw()  # type: ignore[attr-defined]
        build_s = time.perf_counter() - started
        exact_options = DenseOptions(ann=False)
        exact, exact_ms = _dense_runs(store, vectors, exact_options)
        runs: dict[str, Any] = {"exact": _latency(exact_ms)}
        for ef in EF_SEARCH:
            store.ef_search = ef  # type: ignore[attr-defined]
            found, ms = _dense_runs(store, vectors, DenseOptions(ann=True, ann_min_vectors=0))
            recall = sum(len(set(a) & set(e)) / len(e) for a, e in zip(found, exact, strict=True))
            runs[f"ef_search={ef}"] = {
                f"recall_at_{K}": round(recall / len(exact), 4),
                **_latency(ms),
            }
            print(f"hnsw ef_search={ef}: {runs[f'ef_search={ef}']}")
        store.configure_dense(exact_options)
    return {"build_seconds": round(build_s, 2), "queries": len(exact), **runs}


def _sizes(url: str) -> dict[str, float]:
    """Each table's and index's size (MB) after the HNSW build: the scale-out arithmetic's
    per-chunk figures come from these."""
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT c.relname, pg_relation_size(c.oid) + coalesce((SELECT sum("
            "pg_relation_size(t.oid)) FROM pg_class t WHERE t.oid = c.reltoastrelid), 0) "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'i') ORDER BY 1"
        ).fetchall()
    return {str(name): round(int(size) / 1e6, 2) for name, size in rows}


def _dense_runs(
    store: Any, vectors: Any, options: DenseOptions
) -> tuple[list[list[int]], list[float]]:
    store.dense_options = options  # searches only: the index is already built
    found: list[list[int]] = []
    ms: list[float] = []
    for vector in vectors:
        started = time.perf_counter()
        with store.snapshot() as snap:
            ranking = snap.dense.search(vector, K).ranking
        ms.append((time.perf_counter() - started) * 1000)
        found.append([cid for cid, _ in ranking[:K]])
    return found, ms


def _latency(ms: list[float]) -> dict[str, float]:
    return {"p50_ms": round(percentile(ms, 50), 2), "p95_ms": round(percentile(ms, 95), 2)}


def _ingest(admin: str, dataset: Dataset, n: int) -> dict[str, Any]:
    docs = [
        TextDocument(f"beir:{d.doc_id}", d.title, d.full_text)
        for _, d in zip(range(n), dataset.corpus(), strict=False)
    ]
    out: dict[str, Any] = {"documents": len(docs)}
    sqlite_dir = Path(tempfile.mkdtemp(prefix="ragkeep-bench-ingest-"))
    with Keep(sqlite_dir) as keep:
        keep.embedder().embed(["warm-up"])  # load the model outside the timing
        out["sqlite"] = _ingest_one(keep, docs)
    shutil.rmtree(sqlite_dir, ignore_errors=True)
    with new_database(admin) as url, _pg_keep(url) as keep:
        keep.embedder().embed(["warm-up"])
        out["postgresql"] = _ingest_one(keep, docs)
    print(f"ingest: {out}")
    return out


def _ingest_one(keep: Keep, docs: list[TextDocument]) -> dict[str, float]:
    report = keep.indexing.index_texts(docs)
    return {"seconds": round(report.seconds, 2), "docs_per_s": round(len(docs) / report.seconds, 2)}


if __name__ == "__main__":
    main()
