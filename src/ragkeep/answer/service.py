"""Turn a question and its search hits into an Answer, with or without an LLM.

The LLM is optional: without one, or when it fails, the answer degrades to the most relevant
passages so the user always gets something grounded. ``llm`` imports httpx lazily, so importing
this module stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ragkeep.answer.citations import citations_for, used_citations
from ragkeep.answer.llm import LLMClient, LLMError
from ragkeep.answer.prompt import build_messages
from ragkeep.models import Answer, Citation, SearchHit

NO_MATCH_TEXT = "No indexed passages match the question."
NO_LLM_NOTICE = "No LLM is configured; showing the most relevant passages."
EXCERPT_CHARS = 600


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
    """Answer ``question`` from ``hits`` (ranked best first).

    - No hits: a fixed "nothing matches" answer; the LLM is not called.
    - No client: the top ``max_passages`` passages, with ``no_llm_notice``.
    - With a client: the streamed LLM answer; ``on_token`` sees each delta as it arrives.
      Citations are numbered as in the prompt (all hits, or only the cited ones with
      ``only_cited``).
    - LLMError before any text: passages, notice "LLM unavailable (<reason>); ...".
    - LLMError after some text: passages too, notice "LLM answer interrupted (<reason>); ...".
      ``on_token`` has already received the partial text, so the caller should end that
      line and show the notice; the partial text is not kept in the Answer.
    Other exceptions (including from ``on_token``) propagate.
    """
    if not hits:
        return Answer(question=question, text=NO_MATCH_TEXT, citations=(), mode="passages")
    citations = citations_for(hits)
    if client is None:
        return _passages_answer(question, citations, no_llm_notice, max_passages)

    parts: list[str] = []
    stream = client.stream_chat(build_messages(question, hits))
    try:
        for delta in stream:
            parts.append(delta)
            if on_token is not None:
                on_token(delta)
    except LLMError as exc:
        if parts:
            notice = f"LLM answer interrupted ({exc.reason}); showing the most relevant passages."
        else:
            notice = f"LLM unavailable ({exc.reason}); showing the most relevant passages."
        return _passages_answer(question, citations, notice, max_passages)
    finally:
        # Release the HTTP response promptly if on_token raised (e.g. a closed pipe).
        close = getattr(stream, "close", None)
        if callable(close):
            close()

    text = "".join(parts).strip()
    if not text:
        notice = "The LLM returned an empty answer; showing the most relevant passages."
        return _passages_answer(question, citations, notice, max_passages)
    if only_cited:
        citations = used_citations(citations, text)
    return Answer(
        question=question,
        text=text,
        citations=citations,
        mode="llm",
        model=client.model,
    )


def format_passages(citations: Sequence[Citation], max_passages: int = 5) -> str:
    """Show the top ``max_passages`` as "[n] path (p. X)" followed by an excerpt."""
    blocks = [
        f"[{c.number}] {c.label()}\n{_excerpt(c.text)}" for c in citations[: max(max_passages, 1)]
    ]
    return "\n\n".join(blocks)


def _passages_answer(
    question: str, citations: tuple[Citation, ...], notice: str, max_passages: int
) -> Answer:
    return Answer(
        question=question,
        text=format_passages(citations, max_passages),
        citations=citations,
        mode="passages",
        notice=notice,
    )


def _excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    text = text.strip()
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    if space > limit // 2:  # cut at a word boundary unless that loses too much
        cut = cut[:space]
    return cut.rstrip() + "…"
