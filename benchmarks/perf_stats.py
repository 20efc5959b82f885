"""The pure parts of the performance gate (benchmarks/perf_gate.py): statistics, verdicts,
baseline resolution and the slowdown injection used for calibration.

Standard library only, no ragkeep import: the workload driver (perf_workload.py) imports it
from inside each side's venv, whatever ragkeep version that venv has, and the unit tests
(tests/test_perf_gate.py) import it without building anything.
"""

from __future__ import annotations

import functools
import math
import statistics
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

WARN_ABOVE = 1.05  # lower bound of the 95% interval above this: WARN
FAIL_ABOVE = 1.10  # lower bound above this: FAIL (credibly more than 10% slower)

# Two-sided 95% quantiles of Student's t (t_0.975) by degrees of freedom. Beyond 30 the
# largest listed df not above the actual one is used, which errs on the wide side.
T975: dict[int, float] = {
    1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
    9: 2.262, 10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120,
    17: 2.110, 18: 2.101, 19: 2.093, 20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064,
    25: 2.060, 26: 2.056, 27: 2.052, 28: 2.048, 29: 2.045, 30: 2.042, 40: 2.021, 60: 2.000,
    120: 1.980,
}  # fmt: skip
Z975 = 1.960

STATS_METHOD = (
    "per-round log-ratio ln(new/baseline) (round i pairs the two sides' runs, made back to "
    "back); ratio = exp(mean); 95% interval = exp(mean ± t(0.975, n-1) · sd/√n), Student t "
    "from a hard-coded table; FAIL if the lower bound > 1.10, WARN if > 1.05, 'faster' if "
    "the upper bound < 1.0"
)


def t975(df: int) -> float:
    """Student's t quantile 0.975 for `df` degrees of freedom (df >= 1)."""
    if df < 1:
        raise ValueError("need at least 1 degree of freedom")
    if df in T975:
        return T975[df]
    if df > max(T975):
        return Z975 if df > 1000 else T975[max(T975)]
    return T975[max(d for d in T975 if d <= df)]


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (a value that was observed), as ragkeep.eval.runner does."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Comparison:
    """new ÷ baseline for one metric over n paired rounds (higher = slower/bigger)."""

    n: int
    ratio: float
    low: float
    high: float
    log_ratios: tuple[float, ...]

    @property
    def verdict(self) -> str:
        return verdict(self.low, self.high)


def compare(baseline: Sequence[float], new: Sequence[float]) -> Comparison:
    """Ratio new ÷ baseline with a 95% interval from the per-round log-ratios.

    `baseline[i]` and `new[i]` are round i's figures of the two sides. Pairs with a
    non-positive figure cannot be logged and are left out. With fewer than two pairs there
    is no interval: (0, inf), which can never fail.
    """
    if len(baseline) != len(new):
        raise ValueError("baseline and new need one figure per round each")
    logs = tuple(math.log(b / a) for a, b in zip(baseline, new, strict=True) if a > 0 and b > 0)
    n = len(logs)
    if n == 0:
        return Comparison(0, math.nan, 0.0, math.inf, logs)
    mean = statistics.fmean(logs)
    if n == 1:
        return Comparison(1, math.exp(mean), 0.0, math.inf, logs)
    half = t975(n - 1) * statistics.stdev(logs) / math.sqrt(n)
    return Comparison(n, math.exp(mean), math.exp(mean - half), math.exp(mean + half), logs)


def verdict(low: float, high: float, warn: float = WARN_ABOVE, fail: float = FAIL_ABOVE) -> str:
    if low > fail:
        return "FAIL"
    if low > warn:
        return "WARN"
    if high < 1.0:
        return "faster"
    return "ok"


# -- the baseline ------------------------------------------------------------------------


def baseline_from_toml(text: str) -> str | None:
    """The `commit` named in baseline.toml, or None when it is empty or absent."""
    value = tomllib.loads(text).get("commit")
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("baseline.toml: `commit` must be a string")
    return value.strip() or None


