"""Streaming chat clients for Ollama and OpenAI-compatible servers.

httpx is imported lazily (inside the clients) so that importing this module, and therefore
``ragkeep.answer``, stays cheap for CLI commands that never talk to an LLM.

Retry policy: connect errors, timeouts, dropped connections and HTTP 429/5xx are retried with
exponential backoff, but only until the first text delta has been yielded. After that a retry
would repeat output the caller has already shown, so any failure becomes an ``LLMError``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import socket
import threading
import time
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from ragkeep.models.answers import RetryEvent

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

PROVIDERS = ("ollama", "openai")

# A server asking us to wait longer than this (Retry-After) is effectively down for a CLI user.
_MAX_RETRY_AFTER_S = 10.0
_ERROR_BODY_LIMIT = 300


class LLMError(Exception):
    """The LLM could not produce (the rest of) an answer. ``reason`` is the last failure, meant
    for end users; ``summary()`` adds what it cost: attempts, real time, the deadline.

    ``partial`` is True when some text had already been yielded before the failure.
    """

    def __init__(
        self,
        reason: str,
        *,
        partial: bool = False,
        attempts: int = 1,
        elapsed_s: float = 0.0,
        deadline_s: float | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.partial = partial
        self.attempts = attempts
        self.elapsed_s = elapsed_s
        self.deadline_s = deadline_s  # set when llm.deadline_s ended the exchange

    def summary(self) -> str:
        """The reason with the real total. One attempt's reason already says how long it
        waited; several attempts, or the deadline, need the total said too."""
        if self.deadline_s is None and self.attempts == 1:
            return self.reason
        plural = "" if self.attempts == 1 else "s"
        tries = f"{self.attempts} attempt{plural} in {seconds(self.elapsed_s)}"
        if self.deadline_s is not None:
            tries = f"no complete answer within llm.deadline_s ({self.deadline_s:g} s): {tries}"
        return f"{tries}; last: {self.reason}"


class _Transient(Exception):
    """Internal: a failure worth retrying if no output has been yielded yet."""

    def __init__(self, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s


class _DeadlinePassed(Exception):
    """Internal: llm.deadline_s ended an attempt (its timeout was clamped, or the watchdog cut
    the socket). Never retried: no time is left."""


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: str  # "system" | "user" | "assistant"
    content: str


class LLMClient(Protocol):
    model: str

    def stream_chat(self, messages: Sequence[ChatMessage]) -> Iterator[str]:
        """Yield text deltas of the assistant's reply; raise LLMError on failure."""
        ...

    def stream_events(self, messages: Sequence[ChatMessage]) -> Iterator[str | RetryEvent]:
        """`stream_chat`, plus a RetryEvent just before each retry (and its backoff sleep), so
        the caller can say so while the user waits."""
        ...

    def close(self) -> None: ...


