"""Helpers shared by the benchmarks: machine facts, result files, the SciFact location."""

from __future__ import annotations

import json
import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = ROOT.parent / "shared" / "eval" / "scifact"
WORK = ROOT / "benchmarks" / ".work"
RESULTS = ROOT / "benchmarks" / "results"


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem_gb = round(mem_kb / 1024 / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": mem_gb,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "onnxruntime": metadata.version("onnxruntime"),
        "sqlite": __import__("sqlite3").sqlite_version,
    }


def cpu_probe_ms() -> float:
    """Time of a fixed pure-Python loop (best of 3). On a shared VM the CPU a process gets
    varies between runs; this number, recorded before and after a benchmark, says how fast
    the machine was at the time, so figures from different runs can be compared."""
    import time

    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for i in range(2_000_000):
            total += i
        best = min(best, time.perf_counter() - started)
    return round(best * 1000, 1)


def commit() -> str | None:
    import subprocess

    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        )
    except OSError:
        return None
    return out.stdout.strip() or None


def write_result(
    name: str, data: dict[str, Any], *, path: Path | None = None, echo: bool = True
) -> Path:
    """Write results/<name>.json (or `path`) with the commit and the machine; print it too
    unless `echo` is false."""
    path = path or RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": name, "commit": commit(), "machine": machine(), **data}
    path.write_text(json.dumps(payload, indent=2) + "\n")
    if echo:
        print(json.dumps(payload, indent=2))
    return path
