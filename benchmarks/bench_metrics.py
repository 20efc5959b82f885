"""What one operation observation costs: ragkeep's OperationMetrics against
prometheus_client's Histogram, and a cached search with and without its observation.

    python benchmarks/bench_metrics.py [--repeats 7]

Writes benchmarks/results/metrics.json.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import timeit
from pathlib import Path

from prometheus_client import CollectorRegistry, Histogram

from common import write_result
from ragkeep import Keep
from ragkeep.observability.metrics import LATENCY_BUCKETS, Operation, OperationMetrics

CALLS = 200_000
SEARCHES = 3_000
DOCS = Path(__file__).resolve().parents[1] / "examples" / "docs"


def per_call_us(fn: object, calls: int, repeats: int) -> float:
    runs = timeit.repeat(fn, number=calls, repeat=repeats)  # type: ignore[arg-type]
    return statistics.median(runs) / calls * 1e6


def observe_costs(repeats: int) -> dict[str, float]:
    ours = OperationMetrics(Operation.SEARCH)
    theirs = Histogram(
        "x_seconds", "x", ["operation"], buckets=LATENCY_BUCKETS, registry=CollectorRegistry()
    ).labels("search")
    nothing = per_call_us(lambda: None, CALLS, repeats)
    return {
        "operation_metrics_observe_us": per_call_us(lambda: ours.observe(6e-5), CALLS, repeats)
        - nothing,
        "prometheus_histogram_observe_us": per_call_us(lambda: theirs.observe(6e-5), CALLS, repeats)
        - nothing,
    }


def cached_search_costs(repeats: int) -> dict[str, float]:
    """Interleaved rounds of the same cached search, observed and not (median per call)."""
    with tempfile.TemporaryDirectory() as tmp, Keep(tmp) as keep:
        keep.add([DOCS])
        keep.search("how often should tomatoes be watered", mode="bm25")
        observed = keep.querying._searches  # the seam the service observes through
        on: list[float] = []
        off: list[float] = []
        for _ in range(repeats):
            for arm, store in ((observed, on), (None, off)):
                keep.querying._searches = arm
                started = time.perf_counter()
                for _ in range(SEARCHES):
                    keep.search("how often should tomatoes be watered", mode="bm25")
                store.append((time.perf_counter() - started) / SEARCHES * 1e6)
        keep.querying._searches = observed
    return {
        "cached_search_observed_us": statistics.median(on),
        "cached_search_unobserved_us": statistics.median(off),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    figures = {**observe_costs(args.repeats), **cached_search_costs(args.repeats)}
    for name, value in figures.items():
        print(f"{name:34s} {value:8.2f}")
    write_result("metrics", {"repeats": args.repeats, **figures})


if __name__ == "__main__":
    main()
