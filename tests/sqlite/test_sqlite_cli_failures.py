"""Rows of the failure matrix (docs/degradation.md) that need the SQLite file itself: a
database that fills up (store.max_size_mb) during an `add` while another process searches,
and a damaged database file, each met through the real `ragkeep` command."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from ragkeep import Keep

import test_failure_matrix as matrix
from conftest import CliResult, run_cli, write
from test_failure_matrix import DOCS, _clean, _healthy, _one_line_error

# The matrix's fixtures: three small documents, indexed in a fresh data dir per test.
corpus = matrix.corpus
data = matrix.data


def test_disk_full_during_an_ingest_while_searches_run(data: Path, tmp_path: Path) -> None:
    """The database reaches store.max_size_mb (SQLite's "database or disk is full") in the
    middle of an `add`, while another process keeps searching."""
    more = tmp_path / "more"
    for i in range(150):
        write(more / f"note{i:03}.md", f"# Note {i}\n\nuniq{i} " + "hedgerow bramble " * 40)
    limit_mb = (data / "ragkeep.db").stat().st_size / 1e6 + 0.15
    searched: list[int] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def search() -> None:
        with Keep(data) as keep:
            while not stop.is_set():
                try:
                    searched.append(len(keep.search("kiln glaze", 3, "hybrid").hits))
                except BaseException as exc:  # any failure of a search is the test's failure
                    errors.append(exc)
                    return

    searcher = threading.Thread(target=search)
    searcher.start()
    try:
        add = subprocess.run(
            [
                *(sys.executable, "-m", "ragkeep", "--data-dir", str(data)),
                *("--set", f"store.max_size_mb={limit_mb:.3f}", "add", str(more)),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        stop.set()
        searcher.join(30)
    _one_line_error(CliResult(add.returncode, add.stdout, add.stderr), "full", "sync")
    assert not errors, errors
    assert searched and all(n > 0 for n in searched)
    # Every document committed is whole; nothing indexed before was lost.
    assert _clean(run_cli("doctor", data_dir=data)).code == 0
    partial = run_cli("status", "--json", data_dir=data).json()["documents"]
    assert len(DOCS) <= partial < len(DOCS) + 150
    # Space is back (no limit): the next sync finishes the work.
    assert _clean(run_cli("sync", data_dir=data)).code == 0
    _healthy(data, len(DOCS) + 150)


def test_damaged_database_is_one_line_for_every_command(data: Path) -> None:
    db = data / "ragkeep.db"
    raw = bytearray(db.read_bytes())
    middle = len(raw) // 2
    raw[middle : middle + 20000] = os.urandom(20000)
    db.write_bytes(bytes(raw))
    refused = 0
    for args in (("status",), ("search", "kiln"), ("search", "ups", "--mode", "bm25"), ("list",)):
        result = _clean(run_cli(*args, data_dir=data))
        if result.code != 0:  # a command that reads no damaged page may still answer
            _one_line_error(result, "doctor")
            refused += 1
    assert refused, "the damage went unnoticed"
    doctor = _clean(run_cli("doctor", data_dir=data))
    assert doctor.code == 1
    assert len(doctor.stdout.splitlines()) <= 15, doctor.stdout
    assert "cannot fix" in doctor.stdout
