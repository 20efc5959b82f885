"""Calibrate the performance gate: how often does it fail when nothing changed, and does it
fail when something really got slower?

    python benchmarks/perf_calibrate.py [--preset ci] [--aa-runs 10] [--slowdown 0.2]

Runs `perf_gate.py --same` (the baseline against itself) with a deliberate slowdown of one
side's search, then of its ingest (`--inject-slowdown`), so that the injected slowdown is the
only difference; then plain A/A `--aa-runs` times;
and writes every run's verdicts and ratios, plus the spread of the A/A ratios per metric, to
benchmarks/results/perf-calibration.json. It measures; it asserts nothing. One gate run at
a time: the machine has 2 cores.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import WORK, write_result

HERE = Path(__file__).resolve().parent


def gate(preset: str, extra: list[str], out: Path) -> dict[str, Any]:
    cmd = [sys.executable, str(HERE / "perf_gate.py"), "--preset", preset, "--json", str(out)]
    print("+", " ".join(cmd[1:] + extra), flush=True)
    started = time.perf_counter()
    proc = subprocess.run([*cmd, *extra], capture_output=True, text=True)
    if proc.returncode not in (0, 1):
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"the gate itself failed (exit {proc.returncode})")
    result: dict[str, Any] = json.loads(out.read_text())
    summary = {
        "args": extra,
        "exit": proc.returncode,
        "seconds": round(time.perf_counter() - started, 1),
        "failed": result["failed"],
        "metrics": {c["metric"]: _brief(c) for c in result["comparisons"]},
    }
    not_ok = [f"{m}={v['verdict']}" for m, v in summary["metrics"].items() if v["verdict"] != "ok"]
    verdicts = ", ".join(not_ok)
    print(f"  exit {proc.returncode} in {summary['seconds']} s; not ok: {verdicts or 'none'}")
    return summary


def _brief(comparison: dict[str, Any]) -> dict[str, Any]:
    low, high = comparison["ci95"]
    return {
        "ratio": round(comparison["ratio"], 4),
        "ci95": [round(low, 4), round(high, 4)],
        "verdict": comparison["verdict"],
    }


def spread(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per metric, over the A/A runs: the smallest and largest ratio and CI lower bound."""
    out: dict[str, dict[str, float]] = {}
    for metric in runs[0]["metrics"]:
        ratios = [r["metrics"][metric]["ratio"] for r in runs]
        lows = [r["metrics"][metric]["ci95"][0] for r in runs]
        out[metric] = {
            "ratio_min": min(ratios),
            "ratio_max": max(ratios),
            "ci_low_max": max(lows),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="ci", help="the gate preset to calibrate")
    parser.add_argument("--aa-runs", type=int, default=10)
    parser.add_argument("--slowdown", type=float, default=0.2)
    args = parser.parse_args()
    out = WORK / "perf-calibration-run.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    plan = [
        ["--same", "--inject-slowdown", f"{part}={args.slowdown}"] for part in ("search", "ingest")
    ] + [["--same"]] * args.aa_runs
    aa: list[dict[str, Any]] = []
    injected: list[dict[str, Any]] = []
    for extra in plan:
        run = gate(args.preset, extra, out)
        (injected if "--inject-slowdown" in extra else aa).append(run)
        # Written after every run: a long calibration that is cut short keeps what it measured.
        write_result(
            "perf-calibration",
            {
                "command": "python benchmarks/perf_calibrate.py " + " ".join(sys.argv[1:]),
                "preset": args.preset,
                "complete": len(aa) + len(injected) == len(plan),
                "aa_runs": len(aa),
                "aa_runs_failed": sum(1 for r in aa if r["failed"]),
                "aa_spread": spread(aa) if aa else {},
                "aa": aa,
                "injected_slowdown": args.slowdown,
                "injected": injected,
            },
            echo=False,
        )


if __name__ == "__main__":
    main()
