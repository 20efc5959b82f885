"""The persistent result-cache tier: bounded, LRU-evicted and TTL'd, in the store itself.

Living in the store means every process that opens the index (repeated CLI runs, several
server workers) shares its hits, and an entry can never outlive the index it describes. The
policy (expiry, recency, sweeps) is here; the backend's `CacheTable` does the storing. Writes
are best-effort: a busy or read-only store costs a cache entry, never a search.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ragkeep.cache.memory import CacheStats
from ragkeep.store.base import CacheSweep, CacheWrite, ReadSnapshot, Store, StoreError

# Recording every hit would turn each cached read into a write; an entry's recency is
# refreshed at most this often, which keeps eviction close to LRU at a fraction of the cost.
TOUCH_INTERVAL_S = 60.0
# Expiry and size bounds need scans of the table; they run every this many writes, so a
# search pays for a sweep rarely. The table can exceed its bounds by this many entries.
SWEEP_EVERY = 32


class PersistentCache:
    def __init__(
        self,
        store: Store,
        *,
        max_bytes: int,
        max_entries: int,
        ttl_s: float,
        clock: Callable[[], float] = time.time,
        sweep_every: int = SWEEP_EVERY,
    ) -> None:
        self._table = store.cache
        self._sweep_every = max(1, sweep_every)
        self._puts = 0
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self._clock = clock
        self.stats = CacheStats()
        self.write_errors = 0
        self._touch: set[str] = set()

    def get(self, snap: ReadSnapshot, key: str) -> str | None:
        """Look `key` up inside the caller's read snapshot."""
        row = snap.cached_result(key)
        if row is None:
            self.stats.misses += 1
            return None
        now = self._clock()
        if self.ttl_s > 0 and now - row.created_at >= self.ttl_s:
            self.stats.expirations += 1
            self.stats.misses += 1
            return None  # deleted by the next sweep
        if now - row.used_at >= TOUCH_INTERVAL_S:
            self._touch.add(key)
        self.stats.hits += 1
        return row.value

    def put(self, key: str, generation: int, value: str) -> None:
        sweep = None
        if (self._puts + 1) % self._sweep_every == 0:
            sweep = CacheSweep(self.ttl_s, self.max_entries, self.max_bytes)
        write = CacheWrite(key, generation, value, self._clock(), frozenset(self._touch), sweep)
        try:
            result = self._table.put(write)
        except StoreError:
            self.write_errors += 1
            return
        self._puts += 1
        self._touch.clear()
        self.stats.expirations += result.expired
        self.stats.evictions += result.evicted

    def clear(self) -> int:
        return self._table.clear()

    def entries(self) -> tuple[int, int]:
        """(entries, bytes) currently stored."""
        return self._table.entries()
