"""Dense retrieval for the SQLite backend: exact inner product with numpy over the vectors of
the snapshot, optionally answered from an approximate (usearch) index.

The matrix is kept per process and reloaded only when the generation moved: from the derived
vector file when it was made from exactly this snapshot, else from SQLite (and then the file is
rewritten for the next process).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ragkeep.store.base import DenseOptions, DenseResult, Ranking
from ragkeep.store.records import VectorTable
from ragkeep.store.sqlite.vector_file import VectorFile

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from ragkeep.store.sqlite.ann import AnnIndex
    from ragkeep.store.sqlite.snapshot import SqliteSnapshot
    from ragkeep.store.sqlite.store import SqliteStore


def top_n(table: VectorTable, query: npt.NDArray[np.float32], n: int) -> Ranking:
    """The n best chunks by inner product, plus any that tie with the n-th, best first."""
    import numpy as np

    if len(table.ids) == 0:
        return []
    scores = (table.matrix @ query)[table.rows]
    n = min(n, len(scores))
    nth = scores[np.argpartition(-scores, n - 1)[n - 1]]
    # Everything scoring at least the n-th: chunks tying with it are kept, so the caller
    # can break the tie by something other than the order the chunks were stored in.
    keep = np.flatnonzero(scores >= nth)
    order = keep[np.argsort(-scores[keep], kind="stable")]
    return [(int(table.ids[i]), float(scores[i])) for i in order]


@dataclass(frozen=True, slots=True)
class _Matrix:
    generation: int
    table: VectorTable


class SqliteDense:
    """Per-process state: the matrix of the last generation seen, the vector file, the ANN."""

    def __init__(self, store: SqliteStore, options: DenseOptions) -> None:
        self._store = store
        self._options = options
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

        return AnnIndex(self._store.derived_dir, self._store.model_id, self._store.dimension)

    def bind(self, snap: SqliteSnapshot) -> SnapshotDense:
        return SnapshotDense(self, snap)

    def search(self, snap: SqliteSnapshot, query: npt.NDArray[np.float32], n: int) -> DenseResult:
        final = True
        if self.ann is not None:
            index = self.ann.get(snap.state_id)
            if index is not None:
                return DenseResult(self.ann.search(index, query, n), True)
            if snap.chunk_count() >= self._options.ann_min_vectors:
                # Stale, damaged or missing: answer exactly now, rebuild in the background.
                self.ann.rebuild_in_background(self._snapshot_vectors)
                final = False
        return DenseResult(top_n(self._matrix_for(snap), query, n), final)

    def close(self) -> None:
        if self.ann is not None:
            self.ann.wait()

    def _snapshot_vectors(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32], str]:
        with self._store.snapshot() as snap:
            table = self._store.load_vectors(snap.conn)
            return table.ids, table.per_chunk(), snap.state_id

    def _matrix_for(self, snap: SqliteSnapshot) -> VectorTable:
        with self._lock:
            gen = snap.generation
            if self._matrix is None or self._matrix.generation != gen:
                first = self._matrix is None
                self._matrix = _Matrix(gen, self._load(snap, first))
            return self._matrix.table

    def _load(self, snap: SqliteSnapshot, first: bool) -> VectorTable:
        table = self.vector_file.load(snap.state_id)
        if table is None:
            table = self._store.load_vectors(snap.conn)
            # The file is for the next new process. A long-running one (watch, a server,
            # searches during an ingest) writes it once, not after every commit it sees.
            if first:
                self.vector_file.save(table, snap.state_id, snap.generation)
        return table


class SnapshotDense:
    """The dense index as one snapshot sees it."""

    def __init__(self, state: SqliteDense, snap: SqliteSnapshot) -> None:
        self._state = state
        self._snap = snap

    def search(self, query: npt.NDArray[np.float32], n: int) -> DenseResult:
        return self._state.search(self._snap, query, n)
