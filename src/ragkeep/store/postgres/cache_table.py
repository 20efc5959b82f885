"""The persistent result-cache tier as two tables in the index database, shared by every
process and every server on it. Every failure becomes a StoreError: the cache above treats
a write as best-effort."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ragkeep.store.base import CacheSweep, CacheWrite, StoreError, SweepResult

if TYPE_CHECKING:
    import psycopg

    from ragkeep.store.postgres.store import PostgresStore

# A search never waits longer than this for a row lock to store its result.
WRITE_WAIT_S = 0.05


class PgCacheTable:
    def __init__(self, store: PostgresStore) -> None:
        self._store = store

    def put(self, write: CacheWrite) -> SweepResult:
        with self._write() as c:
            c.execute(
                "INSERT INTO result_cache(key, generation, value, size, created_at, used_at) "
                "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT(key) DO UPDATE SET "
                "generation = excluded.generation, value = excluded.value, "
                "size = excluded.size, created_at = excluded.created_at, "
                "used_at = excluded.used_at",
                (write.key, write.generation, write.value, len(write.value), write.now, write.now),
            )
            if write.touched:
                c.execute(
                    "UPDATE result_cache SET used_at = %s WHERE key = ANY(%s)",
                    (write.now, sorted(write.touched)),
                )
            # Entries of older generations can never be hit again: purge them here.
            c.execute("DELETE FROM result_cache WHERE generation < %s", (write.generation,))
            return _sweep(c, write.sweep, write.now) if write.sweep else SweepResult()

    def clear(self) -> int:
        with self._write(wait=False) as c:
            return int(c.execute("DELETE FROM result_cache").rowcount)

    def entries(self) -> tuple[int, int]:
        with self._store.connections.read() as c:
            row = c.execute("SELECT count(*), coalesce(sum(size), 0) FROM result_cache").fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def add_stats(self, deltas: dict[str, int]) -> None:
        with self._write() as c:
            c.cursor().executemany(
                "INSERT INTO cache_stats(name, value) VALUES (%s, %s) "
                "ON CONFLICT(name) DO UPDATE SET value = cache_stats.value + excluded.value",
                sorted(deltas.items()),
            )

    def stats(self) -> dict[str, int]:
        with self._store.connections.read() as c:
            return {str(n): int(v) for n, v in c.execute("SELECT name, value FROM cache_stats")}

    def reset_stats(self) -> None:
        with self._write(wait=False) as c:
            c.execute("DELETE FROM cache_stats")

    @contextmanager
    def _write(self, wait: bool = True) -> Iterator[psycopg.Connection[Any]]:
        """Best-effort writers wait WRITE_WAIT_S at most for a row lock; explicit user
        actions (clear, reset) as long as any write."""
        try:
            with self._store.write(wait_s=WRITE_WAIT_S if wait else None) as c:
                yield c
        except StoreError:
            raise
        except Exception as exc:  # psycopg errors inside the body
            raise StoreError(f"result cache: {exc}") from exc


def _sweep(c: psycopg.Connection[Any], sweep: CacheSweep, now: float) -> SweepResult:
    expired = 0
    if sweep.ttl_s > 0:
        expired = c.execute(
            "DELETE FROM result_cache WHERE created_at <= %s", (now - sweep.ttl_s,)
        ).rowcount
    row = c.execute("SELECT count(*), coalesce(sum(size), 0) FROM result_cache").fetchone()
    count, size = (int(row[0]), int(row[1])) if row else (0, 0)
    evicted = 0
    while count > sweep.max_entries or size > sweep.max_bytes:
        over = max(count - sweep.max_entries, 1)
        rows = c.execute(
            "SELECT key, size FROM result_cache ORDER BY used_at, created_at LIMIT %s", (over,)
        ).fetchall()
        for key, row_size in rows:
            c.execute("DELETE FROM result_cache WHERE key = %s", (key,))
            count -= 1
            size -= int(row_size)
            evicted += 1
            if count <= sweep.max_entries and size <= sweep.max_bytes:
                break
    return SweepResult(expired=expired, evicted=evicted)
