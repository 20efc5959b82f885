"""What `ragkeep migrate` reports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ragkeep.models.backups import ValidationReport


@dataclass(frozen=True, slots=True)
class MigrationReport:
    source: str  # where the index was copied from (no secrets)
    target: str  # where it was copied to
    target_url: str  # the store.url that opens the copy (no password)
    documents: int
    chunks: int
    generation: int  # the source's generation that was copied
    seconds: float
    verification: ValidationReport

    @property
    def ok(self) -> bool:
        return self.verification.ok

    def __json__(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "source": self.source,
            "target": self.target,
            "target_url": self.target_url,
            "documents": self.documents,
            "chunks": self.chunks,
            "generation": self.generation,
            "seconds": round(self.seconds, 3),
            "verification": self.verification,
        }
