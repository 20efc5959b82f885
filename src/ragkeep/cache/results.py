"""Search-result and query-embedding caches that cannot serve stale results.

A result-cache key contains everything a result depends on: the normalised query, mode, k,
options, a fingerprint of every setting that affects ranking, the model id, the schema
version — and the store generation, which every commit bumps. After a commit, old entries
are simply unreachable, so there is no invalidation code to forget.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ragkeep.cache.memory import CacheStats, MemoryLRU
from ragkeep.cache.persistent import WRITE_WAIT_S, PersistentCache
from ragkeep.models import SearchHit
from ragkeep.store.sqlite import SqliteStore, StoreError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

FORMAT_VERSION = 1  # bump when the cached value's shape changes
_STAT_NAMES = ("hits", "misses", "evictions", "expirations")


def normalize_query(text: str) -> str:
    """Whitespace differences never change tokens, so they must not split cache entries."""
    return " ".join(text.split())


def fingerprint(parts: Mapping[str, Any]) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class CacheConfig:
    memory_bytes: int
    persistent_bytes: int
    persistent_entries: int
    ttl_s: float
    embedding_bytes: int


class ResultCache:
    """Two tiers: a per-process LRU in front of the shared table in the database."""

    def __init__(
        self,
        store: SqliteStore,
        config: CacheConfig,
        settings_fingerprint: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._fingerprint = settings_fingerprint
        self.memory: MemoryLRU[tuple[SearchHit, ...]] = MemoryLRU(
            config.memory_bytes, config.ttl_s, clock
        )
        self.persistent = PersistentCache(
            store,
            max_bytes=config.persistent_bytes,
            max_entries=config.persistent_entries,
            ttl_s=config.ttl_s,
            clock=clock,
        )
        self._store = store
        self._generation = -1
        self._lock = threading.Lock()

    def key(self, request: Mapping[str, Any], generation: int) -> str:
        return fingerprint(
            {
                "v": FORMAT_VERSION,
                "settings": self._fingerprint,
                "generation": generation,
                **request,
            }
        )

    def get(self, c: sqlite3.Connection, key: str, generation: int) -> list[SearchHit] | None:
        self._observe(generation)
        hits = self.memory.get(key)
        if hits is not None:
            return list(hits)
        raw = self.persistent.get(c, key)
        if raw is None:
            return None
        decoded = tuple(SearchHit(**d) for d in json.loads(raw))
        self.memory.put(key, decoded, len(raw), generation)
        return list(decoded)

    def put(self, key: str, generation: int, hits: list[SearchHit]) -> None:
        raw = json.dumps([h.to_dict() for h in hits], separators=(",", ":"))
        self.memory.put(key, tuple(hits), len(raw), generation)
        self.persistent.put(key, generation, raw)

    def _observe(self, generation: int) -> None:
        with self._lock:
            if generation > self._generation:
                self.memory.drop_tags_below(generation)
                self._generation = generation

    def clear(self) -> int:
        self.memory.clear()
        return self.persistent.clear()

    # -- statistics, shared across processes through the database --------------------------

    def process_stats(self) -> CacheStats:
        return self.memory.stats.add(self.persistent.stats)

    def flush_stats(self) -> None:
        """Add this process's counters to the shared totals (once per process, at close)."""
        delta = {
            "memory": self.memory.stats,
            "persistent": self.persistent.stats,
        }
        rows = [
            (f"{tier}.{name}", getattr(stats, name))
            for tier, stats in delta.items()
            for name in _STAT_NAMES
            if getattr(stats, name)
        ]
        if not rows:
            return
        try:
            with self._store.write(wait_s=WRITE_WAIT_S) as c:
                c.executemany(
                    "INSERT INTO cache_stats(name, value) VALUES (?, ?) "
                    "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                    rows,
                )
        except (sqlite3.Error, StoreError):
            return  # statistics are best-effort
        self.memory.stats = CacheStats()
        self.persistent.stats = CacheStats()

    def totals(self) -> dict[str, dict[str, float]]:
        with self._store.read() as c:
            stored = {n: int(v) for n, v in c.execute("SELECT name, value FROM cache_stats")}
        out: dict[str, dict[str, float]] = {}
        for tier, live in (("memory", self.memory.stats), ("persistent", self.persistent.stats)):
            stats = CacheStats(*(stored.get(f"{tier}.{n}", 0) for n in _STAT_NAMES)).add(live)
            out[tier] = stats.to_dict()
        return out

    def reset_stats(self) -> None:
        with self._store.write() as c:
            c.execute("DELETE FROM cache_stats")
        self.memory.stats = CacheStats()
        self.persistent.stats = CacheStats()


class EmbeddingCache:
    """Query vectors by (model id, normalised text): repeated questions skip the model."""

    def __init__(self, model_id: str, max_bytes: int) -> None:
        self._model_id = model_id
        self.lru: MemoryLRU[npt.NDArray[np.float32]] = MemoryLRU(max_bytes)

    def get_or_compute(
        self, text: str, compute: Callable[[str], npt.NDArray[np.float32]]
    ) -> npt.NDArray[np.float32]:
        key = f"{self._model_id}\x00{normalize_query(text)}"
        vec = self.lru.get(key)
        if vec is None:
            vec = compute(text)
            vec.setflags(write=False)  # shared between searches: nobody may modify it
            self.lru.put(key, vec, vec.nbytes + len(key) + 64)
        return vec
