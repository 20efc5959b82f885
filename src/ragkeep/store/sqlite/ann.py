"""An optional approximate nearest-neighbour index (usearch HNSW, f16) for large corpora.

It is a *derived* file: rebuilt from the database, never trusted blindly. Its stamp records
the committed state it was built from (the store's `state_id`, a token replaced in every
commit, so a restored database can never match an old file) and the SHA-256 of its bytes. A
search uses it only when the stamp's state equals the snapshot's and the bytes hash to the
stamp; anything
else (stale, damaged, half-written, missing) means exact search now and a rebuild in the
background, so searches keep answering and are never answered from out-of-date vectors.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragkeep.resources.slow import warn_if_slow
from ragkeep.store.sqlite.errors import derived_write_failed

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from usearch.index import Index

    from ragkeep.models import DerivedState

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AnnStamp:
    state_id: str
    model_id: str
    dimension: int
    count: int
    sha256: str


@dataclass(frozen=True, slots=True)
class _Loaded:
    state_id: str
    index: Any  # usearch.index.Index


class AnnIndex:
    def __init__(
        self, directory: Path, model_id: str, dimension: int, slow_s: float = 30.0
    ) -> None:
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in model_id)
        self.dir = directory
        self.path = self.dir / f"ann-{safe}.usearch"
        self.stamp_path = self.dir / f"ann-{safe}.json"
        self.model_id = model_id
        self.dimension = dimension
        self._slow_s = slow_s
        self._loaded: _Loaded | None = None
        self._lock = threading.Lock()  # held while the file is read: can take a while
        self._build_lock = threading.Lock()  # only around starting a build: never long
        self._building: threading.Thread | None = None

    # -- reading ---------------------------------------------------------------------------

    def state(self, state_id: str) -> DerivedState:
        """The file against the given committed state."""
        from ragkeep.models import DerivedState

        stamp = self._stamp()
        if stamp is None or not self.path.exists():
            return DerivedState.MISSING if not self.stamp_path.exists() else DerivedState.DAMAGED
        if stamp.model_id != self.model_id or stamp.dimension != self.dimension:
            return DerivedState.STALE
        try:
            data = self.path.read_bytes()
        except OSError:
            return DerivedState.DAMAGED
        if hashlib.sha256(data).hexdigest() != stamp.sha256:
            return DerivedState.DAMAGED
        return DerivedState.FRESH if stamp.state_id == state_id else DerivedState.STALE

    def get(self, state_id: str, wait_s: float | None = None) -> Any | None:
        """The index for exactly this committed state, or None (then search exactly).

        TimeoutError when another thread has been reading the file for more than `wait_s`.
        """
        if not self._lock.acquire(timeout=-1 if wait_s is None else wait_s):
            raise TimeoutError(f"{self.path} is being loaded by another thread")
        try:
            return self._get(state_id)
        finally:
            self._lock.release()

    def _get(self, state_id: str) -> Any | None:
        if self._loaded is not None and self._loaded.state_id == state_id:
            return self._loaded.index
        self._loaded = None
        stamp = self._stamp()
        if stamp is None or stamp.state_id != state_id or stamp.model_id != self.model_id:
            return None
        try:
            data = self.path.read_bytes()  # one read: hash and load the same bytes
        except OSError:
            return None
        if hashlib.sha256(data).hexdigest() != stamp.sha256:
            log.warning("ANN index %s is damaged; using exact search", self.path)
            return None
        index = _usearch_index().restore(data)
        if index is None or len(index) != stamp.count:
            return None
        self._loaded = _Loaded(state_id, index)
        return index

    def search(self, index: Any, query: npt.NDArray[np.float32], n: int) -> list[tuple[int, float]]:
        matches = index.search(query, min(n, len(index)))
        # usearch's inner-product distance is 1 - dot: turn it back into a similarity.
        return [
            (int(k), float(1.0 - d)) for k, d in zip(matches.keys, matches.distances, strict=True)
        ]

    def _stamp(self) -> AnnStamp | None:
        try:
            return AnnStamp(**json.loads(self.stamp_path.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    # -- building --------------------------------------------------------------------------

    def build(
        self, ids: npt.NDArray[np.int64], vectors: npt.NDArray[np.float32], state_id: str
    ) -> None:
        """Write the index for `state_id` atomically: temp file, fsync, rename, stamp last."""
        with warn_if_slow(log, f"building {self.path}", self._slow_s):
            self._build(ids, vectors, state_id)

    def _build(
        self, ids: npt.NDArray[np.int64], vectors: npt.NDArray[np.float32], state_id: str
    ) -> None:
        index = _usearch_index()(ndim=self.dimension, metric="ip", dtype="f16")
        if len(ids):
            index.add(ids, vectors)
        self.dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".ann-", suffix=".tmp")
        os.close(fd)
        try:
            index.save(tmp)
            data = Path(tmp).read_bytes()
            _fsync(tmp)
            stamp = AnnStamp(state_id, self.model_id, self.dimension, len(ids),
                             hashlib.sha256(data).hexdigest())  # fmt: skip
            os.replace(tmp, self.path)
            # The stamp is written last: a crash before this leaves a stamp that does not
            # match the file, which reads as "damaged" and is rebuilt.
            _atomic_write(self.stamp_path, json.dumps(asdict(stamp)))
            _fsync(self.dir)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    @staticmethod
    def load_library() -> None:
        """Import usearch now, on the calling thread: the first import of a native module on
        the background build thread has crashed the process before (seen with onnxruntime)."""
        _usearch_index()

    def rebuild_in_background(
        self, load: Callable[[], tuple[npt.NDArray[np.int64], npt.NDArray[np.float32], str]]
    ) -> None:
        """Start one rebuild thread unless one is running; searches do not wait for it."""
        with self._build_lock:
            if self._building is not None and self._building.is_alive():
                return
            self._building = threading.Thread(
                target=self._rebuild, args=(load,), name="ragkeep-ann-build", daemon=True
            )
            self._building.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a running build; False if it is still running after `timeout`."""
        building = self._building
        if building is None:
            return True
        building.join(timeout)
        return not building.is_alive()

    def _rebuild(
        self, load: Callable[[], tuple[npt.NDArray[np.int64], npt.NDArray[np.float32], str]]
    ) -> None:
        try:
            ids, vectors, state_id = load()
            self.build(ids, vectors, state_id)
        except OSError as exc:  # e.g. a full disk: say so plainly, no traceback
            log.warning("%s", derived_write_failed(exc, self.path, "searches are exact"))
        except Exception:  # exact search keeps serving; the next stale search retries
            log.exception("rebuilding the ANN index failed")

    def delete(self) -> None:
        for path in (self.stamp_path, self.path):
            path.unlink(missing_ok=True)
        # No lock, so doctor never waits for a search reading the file: a load that lands
        # after this is keyed by the state it was verified for, so it is still right.
        self._loaded = None


def _usearch_index() -> type[Index]:
    """usearch's Index class, imported on first use: usearch is an optional extra
    (`ragkeep[ann]`), so only building or loading an index may need it."""
    # Import order matters: importing usearch before onnxruntime makes the later
    # onnxruntime import crash the process (usearch 2.26, onnxruntime 1.32). Import both
    # here, in that order, before anything can import onnxruntime lazily.
    import onnxruntime  # noqa: F401
    from usearch.index import Index

    return Index


def _atomic_write(path: Path, text: str) -> None:
    # A temp name of its own: two builders (two processes, or a build abandoned by a closed
    # index and a new one) must never write into the same temp file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _fsync(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
