"""Ctrl-C and SIGTERM inside one huge file, through the CLI as a user runs it: while it is
chunked, while it is embedded, and while its tens of thousands of chunks are committed. The
CLI exits 130 within seconds with the interrupted message, and the index holds the document
whole or not at all."""

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

import pytest

from ragkeep import Keep

from bigdoc import write_big_text
from conftest import SCIFACT

STOP_WITHIN_S = 5.0  # generous: on this 2-core machine it takes well under 2 s


def _prose(path: Path, size: int) -> Path:
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


class _Add:
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


def _assert_stopped(add: _Add, sig: signal.Signals, data: Path) -> None:
    code, took, stderr = add.stop(sig)
    assert code == 130, stderr  # the CLI's own interrupt path, not a kill
    assert "interrupted; 0 document(s) committed in this run are kept" in stderr, stderr
    assert took < STOP_WITHIN_S, f"{sig.name} took {took:.1f} s to act"
    _doctor_passes(data)
    with Keep(data) as keep:  # the big document is not in at all: no part of it
        assert [d.path for d in keep.documents()] == []
        assert keep.status().chunks == 0


def _doctor_passes(data: Path) -> None:
    doctor = subprocess.run(
        [sys.executable, "-m", "ragkeep", "--data-dir", str(data), "doctor"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr


def _wal_bytes(data: Path) -> int:
    wal = data / "ragkeep.db-wal"
    return wal.stat().st_size if wal.exists() else 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_a_big_file_is_chunked(tmp_path: Path, sig: signal.Signals) -> None:
    docs, data = tmp_path / "docs", tmp_path / "data"
    _prose(docs / "big.txt", 8 * 1024 * 1024)  # ~8 s of chunking
    add = _Add(docs, data, {})
    add.wait_for(lambda: _wal_bytes(data) > 0, "the index open")
    time.sleep(1.5)  # sources recorded, tokenizer loaded: into the big file's chunking
    _assert_stopped(add, sig, data)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_a_big_file_is_embedded(tmp_path: Path, sig: signal.Signals) -> None:
    docs, data = tmp_path / "docs", tmp_path / "data"
    _prose(docs / "big.txt", 2 * 1024 * 1024)  # ~2,500 distinct chunks: minutes
    add = _Add(docs, data, {})
    add.wait_for(lambda: any("embedded a batch" in line for line in add.lines), "embedding")
    _assert_stopped(add, sig, data)


# Chunks of 16 tokens of a text that repeats: 4 MB give ~56,000 chunks (a commit of
# ~10 s in one statement) but few distinct texts to embed, so the run soon gets there.
_MANY_CHUNKS = {"RAGKEEP_CHUNKING__SIZE_TOKENS": "16", "RAGKEEP_CHUNKING__OVERLAP_TOKENS": "0"}
_MANY_CHUNKS_BYTES = 4 * 1024 * 1024


def _committing(data: Path) -> Callable[[], bool]:
    """True once the commit is under way: the transaction's pages spill into the WAL."""
    return lambda: _wal_bytes(data) > 1024 * 1024


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_a_big_file_is_committed(tmp_path: Path, sig: signal.Signals) -> None:
    """The commit of one document is one transaction; written in slices, the signal lands
    between two of them and the transaction rolls back whole."""
    docs, data = tmp_path / "docs", tmp_path / "data"
    write_big_text(docs / "big.txt", _MANY_CHUNKS_BYTES, paragraphs=6)
    add = _Add(docs, data, _MANY_CHUNKS)
    add.wait_for(_committing(data), "the commit", within_s=180)
    _assert_stopped(add, sig, data)


def test_a_signal_while_a_big_file_replaces_its_old_version(tmp_path: Path) -> None:
    """A changed big file: its old chunks are deleted in the same transaction as the new
    ones go in, also in slices; interrupted, the old version stays whole."""
    docs, data = tmp_path / "docs", tmp_path / "data"
    big = write_big_text(docs / "big.txt", _MANY_CHUNKS_BYTES, paragraphs=6)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGKEEP_")} | _MANY_CHUNKS
    first = [sys.executable, "-m", "ragkeep", "--data-dir", str(data), "-q", "add", str(docs)]
    subprocess.run(first, check=True, env=env, timeout=300)
    with Keep(data, overrides=_overrides()) as keep:
        before = keep.status()
    big.write_text("Changed. " + big.read_text(encoding="ascii"), encoding="ascii")
    add = _Add(docs, data, _MANY_CHUNKS)
    add.wait_for(_committing(data), "the commit", within_s=180)
    code, took, stderr = add.stop(signal.SIGINT)
    assert code == 130, stderr
    assert "interrupted; 0 document(s) committed in this run are kept" in stderr, stderr
    assert took < STOP_WITHIN_S, f"SIGINT took {took:.1f} s to act"
    _doctor_passes(data)
    with Keep(data, overrides=_overrides()) as keep:
        after = keep.status()
    assert (after.documents, after.chunks, after.generation) == (
        before.documents,
        before.chunks,
        before.generation,
    )


def _overrides() -> dict[str, object]:
    return {"chunking.size_tokens": 16, "chunking.overlap_tokens": 0}


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_the_reported_48_mb_file_is_committed(
    tmp_path: Path, sig: signal.Signals
) -> None:
    """The size of the issue's file, default chunking: ~60,000 chunks in one commit, which
    took 11-12 s to act on when written in one statement (about 2 minutes per run)."""
    docs, data = tmp_path / "docs", tmp_path / "data"
    write_big_text(docs / "big.txt", 48_600_000)
    add = _Add(docs, data, {})
    add.wait_for(_committing(data), "the commit", within_s=600)
    _assert_stopped(add, sig, data)
