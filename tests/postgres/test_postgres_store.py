"""What only the PostgreSQL backend has to prove: BM25 computed in SQL ranks and scores as
SQLite's FTS5 does, its own bookkeeping is checked and repaired by doctor, HNSW answers as
exact search does, and the errors a user meets are one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import psycopg
import pytest

from ragkeep.config.settings import StoreSettings
from ragkeep.models import LexicalQuery
from ragkeep.search.terms import lexical_query
from ragkeep.store import Store, StoreError, open_store
from ragkeep.store.base import DenseOptions

from conftest import run_cli, scifact_docs
from contract_helpers import DIM, MODEL, put, query, vec

QUERIES = (
    "cancer cells",
    "the effect of vitamin D on bone density",
    '"stem cells" differentiation',
    "protein-coding genes in mice",
    "DNA",
    "risk factors for myocardial infarction",
)


def _open(url: str, dim: int = DIM) -> Store:
    return open_store(StoreSettings(url=url), Path("/nonexistent"), model_id=MODEL, dimension=dim)


def _fill(store: Store, texts: list[str]) -> None:
    rng = np.random.default_rng(7)
    for i, text in enumerate(texts):
        v = rng.normal(size=DIM).astype(np.float32)
        put(store, f"/doc{i:03}", {text: (v / np.linalg.norm(v)).tobytes()})


def _corpus(n: int) -> list[str]:
    try:
        return [f"{d['title']} {d['text']}" for d in scifact_docs(n)]
    except OSError:
        pytest.skip("the SciFact corpus is not in ../shared/eval")


def test_bm25_scores_as_sqlite_fts5_does(postgres_db: str, tmp_path: Path) -> None:
    """The same chunks in both backends: the same ranking and the same scores, for words,
    phrases and required phrases (FTS5's bm25() is the reference)."""
    texts = _corpus(300)
    pg = _open(postgres_db)
    lite = open_store(
        StoreSettings(url=f"sqlite:///{tmp_path / 'ref.db'}"),
        tmp_path,
        model_id=MODEL,
        dimension=DIM,
    )
    _fill(pg, texts)
    _fill(lite, texts)
    asked = [lexical_query(q) for q in QUERIES]
    asked.append(LexicalQuery(scored=(("cell",), ("cancer",)), required=(("breast", "cancer"),)))
    with pg.snapshot() as ps, lite.snapshot() as ls:
        for q in asked:
            ours = _by_path(ps, ps.lexical.search(q, 20))
            ref = _by_path(ls, ls.lexical.search(q, 20))
            assert [p for p, _ in ours] == [p for p, _ in ref], q
            assert [s for _, s in ours] == pytest.approx([s for _, s in ref], rel=1e-9), q
            assert ps.lexical.term_chunks("cells", 1000) == ls.lexical.term_chunks("cells", 1000)
    pg.close()
    lite.close()


def _by_path(snap: object, ranking: list[tuple[int, float]]) -> list[tuple[str, float]]:
    keys = snap.order_keys([cid for cid, _ in ranking])  # type: ignore[attr-defined]
    return sorted(((keys[cid][0], score) for cid, score in ranking), key=lambda r: (-r[1], r[0]))


def test_doctor_finds_and_repairs_broken_postings_and_totals(postgres_db: str) -> None:
    store = _open(postgres_db)
    put(store, "/a", {"alpha beta gamma": vec(1), "beta delta": vec(0, 1)})
    before = _top(store, "beta")
    with psycopg.connect(postgres_db, autocommit=True) as conn:
        conn.execute(
            "DELETE FROM postings WHERE term = 'beta' AND chunk_id = (SELECT min(id) FROM chunks)"
        )
        conn.execute("UPDATE lexical_totals SET chunks = chunks + 5")
    failing = {c.name for c in store.check(False, _no_embed) if not c.ok}
    assert failing == {"full-text postings match chunks", "BM25 totals match chunks"}
    generation = store.generation()
    repaired = store.check(True, _no_embed)
    assert all(c.ok or c.repaired for c in repaired)
    assert all(c.ok for c in store.check(False, _no_embed))
    assert store.generation() > generation  # cached results of the broken index are dead
    assert _top(store, "beta") == before
    store.close()


def _no_embed(texts: object) -> np.ndarray:
    raise AssertionError("nothing needs embedding")


def _top(store: Store, word: str) -> list[tuple[int, float]]:
    with store.snapshot() as snap:
        return snap.lexical.search(LexicalQuery.words(word), 10)


def test_hnsw_answers_as_exact_search_does(postgres_db: str) -> None:
    store = _open(postgres_db, dim=16)
    rng = np.random.default_rng(3)
    for i in range(60):
        v = rng.normal(size=16).astype(np.float32)
        put(store, f"/v{i:02}", {f"text {i}": (v / np.linalg.norm(v)).tobytes()})
    probes = [rng.normal(size=16).astype(np.float32) for _ in range(10)]
    probes = [p / np.linalg.norm(p) for p in probes]
    exact = [_dense(store, p) for p in probes]
    store.configure_dense(DenseOptions(ann=True, ann_min_vectors=10))  # builds the index
    with psycopg.connect(postgres_db) as conn:
        indexes = conn.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'vectors'")
        assert any("hnsw" in str(r[0]) for r in indexes)
    approximate = [_dense(store, p) for p in probes]
    overlap = np.mean([len(set(a) & set(e)) / len(e) for a, e in zip(approximate, exact)])
    assert overlap >= 0.9
    store.close()


def _dense(store: Store, vector: np.ndarray) -> list[int]:
    with store.snapshot() as snap:
        return [cid for cid, _ in snap.dense.search(vector, 5).ranking[:5]]


def test_an_unreachable_server_is_one_line(tmp_path: Path) -> None:
    result = run_cli(
        "--set", "store.url=postgresql://nobody@127.0.0.1:1/none", "status", data_dir=tmp_path
    )
    assert result.code != 0 and "Traceback" not in result.stderr
    assert "cannot reach PostgreSQL at postgresql://nobody@127.0.0.1:1/none" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_database_of_something_else_is_left_untouched(postgres_db: str) -> None:
    with psycopg.connect(postgres_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE invoices (id integer)")
    with pytest.raises(StoreError, match="not a ragkeep index"):
        _open(postgres_db)


def test_migrate_copies_both_ways_and_verifies(postgres_db: str, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for i, text in enumerate(_corpus(40)):
        (docs / f"d{i:02}.txt").write_text(text, encoding="utf-8")
    data = tmp_path / "data"
    assert run_cli("add", str(docs), data_dir=data).code == 0
    there = run_cli("migrate", "--to", postgres_db, "--json", data_dir=data)
    assert there.code == 0, there.stderr
    assert '"ok": true' in there.stdout and '"documents": 40' in there.stdout
    again = run_cli("migrate", "--to", postgres_db, data_dir=data)
    assert again.code == 2 and "is not empty" in again.stderr  # never merged into
    back = tmp_path / "back.db"
    home = run_cli(
        "--set", f"store.url={postgres_db}", "migrate", "--to", f"sqlite:///{back}", data_dir=data
    )
    assert home.code == 0, home.stderr
    query_ = ["search", "--json", "-k", "5", "bone density"]
    original = run_cli(*query_, data_dir=data)
    copy = run_cli("--set", f"store.url=sqlite:///{back}", *query_, data_dir=data)
    assert original.code == copy.code == 0
    assert _hits(original.json()) == _hits(copy.json())  # the round trip answers alike


def _hits(results: dict[str, list[dict[str, object]]]) -> list[tuple[object, ...]]:
    return [(h["path"], h["start"], round(float(h["score"]), 4)) for h in results["hits"]]  # type: ignore[arg-type]


def test_a_dense_query_sees_only_the_indexed_model(postgres_db: str) -> None:
    store = _open(postgres_db)
    put(store, "/a", {"a": vec(1)})
    store.stage_vectors("staged", {"hash-a": vec(0, 1)})
    with store.snapshot() as snap:
        assert snap.dense.search(query(1), 3).ranking[0][1] == pytest.approx(1.0)
    store.close()


def test_the_ann_index_flag_builds_pgvector_hnsw(postgres_db: str, tmp_path: Path) -> None:
    from ragkeep import Keep

    docs = tmp_path / "docs"
    docs.mkdir()
    for i, text in enumerate(_corpus(20)):
        (docs / f"d{i:02}.txt").write_text(text, encoding="utf-8")
    overrides = {"store.url": postgres_db, "search.ann_min_vectors": 0}
    with Keep(tmp_path / "exact", overrides=overrides) as keep:
        keep.add([docs])
        exact = [h.path for h in keep.search("bone density", 5, "dense")]
    with Keep(tmp_path / "ann", overrides={**overrides, "flags.ann_index": True}) as keep:
        approximate = [h.path for h in keep.search("bone density", 5, "dense")]
    with psycopg.connect(postgres_db) as conn:
        indexes = conn.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'vectors'")
        assert any("hnsw" in str(r[0]) for r in indexes)
    assert len(set(exact) & set(approximate)) >= 4


def test_a_full_connection_pool_is_a_busy_error_at_its_deadline(postgres_db: str) -> None:
    import threading
    import time

    from ragkeep.store import StoreBusyError

    settings = StoreSettings(url=postgres_db, pool_size=1, connect_timeout_s=1)
    store = open_store(settings, Path("/nonexistent"), model_id=MODEL, dimension=DIM)
    errors: list[Exception] = []

    def another_search() -> None:
        try:
            with store.snapshot() as snap:
                _ = snap.generation  # a query: it needs a connection
        except StoreBusyError as exc:
            errors.append(exc)

    with store.snapshot():  # holds the only connection
        started = time.monotonic()
        thread = threading.Thread(target=another_search)
        thread.start()
        thread.join(10)
        waited = time.monotonic() - started
    assert len(errors) == 1 and "store.pool_size" in str(errors[0])
    assert 0.9 <= waited < 5
    store.close()
