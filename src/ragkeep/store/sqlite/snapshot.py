"""A read snapshot of the SQLite store: one `BEGIN` … `COMMIT` read transaction (WAL mode:
it sees one committed state and never blocks a writer)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING

from ragkeep.store.base import CachedRow
from ragkeep.store.records import ChunkRow, OrderKey
from ragkeep.store.sqlite.lexical import Fts5Lexical
from ragkeep.store.sqlite.rows import (
    chunk_count_of,
    chunks_by_id,
    end_read,
    generation_of,
    state_id_of,
)

if TYPE_CHECKING:
    from ragkeep.store.sqlite.dense import SnapshotDense
    from ragkeep.store.sqlite.store import SqliteStore


_ROW_COLUMNS = "ch.id, ch.doc_id, d.path, d.title, ch.text, ch.start, ch.end, ch.page"


class SqliteSnapshot:
    def __init__(self, store: SqliteStore, conn: sqlite3.Connection) -> None:
        self._store = store
        self.conn = conn
        self._generation: int | None = None
        self._state_id: str | None = None
        self._owner = False  # whether this snapshot began the read transaction

    def __enter__(self) -> SqliteSnapshot:
        # Nested inside another read or a write on this thread: share its snapshot.
        if not self.conn.in_transaction:
            self.conn.execute("BEGIN")
            self._owner = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        failure = exc
        if self._owner:
            self._owner = False
            try:
                end_read(self.conn)
            except sqlite3.Error as end_exc:  # a damaged file can fail even this
                failure = failure or end_exc
        if isinstance(failure, sqlite3.Error):
            # A damaged page met mid-search: the caller gets the StoreError that says so.
            typed = self._store.typed_error(failure)
            if typed is not None:
                raise typed from failure
            if failure is not exc:
                raise failure

    @property
    def generation(self) -> int:
        if self._generation is None:
            self._generation = generation_of(self.conn)
        return self._generation

    @property
    def state_id(self) -> str:
        if self._state_id is None:
            self._state_id = state_id_of(self.conn)
        return self._state_id

    @property
    def lexical(self) -> Fts5Lexical:
        return Fts5Lexical(self.conn)

    @property
    def dense(self) -> SnapshotDense:
        return self._store.dense_state().bind(self)

    def chunk_count(self) -> int:
        return chunk_count_of(self.conn)

    def chunk_rows(self, ids: Sequence[int]) -> dict[int, ChunkRow]:
        return {int(r[0]): ChunkRow(*r) for r in chunks_by_id(self.conn, _ROW_COLUMNS, ids)}

    def document_chunks(self, path: str) -> list[ChunkRow]:
        rows = self.conn.execute(
            f"SELECT {_ROW_COLUMNS} FROM chunks ch JOIN documents d ON d.id = ch.doc_id "
            "WHERE d.path = ? ORDER BY ch.ordinal",
            (path,),
        )
        return [ChunkRow(*r) for r in rows]

    def order_keys(self, ids: Sequence[int]) -> dict[int, OrderKey]:
        return {
            int(cid): (str(path), int(ordinal))
            for cid, path, ordinal in chunks_by_id(self.conn, "ch.id, d.path, ch.ordinal", ids)
        }

    def cached_result(self, key: str) -> CachedRow | None:
        row = self.conn.execute(
            "SELECT value, created_at, used_at FROM result_cache WHERE key = ?", (key,)
        ).fetchone()
        return CachedRow(str(row[0]), float(row[1]), float(row[2])) if row else None
