"""Querying: search, and answers with citations, whole (`ask`) or as events (`ask_stream`)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING

from ragkeep.config.settings import LLMSettings, Settings
from ragkeep.models import SearchMode
from ragkeep.search.engine import Searcher, SearchRequest
from ragkeep.services.flags import FlagService

if TYPE_CHECKING:
    from ragkeep.answer.llm import LLMClient
    from ragkeep.models import Answer, AskEvent, SearchHit


class QueryService:
    def __init__(self, searcher: Searcher, settings: Settings, flags: FlagService) -> None:
        self._searcher = searcher
        self._settings = settings
        self._flags = flags
        self._client: LLMClient | None = None
        self._client_lock = threading.Lock()

    def search(
        self,
        query: str,
        k: int | None = None,
        mode: SearchMode | str | None = None,
        *,
        collapse: bool | None = None,
        candidates: int | None = None,
    ) -> list[SearchHit]:
        request = SearchRequest(
            query=query,
            k=k or self._settings.search.k,
            mode=SearchMode(mode or self._settings.search.mode),
            collapse=self._flags.enabled("collapse_documents") if collapse is None else collapse,
            candidates=candidates,
        )
        return self._searcher.search(request)

    def ask_stream(self, question: str, k: int | None = None) -> Generator[AskEvent, None, None]:
        """The answer as events: the passages, then the LLM's tokens as they arrive, any
        notice (no LLM, or it failed), the citations, and last the finished Answer.
        Raises ValueError (on first iteration) when the LLM settings cannot be used."""
        from ragkeep.answer.service import answer_events
        from ragkeep.models import PassagesEvent

        hits = self.search(question, k or self._settings.llm.ask_k)
        yield PassagesEvent(tuple(hits))
        yield from answer_events(question, hits, self._llm())

    def ask(
        self,
        question: str,
        k: int | None = None,
        on_token: Callable[[str], None] | None = None,
    ) -> Answer:
        """Answer from the best passages, with the LLM when one is configured and reachable."""
        from ragkeep.answer.service import consume

        return consume(self.ask_stream(question, k), on_token)

    def close(self) -> None:
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

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
    )
