"""The producer side of the ingest pipeline: threads that prepare items (read, parse, chunk)
into a queue bounded in items and in bytes, which the calling thread drains.

The consumer never waits for a producer to finish: on an interrupt it cancels them and
returns at once, and a producer stuck on one file past the file timeout is abandoned and a
fresh one goes on with the remaining items. A cancelled producer can put nothing more in the
queue (checked under the queue's lock), and producers never write to the store.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

_T = TypeVar("_T")  # what is prepared
_R = TypeVar("_R")  # what preparing gives

POLL_S = 0.1  # how often a waiting thread looks at cancellation and timeouts


class Done:
    """Put by the producer that ran out of items."""


@dataclass(eq=False)
class Producer(Generic[_T]):
    cancelled: threading.Event = field(default_factory=threading.Event)
    # The item being prepared and since when (monotonic), or None between items.
    current: tuple[_T, float] | None = None
    thread: threading.Thread | None = None


@dataclass(frozen=True, slots=True)
class TimedOut(Generic[_T]):
    """The item a producer was stuck on for longer than the timeout."""

    item: _T
    seconds: float


class Feed(Generic[_T, _R]):
    """Items prepared in a background thread, handed out in order of preparation."""

    def __init__(
        self,
        items: Iterator[_T],
        prepare: Callable[[_T, threading.Event], _R],
        size_of: Callable[[_R], int],
        *,
        max_items: int,
        max_bytes: int,
        timeout_s: float,
        name: str = "ragkeep-prepare",
    ) -> None:
        self._items = items
        self._items_lock = threading.Lock()  # a fresh producer may share the iterator
        self._prepare, self._size_of = prepare, size_of
        self._max_items, self._max_bytes = max(1, max_items), max(1, max_bytes)
        self._timeout_s, self._name = timeout_s, name
        self._cond = threading.Condition()
        self._queue: deque[tuple[_R | Done | BaseException, int]] = deque()
        self._bytes = 0
        self._producer = self._start()
        self.abandoned = 0  # producers given up on (a file past the timeout)

    # -- consumer side -----------------------------------------------------------------

    def get(self) -> _R | Done | TimedOut[_T]:
        """The next prepared item; Done at the end; TimedOut when the producer has spent
        longer than the timeout on one item (that producer is abandoned, a new one goes on).
        Re-raises what a producer raised. Waits in short steps, so KeyboardInterrupt lands."""
        while True:
            with self._cond:
                if self._queue:
                    got, size = self._queue.popleft()
                    self._bytes -= size
                    self._cond.notify_all()
                    break
                stuck = self._stuck_item()
                if stuck is not None:
                    return stuck
                self._cond.wait(POLL_S)
        if isinstance(got, BaseException):
            raise got
        return got

    def empty(self) -> bool:
        with self._cond:
            return not self._queue

    def close(self) -> None:
        """Cancel the producer without waiting for it: it stops at its next check and can
        put nothing more. Safe to call more than once."""
        with self._cond:
            self._producer.cancelled.set()
            self._cond.notify_all()

    @property
    def producer_thread(self) -> threading.Thread | None:
        return self._producer.thread

    def _stuck_item(self) -> TimedOut[_T] | None:
        """Under the lock: abandon the producer if its current item is past the timeout."""
        current = self._producer.current
        if current is None:
            return None
        item, started = current
        elapsed = time.monotonic() - started
        if elapsed <= self._timeout_s:
            return None
        self._producer.cancelled.set()
        self._cond.notify_all()
        self.abandoned += 1
        self._producer = self._start()
        return TimedOut(item, elapsed)

    # -- producer side -----------------------------------------------------------------

    def _start(self) -> Producer[_T]:
        producer: Producer[_T] = Producer()
        producer.thread = threading.Thread(
            target=self._produce, args=(producer,), name=self._name, daemon=True
        )
        producer.thread.start()
        return producer

    def _next_item(self) -> list[_T]:
        """[the next item], or [] at the end."""
        with self._items_lock:
            return list(itertools.islice(self._items, 1))

    def _produce(self, me: Producer[_T]) -> None:
        try:
            while not me.cancelled.is_set():
                taken = self._next_item()
                if not taken:
                    break
                me.current = (taken[0], time.monotonic())
                result = self._prepare(taken[0], me.cancelled)
                if not self._put(me, result, self._size_of(result)):
                    return
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._put(me, exc, 0)
            return
        self._put(me, Done(), 0)

    def _put(self, me: Producer[_T], item: _R | Done | BaseException, size: int) -> bool:
        """Queue `item` once it fits (an item bigger than the whole bound goes in alone);
        False, and nothing queued, if `me` was cancelled, also while waiting."""
        with self._cond:
            if me.cancelled.is_set():
                return False
            me.current = None  # waiting for room is not time spent on the item
            while self._queue and (
                len(self._queue) >= self._max_items or self._bytes + size > self._max_bytes
            ):
                self._cond.wait(POLL_S)
                if me.cancelled.is_set():
                    return False
            self._queue.append((item, size))
            self._bytes += size
            self._cond.notify_all()
            return True
