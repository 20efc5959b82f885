"""Status, feature flags, the result cache and doctor (read-only over HTTP)."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
import anyio.to_thread
from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from ragkeep import __version__
from ragkeep.config.flags import FlagError
from ragkeep.models.json import to_json
from ragkeep.server.errors import ApiError
from ragkeep.server.state import ServerState, server_state

router = APIRouter(prefix="/api", tags=["admin"])
State = Annotated[ServerState, Depends(server_state)]


class FlagBody(BaseModel):
    enabled: bool | None = Field(description="true, false, or null for the default.")


@router.get("/status", summary="The index, the model, the caches, the LLM and the server")
async def status(state: State) -> Any:
    keep = state.keep
    report = await anyio.to_thread.run_sync(keep.admin.status)
    return {
        **to_json(report),
        "version": __version__,
        "llm": {"provider": keep.settings.llm.provider, "model": keep.settings.llm.model},
        "flags": to_json(keep.feature_flags.states()),
        "flags_error": keep.feature_flags.error,
        "server": {
            "model_ready": state.model_ready.is_set(),
            "searches_in_flight": state.searches.held,
            "asks_in_flight": state.asks.held,
            "jobs_queued": state.jobs.pending(),
            "auth": state.settings.token is not None,
            "upload_max_mb": state.settings.upload_max_mb,
        },
    }


@router.get("/flags", summary="Feature flags with their values and where each came from")
async def flags(state: State) -> Any:
    return {"flags": to_json(state.keep.feature_flags.states())}


@router.put("/flags/{name}", summary="Switch a feature flag (persisted in the index)")
async def set_flag(state: State, name: str, body: FlagBody) -> Any:
    try:
        flag = await anyio.to_thread.run_sync(state.keep.feature_flags.set, name, body.enabled)
    except FlagError as exc:
        raise ApiError(400, "bad_flag", str(exc)) from None
    # Every flag applies live: here at once, in other processes on this index within ~1 s.
    return {**to_json(flag), "applies": "now"}


@router.get("/cache", summary="Result-cache statistics per tier")
async def cache(state: State) -> Any:
    return to_json(await anyio.to_thread.run_sync(state.keep.admin.cache_stats))


@router.delete("/cache", summary="Empty the result cache")
async def clear_cache(state: State) -> Any:
    return {"removed": await anyio.to_thread.run_sync(state.keep.admin.clear_cache)}


@router.get("/doctor", summary="Check the index (read-only; runs between write jobs)")
async def doctor(state: State) -> Any:
    # Doctor takes the writer lock: through the job queue it waits its turn behind a sync
    # instead of blocking a request thread on the lock.
    job = state.jobs.submit("doctor", lambda _: state.keep.admin.doctor(repair=False))
    deadline = state.settings.request_deadline_s
    with anyio.move_on_after(deadline):
        while not job.finished:
            await anyio.sleep(0.05)
    if not job.finished:
        raise ApiError(
            504, "deadline_exceeded", f"doctor is still running: poll /api/jobs/{job.id}"
        )
    if job.error is not None:
        raise ApiError(500, "doctor_failed", job.error)
    return to_json(job.result)
