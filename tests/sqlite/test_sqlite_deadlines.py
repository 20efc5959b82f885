"""Deadlines on every blocking wait of the store: the writer lock (naming its holder), closing
while an ANN build runs, searches waiting for another thread's load; slow writes are logged;
the lock order (writer lock, then SQLite's) holds on every write path.

Each wait runs in a thread joined with a generous timeout, so a missing deadline fails the
test instead of hanging it.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ragkeep import Keep
from ragkeep.config.settings import SearchSettings
from ragkeep.store import DenseOptions, StoreBusyError
from ragkeep.store.sqlite import SqliteStore
from ragkeep.store.sqlite.dense import exact_from_database, top_n

from conftest import write
from contract_helpers import put, query, vec

HANG_S = 20  # far beyond every deadline used here: reaching it means no deadline applied

# Holds the writer lock through the store's own code until its stdin closes.
_STORE_HOLDER = """
import sys
from pathlib import Path
from ragkeep.store.sqlite import SqliteStore
store = SqliteStore(Path(sys.argv[1]), model_id="m", dimension=4)
with store.writer_lock(None):
    print("held", flush=True)
    sys.stdin.read()
"""
# Holds the bare file lock and records no owner: a holder that has not written its record yet.
_BARE_HOLDER = """
import sys
from filelock import FileLock
lock = FileLock(sys.argv[1], thread_local=False)
lock.acquire()
print("held", flush=True)
sys.stdin.read()
"""


@dataclass
class Outcome:
    value: Any = None
    error: BaseException | None = None
    seconds: float = 0.0


def _within(fn: Callable[[], Any], limit_s: float = HANG_S) -> Outcome:
    """Run `fn` in a thread; fail the test if it is still running after `limit_s`."""
    outcome = Outcome()

    def run() -> None:
        started = time.monotonic()
        try:
            outcome.value = fn()
        except BaseException as exc:  # handed to the test
            outcome.error = exc
        outcome.seconds = time.monotonic() - started

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(limit_s)
    if thread.is_alive():
        pytest.fail(f"still waiting after {limit_s} s: the wait has no deadline")
    return outcome


@contextmanager
def _holding(code: str, target: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the writer lock until the block ends."""
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(target)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        proc.kill()
        proc.wait(10)


def _enter(cm: Any) -> None:
    with cm:
        pass


def _store(tmp_path: Path, **kwargs: Any) -> SqliteStore:
    return SqliteStore(tmp_path / "ragkeep.db", model_id="m", dimension=4, **kwargs)


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


# -- the writer lock ---------------------------------------------------------------------


def test_a_waiting_writer_gives_up_at_the_deadline_naming_the_holder(tmp_path: Path) -> None:
    store = _store(tmp_path, writer_timeout_s=1)
    with _holding(_STORE_HOLDER, store.path) as holder:
        holders: list[str | None] = []
        outcome = _within(
            lambda: _enter(store.writer_lock(on_wait=lambda: holders.append(store.writer_holder())))
        )
    assert isinstance(outcome.error, StoreBusyError), outcome.error
    message = str(outcome.error)
    assert f"process {holder.pid} on {socket.gethostname()}" in message
    assert "store.writer_timeout_s" in message and "\n" not in message
    assert 0.9 <= outcome.seconds < 5
    # on_wait learns who it waits for (the CLI prints it) while the wait is still on.
    assert holders and holders[0] is not None and f"process {holder.pid}" in holders[0]
    store.close()


def test_the_owner_record_lives_exactly_as_long_as_the_lock(tmp_path: Path) -> None:
    store = _store(tmp_path)
    owner_file = tmp_path / "writer.lock.owner"
    assert store.writer_holder() is None
    with store.writer_lock(None):
        record = json.loads(owner_file.read_text())
        assert record["pid"] == os.getpid() and record["host"] == socket.gethostname()
        assert f"process {os.getpid()}" in (store.writer_holder() or "")
        assert (tmp_path / "writer.lock").read_bytes() == b""  # never in the lock file
    assert not owner_file.exists() and store.writer_holder() is None
    store.close()


def test_a_stale_owner_record_never_names_a_dead_process(tmp_path: Path) -> None:
    store = _store(tmp_path, writer_timeout_s=0.5)
    owner_file = tmp_path / "writer.lock.owner"
    dead = _dead_pid()
    stale = {"pid": dead, "host": socket.gethostname(), "command": "ragkeep add /gone",
             "since": time.time() - 3600, "started": None}  # fmt: skip
    owner_file.write_text(json.dumps(stale))  # left by a holder killed with kill -9
    with _holding(_BARE_HOLDER, tmp_path / "writer.lock"):
        outcome = _within(lambda: _enter(store.writer_lock(None)))
    assert isinstance(outcome.error, StoreBusyError)
    assert "has not said which" in str(outcome.error)
    assert str(dead) not in str(outcome.error) and "/gone" not in str(outcome.error)
    # A live PID that now belongs to another process (started at another time) is stale too.
    reused = dict(stale, pid=os.getpid(), started="1")
    owner_file.write_text(json.dumps(reused))
    assert store.writer_holder() is None
    # The lock itself is free: it is taken at once and the stale record replaced, then removed.
    outcome = _within(lambda: _enter(store.writer_lock(None)), limit_s=5)
    assert outcome.error is None and outcome.seconds < 1
    assert not owner_file.exists()
    store.close()


