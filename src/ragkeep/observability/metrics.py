"""Prometheus metrics of one open index (docs/observability.md lists every one).

Operations are counted where they happen, with one observation each (a list append, about
0.1 µs against a ~60 µs cached search: see OperationMetrics). Everything else — cache
counters, fallbacks, breakers, memory, the embedder, the index's size, the flags — is read
when /metrics is scraped, so it costs nothing between scrapes. Labels are bounded: operation
names, cache tiers, parts, flag names; never query text or paths.
"""

from __future__ import annotations

import math
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from itertools import accumulate
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from prometheus_client.core import (
        Metric,
    )
    from prometheus_client.registry import CollectorRegistry

# Upper bounds in seconds. 0.5, 1 and 2 are the p95 thresholds (docs/observability.md), so
# the health levels and a histogram_quantile() alert agree on which side of one a p95 is.
LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.0,
    5.0,
    10.0,
    30.0,
    120.0,
)


class Operation(StrEnum):
    SEARCH = "search"  # a search a user asked for (an ask's own retrieval is not counted)
    ASK = "ask"  # a whole answer: retrieval and the LLM
    EMBED = "embed"  # one query embedding
    INGEST_EMBED = "ingest_embed"  # one call embedding up to 256 chunk texts while indexing
    COMMIT = "commit"  # one document's write transaction


# The operations a user waits for: error rate and p95 are computed over these.
REQUESTS = (Operation.SEARCH, Operation.ASK)


class OperationMetrics:
    """One operation's latency histogram (its count is the number of calls) and its errors.

    Not prometheus_client's Histogram: its observe() takes a lock per bucket and costs about
    2.3 µs, 4% of a cached search. Here an observation is one list append (atomic, ~0.1 µs);
    observations are folded into the bucket counts when read, or every FOLD_AT of them, so
    the list stays small. The registry and the exposition are still prometheus_client's.
    """

    FOLD_AT = 4096

    __slots__ = ("_counts", "_errors", "_lock", "_pending", "_sum", "operation")

    def __init__(self, operation: Operation) -> None:
        self.operation = operation
        self._pending: list[float] = []
        self._lock = threading.Lock()
        self._counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self._sum = 0.0
        self._errors = 0

    def observe(self, seconds: float) -> None:
        pending = self._pending
        pending.append(seconds)
        if len(pending) >= self.FOLD_AT:
            self._fold()

    def failed(self, seconds: float) -> None:
        """A failed call: counted as a call (with its latency) and as an error. The call
        first, so that no read sees more errors than calls."""
        self.observe(seconds)
        with self._lock:
            self._errors += 1

    def read(self) -> tuple[OperationCounts, float]:
        """The counts and the sum of seconds, from one fold: a scrape must not pair a _count
        with a _sum that includes observations the count does not."""
        with self._lock:
            self._fold_locked()
            counts = OperationCounts(
                sum(self._counts), self._errors, tuple(accumulate(self._counts))
            )
            return counts, self._sum

    def counts(self) -> OperationCounts:
        return self.read()[0]

    def seconds_total(self) -> float:
        return self.read()[1]

    def _fold(self) -> None:
        with self._lock:
            self._fold_locked()

    def _fold_locked(self) -> None:
        pending = self._pending
        n = len(pending)
        taken = pending[:n]
        # Appends that raced with the copy went to the end: they stay for the next fold.
        del pending[:n]
        counts = self._counts
        for seconds in taken:
            counts[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self._sum += math.fsum(taken)


@dataclass(frozen=True, slots=True)
class OperationCounts:
    """Cumulative counts of one operation."""

    requests: int
    errors: int
    buckets: tuple[int, ...]  # cumulative, one per LATENCY_BUCKETS bound, then +Inf

    def minus(self, older: OperationCounts) -> OperationCounts:
        return OperationCounts(
            self.requests - older.requests,
            self.errors - older.errors,
            tuple(a - b for a, b in zip(self.buckets, older.buckets, strict=True)),
        )


EMPTY_COUNTS = OperationCounts(0, 0, (0,) * (len(LATENCY_BUCKETS) + 1))


class Collector(Protocol):
    def collect(self) -> Iterator[Metric]: ...


class Metrics:
    """The metrics of one open index; `render()` is what /metrics serves.

    prometheus_client is imported on the first render, not when the index opens: it costs
    about 35 ms of start-up, which every `ragkeep search` would pay for nothing."""

    def __init__(self) -> None:
        self.search = OperationMetrics(Operation.SEARCH)
        self.ask = OperationMetrics(Operation.ASK)
        self.embed = OperationMetrics(Operation.EMBED)
        self.ingest_embed = OperationMetrics(Operation.INGEST_EMBED)
        self.commit = OperationMetrics(Operation.COMMIT)
        self._operations = (self.search, self.ask, self.embed, self.ingest_embed, self.commit)
        self._collectors: list[Callable[[], Collector]] = [
            lambda: _OperationCollector(self._operations)
        ]
        self._registry: CollectorRegistry | None = None
        self._lock = threading.Lock()

    def add_collector(self, make: Callable[[], Collector]) -> None:
        """`make` builds the collector when metrics are first rendered."""
        self._collectors.append(make)

    def render(self) -> bytes:
        from prometheus_client.exposition import generate_latest

        return generate_latest(self._registry_once())

    def _registry_once(self) -> CollectorRegistry:
        with self._lock:
            if self._registry is None:
                from prometheus_client import CollectorRegistry, ProcessCollector

                registry = CollectorRegistry()
                # process_resident_memory_bytes, CPU seconds, open files (Linux only).
                ProcessCollector(registry=registry)
                for make in self._collectors:
                    registry.register(make())
                self._registry = registry
            return self._registry

    def counts(self) -> dict[Operation, OperationCounts]:
        """Every operation's cumulative counts (for the health window)."""
        return {op.operation: op.counts() for op in self._operations}


class _OperationCollector:
    def __init__(self, operations: tuple[OperationMetrics, ...]) -> None:
        self._operations = operations

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

        latency = HistogramMetricFamily(
            "ragkeep_operation_seconds",
            "Latency of each operation; _count is the number of calls, failed ones included.",
            labels=["operation"],
        )
        errors = CounterMetricFamily(
            "ragkeep_operation_errors",
            "Calls of an operation that failed (raised instead of answering).",
            labels=["operation"],
        )
        bounds = [f"{b:g}" for b in LATENCY_BUCKETS] + ["+Inf"]
        for op in self._operations:
            counts, seconds = op.read()
            latency.add_metric(
                [op.operation.value],
                list(zip(bounds, map(float, counts.buckets), strict=True)),
                seconds,
            )
            errors.add_metric([op.operation.value], counts.errors)
        yield latency
        yield errors
