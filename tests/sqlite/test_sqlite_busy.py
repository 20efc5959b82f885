"""A locked SQLite database: writes retry with backoff up to store.lock_timeout_s, then fail
with a clear error; "database is locked" never reaches the user."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from ragkeep.store import StoreBusyError
from ragkeep.store.sqlite import SqliteStore


def test_busy_database_becomes_a_clear_error_after_the_deadline(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "ragkeep.db", model_id="m", dimension=4,
                        busy_timeout_ms=50, lock_timeout_s=0.5)  # fmt: skip
    blocker = sqlite3.connect(tmp_path / "ragkeep.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    started = time.monotonic()
    with pytest.raises(StoreBusyError, match=r"store\.lock_timeout_s"):
        store.set_flag("caching", True)
    assert 0.4 < time.monotonic() - started < 5
    blocker.execute("ROLLBACK")
    store.set_flag("caching", True)  # the lock is free again: the retry loop succeeds
    blocker.close()
    store.close()


def test_a_writer_that_releases_in_time_is_waited_for(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "ragkeep.db", model_id="m", dimension=4,
                        busy_timeout_ms=10, lock_timeout_s=10)  # fmt: skip
    blocker = sqlite3.connect(
        tmp_path / "ragkeep.db", isolation_level=None, check_same_thread=False
    )
    blocker.execute("BEGIN IMMEDIATE")
    threading.Timer(0.5, lambda: blocker.execute("ROLLBACK")).start()
    store.set_flag("caching", True)  # retried with backoff past many busy timeouts
    assert store.persisted_flags() == {"caching": True}
    blocker.close()
    store.close()
