"""Reads that end at a deadline, for the wait for an LLM's response headers.

httpx's read timeout is per read: a server that sends its headers a byte at a time never trips
it, and the watchdog that cuts a trickling body (llm._cut_off_at) needs the response, which
does not exist until the headers are in. So the client's connections read through
`DeadlineStream`, which clamps each read's timeout to the deadline set by `reads_until` around
the request. Imported only by the LLM clients (it imports httpcore).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import httpcore

if TYPE_CHECKING:
    import ssl

    import httpx

_local = threading.local()  # per thread: the server reads answers on several at once


@contextmanager
def reads_until(deadline: float) -> Iterator[None]:
    """Within this block, reads on this thread by a DeadlineStream end by `deadline`. Keep it
    around the request only (sending it, reading the headers): not across a yield."""
    _local.deadline = deadline
    try:
        yield
    finally:
        _local.deadline = None


def bound_reads(client: httpx.Client) -> None:
    """Make the connections of `client` read through DeadlineStream.

    httpx has no public hook for this; the pool's network backend is public in httpcore.
    When httpx lays its pools out differently this does nothing, and only the body watchdog
    and the per-read timeouts remain (test_answer.py's header-trickle test then fails)."""
    transports = [getattr(client, "_transport", None), *getattr(client, "_mounts", {}).values()]
    for transport in transports:
        pool = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if isinstance(backend, httpcore.NetworkBackend):
            pool._network_backend = DeadlineBackend(backend)  # type: ignore[union-attr]


class DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        stream = self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return DeadlineStream(stream)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:
        return DeadlineStream(self._inner.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        deadline: float | None = getattr(_local, "deadline", None)
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise httpcore.ReadTimeout("the deadline has passed")
            timeout = left if timeout is None else min(timeout, left)
        return self._inner.read(max_bytes, timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        return DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)
