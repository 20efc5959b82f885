"""Documents (list, one with its chunks, the original file), sources, uploads, and the write
jobs they start (sync, add, remove), readable by polling or as server-sent events."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import anyio
import anyio.to_thread
from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, StreamingResponse
from fastapi.sse import format_sse_event
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile

from ragkeep.models import DocumentContent, IndexReport
from ragkeep.models.json import to_json
from ragkeep.server.errors import ApiError
from ragkeep.server.files import allowed_source, safe_name, store_upload
from ragkeep.server.jobs import Job, ProgressFn
from ragkeep.server.state import ServerState, server_state

router = APIRouter(prefix="/api", tags=["library"])
State = Annotated[ServerState, Depends(server_state)]
UPLOAD_ROUTE = "/api/uploads"
MAX_FILES_PER_UPLOAD = 100
PROGRESS_POLL_S = 0.1
MULTIPART_OVERHEAD = 64 * 1024  # boundaries and part headers around the files themselves


class PathBody(BaseModel):
    path: str = Field(min_length=1, max_length=4096, description="A file or folder.")


class SyncBody(BaseModel):
    source: str | None = Field(None, description="One registered source; default: all.")


# -- documents ---------------------------------------------------------------------------


@router.get("/documents", summary="Every indexed document")
async def documents(state: State) -> Any:
    docs = await anyio.to_thread.run_sync(state.keep.admin.documents)
    return {"documents": to_json(docs)}


@router.get("/documents/{doc_id}", summary="One document with its chunks, in order")
async def document(state: State, doc_id: int) -> Any:
    return to_json(await _document(state, doc_id))


@router.get("/documents/{doc_id}/file", summary="The original file of a document")
async def document_file(state: State, doc_id: int) -> FileResponse:
    path = Path((await _document(state, doc_id)).path)
    if not path.is_file():
        raise ApiError(410, "gone", f"{path.name} is no longer on disk; run a sync")
    # Only files that are indexed documents are ever served: a client names an id, not a path.
    # The sandbox keeps an uploaded HTML file from running scripts with the API's origin.
    return FileResponse(
        path,
        filename=path.name,
        content_disposition_type="inline",
        headers={"Content-Security-Policy": "sandbox", "X-Content-Type-Options": "nosniff"},
    )


async def _document(state: ServerState, doc_id: int) -> DocumentContent:
    found = await anyio.to_thread.run_sync(state.keep.admin.document_by_id, doc_id)
    if found is None:
        raise ApiError(404, "not_found", f"no document with id {doc_id}")
    return found


# -- sources and jobs ----------------------------------------------------------------------


@router.get("/sources", summary="The registered sources")
async def sources(state: State) -> Any:
    registered = await anyio.to_thread.run_sync(state.keep.admin.sources)
    return {"sources": registered, "uploads": str(state.uploads)}


@router.post("/sources", status_code=202, summary="Add a file or folder (within allowed roots)")
async def add_source(state: State, body: PathBody) -> Any:
    path = allowed_source(body.path, state.settings.allowed_roots)
    if not os.path.exists(path):
        raise ApiError(404, "not_found", f"{body.path} does not exist")
    job = state.jobs.submit("add", lambda progress: state.keep.indexing.add([path], progress))
    return to_json(job)


@router.delete("/sources", status_code=202, summary="Forget a source and its documents")
async def remove_source(state: State, body: PathBody) -> Any:
    await _require_source(state, body.path)
    job = state.jobs.submit("remove", lambda _: state.keep.indexing.remove([body.path]))
    return to_json(job)


@router.post("/sync", status_code=202, summary="Re-scan the sources in a background job")
async def sync(state: State, body: SyncBody | None = None) -> Any:
    only = [body.source] if body and body.source else None
    if only:
        await _require_source(state, only[0])
    job = state.jobs.submit("sync", lambda progress: state.keep.indexing.sync(progress, None, only))
    return to_json(job)


async def _require_source(state: ServerState, path: str) -> None:
    if path not in await anyio.to_thread.run_sync(state.keep.admin.sources):
        raise ApiError(404, "not_found", f"{path} is not a registered source")


@router.get("/jobs", summary="Recent write jobs, newest first")
async def jobs(state: State) -> Any:
    return {"jobs": to_json(state.jobs.recent()), "queued": state.jobs.pending()}


@router.get("/jobs/{job_id}", summary="One job: state, progress and result")
async def job(state: State, job_id: str) -> Any:
    return to_json(_job(state, job_id))


@router.get(
    "/jobs/{job_id}/events",
    response_class=StreamingResponse,
    summary="A job's progress as server-sent events",
    description="`progress` events while it runs, then one `end` event with the whole job.",
)
async def job_events(state: State, job_id: str) -> StreamingResponse:
    found = _job(state, job_id)
    return StreamingResponse(
        _progress(found), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
    )


def _job(state: ServerState, job_id: str) -> Job:
    found = state.jobs.get(job_id)
    if found is None:
        raise ApiError(404, "not_found", f"no job {job_id} (finished jobs are kept for a while)")
    return found


async def _progress(job: Job) -> AsyncIterator[bytes]:
    # Polled on the event loop, not waited for on a worker thread: any number of watchers
    # costs no threads, and a client that left is noticed at the next poll.
    last: Any = None
    while not job.finished:
        if job.progress != last:
            last = job.progress
            yield format_sse_event(event="progress", data_str=json.dumps(to_json(last)))
        await anyio.sleep(PROGRESS_POLL_S)
    yield format_sse_event(event="end", data_str=json.dumps(to_json(job)))


# -- uploads -----------------------------------------------------------------------------


async def upload(state: State, request: Request) -> Any:
    """Upload files (multipart field `files`) into the managed uploads folder and index them.
    Registered by the app with its own body limit (server.upload_max_mb per request)."""
    from ragkeep.ingest.loaders import supported_suffixes

    cfg = state.settings
    max_bytes = int(cfg.upload_max_mb * 1024 * 1024)
    form = await request.form(max_files=MAX_FILES_PER_UPLOAD)
    files = [f for f in form.getlist("files") if isinstance(f, UploadFile)]
    if not files:
        raise ApiError(400, "no_files", "send the files as multipart form field 'files'")
    suffixes = supported_suffixes()
    stored: list[dict[str, Any]] = []
    for f in files:
        name = safe_name(f.filename, suffixes)
        size = await anyio.to_thread.run_sync(store_upload, f.file, state.uploads, name, max_bytes)
        stored.append({"name": name, "bytes": size})
    paths = [str(state.uploads / f["name"]) for f in stored]
    job = state.jobs.submit("upload", lambda progress: _index_uploads(state, paths, progress))
    return {"files": stored, "job": to_json(job)}


def _index_uploads(state: ServerState, paths: list[str], progress: ProgressFn) -> IndexReport:
    """Index just these uploads, so the job's report is about them: the first upload makes
    the uploads folder a source, later ones sync only the files they carried."""
    uploads = str(state.uploads)
    if uploads not in state.keep.admin.sources():
        return state.keep.indexing.add([uploads], progress)
    return state.keep.indexing.sync(progress, None, paths)
