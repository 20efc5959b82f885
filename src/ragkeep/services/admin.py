"""Administration: status, the document list, doctor, and the caches."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ragkeep.cache.results import Caches
from ragkeep.embed.base import Embedder
from ragkeep.models import CacheReport, ResilienceReport, StoreStatus
from ragkeep.store.base import Store

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from ragkeep.models import DoctorReport, DocumentContent, DocumentInfo
    from ragkeep.store.records import ChunkRow


class AdminService:
    def __init__(
        self,
        store: Store,
        caches: Caches | None,
        embedder: Callable[[], Embedder],
        resilience: Callable[[], ResilienceReport],
        snapshot: Callable[[str, bool], str | None] | None = None,
    ) -> None:
        self._store = store
        self._snapshot = snapshot
        self._caches = caches
        self._embedder = embedder
        self._resilience = resilience

    def status(self) -> StoreStatus:
        from ragkeep.embed.registry import embedding_stats

        counts = self._store.counts()
        return StoreStatus(
            documents=counts.documents,
            chunks=counts.chunks,
            sources=self.sources(),
            model_id=self._store.model_id,
            dimension=self._store.dimension,
            generation=counts.generation,
            schema_version=self._store.schema_version(),
            database_path=self._store.location,
            database_bytes=self._store.size_bytes(),
            unreferenced_vectors=self._store.unreferenced_vectors(),
            cache=self.cache_stats(),
            resilience=self._resilience(),
            embedding=embedding_stats(),
        )

    def sources(self) -> list[str]:
        """The registered source paths."""
        return self._store.sources()

    def documents(self) -> list[DocumentInfo]:
        return self._store.document_infos()

    def document(self, path: str) -> DocumentContent | None:
        """An indexed document's passages in order, or None when `path` is not indexed.

        `path` as stored first: documents indexed from text have labels, not file paths."""
        from ragkeep.ingest.paths import absolute

        with self._store.snapshot() as snap:
            rows = snap.document_chunks(path)
            if not rows and absolute(path) != path:
                rows = snap.document_chunks(absolute(path))
        return _content(rows) if rows else None

    def document_by_id(self, doc_id: int) -> DocumentContent | None:
        """The document with this id (as search hits and citations name it), or None."""
        info = next((d for d in self._store.document_infos() if d.doc_id == doc_id), None)
        return self.document(info.path) if info is not None else None

    def doctor(self, repair: bool = False) -> DoctorReport:
        """Check that the index is consistent; with `repair`, rebuild what is derived,
        after a snapshot of the index as it was (`rollback` returns to it)."""
        from ragkeep.models import DoctorReport

        with self._store.writer_lock(None):
            report = DoctorReport(self._store.check(False, self._embed))
            if not repair or report.ok:
                return report
            snapshot = self._snapshot_before_repair()
            report = DoctorReport(self._store.check(True, self._embed))
            report.snapshot = snapshot
            return report

    def _snapshot_before_repair(self) -> str | None:
        """A damaged file may not copy whole: the repair goes on without a snapshot."""
        from ragkeep.store.base import StoreError

        if self._snapshot is None:
            return None
        try:
            return self._snapshot("before doctor --repair", False)
        except StoreError as exc:  # BackupError too
            log.warning("no snapshot before the repair: %s", exc)
            return None

    def cache_stats(self) -> CacheReport:
        """Hits, misses, evictions and expirations per tier, summed over every process."""
        return self._caches.report() if self._caches else CacheReport(enabled=False)

    def clear_cache(self) -> int:
        """Empty the result cache (every process's shared tier) and reset its statistics."""
        return self._caches.clear() if self._caches else 0

    def _embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        return self._embedder().embed(texts)


def _content(rows: Sequence[ChunkRow]) -> DocumentContent:
    from ragkeep.models import DocumentChunk, DocumentContent

    first = rows[0]
    chunks = tuple(DocumentChunk(r.id, r.page, r.start, r.end, r.text) for r in rows)
    return DocumentContent(first.doc_id, first.path, first.title, chunks)
