"""How much memory one embedding batch takes, by batch size and sequence length.

    python benchmarks/bench_embed_memory.py

A benchmark, not a test: it prints and writes results/embed-memory.json; it asserts
nothing. Each (texts, length) pair runs in a fresh process: load the shipped embedder, warm
it up on a tiny batch, reset the kernel's peak-RSS mark (/proc/self/clear_refs), run one
batch of that shape, and record how far the peak rose above the RSS before the batch. A
fresh process per shape, because ONNX Runtime's arena keeps what a bigger batch took.

The fit printed at the end, bytes = texts * length * (a + b * length), is what
ragkeep.embed.tuning.ActivationModel uses (attention scores grow with length squared).
The same runs record the process's address-space size (VmSize) before the batch: the
baseline a hard RLIMIT_AS must leave room for (tests/test_memory_budget.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import write_result

LENGTHS = (32, 64, 128, 256)
TOKENS = (512, 2048, 8192, 32768)

CHILD = r"""
import json, os, sys, time
import numpy as np
from ragkeep.embed.onnx import OnnxMiniLM

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)

texts, length = int(sys.argv[1]), int(sys.argv[2])
emb = OnnxMiniLM()
session = emb._session
def run(b, n):
    ids = np.full((b, n), 1000, dtype=np.int64)
    feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    if "token_type_ids" in emb._input_names:
        feeds["token_type_ids"] = np.zeros_like(ids)
    session.run(None, feeds)
run(1, 8)
with open("/proc/self/clear_refs", "w") as fh:
    fh.write("5")
before, vsize = status("VmRSS"), status("VmSize")
started = time.perf_counter()
run(texts, length)
seconds = time.perf_counter() - started
print(json.dumps({"texts": texts, "length": length, "peak_rise": status("VmHWM") - before,
                  "rss_before": before, "vmsize_before": vsize, "seconds": seconds}))
"""


def measure(texts: int, length: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(texts), str(length)],
        capture_output=True,
        text=True,
        check=True,
        env={"MALLOC_ARENA_MAX": "2", **_env()},
    )
    row: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return row


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("RAGKEEP_")}


def fit(rows: list[dict[str, Any]]) -> tuple[float, float]:
    """Least squares for peak_rise = B*L*a + B*L*L*b (no intercept)."""
    import numpy as np

    x = np.array([[r["texts"] * r["length"], r["texts"] * r["length"] ** 2] for r in rows], float)
    y = np.array([r["peak_rise"] for r in rows], float)
    (a, b), *_ = np.linalg.lstsq(x, y, rcond=None)
    return float(a), float(b)


def main() -> None:
    started = time.perf_counter()
    rows = []
    for length in LENGTHS:
        for tokens in TOKENS:
            row = measure(tokens // length, length)
            rows.append(row)
            rise = row["peak_rise"]
            print(
                f"{row['texts']:5d} texts x {length:3d} tokens: peak +{rise / 2**20:7.1f} MB"
                f" ({rise / tokens:8.0f} B/token), {row['seconds']:.2f} s"
            )
    a, b = fit(rows)
    print(f"fit: bytes = texts*length*({a:.0f} + {b:.2f}*length)")
    write_result(
        "embed-memory",
        {
            "command": "python benchmarks/bench_embed_memory.py",
            "rows": rows,
            "fit": {"per_token": a, "per_token_per_length": b},
            "vmsize_before_mb": round(max(r["vmsize_before"] for r in rows) / 2**20),
            "rss_before_mb": round(max(r["rss_before"] for r in rows) / 2**20),
            "seconds": round(time.perf_counter() - started, 1),
        },
        echo=False,
    )
    print(f"wrote {Path(__file__).parent / 'results' / 'embed-memory.json'}")


if __name__ == "__main__":
    main()
