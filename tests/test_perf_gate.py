"""The pure parts of the performance gate (benchmarks/perf_stats.py): statistics, verdicts,
baseline resolution, slowdown injection. No venv is built and no workload runs here."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))  # benchmarks/ is a folder of scripts, not a package

import perf_stats  # noqa: E402
from perf_stats import compare, verdict  # noqa: E402

BASE = [10.0, 12.5, 9.0, 11.0, 30.0]  # a machine whose speed drifts between rounds
NOISE = [1.01, 0.99, 1.02, 0.98, 1.00]  # small per-round noise on the new side


def scaled(factor: float, noise: list[float] = NOISE) -> list[float]:
    return [b * factor * e for b, e in zip(BASE, noise, strict=True)]


# -- statistics and verdicts -----------------------------------------------------------------


def test_identical_sides_give_ratio_one_and_ok() -> None:
    c = compare(BASE, list(BASE))
    assert c.ratio == pytest.approx(1.0)
    assert c.low <= 1.0 <= c.high
    assert c.verdict == "ok"


def test_same_speed_with_noise_contains_one() -> None:
    c = compare(BASE, scaled(1.0))
    assert c.low < 1.0 < c.high
    assert c.verdict == "ok"


def test_drift_between_rounds_cancels_out() -> None:
    # Round 5 ran on a 3x slower machine for both sides: only the pairing matters.
    c = compare(BASE, scaled(1.2))
    assert c.ratio == pytest.approx(1.2, rel=0.01)


def test_consistent_20_percent_slowdown_fails() -> None:
    c = compare(BASE, scaled(1.20))
    assert c.low > perf_stats.FAIL_ABOVE
    assert c.verdict == "FAIL"


def test_consistent_7_percent_slowdown_warns() -> None:
    c = compare(BASE, scaled(1.07, [1.005, 0.995, 1.01, 0.99, 1.0]))
    assert perf_stats.WARN_ABOVE < c.low <= perf_stats.FAIL_ABOVE
    assert c.verdict == "WARN"


def test_faster_side_is_reported_as_faster() -> None:
    c = compare(BASE, scaled(0.8))
    assert c.high < 1.0
    assert c.verdict == "faster"


def test_noisy_slowdown_is_not_a_failure() -> None:
    # 15% slower on average but one round the other way: not credible at 95%.
    c = compare(BASE, scaled(1.15, [1.3, 0.85, 1.25, 1.0, 0.9]))
    assert c.low < perf_stats.FAIL_ABOVE
    assert c.verdict != "FAIL"


def test_interval_is_student_t_on_log_ratios() -> None:
    c = compare([1.0, 1.0, 1.0], [1.1, 1.2, 1.3])
    logs = [math.log(x) for x in (1.1, 1.2, 1.3)]
    mean = sum(logs) / 3
    sd = math.sqrt(sum((x - mean) ** 2 for x in logs) / 2)
    half = 4.303 * sd / math.sqrt(3)  # t(0.975, df=2)
    assert c.n == 3
    assert c.ratio == pytest.approx(math.exp(mean))
    assert c.low == pytest.approx(math.exp(mean - half))
    assert c.high == pytest.approx(math.exp(mean + half))


def test_two_rounds_give_a_wide_interval() -> None:
    c = compare([10.0, 10.0], [12.1, 11.9])  # 20% slower, but only two rounds
    assert c.low < perf_stats.FAIL_ABOVE < c.ratio


def test_one_round_has_no_interval_and_cannot_fail() -> None:
    c = compare([10.0], [20.0])
    assert (c.n, c.low, c.high) == (1, 0.0, math.inf)
    assert c.verdict == "ok"


def test_non_positive_figures_are_left_out() -> None:
    c = compare([0.0, 10.0, 10.0], [5.0, 10.0, 10.0])
    assert c.n == 2
    assert c.ratio == pytest.approx(1.0)


def test_rounds_must_pair_up() -> None:
    with pytest.raises(ValueError):
        compare([1.0, 2.0], [1.0])


def test_verdict_thresholds_are_strict_on_the_lower_bound() -> None:
    assert verdict(1.10, 2.0) == "WARN"
    assert verdict(1.1001, 2.0) == "FAIL"
    assert verdict(1.05, 2.0) == "ok"
    assert verdict(1.0501, 2.0) == "WARN"
    assert verdict(0.5, 0.999) == "faster"
    assert verdict(0.5, 1.0) == "ok"


def test_t_table() -> None:
    assert perf_stats.t975(1) == 12.706
    assert perf_stats.t975(4) == 2.776
    assert perf_stats.t975(35) == perf_stats.t975(30)  # between entries: the wider one
    assert perf_stats.t975(10_000) == perf_stats.Z975
    with pytest.raises(ValueError):
        perf_stats.t975(0)


@pytest.mark.parametrize("n", [0, 1, 2, 7, 20, 100, 300])
def test_percentile_is_the_one_bench_query_reports(n: int) -> None:
    from ragkeep.eval.runner import percentile

    values = [float((v * 37) % 101) for v in range(n)]
    for pct in (50, 95):
        assert perf_stats.percentile(values, pct) == percentile(values, pct)


# -- the baseline ------------------------------------------------------------------------------


def never() -> str:
    raise AssertionError("the fallback must not be used")


def test_baseline_from_toml() -> None:
    assert perf_stats.resolve_baseline('commit = "0d5e21b"\n', never) == (
        "0d5e21b",
        "benchmarks/baseline.toml",
    )


@pytest.mark.parametrize("text", ['commit = ""\n', 'commit = "  "\n', "# nothing\n", None])
def test_empty_or_missing_baseline_falls_back_to_last_change(text: str | None) -> None:
    rev, source = perf_stats.resolve_baseline(text, lambda: "abc123")
    assert rev == "abc123"
    assert "last commit" in source


def test_baseline_commit_must_be_a_string() -> None:
    with pytest.raises(ValueError):
        perf_stats.baseline_from_toml("commit = 12\n")


def test_rendered_baseline_round_trips() -> None:
    text = perf_stats.render_baseline_toml("f" * 40, "a note")
    assert perf_stats.baseline_from_toml(text) == "f" * 40


def test_the_repository_names_a_baseline() -> None:
    text = (BENCHMARKS / "baseline.toml").read_text()
    assert perf_stats.baseline_from_toml(text)


def test_dependency_differences() -> None:
    a = ["numpy==2.0.0", "onnxruntime==1.20.0", "ragkeep @ file:///tmp/x/baseline"]
    b = ["numpy==2.0.0", "onnxruntime==1.21.0", "ragkeep @ file:///tmp/y/candidate", "extra==1"]
    assert perf_stats.dependency_differences(a, b) == [
        "extra: - -> 1",
        "onnxruntime: 1.20.0 -> 1.21.0",
    ]


# -- slowdown injection --------------------------------------------------------------------------


def test_parse_slowdown() -> None:
    assert perf_stats.parse_slowdown("search=0.2, ingest=0.25") == {"search": 0.2, "ingest": 0.25}
    assert perf_stats.parse_slowdown("") == {}
    assert perf_stats.format_slowdown({"search": 0.2, "ingest": 0.25}) == "ingest=0.25,search=0.2"


@pytest.mark.parametrize("spec", ["search", "sync=0.2", "search=fast", "search=-0.1"])
def test_parse_slowdown_rejects(spec: str) -> None:
    with pytest.raises(ValueError):
        perf_stats.parse_slowdown(spec)


class FakeClock:
    """Time advances only when the code under test makes it: 1 ms per clock read."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 0.001
        return self.now


def test_slowed_adds_the_fraction_of_each_calls_own_duration() -> None:
    clock = FakeClock()

    def work(seconds: float) -> str:
        clock.now += seconds  # the real work
        return "done"

    slow = perf_stats.slowed(work, 0.2, clock)
    for seconds in (1.0, 3.0):
        before = clock.now
        assert slow(seconds) == "done"
        elapsed = clock.now - before
        assert elapsed == pytest.approx(seconds * 1.2, abs=0.01)


def test_slowed_keeps_the_name_and_spins_even_when_the_call_raises() -> None:
    clock = FakeClock()

    def boom() -> None:
        clock.now += 1.0
        raise RuntimeError("x")

    slow = perf_stats.slowed(boom, 0.5, clock)
    assert slow.__name__ == "boom"
    with pytest.raises(RuntimeError):
        slow()
    assert clock.now == pytest.approx(1.5, abs=0.01)
