"""The read path: BM25 and dense retrieval over one snapshot, fused into ranked hits."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ragkeep.cache.results import EmbeddingCache, ResultCache, normalize_query
from ragkeep.config.settings import SearchSettings
from ragkeep.embed.base import Embedder
from ragkeep.models import SearchHit, SearchMode
from ragkeep.search import dense, fusion, ordering
from ragkeep.search.ann import AnnIndex
from ragkeep.search.bm25 import match_expression, query_terms
from ragkeep.search.vector_file import VectorFile
from ragkeep.store.records import VectorTable
from ragkeep.store.sqlite import SqliteStore, generation_of, state_id_of

if TYPE_CHECKING:
    import sqlite3

    import numpy as np
    import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class _Matrix:
    generation: int
    table: VectorTable


@dataclass(frozen=True, slots=True)
class SearchRequest:
    query: str
    k: int
    mode: SearchMode
    collapse: bool = False  # at most one chunk per document
    candidates: int | None = None  # per retriever; default from settings


class Searcher:
    def __init__(
        self,
        store: SqliteStore,
        embedder: Callable[[], Embedder],
        settings: SearchSettings,
        *,
        results: ResultCache | None = None,
        embeddings: EmbeddingCache | None = None,
        ann: AnnIndex | None = None,
        vector_file: VectorFile | None = None,
    ) -> None:
        self._store = store
        self._embedder = embedder
        self._settings = settings
        self.results = results
        self.embeddings = embeddings
        self.ann = ann
        self.vector_file = vector_file
        self._matrix: _Matrix | None = None
        self._matrix_lock = threading.Lock()
        self._df_lock = threading.Lock()
        self._df: dict[str, int] = {}
        self._df_total = 0
        self._df_generation = -1

    def search(self, req: SearchRequest) -> list[SearchHit]:
        n = max(req.candidates or self._settings.candidates, req.k)
        key: str | None = None
        with self._store.read() as c:
            generation = generation_of(c)
            if self.results is not None:
                key = self.results.key(
                    {
                        "query": normalize_query(req.query),
                        "mode": req.mode.value,
                        "k": req.k,
                        "collapse": req.collapse,
                        "candidates": n,
                    },
                    generation,
                )
                cached = self.results.get(c, key, generation)
                if cached is not None:
                    return cached
            hits, cacheable = self._search(c, req, n, generation)
        if key is not None and self.results is not None and cacheable:
            self.results.put(key, generation, hits)
        return hits

    def _search(
        self, c: sqlite3.Connection, req: SearchRequest, n: int, generation: int
    ) -> tuple[list[SearchHit], bool]:
        """The hits, and whether they are the final answer for this generation (not an
        exact-search stand-in while the ANN index is being rebuilt)."""
        # Embedding the query on a worker thread while SQLite ran the BM25 query was measured
        # no faster on 2 cores (both are CPU-bound), so the two simply run one after the other.
        qvec = None
        if req.mode is not SearchMode.BM25:
            qvec = self._query_vector(self._embedder(), req.query)
        lists: list[list[tuple[int, float]]] = []
        if req.mode is not SearchMode.DENSE:
            terms = query_terms(req.query, self._settings.bm25_stopwords)
            if req.mode is SearchMode.HYBRID and self._settings.bm25_max_df < 1.0:
                terms = self._rare_terms(c, generation, terms)
            match = match_expression(terms)
            lists.append(self._bm25(c, match, n) if match else [])
        final = True
        if qvec is not None:
            ranking, final = self._dense(c, generation, qvec, n)
            lists.append(ranking)
        ranked = self._fuse(lists) if len(lists) == 2 else lists[0]
        # Collapsing may skip chunks, so then the whole fused list must be in final order.
        ranked = self._untie(c, ranked, len(ranked) if req.collapse else req.k)
        return self._hits(c, ranked, req), final

    def _bm25(self, c: sqlite3.Connection, match: str, n: int) -> list[tuple[int, float]]:
        ranking = self._store.bm25(c, match, n + 1)
        if ordering.ties_cross(ranking, n):
            # Chunks tie at the cut-off: fetch every one of them so the cut is by location.
            ranking = self._store.bm25(c, match, n, at_least=ranking[n][1])
        return self._untie(c, ranking, n)

    def _untie(
        self, c: sqlite3.Connection, ranking: list[tuple[int, float]], n: int
    ) -> list[tuple[int, float]]:
        return ordering.untie(ranking, n, lambda ids: self._store.chunk_order_keys(c, ids))

    def _dense(
        self, c: sqlite3.Connection, generation: int, qvec: npt.NDArray[np.float32], n: int
    ) -> tuple[list[tuple[int, float]], bool]:
        final = True
        if self.ann is not None:
            index = self.ann.get(state_id_of(c))
            if index is not None:
                return self.ann.search(index, qvec, n), True
            chunks = int(c.execute("SELECT count(*) FROM chunks").fetchone()[0])
            if chunks >= self._settings.ann_min_vectors:
                # Stale, damaged or missing: answer exactly now, rebuild in the background.
                self.ann.rebuild_in_background(self._snapshot_vectors)
                final = False
        ranking = dense.top_n(self._matrix_for(c, generation).table, qvec, n)
        return self._untie(c, ranking, n), final

    def _snapshot_vectors(
        self,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32], str]:
        with self._store.read() as c:
            table = self._store.load_vectors(c)
            return table.ids, table.per_chunk(), state_id_of(c)

    def _rare_terms(self, c: sqlite3.Connection, generation: int, terms: list[str]) -> list[str]:
        """Drop terms found in more than bm25_max_df of all chunks (unless none would remain):
        FTS5 must score every chunk a term matches, and such terms barely change the order
        once dense retrieval is fused in."""
        with self._df_lock:
            if self._df_generation != generation:
                self._df = {}
                self._df_total = int(c.execute("SELECT count(*) FROM chunks").fetchone()[0])
                self._df_generation = generation
            limit = int(self._settings.bm25_max_df * self._df_total)
            for t in terms:
                if t not in self._df:
                    # Counting stops past the limit: a common word costs no more than a rare one.
                    self._df[t] = self._store.term_chunks(c, t, at_most=limit + 1)
            return [t for t in terms if self._df[t] <= limit] or terms

    def _query_vector(self, embedder: Embedder, query: str) -> npt.NDArray[np.float32]:
        if self.embeddings is None:
            return _first_row(embedder, query)
        return self.embeddings.get_or_compute(query, lambda q: _first_row(embedder, q))

    def close(self) -> None:
        if self.ann is not None:
            self.ann.wait()

    def _fuse(self, lists: list[list[tuple[int, float]]]) -> list[tuple[int, float]]:
        if self._settings.fusion == "score":
            return fusion.normalized_score(lists[0], lists[1], self._settings.dense_weight)
        return fusion.reciprocal_rank(lists, self._settings.rrf_k)

    def _hits(
        self, c: sqlite3.Connection, ranked: list[tuple[int, float]], req: SearchRequest
    ) -> list[SearchHit]:
        rows = self._store.chunk_rows(c, [cid for cid, _ in ranked])
        hits: list[SearchHit] = []
        seen_docs: set[int] = set()
        for cid, score in ranked:
            row = rows.get(cid)
            if row is None or (req.collapse and row.doc_id in seen_docs):
                continue
            seen_docs.add(row.doc_id)
            hits.append(
                SearchHit(
                    rank=len(hits) + 1,
                    score=round(score, 6),
                    doc_id=row.doc_id,
                    path=row.path,
                    title=row.title,
                    chunk_id=row.id,
                    text=row.text,
                    start=row.start,
                    end=row.end,
                    page=row.page,
                )
            )
            if len(hits) == req.k:
                break
        return hits

    def _matrix_for(self, c: sqlite3.Connection, gen: int) -> _Matrix:
        """The vectors of the snapshot `c` sees, reloaded only when the generation moved:
        from the derived vector file when it was made from exactly this snapshot, else
        from SQLite (and then the file is rewritten for the next process)."""
        with self._matrix_lock:
            if self._matrix is None or self._matrix.generation != gen:
                first = self._matrix is None
                self._matrix = _Matrix(gen, self._load_vectors(c, gen, first))
            return self._matrix

    def _load_vectors(self, c: sqlite3.Connection, gen: int, first: bool) -> VectorTable:
        if self.vector_file is None:
            return self._store.load_vectors(c)
        state = state_id_of(c)
        table = self.vector_file.load(state)
        if table is None:
            table = self._store.load_vectors(c)
            # The file is for the next new process. A long-running one (watch, a server,
            # searches during an ingest) writes it once, not after every commit it sees.
            if first:
                self.vector_file.save(table, state, gen)
        return table


def _first_row(embedder: Embedder, query: str) -> npt.NDArray[np.float32]:
    row: npt.NDArray[np.float32] = embedder.embed([query])[0]
    return row
