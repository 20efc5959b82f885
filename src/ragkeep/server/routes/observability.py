"""Prometheus metrics and the health table of this server (docs/observability.md)."""

from __future__ import annotations

from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from ragkeep.models.json import to_json
from ragkeep.server.state import ServerState, server_state

router = APIRouter(tags=["observability"])
State = Annotated[ServerState, Depends(server_state)]


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    description="The text exposition format. Needs the bearer token when server.token is set.",
    response_class=Response,
)
async def metrics(state: State) -> Response:
    body = await anyio.to_thread.run_sync(state.keep.observer.metrics.render)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


@router.get(
    "/api/health",
    summary="The monitoring table: error rate, memory, cache hit rate and search p95",
    description="Each metric over the last health.window_s seconds, its thresholds and level "
    "(ok, above target, alert, critical, no data), with one history point per "
    "health.sample_s. `source=local` judges the statistics every process recorded in the "
    "index instead of this server's live window.",
)
async def health(
    state: State,
    source: Annotated[str, Query(pattern="^(server|local)$")] = "server",
) -> Any:
    observer = state.keep.observer
    build = observer.live_report if source == "server" else observer.recorded_report
    return to_json(await anyio.to_thread.run_sync(build))
