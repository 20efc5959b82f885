"""The persistent result-cache tier: a bounded, LRU-evicted, TTL'd table in the index database.

Living in the same SQLite file means every process that opens the index (repeated CLI runs,
several server workers) shares its hits, and a cache entry can never outlive the database
it describes. Cache writes are best-effort: a busy or read-only database costs a cache
entry, never a search.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

from ragkeep.cache.memory import CacheStats
from ragkeep.store.sqlite import SqliteStore, StoreError

# Recording every hit would turn each cached read into a write; an entry's recency is
# refreshed at most this often, which keeps eviction close to LRU at a fraction of the cost.
TOUCH_INTERVAL_S = 60.0
# A search never waits longer than this to store its result; a busy index skips the entry.
WRITE_WAIT_S = 0.05
# Expiry and size bounds need scans of the table; they run every this many writes, so a
# search pays for a sweep rarely. The table can exceed its bounds by this many entries.
SWEEP_EVERY = 32


class PersistentCache:
    def __init__(
        self,
        store: SqliteStore,
        *,
        max_bytes: int,
        max_entries: int,
        ttl_s: float,
        clock: Callable[[], float] = time.time,
        sweep_every: int = SWEEP_EVERY,
    ) -> None:
        self._store = store
        self._sweep_every = max(1, sweep_every)
        self._puts = 0
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self._clock = clock
        self.stats = CacheStats()
        self.write_errors = 0
        self._touch: set[str] = set()

    def get(self, c: sqlite3.Connection, key: str) -> str | None:
        """Look `key` up inside the caller's read snapshot `c`."""
        row = c.execute(
            "SELECT value, created_at, used_at FROM result_cache WHERE key = ?", (key,)
        ).fetchone()
        if row is None:
            self.stats.misses += 1
            return None
        value, created_at, used_at = str(row[0]), float(row[1]), float(row[2])
        now = self._clock()
        if self.ttl_s > 0 and now - created_at >= self.ttl_s:
            self.stats.expirations += 1
            self.stats.misses += 1
            return None  # deleted by the next put, which sweeps expired rows
        if now - used_at >= TOUCH_INTERVAL_S:
            self._touch.add(key)
        self.stats.hits += 1
        return value

    def put(self, key: str, generation: int, value: str) -> None:
        now = self._clock()
        try:
            with self._store.write(wait_s=WRITE_WAIT_S) as c:
                c.execute(
                    "INSERT INTO result_cache(key, generation, value, size, created_at, used_at) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET "
                    "value = excluded.value, size = excluded.size, "
                    "created_at = excluded.created_at, used_at = excluded.used_at",
                    (key, generation, value, len(value), now, now),
                )
                self._flush_touches(c, now)
                # Entries of older generations can never be hit again: purge them lazily here.
                c.execute("DELETE FROM result_cache WHERE generation < ?", (generation,))
                self._puts += 1
                if self._puts % self._sweep_every == 0:
                    self._sweep(c, now)
        except (sqlite3.Error, StoreError):
            self.write_errors += 1

    def clear(self) -> int:
        with self._store.write() as c:
            return c.execute("DELETE FROM result_cache").rowcount

    def entries(self) -> tuple[int, int]:
        """(entries, bytes) currently stored."""
        with self._store.read() as c:
            count, size = c.execute(
                "SELECT count(*), coalesce(sum(size), 0) FROM result_cache"
            ).fetchone()
        return int(count), int(size)

    def _sweep(self, c: sqlite3.Connection, now: float) -> None:
        if self.ttl_s > 0:
            expired = c.execute(
                "DELETE FROM result_cache WHERE created_at <= ?", (now - self.ttl_s,)
            ).rowcount
            self.stats.expirations += expired
        self.stats.evictions += self._enforce_bounds(c)

    def _flush_touches(self, c: sqlite3.Connection, now: float) -> None:
        if self._touch:
            c.executemany(
                "UPDATE result_cache SET used_at = ? WHERE key = ?",
                [(now, k) for k in self._touch],
            )
            self._touch.clear()

    def _enforce_bounds(self, c: sqlite3.Connection) -> int:
        count, size = c.execute(
            "SELECT count(*), coalesce(sum(size), 0) FROM result_cache"
        ).fetchone()
        evicted = 0
        while count > self.max_entries or size > self.max_bytes:
            over = max(count - self.max_entries, 1)
            rows = c.execute(
                "SELECT key, size FROM result_cache ORDER BY used_at, created_at LIMIT ?",
                (over,),
            ).fetchall()
            for key, row_size in rows:
                c.execute("DELETE FROM result_cache WHERE key = ?", (key,))
                count -= 1
                size -= row_size
                evicted += 1
                if count <= self.max_entries and size <= self.max_bytes:
                    break
        return evicted
