"""Writes go through one bounded job queue worked by one thread: sync, add, remove, upload and
doctor run one at a time, in order, and a full queue answers 503 instead of growing."""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ragkeep.server.errors import ApiError

log = logging.getLogger("ragkeep.server.jobs")
KEEP_FINISHED = 100  # finished jobs remembered for polling; older ones are forgotten


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class JobCancelled(Exception):
    """Raised from a progress callback: the job stops between two documents."""


@dataclass
class Progress:
    done: int = 0
    total: int = 0
    current: str | None = None


@dataclass
class Job:
    id: str
    kind: str
    state: JobState = JobState.QUEUED
    progress: Progress = field(default_factory=Progress)
    result: Any = None  # a model with a JSON mapping (IndexReport, DoctorReport)
    error: str | None = None
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def finished(self) -> bool:
        return self.state in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)

    def __json__(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "state": self.state,
            "progress": self.progress,
            "result": self.result,
            "error": self.error,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
        }


ProgressFn = Callable[[int, int, str], None]
Work = Callable[[ProgressFn], Any]


class JobQueue:
    def __init__(self, depth: int) -> None:
        self._queue: queue.Queue[tuple[Job, Work] | None] = queue.Queue(depth)
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._stopping = threading.Event()
        self._worker = threading.Thread(target=self._run, name="ragkeep-jobs", daemon=True)
        self._worker.start()

    def submit(self, kind: str, work: Work) -> Job:
        if self._stopping.is_set():
            raise ApiError(503, "shutting_down", "the server is shutting down")
        job = Job(id=str(next(self._ids)), kind=kind)
        try:
            self._queue.put_nowait((job, work))
        except queue.Full:
            raise ApiError(
                503,
                "queue_full",
                "too many write jobs are waiting; retry when the current ones finish",
                retry_after_s=5,
            ) from None
        with self._lock:
            self._jobs[job.id] = job
            self._forget_old()
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def recent(self) -> list[Job]:
        with self._lock:
            return list(reversed(self._jobs.values()))

    def pending(self) -> int:
        return self._queue.qsize()

    def stop(self, timeout_s: float) -> bool:
        """Cancel what is queued, stop the running job between documents, and wait for it.
        True if the worker ended within `timeout_s`."""
        self._stopping.set()
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                self._finish(item[0], JobState.CANCELLED, error="the server shut down")
        self._queue.put(None)
        self._worker.join(timeout_s)
        return not self._worker.is_alive()

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if j.finished]
        for job in finished[: max(0, len(finished) - KEEP_FINISHED)]:
            del self._jobs[job.id]

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            job, work = item
            if self._stopping.is_set():
                self._finish(job, JobState.CANCELLED, error="the server shut down")
                continue
            self._update(job, state=JobState.RUNNING)
            try:
                result = work(self._progress_of(job))
            except JobCancelled:
                self._finish(job, JobState.CANCELLED, error="stopped: the server shut down")
            except Exception as exc:
                log.exception("job %s (%s) failed", job.id, job.kind)
                self._finish(job, JobState.FAILED, error=str(exc) or type(exc).__name__)
            else:
                self._finish(job, JobState.DONE, result=result)

    def _progress_of(self, job: Job) -> ProgressFn:
        def progress(done: int, total: int, current: str) -> None:
            # Called after each document: the place where a shutdown can stop the job.
            if self._stopping.is_set():
                raise JobCancelled
            self._update(job, progress=Progress(done, total, current))

        return progress

    def _update(self, job: Job, **changes: Any) -> None:
        with job.lock:
            for name, value in changes.items():
                setattr(job, name, value)

    def _finish(self, job: Job, state: JobState, **changes: Any) -> None:
        self._update(job, state=state, finished_at=time.time(), **changes)
