"""How an answer was degraded: which part failed and what answered instead."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Part(StrEnum):
    """A part that can fail while the rest still answers."""

    EMBEDDER = "embedder"  # searches answer from BM25 alone
    LLM = "llm"  # answers are the retrieved passages


class BreakerState(StrEnum):
    CLOSED = "closed"  # calls go through
    OPEN = "open"  # calls are skipped until the cool-down ends
    HALF_OPEN = "half_open"  # one probe call is let through


@dataclass(frozen=True, slots=True)
class Degradation:
    """One fallback taken for one answer: `part` failed (or its breaker is open), so
    `fallback` answered; `reason` is for people."""

    part: Part
    fallback: str  # "bm25" | "passages"
    reason: str

    def message(self) -> str:
        return f"{self.part} unavailable ({self.reason}); answered from {self.fallback}"

    def __json__(self) -> dict[str, Any]:
        return {"part": self.part, "fallback": self.fallback, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class BreakerStatus:
    part: Part
    state: BreakerState
    recent_failures: int  # within the window
    last_error: str | None = None
    retry_in_s: float | None = None  # while open: until the next probe

    def __json__(self) -> dict[str, Any]:
        return {
            "part": self.part,
            "state": self.state,
            "recent_failures": self.recent_failures,
            "last_error": self.last_error,
            "retry_in_s": None if self.retry_in_s is None else round(self.retry_in_s, 1),
        }


@dataclass(frozen=True, slots=True)
class ResilienceReport:
    """This process's breakers, and how often each fallback ran since it started."""

    breakers: tuple[BreakerStatus, ...] = ()
    fallbacks: tuple[tuple[str, int], ...] = ()  # (part, count), sorted

    def __json__(self) -> dict[str, Any]:
        return {"breakers": self.breakers, "fallbacks": dict(self.fallbacks)}
