"""configure_dense() while searches make the dense state (the ann_index flag switched in a
running process): the state in use always ends up with the options configured last."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ragkeep.store import DenseOptions
from ragkeep.store.sqlite import SqliteStore

ROUNDS = 800  # without the lock: 2-6 of 800 went wrong, in each of 5 runs (measured)


@pytest.fixture
def fast_switching() -> Iterator[None]:
    # Switch threads far more often than the default 5 ms: the race needs a switch between
    # reading the options and installing the state made from them.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


def test_a_state_made_from_old_options_is_never_installed(
    tmp_path: Path, fast_switching: None
) -> None:
    store = SqliteStore(tmp_path / "ragkeep.db", model_id="m", dimension=4)
    stale = 0
    try:
        for round_ in range(ROUNDS):
            ann = round_ % 2 == 0
            stop = threading.Event()

            def make_states() -> None:
                while not stop.is_set():
                    store.dense_state()  # a search binding the dense index

            threads = [threading.Thread(target=make_states) for _ in range(2)]
            for t in threads:
                t.start()
            # Two switches back to back: the second lands while the searches are making
            # states from the first (the window a lock must close).
            store.configure_dense(DenseOptions(ann=not ann, ann_min_vectors=0))
            store.configure_dense(DenseOptions(ann=ann, ann_min_vectors=0))
            stop.set()
            for t in threads:
                t.join(10)
            if (store.dense_state().ann is not None) != ann:
                stale += 1
    finally:
        store.close()
    assert stale == 0, f"{stale} of {ROUNDS} switches left a state with the previous options"
