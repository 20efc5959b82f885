"""`ragkeep add` of one big text file: peak RSS, time, and how long Ctrl-C takes to act.

    python benchmarks/bench_big_file.py [--mb 45] [--src DIR] [--sigint-after 15 ...]

A benchmark, not a test: it prints and writes results/big-file.json; it asserts nothing.
The file is tests/bigdoc.py's deterministic text (a ~60 KB block repeated: about 100
distinct chunks, so embedding stays short and reading, splitting and chunking dominate).
Each run is a fresh `python -m ragkeep add` into a fresh data dir, with MALLOC_ARENA_MAX=2;
peak RSS is the child's ru_maxrss. `--src` runs another checkout's code (e.g. main's src) for
a before/after comparison.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import ROOT, write_result

sys.path.insert(0, str(ROOT / "tests"))
from bigdoc import write_big_text


def _env(src: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGKEEP_")}
    env.update(PYTHONPATH=str(src), MALLOC_ARENA_MAX="2")
    return env


def _start(src: Path, data: Path, docs: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "ragkeep", "--data-dir", str(data), "-q", "add", str(docs)],
        env=_env(src),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def full_run(src: Path, data: Path, docs: Path) -> dict[str, Any]:
    started = time.perf_counter()
    proc = _start(src, data, docs)
    _, err = proc.communicate()
    seconds = time.perf_counter() - started
    # The only child waited for so far in this process: its peak is the run's.
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "exit": proc.returncode,
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(peak_kb / 1024),
        "stderr": err.decode()[-500:] if proc.returncode else "",
    }


def sigint_after(src: Path, data: Path, docs: Path, delay: float) -> dict[str, Any]:
    proc = _start(src, data, docs)
    time.sleep(delay)
    if proc.poll() is not None:
        return {"after_s": delay, "note": "finished before the signal"}
    sent = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    proc.wait()
    return {
        "after_s": delay,
        "exit": proc.returncode,
        "acted_in_s": round(time.perf_counter() - sent, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=45)
    parser.add_argument("--src", type=Path, default=ROOT / "src")
    parser.add_argument("--sigint-after", type=float, nargs="*", default=[15.0])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ragkeep-bigfile-") as tmp:
        work = Path(tmp)
        docs = work / "docs"
        write_big_text(docs / "big.txt", args.mb * 1024 * 1024)
        run = full_run(args.src, work / "full", docs)
        print(f"add of a {args.mb} MB file: {run}")
        interrupts = []
        for i, delay in enumerate(args.sigint_after):
            row = sigint_after(args.src, work / f"int{i}", docs, delay)
            print(f"Ctrl-C: {row}")
            interrupts.append(row)
    write_result(
        "big-file",
        {
            "command": "python benchmarks/bench_big_file.py " + " ".join(sys.argv[1:]),
            "src": str(args.src),
            "file_mb": args.mb,
            "add": run,
            "interrupts": interrupts,
        },
        path=args.out,
        echo=False,
    )


if __name__ == "__main__":
    main()
