"""`ragkeep add` run as a user runs it, for the interrupt tests: a subprocess whose stderr
is read as it comes, stopped by a signal, then checked with `ragkeep doctor`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ragkeep import Keep

from conftest import SCIFACT

STOP_WITHIN_S = 5.0  # generous: on the 2-core reference machine it takes well under 1 s


def prose(path: Path, size: int) -> Path:
    """SciFact abstracts as paragraphs: real prose whose chunks are all distinct, so the
    embedding phase is long (minutes for a few MB)."""
    with (SCIFACT / "corpus.jsonl").open(encoding="utf-8") as fh:
        paragraphs = [f"{d['title']}\n\n{d['text']}\n\n" for d in map(json.loads, fh)]
    out, n, i = [], 0, 0
    while n < size:
        out.append(paragraphs[i % len(paragraphs)])
        n, i = n + len(out[-1]), i + 1
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(out)[:size], encoding="utf-8")
    return path


class AddRun:
    """`ragkeep add` in a subprocess, its stderr read as it comes."""

    def __init__(self, docs: Path, data: Path, env_extra: dict[str, str]) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAGKEEP_")}
        env |= {"RAGKEEP_LOGGING__SAMPLE_RATE": "1", **env_extra}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ragkeep", "--data-dir", str(data), "-v", "add", str(docs)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            # A shell may start background jobs with SIGINT ignored; Python then keeps it so.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def wait_for(self, ready: Callable[[], bool], what: str, within_s: float = 120) -> None:
        deadline = time.monotonic() + within_s
        while not ready():
            assert self.proc.poll() is None, "".join(self.lines)
            assert time.monotonic() < deadline, f"never got to {what}"
            time.sleep(0.05)

    def stop(self, sig: signal.Signals) -> tuple[int, float, str]:
        """Send `sig`; the exit code, the seconds until the process ended, its stderr."""
        sent = time.monotonic()
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=120)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        took = time.monotonic() - sent
        self._reader.join(10)
        return self.proc.returncode, took, "".join(self.lines)


def assert_stopped(add: AddRun, sig: signal.Signals, data: Path) -> None:
    code, took, stderr = add.stop(sig)
    assert code == 130, stderr  # the CLI's own interrupt path, not a kill
    assert "interrupted; 0 document(s) committed in this run are kept" in stderr, stderr
    assert took < STOP_WITHIN_S, f"{sig.name} took {took:.1f} s to act"
    doctor_passes(data)
    with Keep(data) as keep:  # the big document is not in at all: no part of it
        assert [d.path for d in keep.documents()] == []
        assert keep.status().chunks == 0


def doctor_passes(data: Path) -> None:
    doctor = subprocess.run(
        [sys.executable, "-m", "ragkeep", "--data-dir", str(data), "doctor"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
