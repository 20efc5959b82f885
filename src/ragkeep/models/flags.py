"""Feature flags as a running index sees them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


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
