"""The read path: lexical and dense retrieval over one snapshot, fused into ranked hits.

Everything here is backend-neutral: the store's snapshot provides the retrievers, and this
module adds what must be the same on every backend — query terms, fusion, the order of equal
scores, collapsing, and the result and query-embedding caches.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ragkeep.cache.results import EmbeddingCache, ResultCache, normalize_query
from ragkeep.config.settings import SearchSettings
from ragkeep.embed.base import EmbedderUnavailableError
from ragkeep.models import LexicalQuery, SearchHit, SearchMode, SearchResults
from ragkeep.models.degradation import Degradation, Part
from ragkeep.observability.logs import log_event, sampled
from ragkeep.resilience import FALLBACKS
from ragkeep.search import fusion, ordering
from ragkeep.search.query_vector import QueryEmbedder
from ragkeep.search.terms import lexical_query, term_words
from ragkeep.store.base import Ranking, ReadSnapshot, Store

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

log = logging.getLogger(__name__)


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
        store: Store,
        embedder: QueryEmbedder,
        settings: SearchSettings,
        *,
        results: ResultCache | None = None,
        embeddings: EmbeddingCache | None = None,
        caching: Callable[[], bool] = lambda: True,
        max_terms: int = 50_000,
    ) -> None:
        """`caching` is read on every search (the caching flag can switch at any time): off,
        both caches are bypassed."""
        self._store = store
        self.query_embedder = embedder
        self._settings = settings
        self.results = results
        self.embeddings = embeddings
        self._caching = caching
        self._df_lock = threading.Lock()
        self._df: dict[str, int] = {}
        self._df_total = 0
        self._df_generation = -1
        self._df_max = max_terms  # distinct query terms remembered between commits

    def search(self, req: SearchRequest) -> SearchResults:
        """The hits; a hybrid search whose embedder failed answers from BM25 alone and says
        so in `degraded`. Raises EmbedderUnavailableError for a dense search then."""
        # Below INFO (the default) a search pays one level check, not even a call to sampled().
        if not log.isEnabledFor(logging.INFO) or not sampled(log):
            return self._cached_or_search(req)[0]
        started = time.perf_counter()
        results, cached = self._cached_or_search(req)
        # Never the query text: it may be private.
        log_event(
            log,
            "search",
            {
                "mode": req.mode.value,
                "k": req.k,
                "hits": len(results.hits),
                "cached": cached,
                "ms": round((time.perf_counter() - started) * 1000, 3),
                "degraded": [d.part.value for d in results.degraded],
            },
        )
        return results

    def _cached_or_search(self, req: SearchRequest) -> tuple[SearchResults, bool]:
        """The results, and whether they came from the result cache."""
        n = max(req.candidates or self._settings.candidates, req.k)
        cache = self.results if self._caching() else None
        key: str | None = None
        epoch = 0
        with self._store.snapshot() as snap:
            generation = snap.generation
            if cache is not None:
                epoch = cache.epoch  # before the key: see ResultCache.changing_settings
                key = cache.key(
                    {
                        "query": normalize_query(req.query),
                        "mode": req.mode.value,
                        "k": req.k,
                        "collapse": req.collapse,
                        "candidates": n,
                    },
                    generation,
                )
                cached = cache.get(snap, key, generation)
                if cached is not None:
                    return SearchResults(tuple(cached)), True
            results, final = self._search(snap, req, n)
        # A stand-in (BM25 for a failed embedder, exact search while a derived index is
        # rebuilt) must not be served from the cache once the real answer is possible; nor
        # a result found while the dense index was being switched (flag ann_index).
        fresh = cache is not None and cache.unchanged_since(epoch)
        if key is not None and cache is not None and fresh and final and not results.degraded:
            cache.put(key, generation, list(results.hits))
        return results, False

    def _search(self, snap: ReadSnapshot, req: SearchRequest, n: int) -> tuple[SearchResults, bool]:
        """The hits, and whether they are the final answer for this generation (not an
        exact-search stand-in while a derived index is being rebuilt)."""
        # Embedding the query on a worker thread while the lexical query ran was measured
        # no faster on 2 cores (both are CPU-bound), so the two simply run one after the other.
        qvec = None
        degraded: tuple[Degradation, ...] = ()
        if req.mode is not SearchMode.BM25:
            try:
                qvec = self._query_vector(req.query)
            except EmbedderUnavailableError as exc:
                if req.mode is SearchMode.DENSE:
                    raise
                degraded = (Degradation(Part.EMBEDDER, "bm25", str(exc)),)
                FALLBACKS.record(Part.EMBEDDER)
        lists: list[Ranking] = []
        whole: Ranking = []
        query = lexical_query(req.query, self._settings.bm25_stopwords)
        if req.mode is not SearchMode.DENSE:
            if qvec is not None and self._settings.bm25_max_df < 1.0:
                query = self._rare_terms(snap, query)  # dense weighs the common ones
            whole = _whole_terms(snap, query, n)
            lists.append(self._untie(snap, _first(snap.lexical.search(query, n), whole), n))
        final = True
        if qvec is not None:
            dense = snap.dense.search(qvec, n)
            lists.append(self._untie(snap, _holding(snap, query, dense.ranking), n))
            final = dense.final
        if len(lists) == 2:
            ranked = self._fuse(lists)
            if whole:  # the exact terms' tier holds in the fused order too
                held = {cid for cid, _ in whole}
                ranked = _first(ranked, [r for r in ranked if r[0] in held])
        else:
            ranked = lists[0]
        # Collapsing may skip chunks, so then the whole fused list must be in final order.
        ranked = self._untie(snap, ranked, len(ranked) if req.collapse else req.k)
        return SearchResults(tuple(self._hits(snap, ranked, req)), degraded), final

    @staticmethod
    def _untie(snap: ReadSnapshot, ranking: Ranking, n: int) -> Ranking:
        return ordering.untie(ranking, n, snap.order_keys)

    def _rare_terms(self, snap: ReadSnapshot, query: LexicalQuery) -> LexicalQuery:
        """Drop single words found in more than bm25_max_df of all chunks (unless nothing
        would remain): the lexical index must score every chunk a word matches, and such
        words barely change the order once dense retrieval is fused in. Phrases stay."""
        words = [p[0] for p in query.scored if len(p) == 1]
        with self._df_lock:
            if self._df_generation != snap.generation:
                self._df = {}
                self._df_total = snap.chunk_count()
                self._df_generation = snap.generation
            limit = max(
                int(self._settings.bm25_max_df * self._df_total),
                self._settings.bm25_common_min_chunks,
            )
            if len(self._df) + len(words) > self._df_max:
                # Distinct terms are unbounded in a long-running server; counting again is
                # cheap (it stops past the limit), so start over rather than keep an LRU.
                self._df = {}
            for w in words:
                if w not in self._df:
                    # Counting stops past the limit: a common word costs no more than a rare one.
                    self._df[w] = snap.lexical.term_chunks(w, at_most=limit + 1)
            common = {w for w in words if self._df[w] > limit}
        kept = tuple(p for p in query.scored if len(p) > 1 or p[0] not in common)
        return replace(query, scored=kept) if kept else query

    def _query_vector(self, query: str) -> npt.NDArray[np.float32]:
        if self.embeddings is None or not self._caching():
            return self.query_embedder.vector(query)
        return self.embeddings.get_or_compute(query, self.query_embedder.vector)

    def _fuse(self, lists: list[Ranking]) -> Ranking:
        if self._settings.fusion == "score":
            return fusion.normalized_score(lists[0], lists[1], self._settings.dense_weight)
        return fusion.reciprocal_rank(lists, self._settings.rrf_k)

    def _hits(self, snap: ReadSnapshot, ranked: Ranking, req: SearchRequest) -> list[SearchHit]:
        rows = snap.chunk_rows([cid for cid, _ in ranked])
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


def _whole_terms(snap: ReadSnapshot, query: LexicalQuery, n: int) -> Ranking:
    """The best chunks holding one of the query's technical terms verbatim. The index
    ignores punctuation, so a phrase match ("...the rebase. Merges...") is checked against
    the chunk's text."""
    whole: dict[int, float] = {}
    for term in query.exact:
        narrowed = replace(query, required=(*query.required, term_words(term)))
        found = snap.lexical.search(narrowed, n)
        rows = snap.chunk_rows([cid for cid, _ in found])
        for cid, score in found:
            if cid in rows and term in rows[cid].text.casefold():
                whole[cid] = max(score, whole.get(cid, score))
    return sorted(whole.items(), key=lambda r: (-r[1], r[0]))


def _holding(snap: ReadSnapshot, query: LexicalQuery, ranking: Ranking) -> Ranking:
    """The dense ranking without the chunks that miss a quoted phrase: the user's quoted
    phrases bind every mode."""
    if not query.required:
        return ranking
    held = snap.lexical.holding(query.required, [cid for cid, _ in ranking])
    return [(cid, score) for cid, score in ranking if cid in held]


def _first(ranking: Ranking, first: Ranking) -> Ranking:
    """`first`, then the rest of `ranking`, each in its order. A user typing an exact term
    wants the chunks holding it above those holding only its words, however often. Scores
    of `first` are raised only as far as needed to stay monotonic, so fusion sees the order."""
    if not first:
        return ranking
    ids = {cid for cid, _ in first}
    rest = [r for r in ranking if r[0] not in ids]
    gap = rest[0][1] - first[-1][1] if rest else -1.0
    shift = gap + 1e-6 if gap >= 0 else 0.0
    return [(cid, score + shift) for cid, score in first] + rest
