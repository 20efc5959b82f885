"""Dense retrieval for the SQLite backend: exact inner product with numpy over the vectors of
the snapshot, optionally answered from an approximate (usearch) index.

The matrix is kept per process and reloaded only when the generation moved: from the derived
vector file when it was made from exactly this snapshot, else from SQLite (and then the file is
rewritten for the next process).

No search waits without a deadline: one that finds another thread still loading the matrix
or the ANN index after `search.derived_wait_s` answers exactly, straight from the database,
and closing waits at most `search.ann_wait_s` for a background ANN build.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ragkeep.resources.slow import warn_if_slow
from ragkeep.store.base import DenseOptions, DenseResult, Ranking
from ragkeep.store.records import VectorTable
from ragkeep.store.sqlite.vector_file import VectorFile

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from ragkeep.store.sqlite.ann import AnnIndex
    from ragkeep.store.sqlite.snapshot import SqliteSnapshot
    from ragkeep.store.sqlite.store import SqliteStore


log = logging.getLogger(__name__)

_DB_BATCH = 4096  # vectors scored at a time by the database fallback: bounds its memory


def top_n(table: VectorTable, query: npt.NDArray[np.float32], n: int) -> Ranking:
    """The n best chunks by inner product, plus any that tie with the n-th, best first."""
    if len(table.ids) == 0:
        return []
    return _best(table.ids, (table.matrix @ query)[table.rows], n)


def exact_from_database(
    conn: sqlite3.Connection,
    model_id: str,
    dimension: int,
    query: npt.NDArray[np.float32],
    n: int,
) -> Ranking:
    """top_n without the matrix: vectors are read from the snapshot `conn` sees and scored a
    batch at a time, so it needs memory for the scores only."""
    import numpy as np

    ids: list[npt.NDArray[np.int64]] = []
    scores: list[npt.NDArray[np.float32]] = []
    cursor = conn.execute(
        "SELECT ch.id, v.vector FROM chunks ch JOIN vectors v "
        "ON v.model_id = ? AND v.text_hash = ch.text_hash",
        (model_id,),
    )
    while rows := cursor.fetchmany(_DB_BATCH):
        ids.append(np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)))
        matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32)
        scores.append(matrix.reshape(len(rows), dimension) @ query)
    if not ids:
        return []
    return _best(np.concatenate(ids), np.concatenate(scores), n)


def _best(ids: npt.NDArray[np.int64], scores: npt.NDArray[np.float32], n: int) -> Ranking:
    import numpy as np

    n = min(n, len(scores))
    nth = scores[np.argpartition(-scores, n - 1)[n - 1]]
    # Everything scoring at least the n-th: chunks tying with it are kept, so the caller
    # can break the tie by something other than the order the chunks were stored in.
    keep = np.flatnonzero(scores >= nth)
    order = keep[np.argsort(-scores[keep], kind="stable")]
    return [(int(ids[i]), float(scores[i])) for i in order]


@dataclass(frozen=True, slots=True)
class _Matrix:
    generation: int
    table: VectorTable


class SqliteDense:
    """Per-process state: the matrix of the last generation seen, the vector file, the ANN."""

    def __init__(self, store: SqliteStore, options: DenseOptions) -> None:
        self._store = store
        self._options = options
        self._slow_s = store.slow_write_s
        self.vector_file = VectorFile(store.derived_dir, store.model_id, store.dimension)
        self.ann: AnnIndex | None = None
        if options.ann:
            self.ann = self.ann_index()
            self.ann.load_library()
        self._matrix: _Matrix | None = None
        self._lock = threading.Lock()

    def ann_index(self) -> AnnIndex:
        """The derived ANN file beside the database (whether or not the flag uses it)."""
        from ragkeep.store.sqlite.ann import AnnIndex

        store = self._store
        return AnnIndex(store.derived_dir, store.model_id, store.dimension, store.slow_write_s)

    def bind(self, snap: SqliteSnapshot) -> SnapshotDense:
        return SnapshotDense(self, snap)

    def search(self, snap: SqliteSnapshot, query: npt.NDArray[np.float32], n: int) -> DenseResult:
        final = True
        if self.ann is not None:
            try:
                index = self.ann.get(snap.state_id, self._options.derived_wait_s)
            except TimeoutError:  # another thread is still reading the file: do not wait
                log.warning(
                    "another search has been loading the ANN index for more than %g s "
                    "(search.derived_wait_s); answering this one by exact search",
                    self._options.derived_wait_s,
                )
            else:
                if index is not None:
                    return DenseResult(self.ann.search(index, query, n), True)
                if snap.chunk_count() >= self._options.ann_min_vectors:
                    # Stale, damaged or missing: answer exactly now, rebuild in the background.
                    self.ann.rebuild_in_background(self._snapshot_vectors)
                    final = False
        table = self._matrix_for(snap)
        if table is None:
            store = self._store
            ranking = exact_from_database(snap.conn, store.model_id, store.dimension, query, n)
            return DenseResult(ranking, final)
        return DenseResult(top_n(table, query, n), final)

    def close(self) -> None:
        if self.ann is not None and not self.ann.wait(self._options.ann_wait_s):
            # The build is a daemon thread writing only a derived file (temp file, rename,
            # stamp last): abandoning it can leave a stale file at worst, never a wrong one.
            log.warning(
                "a background ANN index build is still running after %g s "
                "(search.ann_wait_s); closing without waiting for it",
                self._options.ann_wait_s,
            )

    def _snapshot_vectors(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32], str]:
        with self._store.snapshot() as snap:
            table = self._store.load_vectors(snap.conn)
            return table.ids, table.per_chunk(), snap.state_id

    def _matrix_for(self, snap: SqliteSnapshot) -> VectorTable | None:
        """The matrix of this snapshot; None when another thread has been loading one for
        longer than search.derived_wait_s (the caller then searches the database)."""
        if not self._lock.acquire(timeout=self._options.derived_wait_s):
            log.warning(
                "another search has been loading the vectors for more than %g s "
                "(search.derived_wait_s); answering this one by exact search from the database",
                self._options.derived_wait_s,
            )
            return None
        save = False
        try:
            gen = snap.generation
            if self._matrix is None or self._matrix.generation != gen:
                table = self.vector_file.load(snap.state_id)
                # The file is for the next new process. A long-running one (watch, a server,
                # searches during an ingest) writes it once, not after every commit it sees.
                save = table is None and self._matrix is None
                if table is None:
                    table = self._store.load_vectors(snap.conn)
                self._matrix = _Matrix(gen, table)
            table = self._matrix.table
        finally:
            self._lock.release()
        if save:  # outside the lock: a slow disk delays no other search
            with warn_if_slow(log, f"writing {self.vector_file.path}", self._slow_s):
                self.vector_file.save(table, snap.state_id, snap.generation)
        return table


class SnapshotDense:
    """The dense index as one snapshot sees it."""

    def __init__(self, state: SqliteDense, snap: SqliteSnapshot) -> None:
        self._state = state
        self._snap = snap

    def search(self, query: npt.NDArray[np.float32], n: int) -> DenseResult:
        return self._state.search(self._snap, query, n)