def redact_url(url: str) -> str:
    """Drop user:password@ from a URL so it can appear in messages and logs."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


class _StreamingChatClient:
    """Shared transport, timeout and retry logic; subclasses define the wire format."""

    provider = ""
    _accept = "*/*"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        connect_timeout_s: float = 3.0,
        max_retries: int = 2,
        backoff_s: float = 0.5,
        temperature: float = 0.1,
        deadline_s: float = 90.0,
    ) -> None:
        import httpx

        from ragkeep.answer.deadline_io import bound_reads

        _check_base_url(base_url)
        if deadline_s <= 0:
            raise ValueError("deadline_s must be positive")
        self._deadline_s = deadline_s
        if timeout_s <= 0 or connect_timeout_s <= 0:
            raise ValueError("timeouts must be positive")
        if max_retries < 0 or backoff_s < 0:
            raise ValueError("max_retries and backoff_s must not be negative")
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.url = self._endpoint(self.base_url)
        self._shown_url = redact_url(self.url)
        self._timeout_s = timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._max_retries = max_retries
        self._backoff_s = backoff_s
        self._temperature = temperature
        headers = {"Accept": self._accept, "User-Agent": "ragkeep"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        # One client per LLMClient so consecutive questions reuse the TCP connection.
        # The read timeout applies per chunk, so a long answer that keeps streaming is fine.
        self._http = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
        )
        bound_reads(self._http)  # llm.deadline_s ends the wait for headers too

    def __repr__(self) -> str:  # never include headers: they carry the api key
        return f"{type(self).__name__}(url={self._shown_url!r}, model={self.model!r})"

    def __enter__(self) -> _StreamingChatClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- subclass hooks -------------------------------------------------------------------

    def _endpoint(self, base_url: str) -> str:
        raise NotImplementedError

    def _payload(self, messages: Sequence[ChatMessage]) -> dict[str, Any]:
        raise NotImplementedError

    def _parse(self, response: httpx.Response) -> Iterator[str]:
        raise NotImplementedError

    # -- streaming with retries ------------------------------------------------------------

    def stream_chat(self, messages: Sequence[ChatMessage]) -> Iterator[str]:
        events = self.stream_events(messages)
        try:
            for item in events:
                if isinstance(item, str):
                    yield item
        finally:
            events.close()  # a consumer stopping early releases the HTTP response now

    def stream_events(
        self, messages: Sequence[ChatMessage]
    ) -> Generator[str | RetryEvent, None, None]:
        payload = self._payload(messages)
        started = time.monotonic()
        # One deadline for the whole exchange: each attempt's timeouts are clamped to it, a
        # backoff that would cross it is not slept, and a watchdog cuts a trickling stream.
        deadline = started + self._deadline_s
        attempt = 0
        while True:
            yielded = False
            attempt_stream = self._attempt(payload, deadline)
            try:
                for delta in attempt_stream:
                    yielded = True
                    yield delta
                return
            except LLMError as exc:
                raise self._give_up(exc.reason, attempt, started, yielded or exc.partial) from exc
            except _DeadlinePassed as exc:
                what = "still streaming from" if yielded else "still waiting for"
                reason = f"{what} {self._shown_url}"
                raise self._give_up(reason, attempt, started, yielded, deadline=True) from exc
            except _Transient as exc:
                if yielded or attempt >= self._max_retries:
                    raise self._give_up(exc.reason, attempt, started, yielded) from exc
                retry = self._retry(exc, attempt, started, deadline)
            finally:
                # Closes the HTTP response now if our consumer stopped early.
                attempt_stream.close()
            attempt += 1
            log.info("%s", retry.message())
            yield retry  # before the sleep: the user hears of the wait as it begins
            time.sleep(retry.delay_s)

    def _retry(self, exc: _Transient, retries: int, started: float, deadline: float) -> RetryEvent:
        """The retry after `exc`, or the LLMError when its backoff would cross the deadline."""
        delay = self._backoff_s * 2**retries
        delay += random.uniform(0, delay * 0.25)  # jitter: don't retry in lockstep
        if exc.retry_after_s is not None:
            delay = max(delay, min(exc.retry_after_s, _MAX_RETRY_AFTER_S))
        if time.monotonic() + delay >= deadline:
            raise self._give_up(exc.reason, retries, started, deadline=True) from exc
        elapsed = time.monotonic() - started
        return RetryEvent(retries + 2, self._max_retries + 1, delay, exc.reason, elapsed)

    def _give_up(
        self,
        reason: str,
        retries: int,
        started: float,
        partial: bool = False,
        *,
        deadline: bool = False,
    ) -> LLMError:
        return LLMError(
            reason,
            partial=partial,
            attempts=retries + 1,
            elapsed_s=time.monotonic() - started,
            deadline_s=self._deadline_s if deadline else None,
        )

    def _attempt(self, payload: dict[str, Any], deadline: float) -> Generator[str, None, None]:
        """One HTTP request; transport failures are mapped to _Transient or LLMError, or to
        _DeadlinePassed when the deadline ended it."""
        import httpx

        from ragkeep.answer.deadline_io import reads_until

        left = deadline - time.monotonic()
        if left <= 0:
            raise _DeadlinePassed
        # Reads end at the deadline through deadline_io (headers) and the watchdog (body);
        # connecting and waiting for a pooled connection are bounded here.
        timeout = httpx.Timeout(
            self._timeout_s,
            connect=min(self._connect_timeout_s, left),
            pool=min(self._timeout_s, left),
        )
        try:
            with contextlib.ExitStack() as stack:
                # Sending the request and reading its headers end at the deadline, however
                # slowly the headers trickle in; from then on the watchdog cuts the body.
                with reads_until(deadline):
                    request = self._http.stream("POST", self.url, json=payload, timeout=timeout)
                    response = stack.enter_context(request)
                watchdog = _cut_off_at(deadline, response)
                try:
                    if response.status_code >= 400:
                        raise self._status_error(response)
                    yield from self._parse(response)
                finally:
                    watchdog.cancel()
        except httpx.HTTPError as exc:
            if self._clamped(exc, left) or time.monotonic() >= deadline:
                raise _DeadlinePassed from exc
            raise self._transport_error(exc) from exc

    def _clamped(self, exc: httpx.HTTPError, left: float) -> bool:
        """Whether `exc` is a timeout the deadline shortened: it fired at the deadline (maybe
        a hair before it by the clock), not after the configured timeout."""
        import httpx

        if isinstance(exc, httpx.ConnectTimeout):
            return left < self._connect_timeout_s
        return isinstance(exc, httpx.TimeoutException) and left < self._timeout_s

    def _transport_error(self, exc: httpx.HTTPError) -> Exception:
        """A transport failure as _Transient (worth a retry) or LLMError."""
        import httpx

        url = self._shown_url
        if isinstance(exc, httpx.ConnectTimeout):
            return _Transient(f"connecting to {url} timed out after {self._connect_timeout_s:g} s")
        if isinstance(exc, httpx.TimeoutException):
            return _Transient(f"timed out after {self._timeout_s:g} s waiting for {url}")
        if isinstance(exc, httpx.ConnectError):
            if "refused" in str(exc).lower():
                return _Transient(f"connection refused at {url}")
            return _Transient(f"cannot connect to {url}: {exc}")
        if isinstance(exc, httpx.NetworkError | httpx.RemoteProtocolError):
            return _Transient(f"connection to {url} was closed unexpectedly")
        return LLMError(f"request to {url} failed: {exc}")  # proxy errors, bad protocol, ...

    def _status_error(self, response: httpx.Response) -> Exception:
        response.read()
        reason = f"HTTP {response.status_code} from {self._shown_url}"
        detail = _error_detail(response.text)
        if detail:
            reason += f": {detail}"
        if response.status_code == 429 or response.status_code >= 500:
            return _Transient(reason, _retry_after(response.headers.get("Retry-After")))
        return LLMError(reason)

    def _incomplete(self) -> _Transient:
        return _Transient(f"response from {self._shown_url} ended before the answer was complete")

    def _decode(self, text: str) -> dict[str, Any]:
        try:
            obj = json.loads(text)
        except ValueError as exc:
            raise LLMError(f"malformed response from {self._shown_url}: {text[:80]!r}") from exc
        if not isinstance(obj, dict):
            raise LLMError(f"unexpected response from {self._shown_url}: {text[:80]!r}")
        return obj

    def _raise_if_error(self, obj: dict[str, Any]) -> None:
        error = obj.get("error")
        if error:
            # Errors reported inside a 200 response ("model not found", ...) won't fix themselves.
            raise LLMError(f"{self._shown_url} reported an error: {_error_message(error)}")


class OllamaClient(_StreamingChatClient):
    """Ollama's native chat API: POST /api/chat, NDJSON stream ending with {"done": true}."""

    provider = "ollama"
    _accept = "application/x-ndjson"

    def _endpoint(self, base_url: str) -> str:
        if base_url.endswith("/api"):
            base_url = base_url[: -len("/api")]
        return f"{base_url}/api/chat"

    def _payload(self, messages: Sequence[ChatMessage]) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "stream": True,
            "options": {"temperature": self._temperature},
        }

    def _parse(self, response: httpx.Response) -> Iterator[str]:
        lines = response.iter_lines()
        for line in lines:
            if not line.strip():
                continue
            obj = self._decode(line)
            self._raise_if_error(obj)
            message = obj.get("message")
            if isinstance(message, dict):
                content = message.get("content")
                if isinstance(content, str) and content:
                    yield content
            if obj.get("done"):
                _drain(lines)
                return
        raise self._incomplete()


