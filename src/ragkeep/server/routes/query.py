"""Search, and ask: as one JSON answer or as server-sent events from `ask_stream()`."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator
from contextlib import aclosing
from typing import Annotated, Any

import anyio
import anyio.to_thread
from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from fastapi.sse import format_sse_event
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask

from ragkeep.models import AskEvent, DoneEvent, SearchMode
from ragkeep.models.json import to_json
from ragkeep.server.errors import ApiError
from ragkeep.server.limits import Lease, deadline_error, run_bounded
from ragkeep.server.state import ServerState, server_state

router = APIRouter(prefix="/api", tags=["query"])
State = Annotated[ServerState, Depends(server_state)]


class AskBody(BaseModel):
    question: str = Field(min_length=1, max_length=4000, description="A question.")
    k: int | None = Field(None, ge=1, le=50, description="Passages to use (llm.ask_k).")


@router.get("/search", summary="Search the index")
async def search(
    state: State,
    q: Annotated[str, Query(min_length=1, max_length=4000, description="What to look for.")],
    k: Annotated[int | None, Query(ge=1, le=1000)] = None,
    mode: SearchMode | None = None,
    collapse: bool | None = None,
) -> Any:
    cfg = state.settings
    results = await run_bounded(
        state.searches,
        cfg.search_deadline_s,
        "the search",
        lambda: state.keep.querying.search(q, k, mode, collapse=collapse),
    )
    return {"query": q, **to_json(results)}


@router.post("/ask", summary="Answer a question with citations (one JSON object)")
async def ask(state: State, body: AskBody) -> Any:
    answer = None
    async with aclosing(_events(state, body, state.asks.lease())) as events:
        async for event in events:
            if isinstance(event, DoneEvent):
                answer = event.answer
    if answer is None:  # pragma: no cover - the service always ends with DoneEvent
        raise ApiError(500, "no_answer", "the answer ended without a result")
    return to_json(answer)


@router.post(
    "/ask/stream",
    response_class=StreamingResponse,
    summary="Answer a question as server-sent events",
    description="Events, in order: `passages` (the retrieved hits), `retry` (the LLM failed "
    "before its first token and is tried again: attempt, attempts, delay_s, reason, "
    "elapsed_s, message), `token` (answer text as the LLM writes it), `notice` (no LLM, or it "
    "failed), `citations`, and `done` (the whole answer). A failure after the stream began is "
    "an `error` event with code and message. Clients should skip event names they do not know.",
)
async def ask_stream(state: State, body: AskBody) -> StreamingResponse:
    lease = state.asks.lease()  # 429 now, before a 200 stream begins
    return StreamingResponse(
        _sse(state, body, lease),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        background=BackgroundTask(lease.release),  # also when the stream never started
    )


async def _sse(state: ServerState, body: AskBody, lease: Lease) -> AsyncIterator[bytes]:
    try:
        # aclosing: when the client leaves, the events are closed now (and with them the
        # LLM stream), not whenever the garbage collector finalises the generator.
        async with aclosing(_events(state, body, lease)) as events:
            async for event in events:
                name, data = _wire(event)
                yield format_sse_event(event=name, data_str=json.dumps(data))
    except ApiError as exc:
        error = {"code": exc.code, "message": exc.message}
        yield format_sse_event(event="error", data_str=json.dumps(error))


async def _events(
    state: ServerState, body: AskBody, lease: Lease
) -> AsyncGenerator[AskEvent, None]:
    """The service's events, each pulled on a worker thread, within a slot and the deadline.

    Between two events the deadline is checked; and when the client goes away, the request
    task is cancelled here. Either way the generator is closed, which closes the LLM's HTTP
    stream: nothing keeps generating for nobody.
    """
    cfg = state.settings
    end = time.monotonic() + cfg.ask_deadline_s
    events: Generator[AskEvent, None, None] | None = None
    try:
        events = state.keep.querying.ask_stream(body.question, body.k)
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise deadline_error("the answer", cfg.ask_deadline_s)
            with anyio.move_on_after(left) as scope:
                event = await anyio.to_thread.run_sync(_next, events)
            if scope.cancelled_caught:
                raise deadline_error("the answer", cfg.ask_deadline_s)
            if event is None:
                return
            yield event
    except ValueError as exc:  # an LLM setting the client cannot use
        raise ApiError(400, "llm_misconfigured", f"cannot use the configured LLM: {exc}") from None
    finally:
        if events is not None:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(events.close)
        lease.release()


def _next(events: Iterator[AskEvent]) -> AskEvent | None:
    return next(events, None)


def _wire(event: AskEvent) -> tuple[str, Any]:
    """The SSE event name and JSON data of one service event."""
    from ragkeep.models import CitationsEvent, NoticeEvent, PassagesEvent, RetryEvent, TokenEvent

    if isinstance(event, PassagesEvent):
        return "passages", {"hits": to_json(event.hits)}
    if isinstance(event, TokenEvent):
        return "token", {"text": event.text}
    if isinstance(event, RetryEvent):
        return "retry", to_json(event)
    if isinstance(event, NoticeEvent):
        return "notice", to_json(event)
    if isinstance(event, CitationsEvent):
        return "citations", {"citations": to_json(event.citations)}
    return "done", to_json(event.answer)
