"""The persistent result-cache tier as two tables in the index database.

Living in the same file means every process that opens the index shares its hits, and an
entry can never outlive the database it describes. Every failure becomes a StoreError: the
cache above treats a write as best-effort.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ragkeep.store.base import CacheSweep, CacheWrite, StoreError, SweepResult

if TYPE_CHECKING:
    from ragkeep.store.sqlite.store import SqliteStore

# A search never waits longer than this to store its result; a busy index skips the entry.
WRITE_WAIT_S = 0.05


class SqliteCacheTable:
    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    def put(self, write: CacheWrite) -> SweepResult:
        with self._write() as c:
            c.execute(
                "INSERT INTO result_cache(key, generation, value, size, created_at, used_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET "
                "value = excluded.value, size = excluded.size, "
                "created_at = excluded.created_at, used_at = excluded.used_at",
                (write.key, write.generation, write.value, len(write.value), write.now, write.now),
            )
            if write.touched:
                c.executemany(
                    "UPDATE result_cache SET used_at = ? WHERE key = ?",
                    [(write.now, k) for k in sorted(write.touched)],
                )
            # Entries of older generations can never be hit again: purge them here.
            c.execute("DELETE FROM result_cache WHERE generation < ?", (write.generation,))
            return _sweep(c, write.sweep, write.now) if write.sweep else SweepResult()

    def clear(self) -> int:
        with self._write(wait=False) as c:
            return int(c.execute("DELETE FROM result_cache").rowcount)

    def entries(self) -> tuple[int, int]:
        with self._store.read() as c:
            count, size = c.execute(
                "SELECT count(*), coalesce(sum(size), 0) FROM result_cache"
            ).fetchone()
        return int(count), int(size)

    def add_stats(self, deltas: dict[str, int]) -> None:
        with self._write() as c:
            c.executemany(
                "INSERT INTO cache_stats(name, value) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                sorted(deltas.items()),
            )

    def stats(self) -> dict[str, int]:
        with self._store.read() as c:
            return {str(n): int(v) for n, v in c.execute("SELECT name, value FROM cache_stats")}

    def reset_stats(self) -> None:
        with self._write(wait=False) as c:
            c.execute("DELETE FROM cache_stats")

    @contextmanager
    def _write(self, wait: bool = True) -> Iterator[sqlite3.Connection]:
        """A short write: best-effort writers wait WRITE_WAIT_S at most; explicit user
        actions (clear, reset) wait as long as any write."""
        try:
            with self._store.write(wait_s=WRITE_WAIT_S if wait else None) as c:
                yield c
        except sqlite3.Error as exc:
            raise StoreError(f"result cache: {exc}") from exc


def _sweep(c: sqlite3.Connection, sweep: CacheSweep, now: float) -> SweepResult:
    expired = 0
    if sweep.ttl_s > 0:
        expired = c.execute(
            "DELETE FROM result_cache WHERE created_at <= ?", (now - sweep.ttl_s,)
        ).rowcount
    count, size = c.execute("SELECT count(*), coalesce(sum(size), 0) FROM result_cache").fetchone()
    evicted = 0
    while count > sweep.max_entries or size > sweep.max_bytes:
        over = max(count - sweep.max_entries, 1)
        rows = c.execute(
            "SELECT key, size FROM result_cache ORDER BY used_at, created_at LIMIT ?", (over,)
        ).fetchall()
        for key, row_size in rows:
            c.execute("DELETE FROM result_cache WHERE key = ?", (key,))
            count -= 1
            size -= row_size
            evicted += 1
            if count <= sweep.max_entries and size <= sweep.max_bytes:
                break
    return SweepResult(expired=expired, evicted=evicted)
