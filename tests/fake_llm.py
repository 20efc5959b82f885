"""A small but real HTTP LLM server for tests and demos.

Speaks Ollama's ``/api/chat`` (NDJSON stream, or one JSON object with ``"stream": false``) and
OpenAI's ``/v1/chat/completions`` (SSE stream, or one JSON object). Failure modes are plain
attributes that tests may change between requests:

    with FakeLLM(reply="Paris [1].") as llm:
        llm.fail_first = 2          # the next 2 requests get HTTP fail_status
        client = make_client("ollama", llm.url, "m")
        ...
        assert len(llm.requests) == 3

Run ``python tests/fake_llm.py --port 11434`` to point a real ragkeep at it by hand.
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = str | Callable[[list[dict[str, Any]]], str]

DEFAULT_REPLY = "Based on the sources, the answer is 42 [1]."


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # keys lower-cased
    body: Any  # parsed JSON, or None
    client_port: int  # lets tests check that the connection was reused

    @property
    def messages(self) -> list[dict[str, Any]]:
        if isinstance(self.body, dict):
            return list(self.body.get("messages") or [])
        return []


def split_words(text: str) -> list[str]:
    """Split into word-sized deltas that join back to exactly ``text``."""
    return re.findall(r"\S+\s*|\s+", text) or [text]


class FakeLLM:
    """The server. All behaviour attributes are read at the start of each request."""

    def __init__(
        self,
        reply: Reply = DEFAULT_REPLY,
        *,
        deltas: list[str] | None = None,
        fail_first: int = 0,
        fail_status: int = 500,
        retry_after: float | None = None,
        hang_s: float = 0.0,
        stall_after: int | None = None,
        stall_s: float = 10.0,
        drop_after: int | None = None,
        error: str | None = None,
        error_status: int = 200,
        delta_delay_s: float = 0.0,
        trickle_headers_s: float = 0.0,
        ignore_stream: bool = False,
        garbage: bool = False,
        model: str = "fake-model",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.reply: Reply = reply
        self.deltas = deltas  # explicit deltas; otherwise the reply is split into words
        self.fail_first = fail_first  # remaining requests to fail with fail_status
        self.fail_status = fail_status
        self.retry_after = retry_after  # sent as Retry-After with failures
        self.hang_s = hang_s  # sleep before sending anything
        self.stall_after = stall_after  # stall for stall_s after this many deltas
        self.stall_s = stall_s
        self.drop_after = drop_after  # close the socket after this many deltas
        self.error = error  # report this error (Ollama: {"error": ...} line)
        self.error_status = error_status  # HTTP status used with ``error``
        self.delta_delay_s = delta_delay_s
        self.trickle_headers_s = trickle_headers_s  # send the headers a byte at a time, this apart
        self.ignore_stream = ignore_stream  # answer with one JSON body even if stream=true
        self.garbage = garbage  # stream lines that are not JSON
        self.model = model
        self._lock = threading.Lock()
        # Streams the client hung up on, as the number of content deltas sent before: a
        # client that cancels must close its connection, not let the answer run to the end.
        self.disconnects: list[int] = []
        self.completed_streams = 0
        self._requests: list[RecordedRequest] = []
        self._stop = threading.Event()
        self._server = _Server((host, port), _Handler)
        self._server.fake = self
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeLLM:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()  # wakes handlers sleeping in hang/stall
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> FakeLLM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- recording -------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _take_failure(self) -> bool:
        with self._lock:
            if self.fail_first > 0:
                self.fail_first -= 1
                return True
            return False

    def _reply_deltas(self, messages: list[dict[str, Any]]) -> list[str]:
        if self.deltas is not None:
            return list(self.deltas)
        text = self.reply(messages) if callable(self.reply) else self.reply
        return split_words(text)

    def _sleep(self, seconds: float) -> None:
        self._stop.wait(seconds)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeLLM

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hanging up on a hung/dropped response is the point of several tests


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so clients can reuse connections
    disable_nagle_algorithm = True  # small streamed writes would otherwise wait ~40 ms for ACKs
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # -- routing ---------------------------------------------------------------------------

    def do_GET(self) -> None:
        fake = self.server.fake
        self._record(None)
        if self.path == "/api/tags":
            self._send_json(200, {"models": [{"name": fake.model, "model": fake.model}]})
        elif self.path in ("/v1/models", "/models"):
            self._send_json(200, {"object": "list", "data": [{"id": fake.model}]})
        else:
            self._send_json(404, {"error": "not found"})

    def do_POST(self) -> None:
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        self._record(body)
        if self.path not in ("/api/chat", "/v1/chat/completions"):
            self._send_json(404, {"error": f"unknown path {self.path}"})
            return
        ollama = self.path == "/api/chat"
        if not isinstance(body, dict):
            self._send_json(400, {"error": "request body must be a JSON object"})
            return

        if fake.hang_s:
            fake._sleep(fake.hang_s)
        if fake.trickle_headers_s:
            self._trickle_headers(fake.trickle_headers_s)
            return
        if fake._take_failure():
            headers = {}
            if fake.retry_after is not None:
                headers["Retry-After"] = f"{fake.retry_after:g}"
            message = "overloaded" if fake.fail_status == 429 else "internal error"
            self._send_json(fake.fail_status, _error_body(ollama, message), headers)
            return
        if fake.error is not None:
            self._send_error(ollama, bool(body.get("stream", ollama)), fake.error)
            return
        if fake.garbage:
            line = "this is not json\n" if ollama else "data: this is not json\n\n"
            self._stream("application/x-ndjson" if ollama else "text/event-stream", iter([line]), 0)
            return

        messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
        deltas = fake._reply_deltas(messages)
        model = str(body.get("model") or fake.model)
        # Ollama streams unless told otherwise; OpenAI only when asked.
        stream = bool(body.get("stream", ollama)) and not fake.ignore_stream
        if not stream:
            text = "".join(deltas)
            self._send_json(200, _ollama_full(model, text) if ollama else _openai_full(model, text))
            return
        if ollama:
            self._stream(
                "application/x-ndjson", _ollama_events(model, deltas), len(deltas), offset=0
            )
        else:
            # The first OpenAI event carries only the role, so content deltas start at 1.
            self._stream("text/event-stream", _openai_events(model, deltas), len(deltas), offset=1)

    # -- responses -------------------------------------------------------------------------

    def _record(self, body: Any) -> None:
        self.server.fake._record(
            RecordedRequest(
                method=self.command,
                path=self.path,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
                client_port=int(self.client_address[1]),
            )
        )

    def _send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, ollama: bool, stream: bool, message: str) -> None:
        fake = self.server.fake
        if fake.error_status != 200 or not stream:
            self._send_json(fake.error_status, _error_body(ollama, message))
        elif ollama:
            self._stream("application/x-ndjson", iter([json.dumps({"error": message}) + "\n"]), 0)
        else:
            event = f"data: {json.dumps(_error_body(False, message))}\n\n"
            self._stream("text/event-stream", iter([event]), 0)

    def _stream(self, content_type: str, events: Iterator[str], n: int, offset: int = 0) -> None:
        """Write events with chunked encoding, applying stall/drop after N content deltas."""
        fake = self.server.fake
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        sent = 0
        try:
            for index, event in enumerate(events):
                sent = index - offset  # content deltas already written
                if 0 <= sent <= n:
                    if fake.drop_after is not None and sent == fake.drop_after:
                        self._drop()
                        return
                    if fake.stall_after is not None and sent == fake.stall_after:
                        fake._sleep(fake.stall_s)
                    if fake.delta_delay_s and sent > 0:
                        time.sleep(fake.delta_delay_s)
                self._chunk(event.encode())
            self._chunk(b"")
        except (BrokenPipeError, ConnectionResetError):
            with fake._lock:
                fake.disconnects.append(max(0, sent))
            self.close_connection = True
            return
        with fake._lock:
            fake.completed_streams += 1

    def _trickle_headers(self, every_s: float) -> None:
        """Headers that never end, a byte at a time: each read is quick, the response never
        comes (a per-read timeout never fires)."""
        self.close_connection = True
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nX-Pad: " + b"a" * 4000
        try:
            for byte in head:
                if self.server.fake._stop.is_set():
                    return
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                self.server.fake._sleep(every_s)
        except OSError:
            return

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _drop(self) -> None:
        # Hang up without the terminating chunk: the client sees a truncated body.
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


# -- wire formats -------------------------------------------------------------------------


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _error_body(ollama: bool, message: str) -> dict[str, Any]:
    if ollama:
        return {"error": message}
    return {"error": {"message": message, "type": "invalid_request_error", "code": None}}


def _ollama_events(model: str, deltas: list[str]) -> Iterator[str]:
    for delta in deltas:
        msg = {"role": "assistant", "content": delta}
        event = {"model": model, "created_at": _now(), "message": msg, "done": False}
        yield json.dumps(event) + "\n"
    final = {
        "model": model,
        "created_at": _now(),
        "message": {"role": "assistant", "content": ""},
        "done": True,
        "done_reason": "stop",
        "eval_count": len(deltas),
    }
    yield json.dumps(final) + "\n"


def _ollama_full(model: str, text: str) -> dict[str, Any]:
    return {
        "model": model,
        "created_at": _now(),
        "message": {"role": "assistant", "content": text},
        "done": True,
        "done_reason": "stop",
    }


def _openai_chunk(model: str, delta: dict[str, Any], finish: str | None) -> str:
    obj = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(obj)}\n\n"


def _openai_events(model: str, deltas: list[str]) -> Iterator[str]:
    yield _openai_chunk(model, {"role": "assistant", "content": ""}, None)
    for delta in deltas:
        yield _openai_chunk(model, {"content": delta}, None)
    yield _openai_chunk(model, {}, "stop")
    yield "data: [DONE]\n\n"


def _openai_full(model: str, text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake Ollama/OpenAI-compatible chat server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=11434)
    parser.add_argument("--reply", default=DEFAULT_REPLY)
    parser.add_argument("--delta-delay", type=float, default=0.05, help="seconds between deltas")
    parser.add_argument("--fail-first", type=int, default=0, help="fail this many requests")
    parser.add_argument("--fail-status", type=int, default=500)
    parser.add_argument("--hang", type=float, default=0.0, help="seconds to wait before replying")
    parser.add_argument("--drop-after", type=int, default=None, help="hang up after N deltas")
    parser.add_argument("--error", default=None, help='reply with {"error": ERROR}')
    args = parser.parse_args(argv)
    fake = FakeLLM(
        args.reply,
        delta_delay_s=args.delta_delay,
        fail_first=args.fail_first,
        fail_status=args.fail_status,
        hang_s=args.hang,
        drop_after=args.drop_after,
        error=args.error,
        host=args.host,
        port=args.port,
    )
    with fake:
        print(f"fake LLM listening on http://{args.host}:{fake.port}  (Ctrl-C to stop)", flush=True)
        print(
            f"  ollama: {fake.url}/api/chat    openai: {fake.url}/v1/chat/completions", flush=True
        )
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
