"""Figures over a rolling window, from cumulative counters: the difference between a sample
taken now and one taken at the window's start, the way Prometheus' rate() works.

A server keeps its samples in memory. A CLI process cannot (it lives for one command), so
it records what it did into the index, per minute (`Recorded`), and `ragkeep health` sums
the minutes in the window.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ragkeep.observability.metrics import (
    EMPTY_COUNTS,
    LATENCY_BUCKETS,
    REQUESTS,
    Operation,
    OperationCounts,
)

QUANTILE = 0.95


@dataclass(frozen=True, slots=True)
class Sample:
    """Cumulative counters at one moment."""

    time: float
    ops: Mapping[Operation, OperationCounts]
    cache_hits: int  # result-cache hits, either tier
    cache_lookups: int  # result-cache lookups (each one tries the memory tier first)
    rss_bytes: int


@dataclass(frozen=True, slots=True)
class WindowStats:
    """What happened between two moments."""

    start: float
    end: float
    ops: Mapping[Operation, OperationCounts] = field(default_factory=dict)
    cache_hits: int = 0
    cache_lookups: int = 0
    rss_bytes: int | None = None  # the latest (a server) or the largest recorded (local)

    @classmethod
    def between(cls, old: Sample, new: Sample) -> WindowStats:
        return cls(
            old.time,
            new.time,
            {op: counts.minus(old.ops.get(op, EMPTY_COUNTS)) for op, counts in new.ops.items()},
            new.cache_hits - old.cache_hits,
            new.cache_lookups - old.cache_lookups,
            new.rss_bytes,
        )

    def of(self, op: Operation) -> OperationCounts:
        return self.ops.get(op, EMPTY_COUNTS)

    @property
    def requests(self) -> int:
        return sum(self.of(op).requests for op in REQUESTS)

    @property
    def errors(self) -> int:
        return sum(self.of(op).errors for op in REQUESTS)

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    @property
    def hit_rate(self) -> float | None:
        return self.cache_hits / self.cache_lookups if self.cache_lookups else None

    @property
    def search_p95(self) -> float | None:
        return quantile(self.of(Operation.SEARCH).buckets, QUANTILE)


def quantile(cumulative: tuple[int, ...], q: float) -> float | None:
    """The q-quantile of a histogram, interpolated within its bucket as Prometheus'
    histogram_quantile() does; a quantile in the +Inf bucket is the largest finite bound."""
    total = cumulative[-1] if cumulative else 0
    if total <= 0:
        return None
    rank = q * total
    below, lower = 0, 0.0
    for count, upper in zip(cumulative, LATENCY_BUCKETS, strict=False):
        if count >= rank:
            return lower + (upper - lower) * (rank - below) / max(count - below, 1)
        below, lower = count, upper
    return LATENCY_BUCKETS[-1]


# -- recorded per minute in the index ------------------------------------------------------

CACHE_HITS = "cache.hits"
CACHE_LOOKUPS = "cache.lookups"
RSS_MAX = "rss.max"  # kept as a maximum per minute, not a sum


def _bucket_name(op: Operation, bound: float) -> str:
    return f"{op.value}.le={bound:g}"


def to_recorded(stats: WindowStats) -> dict[str, int]:
    """The counters worth keeping (non-zero ones), by name; RSS_MAX is a maximum."""
    out: dict[str, int] = {}
    for op in REQUESTS:
        counts = stats.of(op)
        out[f"{op.value}.requests"] = counts.requests
        out[f"{op.value}.errors"] = counts.errors
        for bound, count in zip(LATENCY_BUCKETS, counts.buckets, strict=False):
            out[_bucket_name(op, bound)] = count
    out[CACHE_HITS] = stats.cache_hits
    out[CACHE_LOOKUPS] = stats.cache_lookups
    if stats.rss_bytes is not None:
        out[RSS_MAX] = stats.rss_bytes
    return {name: value for name, value in out.items() if value}


def from_recorded(start: float, end: float, rows: Iterable[tuple[str, int]]) -> WindowStats:
    """Sum recorded minutes back into one window (the largest RSS, not the sum)."""
    totals: dict[str, int] = {}
    rss: int | None = None
    for name, value in rows:
        if name == RSS_MAX:
            rss = max(rss or 0, value)
        else:
            totals[name] = totals.get(name, 0) + value
    ops = {}
    for op in REQUESTS:
        requests = totals.get(f"{op.value}.requests", 0)
        buckets = tuple(totals.get(_bucket_name(op, b), 0) for b in LATENCY_BUCKETS)
        errors = totals.get(f"{op.value}.errors", 0)
        ops[op] = OperationCounts(requests, errors, (*buckets, requests))
    return WindowStats(
        start, end, ops, totals.get(CACHE_HITS, 0), totals.get(CACHE_LOOKUPS, 0), rss
    )
