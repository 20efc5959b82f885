"""Querying: search, and answers with citations, whole (`ask`) or as events (`ask_stream`).

Both keep answering when a part fails: a failed embedder leaves BM25 (search/engine.py), a
failed LLM leaves the passages, and the LLM's circuit breaker stops paying for an LLM that
keeps failing (docs/degradation.md).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

from ragkeep.config.settings import LLMSettings, Settings
from ragkeep.embed.base import EmbedderUnavailableError
from ragkeep.models import SearchMode
from ragkeep.models.degradation import Degradation, Part, ResilienceReport
from ragkeep.observability.logs import log_event, sampled
from ragkeep.resilience import FALLBACKS, CircuitBreaker
from ragkeep.search.engine import Searcher, SearchRequest
from ragkeep.services.flags import FlagService

if TYPE_CHECKING:
    from ragkeep.answer.llm import LLMClient
    from ragkeep.models import Answer, AskEvent, RetryEvent, SearchHit, SearchResults
    from ragkeep.observability.metrics import Metrics, OperationMetrics

log = logging.getLogger(__name__)


class QueryService:
    def __init__(
        self,
        searcher: Searcher,
        settings: Settings,
        flags: FlagService,
        llm_breaker: CircuitBreaker,
        metrics: Metrics | None = None,
    ) -> None:
        self._searcher = searcher
        self._searches = metrics.search if metrics is not None else None
        self._asks = metrics.ask if metrics is not None else None
        self._settings = settings
        self._flags = flags
        self._client: LLMClient | None = None
        self._client_lock = threading.Lock()
        self.llm_breaker = llm_breaker
        self._slow_query_s = settings.resources.slow_query_s

    def search(
        self,
        query: str,
        k: int | None = None,
        mode: SearchMode | str | None = None,
        *,
        collapse: bool | None = None,
        candidates: int | None = None,
    ) -> SearchResults:
        """The best hits, a sequence; `degraded` says when BM25 answered for a failed
        embedder. A dense search then raises EmbedderUnavailableError."""
        return self._search(self._request(query, k, mode, collapse, candidates), self._searches)

    def _request(
        self,
        query: str,
        k: int | None,
        mode: SearchMode | str | None,
        collapse: bool | None = None,
        candidates: int | None = None,
    ) -> SearchRequest:
        return SearchRequest(
            query=query,
            k=k or self._settings.search.k,
            mode=SearchMode(mode or self._settings.search.mode),
            collapse=self._flags.enabled("collapse_documents") if collapse is None else collapse,
            candidates=candidates,
        )

    def _search(self, request: SearchRequest, observed: OperationMetrics | None) -> SearchResults:
        # Timed inline, not with warn_if_slow: a cached search takes ~60 µs, and a context
        # manager plus formatting its label on every call measured +20% (the perf gate).
        started = time.perf_counter()
        try:
            results = self._searcher.search(request)
        except Exception:
            if observed is not None:
                observed.failed(time.perf_counter() - started)
            raise
        elapsed = time.perf_counter() - started
        if observed is not None:
            observed.observe(elapsed)
        if elapsed > self._slow_query_s:
            # The query text stays out of the log: it may be private.
            log.warning(
                "slow: a %s search took %.2f s (threshold %g s)",
                request.mode.value,
                elapsed,
                self._slow_query_s,
            )
        return results

    def ask_stream(self, question: str, k: int | None = None) -> Generator[AskEvent, None, None]:
        """The answer as events: the passages, then the LLM's tokens as they arrive, any
        notice (no LLM, or it failed), the citations, and last the finished Answer.
        Raises ValueError (on first iteration) when the LLM settings cannot be used."""
        from ragkeep.models import DoneEvent

        started = time.perf_counter()
        try:
            for event in self._ask_events(question, k or self._settings.llm.ask_k):
                # Counted when the answer is done: a consumer may stop right after it.
                if isinstance(event, DoneEvent):
                    self._answered(event.answer, time.perf_counter() - started)
                yield event
        except Exception:
            if self._asks is not None:
                self._asks.failed(time.perf_counter() - started)
            raise

    def _answered(self, answer: Answer, seconds: float) -> None:
        if self._asks is not None:
            self._asks.observe(seconds)
        if sampled(log):
            # Never the question: it may be private.
            log_event(
                log,
                "ask",
                {
                    "mode": answer.mode.value,
                    "passages": len(answer.citations),
                    "ms": round(seconds * 1000, 3),
                    "degraded": [d.part.value for d in answer.degraded],
                },
            )

    def _ask_events(self, question: str, k: int) -> Iterator[AskEvent]:
        from ragkeep.models import NoticeEvent, PassagesEvent

        results = self._passages_for(question, k)
        yield PassagesEvent(results.hits)
        for degradation in results.degraded:
            yield NoticeEvent(f"The {degradation.message()}.")
        yield from self._answer(question, results)

    def ask(
        self,
        question: str,
        k: int | None = None,
        on_token: Callable[[str], None] | None = None,
        on_retry: Callable[[RetryEvent], None] | None = None,
    ) -> Answer:
        """Answer from the best passages, with the LLM when one is configured and reachable.
        ``on_retry`` hears of each LLM retry as it begins (the wait is about to be long)."""
        from ragkeep.answer.service import consume

        return consume(self.ask_stream(question, k), on_token, on_retry)

    def resilience(self) -> ResilienceReport:
        breakers = (self._searcher.query_embedder.breaker.status(), self.llm_breaker.status())
        return ResilienceReport(breakers, FALLBACKS.counts())

    def close(self) -> None:
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def _passages_for(self, question: str, k: int) -> SearchResults:
        """The search an answer is grounded in, down to the relevance floor."""
        results = self._search_for_answer(question, k)
        floor = self._settings.llm.ask_min_score_ratio * (results.hits[0].score if results else 0)
        if floor <= 0:
            return results
        return replace(results, hits=tuple(h for h in results.hits if h.score >= floor))

    def _search_for_answer(self, question: str, k: int) -> SearchResults:
        """An answer needs passages more than it needs dense retrieval, so a dense-only
        default falls back to BM25 too."""
        # Not counted as searches: the ask is the request (and is counted).
        try:
            return self._search(self._request(question, k, None), None)
        except EmbedderUnavailableError as exc:
            FALLBACKS.record(Part.EMBEDDER)
            results = self._search(self._request(question, k, SearchMode.BM25), None)
            return replace(results, degraded=(Degradation(Part.EMBEDDER, "bm25", str(exc)),))

    def _answer(self, question: str, results: SearchResults) -> Iterator[AskEvent]:
        from ragkeep.answer.service import answer_events
        from ragkeep.models import DoneEvent

        client = self._llm()
        hits: tuple[SearchHit, ...] = results.hits
        if client is None or not hits:
            yield from answer_events(question, hits, client, degraded=results.degraded)
            return
        if not self.llm_breaker.allow():
            reason = self.llm_breaker.describe_open()
            FALLBACKS.record(Part.LLM)
            yield from answer_events(
                question,
                hits,
                None,
                no_llm_notice=f"LLM skipped: {reason}; showing the most relevant passages.",
                degraded=(*results.degraded, Degradation(Part.LLM, "passages", reason)),
            )
            return
        answer: Answer | None = None
        try:
            for event in answer_events(question, hits, client, degraded=results.degraded):
                if isinstance(event, DoneEvent):
                    answer = event.answer
                yield event
        finally:
            self._judge(answer)

    def _judge(self, answer: Answer | None) -> None:
        """Tell the LLM's breaker how its call went (no verdict when the caller left)."""
        if answer is None:
            self.llm_breaker.abandon()
            return
        failed = [d for d in answer.degraded if d.part is Part.LLM]
        if failed:
            FALLBACKS.record(Part.LLM)
            self.llm_breaker.failure(failed[0].reason)
        else:
            self.llm_breaker.success()

    def _llm(self) -> LLMClient | None:
        """One client for the life of the service: its connections are reused across asks."""
        llm = self._settings.llm
        if llm.provider == "none":
            return None
        with self._client_lock:
            if self._client is None:
                self._client = _make_client(llm)
            return self._client


def _make_client(llm: LLMSettings) -> LLMClient:
    from ragkeep.answer.llm import make_client

    return make_client(
        llm.provider,
        llm.url,
        llm.model,
        api_key=llm.api_key.get_secret_value() if llm.api_key else None,
        timeout_s=llm.timeout_s,
        connect_timeout_s=llm.connect_timeout_s,
        max_retries=llm.max_retries,
        backoff_s=llm.backoff_s,
        temperature=llm.temperature,
        deadline_s=llm.deadline_s,
    )
