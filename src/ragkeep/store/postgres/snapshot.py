"""A read snapshot of the PostgreSQL store: one REPEATABLE READ, READ ONLY transaction, so
every call sees the same committed state while writers on any machine commit."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ragkeep.store.base import CachedRow
from ragkeep.store.postgres.dense import PgDense
from ragkeep.store.postgres.lexical import PgLexical
from ragkeep.store.records import ChunkRow, OrderKey

if TYPE_CHECKING:
    import psycopg

    from ragkeep.store.postgres.store import PostgresStore

_ROW_COLUMNS = 'ch.id, ch.doc_id, d.path, d.title, ch.text, ch.start, ch."end", ch.page'


class PgSnapshot:
    def __init__(self, store: PostgresStore) -> None:
        self._store = store
        self._stack = contextlib.ExitStack()
        self._conn: psycopg.Connection[Any] | None = None
        self._meta: tuple[int, str] | None = None

    def __enter__(self) -> PgSnapshot:
        self._conn = self._stack.enter_context(self._store.connections.read())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._conn = None
        self._stack.__exit__(exc_type, exc, tb)

    @property
    def conn(self) -> psycopg.Connection[Any]:
        if self._conn is None:
            raise RuntimeError("a snapshot is used outside its `with` block")
        return self._conn

    def _identity(self) -> tuple[int, str]:
        if self._meta is None:
            self._meta = generation_and_state(self.conn)
        return self._meta

    @property
    def generation(self) -> int:
        return self._identity()[0]

    @property
    def state_id(self) -> str:
        return self._identity()[1]

    @property
    def lexical(self) -> PgLexical:
        return PgLexical(self.conn)

    @property
    def dense(self) -> PgDense:
        store = self._store
        return PgDense(
            self.conn, store.model_id, store.dimension, store.dense_options, store.ef_search
        )

    def chunk_count(self) -> int:
        row = self.conn.execute("SELECT chunks FROM lexical_totals").fetchone()
        return int(row[0]) if row else 0

    def chunk_rows(self, ids: Sequence[int]) -> dict[int, ChunkRow]:
        rows = self.conn.execute(
            f"SELECT {_ROW_COLUMNS} FROM chunks ch JOIN documents d ON d.id = ch.doc_id "
            "WHERE ch.id = ANY(%s)",
            (list(ids),),
        )
        return {int(r[0]): ChunkRow(*r) for r in rows}

    def document_chunks(self, path: str) -> list[ChunkRow]:
        rows = self.conn.execute(
            f"SELECT {_ROW_COLUMNS} FROM chunks ch JOIN documents d ON d.id = ch.doc_id "
            "WHERE d.path = %s ORDER BY ch.ordinal",
            (path,),
        )
        return [ChunkRow(*r) for r in rows]

    def order_keys(self, ids: Sequence[int]) -> dict[int, OrderKey]:
        rows = self.conn.execute(
            "SELECT ch.id, d.path, ch.ordinal FROM chunks ch JOIN documents d ON d.id = ch.doc_id "
            "WHERE ch.id = ANY(%s)",
            (list(ids),),
        )
        return {int(cid): (str(path), int(ordinal)) for cid, path, ordinal in rows}

    def cached_result(self, key: str) -> CachedRow | None:
        row = self.conn.execute(
            "SELECT value, created_at, used_at FROM result_cache WHERE key = %s", (key,)
        ).fetchone()
        return CachedRow(str(row[0]), float(row[1]), float(row[2])) if row else None


def generation_and_state(conn: psycopg.Connection[Any]) -> tuple[int, str]:
    rows = dict(
        conn.execute(
            "SELECT key, value FROM meta WHERE key IN ('generation', 'state_id')"
        ).fetchall()
    )
    return int(rows["generation"]), str(rows["state_id"])
