"""The monitoring table, evaluated: each metric over a window against its thresholds."""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal

from ragkeep.config.settings import HealthSettings
from ragkeep.models.health import (
    HealthPoint,
    HealthReport,
    HealthRow,
    Level,
    Metric,
    Thresholds,
)
from ragkeep.observability.metrics import Operation
from ragkeep.observability.window import WindowStats


def thresholds(cfg: HealthSettings) -> dict[Metric, Thresholds]:
    return {
        Metric.ERROR_RATE: Thresholds(
            cfg.error_rate_target, cfg.error_rate_alert, cfg.error_rate_critical
        ),
        # Target "below the limit": the alert (80%) comes first.
        Metric.MEMORY: Thresholds(1.0, cfg.memory_alert, cfg.memory_critical),
        Metric.CACHE_HIT_RATE: Thresholds(
            cfg.hit_rate_target, cfg.hit_rate_alert, cfg.hit_rate_critical, higher_is_worse=False
        ),
        Metric.QUERY_P95: Thresholds(cfg.p95_target_s, cfg.p95_alert_s, cfg.p95_critical_s),
    }


def evaluate(
    stats: WindowStats,
    cfg: HealthSettings,
    memory_limit_bytes: int,
    *,
    caching: bool,
) -> tuple[HealthRow, ...]:
    limits = thresholds(cfg)
    requests = stats.requests
    searches = stats.of(Operation.SEARCH).requests

    def row(metric: Metric, value: float | None, unit: str, samples: int, why: str) -> HealthRow:
        t = limits[metric]
        if value is None:
            return HealthRow(metric, None, unit, t, Level.NO_DATA, samples, why)
        return HealthRow(metric, value, unit, t, t.level(value), samples, why)

    enough = requests >= cfg.min_requests
    few = f"{requests} requests in the window (fewer than health.min_requests, {cfg.min_requests})"
    memory = stats.rss_bytes / memory_limit_bytes if stats.rss_bytes is not None else None
    if not caching:
        hit_rate, hit_why = None, "caching is off"
    elif stats.cache_lookups < cfg.min_requests:
        hit_rate, hit_why = None, f"{stats.cache_lookups} cache lookups in the window"
    else:
        hit_rate, hit_why = stats.hit_rate, ""
    p95 = stats.search_p95 if searches >= cfg.min_requests else None
    return (
        row(
            Metric.ERROR_RATE,
            stats.error_rate if enough else None,
            "ratio",
            requests,
            "" if enough else few,
        ),
        row(
            Metric.MEMORY,
            memory,
            "ratio",
            1 if memory is not None else 0,
            f"of {memory_limit_bytes // (1024 * 1024)} MB",
        ),
        row(Metric.CACHE_HIT_RATE, hit_rate, "ratio", stats.cache_lookups, hit_why),
        row(
            Metric.QUERY_P95,
            p95,
            "seconds",
            searches,
            "" if p95 is not None else f"{searches} searches in the window",
        ),
    )


def point(stats: WindowStats, memory_limit_bytes: int) -> HealthPoint:
    return HealthPoint(
        time=stats.end,
        requests=stats.requests,
        error_rate=stats.error_rate,
        memory=stats.rss_bytes / memory_limit_bytes if stats.rss_bytes is not None else None,
        cache_hit_rate=stats.hit_rate,
        query_p95=stats.search_p95,
    )


def report(
    source: str,
    stats: WindowStats,
    history: Sequence[WindowStats],
    cfg: HealthSettings,
    memory_limit_bytes: int,
    *,
    caching: bool,
) -> HealthReport:
    return HealthReport(
        source,
        cfg.window_s,
        evaluate(stats, cfg, memory_limit_bytes, caching=caching),
        tuple(point(h, memory_limit_bytes) for h in history),
    )


def not_ready(report: HealthReport, cfg: HealthSettings) -> list[str]:
    """Why /readyz should fail: the critical rows among health.ready_on."""
    return [
        f"{row.metric.value} is critical ({format_value(row)})"
        for row in report.rows
        if row.level is Level.CRITICAL and row.metric.value in cfg.ready_on
    ]


LABELS = {
    Metric.ERROR_RATE: "error rate",
    Metric.MEMORY: "memory",
    Metric.CACHE_HIT_RATE: "cache hit rate",
    Metric.QUERY_P95: "search p95",
}


def format_value(row: HealthRow) -> str:
    if row.value is None:
        return "no data"
    return _amount(row.value, row.unit)


def _amount(value: float, unit: str) -> str:
    """Rounded half up, as the web page's Math.round, toFixed and toPrecision do: Python's
    own formatting rounds a tie to even (8.5 ms -> "8 ms" where the page shows "9 ms"), and
    the API's figures are rounded, so ties are common."""
    if unit == "seconds":
        return f"{math.floor(value * 1000 + 0.5)} ms" if value < 1 else f"{_significant(value)} s"
    return f"{_half_up(Decimal(value * 100), 1)}%".replace(".0%", "%")


def _half_up(exact: Decimal, places: int) -> Decimal:
    return exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def _significant(value: float, digits: int = 3) -> str:
    exact = Decimal(value)
    return f"{float(_half_up(exact, digits - 1 - exact.adjusted())):.15g}"


def threshold_text(row: HealthRow) -> str:
    """e.g. "target < 2%, alert > 5%, critical > 10%"."""
    t = row.thresholds
    good, bad = ("<", ">") if t.higher_is_worse else (">", "<")
    parts = [] if row.metric is Metric.MEMORY else [f"target {good} {_amount(t.target, row.unit)}"]
    parts += [f"alert {bad} {_amount(t.alert, row.unit)}"]
    parts += [f"critical {bad} {_amount(t.critical, row.unit)}"]
    return ", ".join(parts)