class OpenAIClient(_StreamingChatClient):
    """OpenAI-compatible chat completions (OpenAI, llama.cpp, vLLM, LM Studio, ...) over SSE."""

    provider = "openai"
    _accept = "text/event-stream"

    def _endpoint(self, base_url: str) -> str:
        # Accept both "http://host:8000" and "http://host:8000/v1" as the configured base URL.
        if base_url.endswith("/v1"):
            return f"{base_url}/chat/completions"
        return f"{base_url}/v1/chat/completions"

    def _payload(self, messages: Sequence[ChatMessage]) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "stream": True,
            "temperature": self._temperature,
        }

    def _parse(self, response: httpx.Response) -> Iterator[str]:
        content_type = response.headers.get("Content-Type", "")
        if content_type.startswith("application/json"):
            # Some compatible servers ignore "stream": true and send one JSON document.
            yield from self._parse_whole(response)
            return
        finished = False
        lines = response.iter_lines()
        for data in _sse_data(lines):
            if data.strip() == "[DONE]":
                _drain(lines)
                return
            obj = self._decode(data)
            self._raise_if_error(obj)
            choice = _first_choice(obj)
            if choice is None:
                continue  # e.g. a trailing usage-only chunk
            delta = choice.get("delta")
            if isinstance(delta, dict):
                content = delta.get("content")
                if isinstance(content, str) and content:
                    yield content
            if choice.get("finish_reason"):
                finished = True
        # Tolerate servers that end after finish_reason without sending [DONE].
        if not finished:
            raise self._incomplete()

    def _parse_whole(self, response: httpx.Response) -> Iterator[str]:
        response.read()
        obj = self._decode(response.text)
        self._raise_if_error(obj)
        choice = _first_choice(obj)
        message = choice.get("message") if choice else None
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, str):
            raise LLMError(f"unexpected response from {self._shown_url}: no message content")
        if content:
            yield content


