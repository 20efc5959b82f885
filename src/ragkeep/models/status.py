"""What status and the caches report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ragkeep.models.degradation import ResilienceReport
from ragkeep.models.embedding import EmbeddingStats
from ragkeep.models.json import to_json


@dataclass(frozen=True, slots=True)
class UnusedVectors:
    """Stored vectors no chunk refers to: kept so that a text coming back (a removed folder
    added again, an edit undone) needs no embedding, until `gc` or store.keep_unreferenced_mb."""

    count: int = 0
    bytes: int = 0  # the rows' payload (vector, text hash, model id): what collecting frees


@dataclass(frozen=True, slots=True)
class TierStats:
    hits: int = 0
    misses: int = 0
    evictions: int = 0
    expirations: int = 0

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0

    def __json__(self) -> dict[str, Any]:
        return {
            "hits": self.hits,
            "misses": self.misses,
            "evictions": self.evictions,
            "expirations": self.expirations,
            "hit_rate": round(self.hit_rate, 4),
        }


@dataclass(frozen=True, slots=True)
class CacheReport:
    """The result and query-embedding caches, with counters summed over every process."""

    enabled: bool
    memory: TierStats = TierStats()
    persistent: TierStats = TierStats()
    embeddings: TierStats = TierStats()
    persistent_entries: int = 0
    persistent_bytes: int = 0
    memory_entries: int = 0
    memory_bytes: int = 0

    @property
    def hit_rate(self) -> float:
        lookups = self.memory.hits + self.memory.misses  # every lookup tries memory first
        return (self.memory.hits + self.persistent.hits) / lookups if lookups else 0.0

    def __json__(self) -> dict[str, Any]:
        if not self.enabled:
            return {"enabled": False}
        return {
            "enabled": True,
            "hit_rate": round(self.hit_rate, 4),
            "memory": self.memory,
            "persistent": self.persistent,
            "persistent_entries": self.persistent_entries,
            "persistent_bytes": self.persistent_bytes,
            "memory_entries": self.memory_entries,
            "memory_bytes": self.memory_bytes,
            "embeddings": self.embeddings,
        }


@dataclass(frozen=True, slots=True)
class StoreStatus:
    documents: int
    chunks: int
    sources: list[str]
    model_id: str
    dimension: int
    generation: int
    schema_version: int
    database_path: str  # where the store lives: a file path, or a redacted URL
    database_bytes: int
    # Kept so that re-adding their texts needs no embedding: what `ragkeep gc` would free.
    unreferenced_vectors: UnusedVectors = field(default_factory=UnusedVectors)
    cache: CacheReport = CacheReport(enabled=False)
    resilience: ResilienceReport = field(default_factory=ResilienceReport)
    # This process's embedder: batch sizes and allocation failures (None: not loaded yet).
    embedding: EmbeddingStats | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = to_json(self)
        return out
