"""The SQLite store: schema versions, model identity, and one transaction per document."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from ragkeep.store import FileStamp, NewChunk, NewDocument, SqliteStore, StoreError
from ragkeep.store.schema import SCHEMA_VERSION

MODEL = "test-model"
DIM = 4


def _store(path: Path, model: str = MODEL, dim: int = DIM) -> SqliteStore:
    return SqliteStore(path / "ragkeep.db", model_id=model, dimension=dim)


def _doc(path: str, content: str = "h") -> NewDocument:
    return NewDocument(path, "title", FileStamp(1, 2, 3), content, None)


def _chunk(i: int, text: str) -> NewChunk:
    return NewChunk(i, text, f"hash-{text}", 0, len(text), None, 3)


def _vec(seed: int) -> bytes:
    v = np.zeros(DIM, dtype=np.float32)
    v[seed % DIM] = 1.0
    return v.tobytes()


def test_new_store_records_schema_model_and_wal(tmp_path: Path) -> None:
    store = _store(tmp_path)
    meta = store.meta()
    assert meta["model_id"] == MODEL and meta["dimension"] == str(DIM)
    assert meta["generation"] == "0"
    with store.read() as c:
        assert c.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()


def test_opening_with_another_model_fails_clearly(tmp_path: Path) -> None:
    _store(tmp_path).close()
    with pytest.raises(StoreError, match="was built with embedding model 'test-model'"):
        _store(tmp_path, model="other-model")
    with pytest.raises(StoreError, match="4 dims"):
        _store(tmp_path, dim=8)


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    _store(tmp_path).close()
    conn = sqlite3.connect(tmp_path / "ragkeep.db")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer than this ragkeep"):
        _store(tmp_path)


def test_replace_is_atomic_and_bumps_generation(tmp_path: Path) -> None:
    store = _store(tmp_path)
    gen = store.replace_document(
        _doc("/a"),
        [_chunk(0, "alpha one"), _chunk(1, "alpha two")],
        {"hash-alpha one": _vec(0), "hash-alpha two": _vec(1)},
    )
    assert gen == 1
    # A new version whose vectors are missing must not replace the old one, even partially.
    with pytest.raises(StoreError, match="no vector"):
        store.replace_document(_doc("/a", "h2"), [_chunk(0, "beta")], {})
    with store.read() as c:
        texts = [r[0] for r in c.execute("SELECT text FROM chunks ORDER BY ordinal")]
        fts = [
            r[0] for r in c.execute("SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH 'alpha'")
        ]
    assert texts == ["alpha one", "alpha two"]
    assert len(fts) == 2
    assert store.generation() == 1
    assert store.document("/a").content_hash == "h"  # type: ignore[union-attr]
    store.close()


def test_fts_follows_replacements_and_deletions(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.replace_document(_doc("/a"), [_chunk(0, "old words")], {"hash-old words": _vec(0)})
    store.replace_document(_doc("/a", "h2"), [_chunk(0, "new words")], {"hash-new words": _vec(1)})
    with store.read() as c:
        assert store.bm25(c, '"old"', 10) == []
        assert len(store.bm25(c, '"new"', 10)) == 1
        c.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('integrity-check')")
    gen = store.delete_documents(["/a"])
    assert gen == 3
    with store.read() as c:
        assert store.bm25(c, '"new"', 10) == []
        assert c.execute("SELECT count(*) FROM chunks").fetchone()[0] == 0
    store.close()


def test_vectors_are_shared_by_content(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.replace_document(_doc("/a"), [_chunk(0, "same text")], {"hash-same text": _vec(0)})
    assert store.missing_vectors(["hash-same text", "hash-other"]) == {"hash-other"}
    # A second document with the same chunk text needs no new vector.
    store.replace_document(_doc("/b"), [_chunk(0, "same text")], {})
    with store.read() as c:
        table = store.load_vectors(c)
    # Two chunks, one shared vector row.
    assert len(table.ids) == 2 and table.matrix.shape == (1, DIM)
    assert list(table.rows) == [0, 0] and table.per_chunk().shape == (2, DIM)
    store.close()


def test_connections_are_per_thread(tmp_path: Path) -> None:
    import threading

    store = _store(tmp_path)
    store.replace_document(_doc("/a"), [_chunk(0, "x")], {"hash-x": _vec(0)})
    seen: list[int] = []
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            seen.append(store.counts()[0])
        except BaseException as exc:  # pragma: no cover - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and seen == [1] * 8
    store.close()
