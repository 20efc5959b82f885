"""Health against the monitoring table: each metric's value over a rolling window, its
thresholds, and the level it reaches (docs/observability.md)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Metric(StrEnum):
    ERROR_RATE = "error_rate"
    MEMORY = "memory"
    CACHE_HIT_RATE = "cache_hit_rate"
    QUERY_P95 = "query_p95"


class Level(StrEnum):
    """Ordered from best to worst; a report's level is its worst row's."""

    NO_DATA = "no data"  # too few requests in the window to judge
    OK = "ok"  # the target is met
    ABOVE_TARGET = "above target"  # the target is missed, no alert yet
    ALERT = "alert"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def exit_code(self) -> int:
        """`ragkeep health`: 0 while no alert, 1 on an alert, 2 on critical."""
        return {Level.ALERT: 1, Level.CRITICAL: 2}.get(self, 0)


_RANK = {level: i for i, level in enumerate(Level)}


@dataclass(frozen=True, slots=True)
class Thresholds:
    """`higher_is_worse`: the metric alerts above its thresholds (else below them)."""

    target: float
    alert: float
    critical: float
    higher_is_worse: bool = True

    def level(self, value: float) -> Level:
        sign = 1.0 if self.higher_is_worse else -1.0
        for bound, level in (
            (self.critical, Level.CRITICAL),
            (self.alert, Level.ALERT),
            (self.target, Level.ABOVE_TARGET),
        ):
            if sign * value > sign * bound:
                return level
        return Level.OK


@dataclass(frozen=True, slots=True)
class HealthRow:
    metric: Metric
    value: float | None  # None: no data (see `detail`)
    unit: str  # "ratio" or "seconds"
    thresholds: Thresholds
    level: Level
    samples: int  # how many requests or lookups the value is computed from
    detail: str = ""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HealthRow:
        t = Thresholds(
            float(data["target"]),
            float(data["alert"]),
            float(data["critical"]),
            bool(data["higher_is_worse"]),
        )
        value = data["value"]
        return cls(
            Metric(data["metric"]),
            None if value is None else float(value),
            str(data["unit"]),
            t,
            Level(data["level"]),
            int(data["samples"]),
            str(data.get("detail", "")),
        )

    def __json__(self) -> dict[str, Any]:
        t = self.thresholds
        return {
            "metric": self.metric.value,
            "value": None if self.value is None else round(self.value, 6),
            "unit": self.unit,
            "level": self.level.value,
            "target": t.target,
            "alert": t.alert,
            "critical": t.critical,
            "higher_is_worse": t.higher_is_worse,
            "samples": self.samples,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class HealthPoint:
    """One sampling interval's figures, for sparklines and charts (None: nothing happened)."""

    time: float  # Unix time at the end of the interval
    requests: int
    error_rate: float | None
    memory: float | None  # RSS as a share of the memory limit
    cache_hit_rate: float | None
    query_p95: float | None  # seconds


@dataclass(frozen=True, slots=True)
class HealthReport:
    source: str  # "server" (live window) or "local" (the index's recorded statistics)
    window_s: float
    rows: tuple[HealthRow, ...]
    history: tuple[HealthPoint, ...] = ()

    @property
    def level(self) -> Level:
        return max((r.level for r in self.rows), key=lambda lv: lv.rank, default=Level.NO_DATA)

    @property
    def exit_code(self) -> int:
        return self.level.exit_code

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HealthReport:
        """A report as GET /api/health sends it (ValueError/KeyError/TypeError if not one)."""
        return cls(
            str(data["source"]),
            float(data["window_s"]),
            tuple(HealthRow.from_json(r) for r in data["rows"]),
            tuple(HealthPoint(**p) for p in data.get("history", ())),
        )

    def row(self, metric: Metric) -> HealthRow:
        return next(r for r in self.rows if r.metric is metric)

    def __json__(self) -> dict[str, Any]:
        return {
            "level": self.level.value,
            "exit_code": self.exit_code,
            "source": self.source,
            "window_s": self.window_s,
            "rows": list(self.rows),
            "history": list(self.history),
        }
