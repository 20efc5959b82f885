"""Liveness and readiness probes: open to anyone who can reach the server, no auth."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
import anyio.to_thread
from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from ragkeep.observability.health import not_ready
from ragkeep.server.state import ServerState, server_state

router = APIRouter(tags=["health"])
State = Annotated[ServerState, Depends(server_state)]


@router.get("/healthz", summary="The process is alive")
async def healthz() -> Any:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="The store opens, the embedding model is loaded, and no metric is critical",
    description="200 `ready`; 200 `degraded` when the model failed to load (searches answer "
    "from BM25 alone, `problems` says why); 503 `not ready` while the model is loading, "
    "when the store cannot be read, or when a metric of health.ready_on is critical "
    "(GET /api/health).",
)
async def readyz(state: State) -> JSONResponse:
    problems: list[str] = []
    try:
        await anyio.to_thread.run_sync(state.keep.store.generation)
    except Exception as exc:
        problems.append(f"store: {exc}")
    report = await anyio.to_thread.run_sync(state.keep.observer.live_report)
    problems.extend(not_ready(report, state.keep.settings.health))
    if not problems and state.model_error is not None:
        body = {"status": "degraded", "problems": [f"model: {state.model_error}"]}
        return JSONResponse(body, status_code=200)
    if not state.model_ready.is_set():
        problems.append("model: still loading")
    body = {"status": "ready" if not problems else "not ready", "problems": problems}
    return JSONResponse(body, status_code=200 if not problems else 503)
