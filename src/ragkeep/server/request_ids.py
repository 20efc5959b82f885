"""A request id for every HTTP request: taken from `X-Request-ID` when the client sent a short
safe token (a proxy's id then links its log to ours), else generated. It is returned in the
response's `X-Request-ID` and stamped on every log record written while the request runs,
also from the worker threads the routes use (anyio copies the context into them)."""

from __future__ import annotations

import logging
import re
import secrets

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ragkeep.observability.logs import bind_request_id, reset_request_id

log = logging.getLogger(__name__)

HEADER = "X-Request-ID"
# Anything else (long, spaces, quotes, control characters) could forge or break log lines.
SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def new_request_id() -> str:
    return secrets.token_hex(8)


def chosen_id(given: str | None) -> str:
    if given is None:
        return new_request_id()
    if SAFE_ID.fullmatch(given):
        return given
    rid = new_request_id()
    # Its length only: the header itself is what must not reach the log.
    log.debug("X-Request-ID of %d characters is not a safe token; using %s", len(given), rid)
    return rid


class RequestIds:
    """Pure ASGI middleware, outermost: even a request the Host check refuses gets an id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = chosen_id(_header(scope))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = rid
            await send(message)

        token = bind_request_id(rid)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            reset_request_id(token)


def _header(scope: Scope) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == b"x-request-id":
            return bytes(value).decode("latin-1")
    return None
