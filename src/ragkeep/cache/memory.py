"""An in-memory LRU bounded in bytes, with an optional TTL and an injectable clock."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from ragkeep.models import TierStats

V = TypeVar("V")
Clock = Callable[[], float]


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    evictions: int = 0
    expirations: int = 0

    def add(self, other: CacheStats) -> CacheStats:
        return CacheStats(
            self.hits + other.hits,
            self.misses + other.misses,
            self.evictions + other.evictions,
            self.expirations + other.expirations,
        )

    def frozen(self) -> TierStats:
        return TierStats(self.hits, self.misses, self.evictions, self.expirations)


@dataclass(frozen=True, slots=True)
class _Entry(Generic[V]):
    value: V
    size: int
    expires_at: float | None
    tag: int  # e.g. the store generation the value belongs to


class MemoryLRU(Generic[V]):
    """Thread-safe; evicts least recently used entries once `max_bytes` would be exceeded."""

    def __init__(self, max_bytes: int, ttl_s: float = 0.0, clock: Clock = time.monotonic) -> None:
        self.max_bytes = max_bytes
        self.ttl_s = ttl_s
        self._clock = clock
        self._entries: OrderedDict[str, _Entry[V]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.stats = CacheStats()

    @property
    def bytes_used(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> V | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self.stats.misses += 1
                return None
            if entry.expires_at is not None and self._clock() >= entry.expires_at:
                self._drop(key)
                self.stats.expirations += 1
                self.stats.misses += 1
                return None
            self._entries.move_to_end(key)
            self.stats.hits += 1
            return entry.value

    def put(self, key: str, value: V, size: int, tag: int = 0) -> None:
        if size > self.max_bytes:
            return  # larger than the whole cache: caching it would only evict everything
        expires = self._clock() + self.ttl_s if self.ttl_s > 0 else None
        with self._lock:
            if key in self._entries:
                self._drop(key)
            self._entries[key] = _Entry(value, size, expires, tag)
            self._bytes += size
            while self._bytes > self.max_bytes:
                oldest = next(iter(self._entries))
                self._drop(oldest)
                self.stats.evictions += 1

    def drop_tags_below(self, tag: int) -> int:
        """Forget entries tagged older than `tag` (entries of past generations)."""
        with self._lock:
            stale = [k for k, e in self._entries.items() if e.tag < tag]
            for key in stale:
                self._drop(key)
            return len(stale)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key)
        self._bytes -= entry.size
