"""Ctrl-C and SIGTERM while one huge file is committed, through the CLI: the chunks of one
document go in one transaction, written in slices (store.WRITE_SLICE) so that the signal
lands between two of them; the CLI exits 130 within seconds and the transaction rolls
back whole. Here because the moment is told by SQLite's WAL growing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from ragkeep import Keep

from bigdoc import write_big_text
from interrupt_harness import STOP_WITHIN_S, AddRun, assert_stopped, doctor_passes


def _wal_bytes(data: Path) -> int:
    wal = data / "ragkeep.db-wal"
    return wal.stat().st_size if wal.exists() else 0


# Chunks of 16 tokens of a text that repeats: 4 MB give ~56,000 chunks (a commit of
# seconds) but few distinct texts to embed, so the run soon gets there. CI-sized: short
# chunks are also quick in one statement, so that the writes go in slices at all is
# checked by tests/sqlite/test_sqlite_store.py (no statement changes more than a slice).
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
    add = AddRun(docs, data, _MANY_CHUNKS)
    add.wait_for(_committing(data), "the commit", within_s=180)
    assert_stopped(add, sig, data)


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
    add = AddRun(docs, data, _MANY_CHUNKS)
    add.wait_for(_committing(data), "the commit", within_s=180)
    code, took, stderr = add.stop(signal.SIGINT)
    assert code == 130, stderr
    assert "interrupted; 0 document(s) committed in this run are kept" in stderr, stderr
    assert took < STOP_WITHIN_S, f"SIGINT took {took:.1f} s to act"
    doctor_passes(data)
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
    """The size of the issue's file, default chunking: ~60,000 chunks in one commit (about
    a minute per run). Written in one statement they made `ragkeep add` wait 11-12 s."""
    docs, data = tmp_path / "docs", tmp_path / "data"
    write_big_text(docs / "big.txt", 48_600_000)
    add = AddRun(docs, data, {})
    add.wait_for(_committing(data), "the commit", within_s=600)
    assert_stopped(add, sig, data)
