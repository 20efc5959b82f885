"""Bounded work: a fixed number of searches and asks in flight, and a deadline on each.

A request over the bound is answered 429 at once rather than queued: a queue in front of a
2-core machine only turns overload into timeouts for everybody.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.to_thread

from ragkeep.server.errors import ApiError

T = TypeVar("T")
RETRY_AFTER_S = 1.0


class Slots:
    """At most `limit` holders at once; `take` never waits."""

    def __init__(self, kind: str, limit: int) -> None:
        self.kind = kind
        self.limit = limit
        self._held = 0
        self._lock = threading.Lock()

    @property
    def held(self) -> int:
        return self._held

    def take(self) -> None:
        with self._lock:
            if self._held >= self.limit:
                raise ApiError(
                    429,
                    "too_many_requests",
                    f"{self.limit} {self.kind} requests are already running; retry shortly",
                    retry_after_s=RETRY_AFTER_S,
                )
            self._held += 1

    def release(self) -> None:
        with self._lock:
            self._held -= 1

    def lease(self) -> Lease:
        self.take()
        return Lease(self)


class Lease:
    """One taken slot, released exactly once however many paths try (a stream that ends, a
    client that disconnects before the stream began)."""

    def __init__(self, slots: Slots) -> None:
        self._slots: Slots | None = slots
        self._lock = threading.Lock()

    def release(self) -> None:
        with self._lock:
            slots, self._slots = self._slots, None
        if slots is not None:
            slots.release()


def deadline_error(what: str, seconds: float) -> ApiError:
    return ApiError(
        504, "deadline_exceeded", f"{what} did not finish within its {seconds:g} s deadline"
    )


async def run_bounded(slots: Slots, deadline_s: float, what: str, fn: Callable[[], T]) -> T:
    """Run blocking `fn` on a worker thread within a slot and a deadline.

    Past the deadline the client gets 504 at once. The thread cannot be killed: it finishes
    its (bounded, CPU-only) work in the background and keeps its slot until then, so the
    bound stays true while it runs.
    """
    lease = slots.lease()
    started = False

    def work() -> T:
        nonlocal started
        started = True
        try:
            return fn()
        finally:
            lease.release()

    try:
        with anyio.fail_after(deadline_s):
            return await anyio.to_thread.run_sync(work, abandon_on_cancel=True)
    except TimeoutError:
        raise deadline_error(what, deadline_s) from None
    finally:
        if not started:  # cancelled while waiting for a worker thread: the work never ran
            lease.release()
