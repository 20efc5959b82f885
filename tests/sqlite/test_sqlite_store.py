"""The SQLite backend's own behaviour: schema versions, WAL, FTS5 triggers, per-thread
connections, shared vector rows. What every backend does is in tests/contract/."""

from __future__ import annotations

import itertools
import sqlite3
import sys
from pathlib import Path

import numpy as np
import pytest

from ragkeep.store import FileStamp, NewChunk, NewDocument, StoreError
from ragkeep.store.sqlite import SqliteStore
from ragkeep.store.sqlite.schema import SCHEMA_VERSION
from ragkeep.store.sqlite.store import WRITE_SLICE

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


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    _store(tmp_path).close()
    conn = sqlite3.connect(tmp_path / "ragkeep.db")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer than this ragkeep"):
        _store(tmp_path)


def test_fts_rows_follow_the_chunks_table_through_triggers(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.replace_document(_doc("/a"), [_chunk(0, "old words")], {"hash-old words": _vec(0)})
    store.replace_document(_doc("/a", "h2"), [_chunk(0, "new words")], {"hash-new words": _vec(1)})
    with store.read() as c:
        c.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('integrity-check')")
        assert c.execute("SELECT count(*) FROM chunks_fts").fetchone()[0] == 1
    store.delete_documents(["/a"])
    with store.read() as c:
        c.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('integrity-check')")
        assert c.execute("SELECT count(*) FROM chunks").fetchone()[0] == 0
    store.close()


def test_chunks_with_equal_text_share_one_matrix_row(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.replace_document(_doc("/a"), [_chunk(0, "same text")], {"hash-same text": _vec(0)})
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
            seen.append(store.counts().documents)
        except BaseException as exc:  # pragma: no cover - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and seen == [1] * 8
    store.close()


def test_a_big_document_is_written_and_replaced_in_slices(tmp_path: Path) -> None:
    """Ctrl-C only lands between SQLite statements: no statement of a document's commit
    writes or deletes more than WRITE_SLICE chunks, so a signal waits for one slice, not
    for 50,000 chunks (the transaction then rolls back whole)."""
    store = _store(tmp_path)
    n = 3 * WRITE_SLICE + 7
    chunks = [_chunk(i, f"text {i}") for i in range(n)]
    vectors = {c.text_hash: _vec(i) for i, c in enumerate(chunks)}
    statements: list[tuple[str, int]] = []
    with store.read() as c:  # this thread's connection, which replace_document uses
        c.set_trace_callback(lambda sql: statements.append((sql, c.total_changes)))
    store.replace_document(_doc("/d/big.txt", "v1"), chunks, vectors)
    store.replace_document(_doc("/d/big.txt", "v2"), chunks[::-1], vectors)
    # Rows each statement changed (triggers' FTS rows included): the next one's count
    # minus its own.
    changed = [
        (sql.split("(")[0][:40], after - before)
        for (sql, before), (_, after) in itertools.pairwise(statements)
    ]
    assert sum(k for _, k in changed) >= 2 * 2 * n  # written, deleted, and written again
    assert max(k for _, k in changed) <= 2 * WRITE_SLICE, max(changed, key=lambda s: s[1])
    assert store.counts().chunks == n
    # The trace sees each row of an executemany as a statement of its own, so it cannot tell
    # one executemany of every row from slices; Python's profiler sees the calls themselves.
    calls: list[int] = []

    def count(_frame: object, event: str, arg: object) -> None:
        if event == "c_call" and getattr(arg, "__name__", "") == "executemany":
            calls.append(1)

    fresh = [_chunk(i, f"other {i}") for i in range(n)]
    sys.setprofile(count)
    try:
        store.replace_document(
            _doc("/d/big.txt", "v3"), fresh, {c.text_hash: _vec(1) for c in fresh}
        )
    finally:
        sys.setprofile(None)
    slices = -(-n // WRITE_SLICE)
    assert len(calls) >= 2 * slices  # chunk rows and vector rows, each a slice at a time
