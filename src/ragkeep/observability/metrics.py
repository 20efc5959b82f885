"""Prometheus metrics of one open index (docs/observability.md lists every one).

Operations are counted where they happen, with one histogram observation each (about 2 µs,
measured against a ~60 µs cached search). Everything else — cache counters, fallbacks,
breakers, memory, the embedder, the index's size, the flags — is read when /metrics is
scraped, so it costs nothing between scrapes. Labels are bounded: operation names, cache
tiers, parts, flag names; never query text or paths.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

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
    """One operation's latency histogram (its count is the number of requests) and errors."""

    __slots__ = ("_errors", "observe")

    def __init__(self, latency: Histogram, errors: Counter, operation: Operation) -> None:
        # Bound once: resolving a labelled child costs a dict lookup and a lock per call.
        self.observe: Callable[[float], None] = latency.labels(operation.value).observe
        self._errors = errors.labels(operation.value)

    def failed(self, seconds: float) -> None:
        """A failed call: counted as a request (with its latency) and as an error."""
        self.observe(seconds)
        self._errors.inc()


@dataclass(frozen=True, slots=True)
class OperationCounts:
    """Cumulative counts of one operation, read from the registry."""

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


class Metrics:
    """The registry of one open index; `render()` is what /metrics serves."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # process_resident_memory_bytes, CPU seconds, open files (Linux; nothing elsewhere).
        ProcessCollector(registry=self.registry)
        self._latency = Histogram(
            "ragkeep_operation_seconds",
            "Latency of each operation; _count is the number of calls, failed ones included.",
            ["operation"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._errors = Counter(
            "ragkeep_operation_errors",
            "Calls of an operation that failed (raised instead of answering).",
            ["operation"],
            registry=self.registry,
        )
        self.search = self._operation(Operation.SEARCH)
        self.ask = self._operation(Operation.ASK)
        self.embed = self._operation(Operation.EMBED)
        self.ingest_embed = self._operation(Operation.INGEST_EMBED)
        self.commit = self._operation(Operation.COMMIT)

    def _operation(self, operation: Operation) -> OperationMetrics:
        return OperationMetrics(self._latency, self._errors, operation)

    def add_collector(self, collector: Collector) -> None:
        self.registry.register(collector)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def counts(self) -> dict[Operation, OperationCounts]:
        """Every operation's cumulative counts (for the health window)."""
        requests: dict[str, int] = {}
        errors: dict[str, int] = {}
        buckets: dict[str, list[int]] = {}
        for family in self._latency.collect():
            for s in family.samples:
                op = s.labels["operation"]
                if s.name.endswith("_bucket"):
                    buckets.setdefault(op, []).append(int(s.value))
                elif s.name.endswith("_count"):
                    requests[op] = int(s.value)
        for family in self._errors.collect():
            for s in family.samples:
                if s.name.endswith("_total"):
                    errors[s.labels["operation"]] = int(s.value)
        return {
            op: OperationCounts(
                requests.get(op.value, 0),
                errors.get(op.value, 0),
                tuple(buckets.get(op.value, EMPTY_COUNTS.buckets)),
            )
            for op in Operation
        }


def gauge(name: str, doc: str, value: float, **labels: str) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=list(labels))
    family.add_metric(list(labels.values()), value)
    return family


def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def labelled(
    kind: type[GaugeMetricFamily] | type[CounterMetricFamily],
    name: str,
    doc: str,
    label_names: list[str],
    rows: Iterator[tuple[list[str], float]],
) -> Metric:
    family = kind(name, doc, labels=label_names)
    for labels, value in rows:
        family.add_metric(labels, value)
    return family
