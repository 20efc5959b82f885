"""What makes the server safe to expose: the bind rule, the Host check, bearer-token auth
and body size limits. Pure ASGI middleware, so each check runs before any route or body read."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ragkeep.server.errors import error_response

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARDS = frozenset({"0.0.0.0", "::"})  # noqa: S104 - names to recognise, not to bind
# Paths anyone who can reach the server may load: the page (it asks for the token itself),
# the liveness and readiness probes, and the API description.
OPEN_PREFIXES = ("/healthz", "/readyz", "/static/", "/docs", "/openapi.json")
OPEN_EXACT = frozenset({"/", "/favicon.ico"})


class BindError(ValueError):
    """A bind address that would expose the API without a token."""


def is_loopback(host: str) -> bool:
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token_set: bool) -> None:
    if not is_loopback(host) and not token_set:
        raise BindError(
            f"refusing to listen on {host}: a non-loopback address needs a token "
            "(set RAGKEEP_SERVER__TOKEN or server.token), or bind 127.0.0.1"
        )


def allowed_host_names(bind_host: str, extra: Iterable[str]) -> frozenset[str]:
    names = set(LOOPBACK_NAMES) | {h.lower().strip("[]") for h in extra}
    if bind_host not in WILDCARDS:  # a wildcard is not a name a browser would send
        names.add(bind_host.lower().strip("[]"))
    return frozenset(names)


def host_name(header: str) -> str:
    """The host part of a Host header: `[::1]:8765` → `::1`, `example.org:80` → `example.org`."""
    value = header.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


async def _reject(
    scope: Scope,
    receive: Receive,
    send: Send,
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
) -> None:
    response = error_response(status, code, message, headers=headers)
    await response(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


class HostCheck:
    """Refuse a Host header that is not ours: a page on another site that rebinds its DNS name
    to 127.0.0.1 still sends its own name, so it cannot reach this server."""

    def __init__(self, app: ASGIApp, allowed: frozenset[str]) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = _header(scope, b"host")
            if host is None or host_name(host) not in self.allowed:
                await _reject(
                    scope, receive, send, 400, "bad_host", f"Host {host!r} is not served here"
                )
                return
        await self.app(scope, receive, send)


class TokenAuth:
    """Every API request carries `Authorization: Bearer <token>`, compared in constant time."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token.encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.token is not None and not _is_open(scope["path"]):
            given = _header(scope, b"authorization") or ""
            scheme, _, value = given.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                value.strip().encode(), self.token
            ):
                await _reject(
                    scope, receive, send, 401, "unauthorized", "missing or wrong bearer token",
                    {"WWW-Authenticate": "Bearer"},
                )  # fmt: skip
                return
        await self.app(scope, receive, send)


def _is_open(path: str) -> bool:
    return path in OPEN_EXACT or path.startswith(OPEN_PREFIXES)


class BodyLimit:
    """Refuse a body over the limit before reading it (Content-Length) or while reading it
    (chunked), with the API's JSON error: a client cannot make the server buffer more.

    FastAPI's own `max_body_size` answers in plain text, which would break the one error
    shape every client of this API relies on."""

    def __init__(self, app: ASGIApp, limits: dict[str, int], default: int) -> None:
        self.app = app
        self.limits = limits
        self.default = default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.get(scope["path"], self.default)
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _reject(
                scope, receive, send, 413, "too_large", f"request body over {limit} bytes"
            )
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge(limit)
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLarge:
            if started:
                raise
            await _reject(
                scope, receive, send, 413, "too_large", f"request body over {limit} bytes"
            )


class BodyTooLarge(BaseException):
    """A BaseException so that it passes FastAPI's body parsing, which turns any Exception
    raised while reading into a 400, on its way out to BodyLimit."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body over {limit} bytes")
        self.limit = limit
