"""What doctor reports, and the states of derived files."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ragkeep.models.json import to_json


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
    repairable: bool = True  # False: `doctor --repair` cannot fix it (a damaged file)


@dataclass
class DoctorReport:
    checks: list[Check] = field(default_factory=list)
    snapshot: str | None = None  # the backup taken before a repair (`ragkeep rollback`)

    @property
    def ok(self) -> bool:
        return all(c.ok or c.repaired for c in self.checks)

    @property
    def repairable(self) -> bool:
        """Every problem left is one `--repair` can fix."""
        return all(c.repairable for c in self.checks if not (c.ok or c.repaired))

    def __json__(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": self.checks, "snapshot": self.snapshot}

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = to_json(self)
        return out
