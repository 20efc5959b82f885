"""Small queries shared by the SQLite store and its read snapshots."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def end_read(c: sqlite3.Connection) -> None:
    """End a read transaction. If COMMIT fails (it can on a damaged file), roll back so the
    connection is never left inside a transaction, then raise the COMMIT's error."""
    if not c.in_transaction:
        return
    try:
        c.execute("COMMIT")
    except sqlite3.Error:
        if c.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                c.execute("ROLLBACK")
        raise


def generation_of(c: sqlite3.Connection) -> int:
    return int(c.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])


def state_id_of(c: sqlite3.Connection) -> str:
    """The token of the snapshot `c` sees: different for every committed state, ever."""
    return str(c.execute("SELECT value FROM meta WHERE key = 'state_id'").fetchone()[0])


def chunk_count_of(c: sqlite3.Connection) -> int:
    return int(c.execute("SELECT count(*) FROM chunks").fetchone()[0])


def chunks_by_id(c: sqlite3.Connection, columns: str, ids: Sequence[int]) -> Iterator[Any]:
    """Rows of `columns` (over chunks ch JOIN documents d) for the given chunk ids."""
    for batch in batches(list(ids), 500):
        marks = ",".join("?" * len(batch))
        yield from c.execute(
            f"SELECT {columns} FROM chunks ch JOIN documents d ON d.id = ch.doc_id "
            f"WHERE ch.id IN ({marks})",
            batch,
        )


def batches(items: Sequence[T], size: int) -> Iterator[list[T]]:
    seq = list(items)
    for i in range(0, len(seq), size):
        yield seq[i : i + size]
