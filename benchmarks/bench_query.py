"""Warm query latency per mode, and the wall time of a cold `ragkeep search` in a new process.

    python benchmarks/bench_query.py [--repeats N] [--cold-runs N]

Needs the index built by bench_ingest.py. Writes benchmarks/results/query.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import SCIFACT, WORK, cpu_probe_ms, write_result
from ragkeep import Keep
from ragkeep.eval.beir import load_dataset
from ragkeep.eval.runner import percentile

COLD_QUERY = "Vitamin D deficiency is associated with multiple sclerosis."


# name -> (mode, setting overrides). The last row shows what bm25_max_df buys.
VARIANTS: dict[str, tuple[str, dict[str, object]]] = {
    "bm25": ("bm25", {}),
    "dense": ("dense", {}),
    "hybrid": ("hybrid", {}),
    "hybrid, bm25_max_df=1.0": ("hybrid", {"search.bm25_max_df": 1.0}),
}


def warm_latencies(data_dir: Path, repeats: int) -> dict[str, dict[str, float]]:
    queries = list(load_dataset(SCIFACT).queries.values())
    out: dict[str, dict[str, float]] = {}
    for name, (mode, overrides) in VARIANTS.items():
        # Result cache off: these are first-time queries, the cost of a real search.
        with Keep(data_dir, overrides={"flags.caching": False, **overrides}) as keep:
            keep.search("warm-up", 10, mode)
            times = []
            for _ in range(repeats):
                for q in queries:
                    started = time.perf_counter()
                    keep.search(q, 10, mode)
                    times.append((time.perf_counter() - started) * 1000)
        out[name] = {
            "queries": len(times),
            "p50_ms": round(percentile(times, 50), 2),
            "p95_ms": round(percentile(times, 95), 2),
            "max_ms": round(max(times), 2),
        }
    return out


def model_load_ms(runs: int = 5) -> float:
    """Median time to open the embedding model, from the per-machine optimised-model cache
    (the first, untimed load fills it if needed)."""
    from ragkeep.embed.onnx import OnnxMiniLM

    OnnxMiniLM().close()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        OnnxMiniLM().close()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 1)


def cold_search(data_dir: Path, runs: int) -> dict[str, object]:
    import compileall

    import ragkeep

    # `pip install` compiles bytecode; an editable install whose environment sets
    # PYTHONDONTWRITEBYTECODE would recompile every ragkeep module in every process.
    # Compile it as an install would, so the cold start measured is the installed one.
    compileall.compile_dir(Path(ragkeep.__file__).parent, quiet=1)
    exe = str(Path(sys.executable).with_name("ragkeep"))
    # Result cache off: every run must really search, not replay an earlier run's result.
    cmd = [exe, "--data-dir", str(data_dir), "--set", "flags.caching=false", "search",
           COLD_QUERY, "--json"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGKEEP_")}
    subprocess.run(cmd, check=True, capture_output=True, env=env)  # warm the OS file cache
    # A different query every run: a repeated one would be a result-cache hit, not a search.
    queries = list(load_dataset(SCIFACT).queries.values())[-runs:]
    walls = []
    for q in queries:
        started = time.perf_counter()
        subprocess.run([*cmd[:6], q, "--json"], check=True, capture_output=True, env=env)
        walls.append(time.perf_counter() - started)
    probe = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "ragkeep", *cmd[1:]],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in probe.stderr.splitlines()}
    return {
        "command": " ".join(cmd[1:5]) + ' search "<a different SciFact query each run>" --json',
        "runs": runs,
        "median_s": round(statistics.median(walls), 3),
        "max_s": round(max(walls), 3),
        "min_s": round(min(walls), 3),
        "torch_imported": "torch" in imported,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=1, help="passes over the 300 queries")
    parser.add_argument("--cold-runs", type=int, default=10)
    args = parser.parse_args()
    data_dir = WORK / "scifact"
    if not (data_dir / "ragkeep.db").exists():
        raise SystemExit("no index: run benchmarks/bench_ingest.py first")
    probe_before = cpu_probe_ms()
    warm = warm_latencies(data_dir, args.repeats)
    cold = cold_search(data_dir, args.cold_runs)
    write_result(
        "query",
        {
            "command": "python benchmarks/bench_query.py",
            "cpu_probe_ms": {"before": probe_before, "after": cpu_probe_ms()},
            "warm": warm,
            "cold_search": cold,
            "model_load_ms": model_load_ms(),
        },
    )


if __name__ == "__main__":
    main()
