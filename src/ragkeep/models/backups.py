"""What backups, restores, rollbacks and re-embeds report."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError

from ragkeep.store.base import BackupError

if TYPE_CHECKING:  # doctor's models load on first use, not with every search
    from ragkeep.models.maintenance import Check


class BackupContents(BaseModel):
    """What a copy of the index holds, read from the copy itself."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    generation: int
    state_id: str
    schema_version: int
    model_id: str
    dimension: int
    documents: int
    chunks: int


class BackupManifest(BackupContents):
    """A backup: its contents, and when, why and as what file it was made. Stored as
    manifest.json beside the copy and validated when read."""

    id: str
    created_at: float
    reason: str  # "manual", "before migration 3 -> 4", "before restore of ID", ...
    size_bytes: int
    sha256: str

    @property
    def replaced_by_restore(self) -> bool:
        """Made by a restore or rollback of the index it replaced (`rollback` skips these)."""
        return self.reason.startswith(RESTORE_REASON)

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> BackupManifest:
        """Parse a stored manifest; a missing or mistyped field is a BackupError."""
        try:
            return cls.model_validate_json(text, strict=True)
        except ValidationError as exc:
            raise BackupError(
                f"the manifest is not valid ({exc.error_count()} problem(s))"
            ) from None

    def __json__(self) -> dict[str, Any]:
        out: dict[str, Any] = self.model_dump()
        return out


RESTORE_REASON = "before restore"


@dataclass(frozen=True, slots=True)
class BackupEntry:
    """One folder in the backups dir: a complete backup, or what is wrong with it."""

    path: Path
    manifest: BackupManifest | None
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class RestoreReport:
    restored: BackupManifest
    generation: int  # the index's generation now
    replaced: BackupManifest | None  # the index it replaced, kept as a backup (None: empty)


@dataclass
class ValidationReport:
    """The checks a rewritten index must pass; a failure brings its snapshot back."""

    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def failures(self) -> str:
        return "; ".join(f"{c.name}: {c.detail}" for c in self.checks if not c.ok)

    def __json__(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": self.checks}


@dataclass(frozen=True, slots=True)
class ReembedReport:
    model_before: str
    model_after: str
    texts: int  # distinct chunk texts embedded
    snapshot: BackupManifest | None
    validation: ValidationReport
    rolled_back: bool
    generation: int
