"""What add, sync and remove report, file by file."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ragkeep.models.embedding import EmbeddingStats
from ragkeep.models.json import to_json
from ragkeep.models.status import UnusedVectors


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
    # A symlink that loops, or leads to a folder already walked: reported on every run as a
    # warning, never a failure, so a cron'd `sync` does not exit 1 forever.
    SYMLINK_LOOP = "symlink_loop"


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
    embedding: EmbeddingStats | None = None  # None when the run embedded nothing
    embedded_chunks: int = 0  # chunk texts embedded; the others reused stored vectors
    # After the run: the vectors kept although no chunk uses them, and those collected
    # because they outgrew store.keep_unreferenced_mb.
    unreferenced_vectors: UnusedVectors = field(default_factory=UnusedVectors)
    collected_vectors: UnusedVectors = field(default_factory=UnusedVectors)
    snapshot: str | None = None  # the backup id taken before the run (`ragkeep rollback`)

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
            "embedding": self.embedding,
            "embedded_chunks": self.embedded_chunks,
            "unreferenced_vectors": self.unreferenced_vectors,
            "collected_vectors": self.collected_vectors,
            "snapshot": self.snapshot,
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
