"""Metrics and health of an open index, with the real store and the real model: what is
counted where, the health window's arithmetic, and the statistics recorded in the index."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragkeep import Keep
from ragkeep.config.settings import HealthSettings
from ragkeep.embed.base import Embedder
from ragkeep.models.health import Level, Metric, Thresholds
from ragkeep.observability.health import evaluate
from ragkeep.observability.metrics import LATENCY_BUCKETS, Operation, OperationCounts
from ragkeep.observability.window import WindowStats, from_recorded, quantile, to_recorded

from conftest import run_cli, write
from fake_llm import FakeLLM

DOCS = {
    "tomatoes.md": "# Tomatoes\n\nWater tomatoes deeply twice a week in summer.",
    "kiln.md": "# Kiln\n\nFire the kiln slowly to avoid cracking the glaze.",
}


@pytest.fixture
def indexed(tmp_path: Path) -> Path:
    for name, text in DOCS.items():
        write(tmp_path / "docs" / name, text)
    data = tmp_path / "data"
    with Keep(data) as keep:
        keep.add([tmp_path / "docs"])
    return data


def cumulative(*per_bucket: tuple[float, int]) -> tuple[int, ...]:
    counts = dict(per_bucket)
    out, total = [], 0
    for bound in LATENCY_BUCKETS:
        total += counts.get(bound, 0)
        out.append(total)
    return (*out, total + counts.get(float("inf"), 0))


# -- arithmetic ------------------------------------------------------------------------------


def test_p95_is_interpolated_within_its_bucket_like_histogram_quantile() -> None:
    # 90 fast, 10 between 0.25 s and 0.5 s: rank 95 is halfway into the (0.25, 0.5] bucket.
    assert quantile(cumulative((0.01, 90), (0.5, 10)), 0.95) == pytest.approx(0.375)
    assert quantile(cumulative((0.01, 100)), 0.95) == pytest.approx(0.005 + 0.005 * 0.95)
    assert quantile(cumulative((float("inf"), 5)), 0.95) == LATENCY_BUCKETS[-1]
    assert quantile(cumulative(), 0.95) is None


@pytest.mark.parametrize(
    ("value", "level"),
    [(0.0, Level.OK), (0.02, Level.OK), (0.03, Level.ABOVE_TARGET), (0.05, Level.ABOVE_TARGET),
     (0.0501, Level.ALERT), (0.10, Level.ALERT), (0.11, Level.CRITICAL)],
)  # fmt: skip
def test_error_rate_levels_follow_the_table(value: float, level: Level) -> None:
    assert Thresholds(0.02, 0.05, 0.10).level(value) is level


@pytest.mark.parametrize(
    ("value", "level"),
    [(0.9, Level.OK), (0.8, Level.OK), (0.7, Level.ABOVE_TARGET), (0.59, Level.ALERT),
     (0.39, Level.CRITICAL)],
)  # fmt: skip
def test_hit_rate_levels_are_the_other_way_round(value: float, level: Level) -> None:
    assert Thresholds(0.8, 0.6, 0.4, higher_is_worse=False).level(value) is level


def test_recorded_minutes_add_back_up_to_the_window() -> None:
    search = OperationCounts(30, 3, cumulative((0.01, 28), (1.0, 2)))
    ask = OperationCounts(4, 1, cumulative((5.0, 4)))
    one = WindowStats(0, 60, {Operation.SEARCH: search, Operation.ASK: ask}, 20, 30, 400)
    two = WindowStats(60, 120, {Operation.SEARCH: search}, 10, 30, 500)
    summed = from_recorded(0, 120, [*to_recorded(one).items(), *to_recorded(two).items()])
    assert summed.requests == 64
    assert summed.errors == 7
    assert summed.cache_hits == 30
    assert summed.cache_lookups == 60
    assert summed.rss_bytes == 500  # the largest, not the sum
    assert summed.of(Operation.SEARCH).buckets[-1] == 60
    assert summed.search_p95 == pytest.approx(quantile(cumulative((0.01, 56), (1.0, 4)), 0.95))


def test_too_few_requests_judge_nothing() -> None:
    cfg = HealthSettings(min_requests=20)
    stats = WindowStats(0, 60, {Operation.SEARCH: OperationCounts(5, 5, cumulative((0.01, 5)))})
    by_metric = {r.metric: r for r in evaluate(stats, cfg, 1 << 30, caching=True)}
    assert by_metric[Metric.ERROR_RATE].level is Level.NO_DATA
    assert by_metric[Metric.QUERY_P95].level is Level.NO_DATA
    assert by_metric[Metric.CACHE_HIT_RATE].level is Level.NO_DATA
    off = {r.metric: r for r in evaluate(stats, cfg, 1 << 30, caching=False)}
    assert off[Metric.CACHE_HIT_RATE].detail == "caching is off"


# -- what is counted where ---------------------------------------------------------------------


def counts(keep: Keep) -> dict[Operation, OperationCounts]:
    return keep.observer.metrics.counts()


def test_every_operation_is_counted_where_it_happens(tmp_path: Path) -> None:
    for name, text in DOCS.items():
        write(tmp_path / "docs" / name, text)
    with (
        FakeLLM() as llm,
        Keep(tmp_path / "data", overrides={"llm": {"provider": "ollama", "url": llm.url}}) as keep,
    ):
        keep.add([tmp_path / "docs"])
        after_add = counts(keep)
        assert after_add[Operation.COMMIT].requests == len(DOCS)
        assert after_add[Operation.INGEST_EMBED].requests >= 1
        assert after_add[Operation.SEARCH].requests == 0

        keep.search("water tomatoes")
        keep.search("water tomatoes", mode="dense")
        keep.ask("how often do tomatoes need water?")
        seen = counts(keep)
        # An ask is one request: its own retrieval is not counted as a search.
        assert seen[Operation.SEARCH].requests == 2
        assert seen[Operation.ASK].requests == 1
        assert seen[Operation.EMBED].requests >= 1
        assert all(c.errors == 0 for c in seen.values())


def test_a_failed_search_is_an_error_and_a_fallback_is_not(indexed: Path) -> None:
    def broken() -> Embedder:
        raise RuntimeError("the model file is damaged")

    with Keep(indexed, embedder=broken) as keep:
        keep.search("kiln")  # hybrid: answered from BM25, degraded
        with pytest.raises(Exception, match="damaged"):
            keep.search("kiln", mode="dense")
        seen = counts(keep)[Operation.SEARCH]
        assert (seen.requests, seen.errors) == (2, 1)
        body = keep.observer.metrics.render().decode()
        assert 'ragkeep_operation_errors_total{operation="search"} 1.0' in body
        assert 'ragkeep_breaker_state{part="embedder",state="closed"} 1.0' in body


def test_cache_counters_and_generation_purges(indexed: Path, tmp_path: Path) -> None:
    with Keep(indexed) as keep:
        keep.search("kiln glaze", mode="bm25")
        keep.search("kiln glaze", mode="bm25")
        write(tmp_path / "docs" / "ups.md", "# UPS\n\nThe UPS lasts twenty minutes.")
        keep.sync()
        keep.search("kiln glaze", mode="bm25")  # a new generation: the old entry is dropped
        body = keep.observer.metrics.render().decode()
        assert 'ragkeep_cache_hits_total{tier="memory"} 1.0' in body
        assert 'ragkeep_cache_misses_total{tier="memory"} 2.0' in body
        assert "ragkeep_cache_generation_purges_total 1.0" in body
        assert "ragkeep_cache_purged_entries_total 1.0" in body
        assert "ragkeep_documents 3.0" in body


def test_memory_past_the_limit_is_critical(indexed: Path) -> None:
    with Keep(indexed, overrides={"resources": {"memory_limit_mb": 256}}) as keep:
        keep.embedder()  # the model alone takes more than 95% of 256 MB
        report = keep.observer.live_report()
        assert report.row(Metric.MEMORY).level is Level.CRITICAL
        assert report.exit_code == 2


# -- recorded in the index ---------------------------------------------------------------------


def test_cli_processes_record_what_they_did_and_health_judges_it(indexed: Path) -> None:
    for _ in range(3):
        assert run_cli("search", "kiln", "--mode", "bm25", data_dir=indexed).code == 0
    assert run_cli("search", "x", "--mode", "nonsense", data_dir=indexed).code != 0
    result = run_cli("--set", "health.min_requests=3", "health", "--json", data_dir=indexed)
    assert result.code == 0, result.stderr
    rows = {r["metric"]: r for r in result.json()["rows"]}
    assert rows["error_rate"]["samples"] == 3
    assert rows["error_rate"]["value"] == 0
    assert rows["cache_hit_rate"]["value"] == pytest.approx(2 / 3, abs=1e-5)
    assert rows["cache_hit_rate"]["level"] == "above target"  # 67%: under 80%, over 60%
    assert rows["memory"]["value"] > 0
    assert result.json()["history"][-1]["requests"] == 3


def test_commands_that_search_nothing_write_nothing(indexed: Path) -> None:
    for args in (["status"], ["health"], ["flags", "list"]):
        run_cli(*args, data_dir=indexed)
    with Keep(indexed) as keep:
        assert keep.store.op_stats(0) == []


def test_observations_from_many_threads_are_all_counted() -> None:
    import threading

    from ragkeep.observability.metrics import OperationMetrics

    op = OperationMetrics(Operation.SEARCH)
    per_thread = 3 * OperationMetrics.FOLD_AT + 7  # several folds race with the appends

    def work() -> None:
        for i in range(per_thread):
            op.observe(0.0001 if i % 2 else 0.3)
        op.failed(0.0001)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts = op.counts()
    assert counts.requests == 8 * (per_thread + 1)
    assert counts.errors == 8
    fast = 8 * (per_thread // 2 + 1)  # the odd i's and the failures
    assert counts.buckets[0] == fast
    assert counts.buckets[LATENCY_BUCKETS.index(0.5)] == counts.requests
    assert op.seconds_total() == pytest.approx(0.0001 * fast + 0.3 * (counts.requests - fast))


def test_the_critical_exit_code_is_the_levels() -> None:
    from ragkeep.cli.health_command import CRITICAL_EXIT

    assert Level.CRITICAL.exit_code == CRITICAL_EXIT
