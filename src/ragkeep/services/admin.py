"""Administration: status, the document list, doctor, and the caches."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ragkeep.cache.results import Caches
from ragkeep.embed.base import Embedder
from ragkeep.models import CacheReport, StoreStatus
from ragkeep.store.base import Store

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from ragkeep.models import DoctorReport, DocumentInfo
    from ragkeep.store.records import ChunkRow


@dataclass(frozen=True, slots=True)
class DocumentDetail:
    """One indexed document and its chunks, in order."""

    info: DocumentInfo
    chunks: tuple[ChunkRow, ...]


class AdminService:
    def __init__(
        self, store: Store, caches: Caches | None, embedder: Callable[[], Embedder]
    ) -> None:
        self._store = store
        self._caches = caches
        self._embedder = embedder

    def status(self) -> StoreStatus:
        counts = self._store.counts()
        return StoreStatus(
            documents=counts.documents,
            chunks=counts.chunks,
            sources=self._store.sources(),
            model_id=self._store.model_id,
            dimension=self._store.dimension,
            generation=counts.generation,
            schema_version=self._store.schema_version(),
            database_path=self._store.location,
            database_bytes=self._store.size_bytes(),
            cache=self.cache_stats(),
        )

    def documents(self) -> list[DocumentInfo]:
        return self._store.document_infos()

    def document(self, doc_id: int) -> DocumentDetail | None:
        """The document with this id and its chunks, from one snapshot; None if unknown."""
        with self._store.snapshot() as snap:
            info = next((d for d in self._store.document_infos() if d.doc_id == doc_id), None)
            if info is None:
                return None
            return DocumentDetail(info, tuple(snap.document_chunks(info.path)))

    def doctor(self, repair: bool = False) -> DoctorReport:
        """Check that the index is consistent; with `repair`, rebuild what is derived."""
        from ragkeep.models import DoctorReport

        with self._store.writer_lock(None):
            return DoctorReport(self._store.check(repair, self._embed))

    def cache_stats(self) -> CacheReport:
        """Hits, misses, evictions and expirations per tier, summed over every process."""
        return self._caches.report() if self._caches else CacheReport(enabled=False)

    def clear_cache(self) -> int:
        """Empty the result cache (every process's shared tier) and reset its statistics."""
        return self._caches.clear() if self._caches else 0

    def _embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        return self._embedder().embed(texts)
