"""Search-result and query-embedding caches that cannot serve stale results.

A result-cache key contains everything a result depends on: the normalised query, mode, k,
options, a fingerprint of every setting that affects ranking, the model id, the schema
version — and the store generation, which every commit bumps. After a commit, old entries
are simply unreachable, so there is no invalidation code to forget.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ragkeep.cache.memory import CacheStats, MemoryLRU
from ragkeep.cache.persistent import PersistentCache
from ragkeep.models import CacheReport, SearchHit, TierStats
from ragkeep.resources import MemoryBudget
from ragkeep.store.base import ReadSnapshot, Store, StoreError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from ragkeep.config.settings import Settings

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
        store: Store,
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
        # Counters already flushed or reset: the metrics need totals that never go back.
        self._retired = {"memory": CacheStats(), "persistent": CacheStats()}
        self.purges = 0  # times a newer generation dropped the memory tier's older entries
        self.purged_entries = 0
        # Odd while something a result depends on is being switched (the ann_index flag in a
        # running process); bumped twice per switch. See changing_settings(). Read-only for
        # callers; a plain attribute because every search reads it.
        self.epoch = 0

    def unchanged_since(self, epoch: int) -> bool:
        """Whether the settings behind this cache's keys are the same as when `epoch` was
        read: a search that overlapped a switch must not store its result under either key."""
        return epoch == self.epoch and epoch % 2 == 0

    @contextmanager
    def changing_settings(self, settings_fingerprint: str) -> Iterator[None]:
        """Wrap a switch of something results depend on; keys made afterwards use the new
        fingerprint. A search that read `epoch` before the switch ends may have run on either
        side of it, so unchanged_since() tells it not to cache what it found."""
        with self._lock:
            self.epoch += 1
        try:
            yield
        finally:
            with self._lock:
                self._fingerprint = settings_fingerprint
                self.epoch += 1

    def key(self, request: Mapping[str, Any], generation: int) -> str:
        return fingerprint(
            {
                "v": FORMAT_VERSION,
                "settings": self._fingerprint,
                "generation": generation,
                **request,
            }
        )

    def get(self, snap: ReadSnapshot, key: str, generation: int) -> list[SearchHit] | None:
        self._observe(generation)
        hits = self.memory.get(key)
        if hits is not None:
            return list(hits)
        raw = self.persistent.get(snap, key)
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
                if self._generation >= 0:
                    self.purges += 1
                self.purged_entries += self.memory.drop_tags_below(generation)
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
        rows = {
            f"{tier}.{name}": getattr(stats, name)
            for tier, stats in delta.items()
            for name in _STAT_NAMES
            if getattr(stats, name)
        }
        if not rows:
            return
        try:
            self._store.cache.add_stats(rows)
        except StoreError:
            return  # statistics are best-effort
        self._retire_live_stats()

    def totals(self) -> dict[str, TierStats]:
        """Per tier, the shared totals plus what this process has not flushed yet."""
        stored = self._store.cache.stats()
        out: dict[str, TierStats] = {}
        for tier, live in (("memory", self.memory.stats), ("persistent", self.persistent.stats)):
            stats = CacheStats(*(stored.get(f"{tier}.{n}", 0) for n in _STAT_NAMES)).add(live)
            out[tier] = stats.frozen()
        return out

    def reset_stats(self) -> None:
        self._store.cache.reset_stats()
        self._retire_live_stats()

    def lifetime(self) -> dict[str, TierStats]:
        """Per tier, this process's counters since it opened the index (never reset)."""
        live = {"memory": self.memory.stats, "persistent": self.persistent.stats}
        return {tier: self._retired[tier].add(live[tier]).frozen() for tier in live}

    def lookups(self) -> tuple[int, int]:
        """(hits in either tier, lookups) since this process opened the index: every lookup
        tries the memory tier first, so its hits and misses count the lookups."""
        tiers = self.lifetime()
        memory, persistent = tiers["memory"], tiers["persistent"]
        return memory.hits + persistent.hits, memory.hits + memory.misses

    def _retire_live_stats(self) -> None:
        self._retired["memory"] = self._retired["memory"].add(self.memory.stats)
        self._retired["persistent"] = self._retired["persistent"].add(self.persistent.stats)
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


@dataclass(frozen=True, slots=True)
class Caches:
    """The result cache and the query-embedding cache of one open index. They always exist
    (they are small until used); the `caching` flag, read through `enabled`, decides on each
    search whether they are used, so switching it needs no restart."""

    results: ResultCache
    embeddings: EmbeddingCache
    enabled: Callable[[], bool]

    def report(self) -> CacheReport:
        """Hits, misses, evictions and expirations per tier, summed over every process."""
        if not self.enabled():
            return CacheReport(enabled=False)
        entries, size = self.results.persistent.entries()
        totals = self.results.totals()
        return CacheReport(
            enabled=True,
            memory=totals["memory"],
            persistent=totals["persistent"],
            embeddings=self.embeddings.lru.stats.frozen(),
            persistent_entries=entries,
            persistent_bytes=size,
            memory_entries=len(self.results.memory),
            memory_bytes=self.results.memory.bytes_used,
        )

    def clear(self) -> int:
        """Empty every tier (the shared one for every process) and reset the statistics;
        returns how many shared entries were removed."""
        removed = self.results.clear()
        self.results.reset_stats()
        self.embeddings.lru.clear()
        return removed


def settings_fingerprint(store: Store, settings: Settings, model_id: str, ann_index: bool) -> str:
    """Every setting that can change a ranking: part of every result-cache key."""
    return fingerprint(
        {
            "search": settings.search.model_dump(mode="json"),
            "ann_index": ann_index,
            "model": model_id,
            "schema": store.schema_version(),
        }
    )


def make_caches(
    store: Store,
    settings: Settings,
    model_id: str,
    ann_index: bool,
    enabled: Callable[[], bool],
) -> Caches:
    """The result and query-embedding caches for these settings; `enabled` is the caching
    flag."""
    cfg = settings.cache
    mb = 1024 * 1024
    budget = MemoryBudget.from_settings(settings)
    config = CacheConfig(
        memory_bytes=(
            budget.result_cache_bytes if cfg.memory_mb is None else int(cfg.memory_mb * mb)
        ),
        persistent_bytes=int(cfg.persistent_mb * mb),
        persistent_entries=cfg.persistent_entries,
        ttl_s=cfg.ttl_s,
        embedding_bytes=(
            budget.embedding_cache_bytes
            if cfg.embedding_memory_mb is None
            else int(cfg.embedding_memory_mb * mb)
        ),
    )
    return Caches(
        ResultCache(store, config, settings_fingerprint(store, settings, model_id, ann_index)),
        EmbeddingCache(model_id, config.embedding_bytes),
        enabled,
    )