def test_opening_an_index_waits_for_no_writer(tmp_path: Path) -> None:
    """An up-to-date index opens with a read: a writer in the middle of a long transaction
    (or a read-only file) does not stop a search from opening it."""
    import sqlite3

    _store(tmp_path).close()
    writer = sqlite3.connect(tmp_path / "ragkeep.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        outcome = _within(lambda: _store(tmp_path, lock_timeout_s=0.5, busy_timeout_ms=50))
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert outcome.error is None, outcome.error
    outcome.value.close()


# -- closing while an ANN build runs ------------------------------------------------------


def test_closing_gives_up_on_a_stuck_ann_build_after_ann_wait_s(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = _store(tmp_path)
    store.configure_dense(DenseOptions(ann=True, ann_min_vectors=0, ann_wait_s=0.5))
    ann = store.dense_state().ann
    assert ann is not None
    release = threading.Event()

    def stuck_load() -> tuple[Any, Any, str]:  # a build that takes far longer than allowed
        release.wait(60)
        return np.zeros(0, np.int64), np.zeros((0, 4), np.float32), "old-state"

    ann.rebuild_in_background(stuck_load)
    try:
        with caplog.at_level(logging.WARNING):
            outcome = _within(store.close)
        assert outcome.error is None and outcome.seconds < 5
        assert "still running" in caplog.text and "search.ann_wait_s" in caplog.text
    finally:
        release.set()
    assert ann.wait(30)


def test_an_abandoned_build_never_serves_a_newer_state(data_dir: Path, docs_dir: Path) -> None:
    """The build outlives its index's close and publishes afterwards: its file is stamped
    with the state it read, so later searches see it as stale and answer exactly."""
    write(docs_dir / "a.md", "Puffins nest in burrows on grassy cliff tops.")
    overrides = {"flags.ann_index": True, "search.ann_min_vectors": 0}
    release = threading.Event()
    with Keep(data_dir, overrides=overrides) as keep:
        keep.add([docs_dir])
        store = keep.store
        assert isinstance(store, SqliteStore)
        store.configure_dense(DenseOptions(ann=True, ann_min_vectors=0, ann_wait_s=0.2))
        ann = store.dense_state().ann
        assert ann is not None

        def slow_load() -> tuple[Any, Any, str]:
            with store.snapshot() as snap:  # what the real build reads, then a long stall
                table, state = store.load_vectors(snap.conn), snap.state_id
            release.wait(60)
            return table.ids, table.per_chunk(), state

        ann.rebuild_in_background(slow_load)
    with Keep(data_dir, overrides=overrides) as keep:
        write(docs_dir / "b.md", "Otters crack crabs open on their bellies.")
        keep.sync()
        release.set()
        assert ann.wait(30) and ann.path.exists()  # it did publish, for its own old state
        assert ann.state(keep.store.state_id()) == "stale"
        hits = keep.search("otters crabs bellies", 1, "dense")
        assert hits[0].path.endswith("b.md")


# -- searches waiting for another thread's load of a derived structure ---------------------


@pytest.fixture
def vectors_store(tmp_path: Path) -> Iterator[SqliteStore]:
    store = _store(tmp_path)
    for i in range(30):
        put(store, f"/doc{i}", {f"text {i}": vec(1.0, i / 10, (i % 7) / 3)})
    yield store
    store.close()


def test_a_search_waits_for_another_threads_matrix_load_only_until_derived_wait_s(
    vectors_store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    store = vectors_store
    store.configure_dense(DenseOptions(derived_wait_s=0.3))
    q = query(1.0, 0.5, 0.2)
    with store.snapshot() as snap:
        expected = snap.dense.search(q, 5).ranking
    state = store.dense_state()
    # Stands in for another search thread still loading the matrix (a slow disk, a huge
    # index): it holds the load lock for longer than the deadline.
    with state._lock, caplog.at_level(logging.WARNING):
        outcome = _within(lambda: _dense_search(store, q, 5))
    assert outcome.error is None and outcome.seconds < 5
    assert [c for c, _ in outcome.value] == [c for c, _ in expected]
    assert np.allclose([s for _, s in outcome.value], [s for _, s in expected], atol=1e-5)
    assert "search.derived_wait_s" in caplog.text and "from the database" in caplog.text


def test_a_search_waits_for_another_threads_ann_load_only_until_derived_wait_s(
    vectors_store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    store = vectors_store
    store.configure_dense(DenseOptions(ann=True, ann_min_vectors=0, derived_wait_s=0.3))
    q = query(0.2, 1.0)
    ann = store.dense_state().ann
    assert ann is not None
    _dense_search(store, q, 3)  # starts the build
    assert ann.wait(30)
    with ann._lock, caplog.at_level(logging.WARNING):  # another thread reading the file
        outcome = _within(lambda: _dense_search(store, q, 3))
    assert outcome.error is None and outcome.seconds < 5
    with store.snapshot() as snap:
        exact = exact_from_database(snap.conn, "m", 4, q, 3)
    assert [c for c, _ in outcome.value] == [c for c, _ in exact]
    assert "ANN index" in caplog.text and "search.derived_wait_s" in caplog.text


def test_the_database_fallback_ranks_exactly_like_the_matrix(vectors_store: SqliteStore) -> None:
    store = vectors_store
    put(store, "/twin", {"text 3": None})  # a chunk sharing its vector: ties are kept
    for q in (query(1.0), query(0.1, 1.0, 0.3), query(0.3, 0.3, 1.0)):
        with store.snapshot() as snap:
            from_matrix = top_n(store.load_vectors(snap.conn), q, 4)
            from_db = exact_from_database(snap.conn, "m", 4, q, 4)
        assert [c for c, _ in from_db] == [c for c, _ in from_matrix]


def test_dense_options_come_from_the_settings() -> None:
    search = SearchSettings(ann_wait_s=7, derived_wait_s=3, ann_min_vectors=10)
    assert DenseOptions.from_settings(search, ann=True) == DenseOptions(True, 10, 7.0, 3.0)


def _dense_search(store: SqliteStore, q: Any, n: int) -> list[tuple[int, float]]:
    with store.snapshot() as snap:
        return snap.dense.search(q, n).ranking


# -- slow operations are logged -----------------------------------------------------------


def test_slow_writes_are_logged(
    tmp_path: Path, vectors_store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    slow = SqliteStore(vectors_store.path, model_id="m", dimension=4, slow_write_s=1e-9)
    with caplog.at_level(logging.WARNING):
        put(slow, "/late", {"late text": vec(0.0, 1.0)})
        _dense_search(slow, query(1.0), 3)  # loads the matrix, writes the vector file
        slow.dense_state().ann_index().build(
            np.arange(3, dtype=np.int64), np.eye(3, 4, dtype=np.float32), "s"
        )
    slow.close()
    assert "slow: committing /late" in caplog.text
    assert "slow: writing" in caplog.text and "vectors-m.bin" in caplog.text
    assert "slow: building" in caplog.text and "ann-m.usearch" in caplog.text


def test_a_slow_wait_for_the_writer_lock_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = _store(tmp_path, slow_write_s=0.2)
    with _holding(_STORE_HOLDER, store.path) as holder, caplog.at_level(logging.WARNING):
        threading.Timer(0.5, holder.kill).start()  # the holder finishes after 0.5 s
        outcome = _within(lambda: _enter(store.writer_lock(None)))
    assert outcome.error is None
    assert "slow: waiting for the writer lock" in caplog.text
    store.close()


# -- the lock order -----------------------------------------------------------------------


def test_the_writer_lock_is_never_requested_inside_a_write_transaction(tmp_path: Path) -> None:
    store = _store(tmp_path)
    with store.write() as c:
        c.execute("SELECT 1")
        with pytest.raises(RuntimeError, match="lock order"):
            store.writer_lock(None)
    with store.read(), store.writer_lock(None):  # a read snapshot holds no lock: allowed
        pass
    store.close()


def test_every_write_of_add_sync_remove_gc_and_doctor_holds_the_writer_lock(
    data_dir: Path, docs_dir: Path
) -> None:
    """An instrumented run: SQLite's trace hook sees every BEGIN IMMEDIATE on this thread's
    connection, and at each one we check that the writer lock is taken (a second flock on
    the lock file must fail)."""
    from filelock import FileLock, Timeout

    write(docs_dir / "a.md", "Kittiwakes nest on narrow ledges.")
    write(docs_dir / "b.md", "Fulmars glide low over the waves.")
    begins: list[bool] = []  # per write transaction: was the writer lock held?

    def on_statement(sql: str) -> None:
        if sql.strip().upper().startswith("BEGIN IMMEDIATE"):
            probe = FileLock(data_dir / "writer.lock", thread_local=False)
            try:
                probe.acquire(timeout=0)
            except Timeout:
                begins.append(True)
            else:
                probe.release()
                begins.append(False)

    with Keep(data_dir, overrides={"flags.caching": False}) as keep:
        store = keep.store
        assert isinstance(store, SqliteStore)
        with store.read() as c:
            c.set_trace_callback(on_statement)
        keep.add([docs_dir])
        write(docs_dir / "a.md", "Kittiwakes nest on very narrow ledges.")
        keep.sync()
        keep.remove([docs_dir / "b.md"])
        keep.gc()
        keep.doctor(repair=True)
    assert len(begins) >= 6, begins
    assert all(begins), f"{begins.count(False)} write transaction(s) without the writer lock"