def resolve_baseline(toml_text: str | None, last_change: Callable[[], str]) -> tuple[str, str]:
    """(revision, where it came from). `toml_text` is None when baseline.toml is missing;
    `last_change()` gives the last commit that changed baseline.toml (the fallback)."""
    rev = baseline_from_toml(toml_text) if toml_text is not None else None
    if rev:
        return rev, "benchmarks/baseline.toml"
    return last_change(), "last commit that changed benchmarks/baseline.toml"


def render_baseline_toml(commit: str, note: str = "") -> str:
    lines = [
        "# The baseline of the performance gate (benchmarks/perf_gate.py, `make perf-check`):",
        "# the candidate is compared with this commit, both built and run on the same machine",
        "# in the same gate run. Refresh after a deliberate change with `make perf-baseline`",
        "# (REV=... for another commit than HEAD). Empty `commit`: the last commit that changed",
        "# this file.",
    ]
    if note:
        lines.append(f"# {note}")
    lines.append(f'commit = "{commit}"')
    return "\n".join(lines) + "\n"


def dependency_differences(a: Sequence[str], b: Sequence[str]) -> list[str]:
    """The packages whose versions differ between two `pip freeze` listings (ragkeep itself,
    which differs by design, left out): "name: version in a -> version in b"."""

    def pins(freeze: Sequence[str]) -> dict[str, str]:
        out = {}
        for line in freeze:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            sep = "==" if "==" in line else " @ " if " @ " in line else None
            name, version = line.split(sep, 1) if sep else (line, "")
            name = name.strip().lower().replace("_", "-")
            if name != "ragkeep":
                out[name] = version.strip()
        return out

    pa, pb = pins(a), pins(b)
    return [
        f"{n}: {pa.get(n, '-')} -> {pb.get(n, '-')}"
        for n in sorted(set(pa) | set(pb))
        if pa.get(n) != pb.get(n)
    ]


# -- slowdown injection (calibration only) ----------------------------------------------

INJECT_ENV = "PERF_GATE_INJECT"  # not RAGKEEP_*: ragkeep rejects unknown RAGKEEP_ variables
INJECT_TARGETS = ("search", "ingest")


def parse_slowdown(spec: str) -> dict[str, float]:
    """Parse `search=0.2,ingest=0.2` into {"search": 0.2, "ingest": 0.2}: per target, the
    fraction of each call's own duration to add."""
    out: dict[str, float] = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        name, sep, raw = item.partition("=")
        name = name.strip()
        if not sep or name not in INJECT_TARGETS:
            raise ValueError(
                f"bad slowdown {item!r}: expected NAME=FRACTION with NAME in "
                + ", ".join(INJECT_TARGETS)
            )
        try:
            fraction = float(raw)
        except ValueError:
            raise ValueError(f"bad slowdown fraction in {item!r}") from None
        if not (0.0 <= fraction <= 10.0):
            raise ValueError(f"slowdown fraction out of range in {item!r}")
        out[name] = fraction
    return out


def format_slowdown(fractions: dict[str, float]) -> str:
    return ",".join(f"{k}={v:g}" for k, v in sorted(fractions.items()))


def spin(seconds: float, clock: Callable[[], float] = time.perf_counter) -> None:
    """Busy-wait (burns CPU like real work, unlike sleep) for `seconds`."""
    deadline = clock() + seconds
    while clock() < deadline:
        pass


F = TypeVar("F", bound=Callable[..., Any])


def slowed(fn: F, fraction: float, clock: Callable[[], float] = time.perf_counter) -> F:
    """`fn`, followed on every call by a busy-wait of `fraction` × that call's duration."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = clock()
        try:
            return fn(*args, **kwargs)
        finally:
            spin((clock() - started) * fraction, clock)

    return wrapper  # type: ignore[return-value]


# -- the report --------------------------------------------------------------------------


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            str(c).ljust(w) if i == 0 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), sep, *(line(r) for r in rows)])
