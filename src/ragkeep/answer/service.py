"""Turn a question and its search hits into an Answer, with or without an LLM.

The LLM is optional: without one, or when it fails, the answer degrades to the most relevant
passages so the user always gets something grounded. ``llm`` imports httpx lazily, so importing
this module stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from ragkeep.answer.citations import citations_for, used_citations
from ragkeep.answer.llm import LLMClient, LLMError
from ragkeep.answer.prompt import build_messages
from ragkeep.models import (
    Answer,
    AnswerMode,
    AskEvent,
    Citation,
    CitationsEvent,
    Degradation,
    DoneEvent,
    NoticeEvent,
    Part,
    RetryEvent,
    SearchHit,
    TokenEvent,
)

NO_MATCH_TEXT = "No indexed passages match the question."
NO_LLM_NOTICE = "No LLM is configured; showing the most relevant passages."
EXCERPT_CHARS = 600


def answer_events(
    question: str,
    hits: Sequence[SearchHit],
    client: LLMClient | None,
    *,
    no_llm_notice: str = NO_LLM_NOTICE,
    max_passages: int = 5,
    only_cited: bool = False,
    degraded: tuple[Degradation, ...] = (),
) -> Iterator[AskEvent]:
    """Answer ``question`` from ``hits`` (ranked best first), as events: the LLM's tokens as
    they arrive, then any notice, the citations, and last a DoneEvent with the Answer.

    - No hits: a fixed "nothing matches" answer; the LLM is not called.
    - No client: the top ``max_passages`` passages, with ``no_llm_notice``.
    - With a client: the streamed LLM answer. Citations are numbered as in the prompt (all
      hits, or only the cited ones with ``only_cited``). Each retry of the LLM is a
      RetryEvent as it begins, and is listed in the Answer's ``retries``.
    - LLMError before any text: passages, notice "LLM unavailable (<reason>); ..." where the
      reason says how many attempts took how long when there were several.
    - LLMError after some text: passages too, notice "LLM answer interrupted (<reason>); ..."
      with ``interrupted`` set: the tokens already sent are not part of the Answer.
    The Answer's ``degraded`` is ``degraded`` plus an LLM entry when the LLM failed.
    Closing the iterator early releases the LLM's HTTP response at once.
    """
    if not hits:
        answer = Answer(question, NO_MATCH_TEXT, (), AnswerMode.PASSAGES, degraded=degraded)
        yield DoneEvent(answer)
        return
    citations = citations_for(hits)
    if client is None:
        yield from _passages(question, citations, no_llm_notice, max_passages, degraded)
        return
    parts: list[str] = []
    retries: list[RetryEvent] = []
    stream = client.stream_events(build_messages(question, hits))
    try:
        for item in stream:
            if isinstance(item, RetryEvent):
                retries.append(item)
                yield item
                continue
            parts.append(item)
            yield TokenEvent(item)
    except LLMError as exc:
        what = "LLM answer interrupted" if parts else "LLM unavailable"
        reason = exc.summary()
        notice = f"{what} ({reason}); showing the most relevant passages."
        failed = (*degraded, Degradation(Part.LLM, "passages", reason))
        yield from _passages(
            question, citations, notice, max_passages, failed, bool(parts), tuple(retries)
        )
        return
    finally:
        # Release the HTTP response promptly when the consumer stops early.
        close = getattr(stream, "close", None)
        if callable(close):
            close()
    text = "".join(parts).strip()
    if not text:
        notice = "The LLM returned an empty answer; showing the most relevant passages."
        failed = (*degraded, Degradation(Part.LLM, "passages", "empty answer"))
        yield from _passages(
            question, citations, notice, max_passages, failed, retries=tuple(retries)
        )
        return
    if only_cited:
        citations = used_citations(citations, text)
    yield CitationsEvent(citations)
    answer = Answer(
        question,
        text,
        citations,
        AnswerMode.LLM,
        model=client.model,
        degraded=degraded,
        retries=tuple(retries),
    )
    yield DoneEvent(answer)


def answer_question(
    question: str,
    hits: Sequence[SearchHit],
    client: LLMClient | None,
    *,
    on_token: Callable[[str], None] | None = None,
    no_llm_notice: str = NO_LLM_NOTICE,
    max_passages: int = 5,
    only_cited: bool = False,
) -> Answer:
    """`answer_events`, consumed: ``on_token`` sees each delta as it arrives. After an
    interrupted stream the caller should end the partial line before showing the notice.
    Exceptions other than LLMError (including from ``on_token``) propagate."""
    events = answer_events(
        question,
        hits,
        client,
        no_llm_notice=no_llm_notice,
        max_passages=max_passages,
        only_cited=only_cited,
    )
    return consume(events, on_token)


def consume(
    events: Iterator[AskEvent],
    on_token: Callable[[str], None] | None,
    on_retry: Callable[[RetryEvent], None] | None = None,
) -> Answer:
    """The Answer at the end of `events`, handing tokens to ``on_token`` and retries to
    ``on_retry`` on the way."""
    try:
        for event in events:
            if isinstance(event, TokenEvent) and on_token is not None:
                on_token(event.text)
            elif isinstance(event, RetryEvent) and on_retry is not None:
                on_retry(event)
            elif isinstance(event, DoneEvent):
                return event.answer
    finally:
        close = getattr(events, "close", None)  # a generator: release what it holds
        if callable(close):
            close()
    raise RuntimeError("answer events ended without a DoneEvent")


def format_passages(citations: Sequence[Citation], max_passages: int = 5) -> str:
    """Show the top ``max_passages`` as "[n] path (p. X)" followed by an excerpt."""
    blocks = [
        f"[{c.number}] {c.label()}\n{_excerpt(c.text)}" for c in citations[: max(max_passages, 1)]
    ]
    return "\n\n".join(blocks)


def _passages(
    question: str,
    citations: tuple[Citation, ...],
    notice: str,
    max_passages: int,
    degraded: tuple[Degradation, ...],
    interrupted: bool = False,
    retries: tuple[RetryEvent, ...] = (),
) -> Iterator[AskEvent]:
    yield NoticeEvent(notice, interrupted)
    yield CitationsEvent(citations)
    text = format_passages(citations, max_passages)
    answer = Answer(
        question, text, citations, AnswerMode.PASSAGES, notice, degraded=degraded, retries=retries
    )
    yield DoneEvent(answer)


def _excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    text = text.strip()
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    if space > limit // 2:  # cut at a word boundary unless that loses too much
        cut = cut[:space]
    return cut.rstrip() + "…"
