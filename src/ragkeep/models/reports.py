"""What indexing, status, caching, flags and doctor report back to a front-end."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ragkeep.models.json import to_json


class FileOutcome(StrEnum):
    ADDED = "added"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"
    FAILED = "failed"
    REMOVED = "removed"
    RENAMED = "renamed"


class SkipReason(StrEnum):
    """Why a file has nothing to index: not an error, so it is skipped, not failed."""

    UNSUPPORTED_TYPE = "unsupported_type"
    NOT_REGULAR_FILE = "not_regular_file"
    TOO_LARGE = "too_large"
    NO_TEXT = "no_text"  # empty, blank, or a PDF without extractable text


@dataclass(frozen=True, slots=True)
class FileResult:
    path: str
    outcome: FileOutcome
    reason: str | None = None  # for people: why it failed, was skipped or removed
    chunks: int = 0
    warnings: tuple[str, ...] = ()
    moved_from: str | None = None  # RENAMED: the path the document had before
    skip: SkipReason | None = None  # SKIPPED (or REMOVED because it now has nothing to index)


@dataclass(slots=True)
class IndexReport:
    """What one add/sync run did, file by file."""

    results: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0
    generation: int = 0

    def count(self, outcome: FileOutcome) -> int:
        return sum(1 for r in self.results if r.outcome is outcome)

    @property
    def ok(self) -> bool:
        return self.count(FileOutcome.FAILED) == 0

    def __json__(self) -> dict[str, Any]:
        return {
            **{o.value: self.count(o) for o in FileOutcome},
            "seconds": round(self.seconds, 3),
            "generation": self.generation,
            "files": [
                {
                    "path": r.path,
                    "outcome": r.outcome,
                    "reason": r.reason,
                    "chunks": r.chunks,
                    "warnings": r.warnings,
                    "moved_from": r.moved_from,
                    "skip": r.skip,
                }
                for r in self.results
                if r.outcome is not FileOutcome.UNCHANGED
            ],
        }

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = to_json(self)
        return out


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
    cache: CacheReport = CacheReport(enabled=False)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = to_json(self)
        return out


class Stage(StrEnum):
    ALPHA = "alpha"
    BETA = "beta"
    STABLE = "stable"


class FlagSource(StrEnum):
    DEFAULT = "default"
    DATABASE = "database"  # `ragkeep flags enable/disable`, persisted in the index
    SETTINGS = "settings"  # forced by the `flags` setting (file, environment or --set)


@dataclass(frozen=True, slots=True)
class FlagState:
    name: str
    enabled: bool
    default: bool
    stage: Stage
    source: FlagSource
    description: str


class DerivedState(StrEnum):
    """A derived file (vector file, ANN index) against the committed state it must match."""

    FRESH = "fresh"  # made from exactly this state, checksum ok
    STALE = "stale"  # intact, made from an older state: rebuilt when next needed
    MISSING = "missing"
    DAMAGED = "damaged"  # does not match its checksum or stamp


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    repaired: bool = False


@dataclass
class DoctorReport:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok or c.repaired for c in self.checks)

    def __json__(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": self.checks}

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = to_json(self)
        return out
