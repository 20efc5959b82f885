"""Logging overhead (issue 12, risk L1): searches and ingest with logging off against INFO with
an event per search and per embedded batch, in one run, in interleaved rounds.

    python benchmarks/logging_overhead.py [--docs 300] [--rounds 7] [--cached 20000]
                                          [--uncached 40] [--ingest-docs 24]

Arms: `off` (level WARNING: no events), `info` (INFO, sample_rate 1.0: every search and
batch logged up to the default cap of 100 events of each kind per second, text lines to a
file), `info-json` (the same as JSON lines) and `info-uncapped` (`info` with no cap: every
single event, which shows what one costs). Each round runs every workload under every arm, in an
order that rotates between rounds, and a timing lasts until the writer thread has written
the last record, so the writer's CPU counts too. Workloads: cached searches (one query,
repeated), uncached searches (distinct SciFact queries, caching off), and ingest of a few
SciFact abstracts into a fresh index. Writes benchmarks/results/logging-overhead.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import SCIFACT, cpu_probe_ms, write_result
from ragkeep import Keep
from ragkeep.config.settings import LoggingSettings
from ragkeep.eval.beir import load_dataset
from ragkeep.ingest.pipeline import TextDocument
from ragkeep.observability import logs

ARMS: dict[str, dict[str, Any]] = {
    "off": {"level": "WARNING"},
    "info": {"level": "INFO", "sample_rate": 1.0},  # events_per_s: the default, 100
    "info-json": {"level": "INFO", "sample_rate": 1.0, "format": "json"},
    "info-uncapped": {"level": "INFO", "sample_rate": 1.0, "events_per_s": 0},
}
NO_CACHE = {"flags.caching": False}


def corpus(n: int, skip: int = 0) -> list[TextDocument]:
    docs = []
    with (SCIFACT / "corpus.jsonl").open(encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if i < skip:
                continue
            if len(docs) == n:
                break
            doc = json.loads(line)
            docs.append(TextDocument(f"scifact:{doc['_id']}", doc["title"], doc["text"]))
    return docs


def use_arm(arm: str, log_dir: Path) -> None:
    settings = LoggingSettings(**ARMS[arm], file=str(log_dir / f"{arm}.log"))
    logs.configure_logging(settings)


def drained() -> None:
    """Wait until the writer has written every record logged so far."""
    if not logs.flush_logs(60):
        raise SystemExit("the log writer is stuck")


def timed(run: Callable[[], None]) -> float:
    started = time.perf_counter()
    run()
    drained()
    return time.perf_counter() - started


def cached_searches(keep: Keep, query: str, n: int) -> Callable[[], None]:
    def run() -> None:
        for _ in range(n):
            keep.search(query, 10, "hybrid")

    return run


def uncached_searches(keep: Keep, queries: list[str]) -> Callable[[], None]:
    def run() -> None:
        for q in queries:
            keep.search(q, 10, "hybrid")

    return run


def ingest(docs: list[TextDocument], work: Path) -> Callable[[], None]:
    def run() -> None:
        with tempfile.TemporaryDirectory(dir=work) as tmp, Keep(Path(tmp) / "data") as keep:
            keep.index_texts(docs)

    return run


def caller_cost_us(n: int = 5000) -> dict[str, float]:
    """What a record costs the thread that logs, the writer running (fewer than queue_size
    records, so none is dropped); the writer's own share is not in these figures."""
    log = logging.getLogger("ragkeep.bench")
    fields = {"mode": "hybrid", "k": 10, "hits": 10, "cached": True, "ms": 0.07, "degraded": []}
    record = logging.LogRecord(log.name, logging.INFO, "", 0, "took %.2f s", (1.5,), None)
    handler = logs.DroppingQueueHandler(logs.RecordQueue(n + 1))
    out: dict[str, float] = {}
    for name, step in {
        "sampled_below_info": lambda: logs.sampled(log),
        "prepare": lambda: handler.prepare(record),
    }.items():
        started = time.perf_counter()
        for _ in range(n):
            step()
        out[name] = round((time.perf_counter() - started) / n * 1e6, 3)
    logs.set_level("INFO")
    for name, step in {
        "log_event": lambda: logs.log_event(log, "search", fields),
        "logger_info": lambda: log.info("search %s", "hybrid"),
    }.items():
        started = time.perf_counter()
        for _ in range(n):
            step()
        out[name] = round((time.perf_counter() - started) / n * 1e6, 3)
        drained()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=300, help="documents in the search index")
    parser.add_argument("--rounds", type=int, default=7)
    # ~1.5 s per run: the events' cap is per second, so a shorter run would log more than
    # its share (each run starts with a fresh budget).
    parser.add_argument("--cached", type=int, default=20000, help="cached searches per run")
    parser.add_argument("--uncached", type=int, default=40, help="uncached searches per run")
    parser.add_argument("--ingest-docs", type=int, default=24, help="documents per ingest")
    args = parser.parse_args()
    probe_before = cpu_probe_ms()
    queries = list(load_dataset(SCIFACT).queries.values())[: args.uncached]
    times: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="ragkeep-bench-logging-") as tmp:
        work = Path(tmp)
        log_dir = work / "logs"
        log_dir.mkdir()
        use_arm("off", log_dir)
        with Keep(work / "index") as keep:
            keep.index_texts(corpus(args.docs))
        to_ingest = corpus(args.ingest_docs, skip=args.docs)
        with Keep(work / "index") as cached, Keep(work / "index", overrides=NO_CACHE) as plain:
            query = queries[0]
            cached.search(query, 10, "hybrid")  # warm: model loaded, result cached
            plain.search(query, 10, "hybrid")
            workloads = {
                "cached_search": (cached_searches(cached, query, args.cached), args.cached),
                "uncached_search": (uncached_searches(plain, queries), len(queries)),
                "ingest": (ingest(to_ingest, work), 1),
            }
            arms = list(ARMS)
            for r in range(args.rounds):
                order = arms[r % len(arms) :] + arms[: r % len(arms)]
                for name, (run, count) in workloads.items():
                    for arm in order:
                        use_arm(arm, log_dir)
                        seconds = timed(run)
                        times.setdefault(name, {}).setdefault(arm, []).append(seconds / count)
                print(f"round {r + 1}/{args.rounds} done", flush=True)
        use_arm("off", log_dir)
        caller = caller_cost_us()
        logs.shutdown_logging()
        lines = {arm: sum(1 for _ in (log_dir / f"{arm}.log").open()) for arm in ARMS}
    results = summarise(times)
    for name, arms_out in results.items():
        print(name, {arm: f"{v['overhead_pct']:+.1f}%" for arm, v in arms_out.items()})
    write_result(
        "logging-overhead",
        {
            "command": "python benchmarks/logging_overhead.py",
            "args": vars(args),
            "arms": ARMS,
            "cpu_probe_ms": {"before": probe_before, "after": cpu_probe_ms()},
            "results": results,
            "per_round_s": times,
            "lines_written": lines,
            "dropped_records": logs.dropped_records(),
            "caller_cost_us": caller,
        },
    )


def summarise(times: dict[str, dict[str, list[float]]]) -> dict[str, dict[str, Any]]:
    """Per workload and arm: the median per-operation time over the rounds, and its overhead
    against `off` (the median of the per-round ratios, so a slow round hurts both sides)."""
    out: dict[str, dict[str, Any]] = {}
    for name, arms in times.items():
        base = arms["off"]
        out[name] = {}
        for arm, values in arms.items():
            ratios = [v / b for v, b in zip(values, base, strict=True)]
            scale, unit = (1e6, "us") if name == "cached_search" else (1e3, "ms")
            out[name][arm] = {
                f"median_{unit}": round(statistics.median(values) * scale, 3),
                "overhead_pct": round((statistics.median(ratios) - 1) * 100, 2),
            }
    return out


if __name__ == "__main__":
    main()
