"""Ctrl-C and SIGTERM inside one huge file, through the CLI as a user runs it: while it is
chunked and while it is embedded, the CLI exits 130 within seconds with the interrupted
message and nothing of the file in the index. The commit of such a file: in
tests/sqlite/test_sqlite_interrupt_commit.py."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from interrupt_harness import AddRun, assert_stopped, prose


def _index_open(data: Path) -> bool:
    return any(data.glob("*")) if data.exists() else False


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_a_big_file_is_chunked(tmp_path: Path, sig: signal.Signals) -> None:
    docs, data = tmp_path / "docs", tmp_path / "data"
    prose(docs / "big.txt", 8 * 1024 * 1024)  # ~8 s of chunking
    add = AddRun(docs, data, {})
    add.wait_for(lambda: _index_open(data), "the index open")
    time.sleep(1.5)  # sources recorded, tokenizer loaded: into the big file's chunking
    assert_stopped(add, sig, data)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_a_big_file_is_embedded(tmp_path: Path, sig: signal.Signals) -> None:
    docs, data = tmp_path / "docs", tmp_path / "data"
    prose(docs / "big.txt", 2 * 1024 * 1024)  # ~2,500 distinct chunks: minutes
    add = AddRun(docs, data, {})
    add.wait_for(lambda: any("embedded a batch" in line for line in add.lines), "embedding")
    assert_stopped(add, sig, data)
