"""Administration: status, the document list, doctor, and the caches."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ragkeep.embed.base import Embedder
from ragkeep.models import CacheReport, DoctorReport, DocumentInfo, StoreStatus
from ragkeep.search.engine import Searcher
from ragkeep.store.base import Store

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


class AdminService:
    def __init__(self, store: Store, searcher: Searcher, embedder: Callable[[], Embedder]) -> None:
        self._store = store
        self._searcher = searcher
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

    def doctor(self, repair: bool = False) -> DoctorReport:
        """Check that the index is consistent; with `repair`, rebuild what is derived."""
        with self._store.writer_lock(None):
            return DoctorReport(self._store.check(repair, self._embed))

    def cache_stats(self) -> CacheReport:
        """Hits, misses, evictions and expirations per tier, summed over every process."""
        results, embeddings = self._searcher.results, self._searcher.embeddings
        if results is None or embeddings is None:
            return CacheReport(enabled=False)
        entries, size = results.persistent.entries()
        totals = results.totals()
        return CacheReport(
            enabled=True,
            memory=totals["memory"],
            persistent=totals["persistent"],
            embeddings=embeddings.lru.stats.frozen(),
            persistent_entries=entries,
            persistent_bytes=size,
            memory_entries=len(results.memory),
            memory_bytes=results.memory.bytes_used,
        )

    def clear_cache(self) -> int:
        """Empty the result cache (every process's shared tier) and reset its statistics."""
        results = self._searcher.results
        if results is None:
            return 0
        removed = results.clear()
        results.reset_stats()
        if self._searcher.embeddings is not None:
            self._searcher.embeddings.lru.clear()
        return removed

    def _embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        return self._embedder().embed(texts)
