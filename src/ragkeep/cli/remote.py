"""Talking to a running `ragkeep serve` from the CLI (`health`, `monitor`, `log-level`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    import httpx

TIMEOUT_S = 10.0

TokenOpt = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="RAGKEEP_SERVER__TOKEN",
        show_envvar=False,
        show_default=False,
        help="The server's bearer token. Default: $RAGKEEP_SERVER__TOKEN.",
    ),
]


def server_client(url: str, token: str | None) -> httpx.Client:
    """A client for the server at `url`, sending the token when there is one."""
    import httpx

    from ragkeep.server.security import is_loopback

    base = url.rstrip("/")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    # A proxy from the environment cannot reach this machine's loopback server.
    local = is_loopback(httpx.URL(base).host)
    return httpx.Client(base_url=base, headers=headers, timeout=TIMEOUT_S, trust_env=not local)


def error_message(response: httpx.Response) -> str:
    """The API's one-line error message, else the start of the body."""
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200] or response.reason_phrase
