"""The query's vector, from an embedder that may fail: behind a circuit breaker and a
deadline, so a broken or stuck model costs a search at most `embed.timeout_s` (and nothing
while its breaker is open) instead of failing it."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, TypeVar

from ragkeep.embed.base import Embedder, EmbedderUnavailableError
from ragkeep.resilience import CircuitBreaker

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from ragkeep.observability.metrics import OperationMetrics

_T = TypeVar("_T")


class _DaemonWorker:
    """One daemon thread running calls in order. Not a ThreadPoolExecutor: its threads are
    joined at interpreter exit, so a stuck model run would keep the process from exiting."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._calls: queue.SimpleQueue[tuple[Future[object], Callable[[], object]]] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, call: Callable[[], _T]) -> Future[_T]:
        future: Future[_T] = Future()
        self._calls.put((future, call))  # type: ignore[arg-type]
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()
        return future

    def _loop(self) -> None:
        while True:
            future, call = self._calls.get()
            if not future.set_running_or_notify_cancel():
                continue  # its caller gave up before it started
            try:
                future.set_result(call())
            except BaseException as exc:
                future.set_exception(exc)


class QueryEmbedder:
    def __init__(
        self,
        embedder: Callable[[], Embedder],
        timeout_s: float,
        breaker: CircuitBreaker,
        metrics: OperationMetrics | None = None,
    ) -> None:
        self._embedder = embedder
        self._timeout_s = timeout_s
        self.breaker = breaker
        self._metrics = metrics
        self._worker = _DaemonWorker("ragkeep-query-embed")

    def vector(self, query: str) -> npt.NDArray[np.float32]:
        """The query's vector; EmbedderUnavailableError when the model failed, took longer
        than the deadline, or its breaker is open."""
        if not self.breaker.allow():
            raise EmbedderUnavailableError(self.breaker.describe_open())
        started = time.perf_counter()
        try:
            vec = self._run(query)
        except EmbedderUnavailableError as exc:
            self.breaker.failure(str(exc))
            if self._metrics is not None:
                self._metrics.failed(time.perf_counter() - started)
            raise
        except BaseException:  # interrupted: no verdict on the embedder
            self.breaker.abandon()
            raise
        self.breaker.success()
        if self._metrics is not None:
            self._metrics.observe(time.perf_counter() - started)
        return vec

    def _run(self, query: str) -> npt.NDArray[np.float32]:
        try:
            # Loaded on the calling thread: importing ONNX Runtime for the first time on a
            # worker thread has crashed the process (see ingest/pipeline.py).
            embedder = self._embedder()
        except Exception as exc:
            raise EmbedderUnavailableError(f"the model did not load: {exc}") from exc
        future = self._worker.submit(lambda: _first_row(embedder, query))
        try:
            return future.result(timeout=self._timeout_s)
        except FutureTimeout:
            future.cancel()
            raise EmbedderUnavailableError(
                f"no query vector within embed.timeout_s ({self._timeout_s:g} s)"
            ) from None
        except Exception as exc:
            raise EmbedderUnavailableError(str(exc) or type(exc).__name__) from exc


def _first_row(embedder: Embedder, query: str) -> npt.NDArray[np.float32]:
    row: npt.NDArray[np.float32] = embedder.embed([query])[0]
    return row