def make_client(
    provider: str,
    base_url: str,
    model: str,
    *,
    api_key: str | None = None,
    timeout_s: float = 60.0,
    connect_timeout_s: float = 3.0,
    max_retries: int = 2,
    backoff_s: float = 0.5,
    temperature: float = 0.1,
    deadline_s: float = 90.0,
) -> LLMClient:
    """Build a client for ``provider`` ("ollama" or "openai"). Raises ValueError on bad config."""
    kind = provider.strip().lower()
    cls: type[_StreamingChatClient]
    if kind == "ollama":
        cls = OllamaClient
    elif kind == "openai":
        cls = OpenAIClient
    else:
        raise ValueError(
            f"unknown LLM provider {provider!r}; expected one of {', '.join(PROVIDERS)}"
        )
    if not model.strip():
        raise ValueError("an LLM model name is required")
    return cls(
        base_url,
        model,
        api_key=api_key,
        timeout_s=timeout_s,
        connect_timeout_s=connect_timeout_s,
        max_retries=max_retries,
        backoff_s=backoff_s,
        temperature=temperature,
        deadline_s=deadline_s,
    )


# -- helpers ------------------------------------------------------------------------------


def seconds(value: float) -> str:
    """A duration for a message: 0.6 s, 4.2 s, 183 s."""
    return f"{value:.1f} s" if value < 10 else f"{value:.0f} s"


def _check_base_url(base_url: str) -> None:
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"LLM base URL must look like http://host:port, got {redact_url(base_url)!r}"
        )


def _cut_off_at(deadline: float, response: httpx.Response) -> threading.Timer:
    """Shut the response's socket down at `deadline`. Closing the response from another
    thread does not wake a read blocked on a stalled server; shutting the socket does."""

    def cut() -> None:
        stream = response.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    timer = threading.Timer(max(0.0, deadline - time.monotonic()), cut)
    timer.daemon = True
    timer.start()
    return timer


def _drain(lines: Iterator[str]) -> None:
    """Read the rest of a finished response (normally just the final empty chunk).

    An unread body makes httpx discard the connection instead of reusing it. Errors here are
    ignored: the answer is already complete.
    """
    import httpx

    try:
        for _ in lines:
            pass
    except httpx.HTTPError:
        log.debug("ignoring error after the end of the LLM response", exc_info=True)


def _sse_data(lines: Iterable[str]) -> Iterator[str]:
    """Yield the data payload of each server-sent event (multi-line data joined by newlines)."""
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(":"):
            continue  # comment / keep-alive
        field, _, value = line.partition(":")
        if field == "data":
            data.append(value[1:] if value.startswith(" ") else value)
    if data:
        yield "\n".join(data)


def _first_choice(obj: dict[str, Any]) -> dict[str, Any] | None:
    choices = obj.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        choice: dict[str, Any] = choices[0]
        return choice
    return None


def _error_message(error: object) -> str:
    # Ollama: {"error": "text"}; OpenAI: {"error": {"message": "text", ...}}.
    if isinstance(error, dict):
        message = error.get("message")
        if isinstance(message, str) and message:
            return message
    return str(error)[:_ERROR_BODY_LIMIT]


def _error_detail(body: str) -> str:
    body = body.strip()
    if not body:
        return ""
    try:
        obj = json.loads(body)
    except ValueError:
        return " ".join(body.split())[:_ERROR_BODY_LIMIT]
    if isinstance(obj, dict) and obj.get("error"):
        return _error_message(obj["error"])
    return " ".join(body.split())[:_ERROR_BODY_LIMIT]


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # HTTP-date form: not worth parsing for a local tool
    return seconds if seconds >= 0 else None
