"""`ragkeep log-level`: show or change the log level of a running `ragkeep serve`."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer

from ragkeep.cli.remote import TokenOpt, error_message, server_client

DEFAULT_URL = "http://127.0.0.1:8765"


class Level(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


def register(app: typer.Typer) -> None:
    app.command("log-level")(log_level)


def log_level(
    level: Annotated[
        Level | None,
        typer.Argument(
            metavar="[LEVEL]",
            case_sensitive=False,
            help="DEBUG, INFO, WARNING or ERROR. Without it: show the level.",
        ),
    ] = None,
    url: Annotated[
        str, typer.Option("--url", help="The server, e.g. http://127.0.0.1:8765.")
    ] = DEFAULT_URL,
    token: TokenOpt = None,
    json_: Annotated[
        bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")
    ] = False,
) -> None:
    """Show or change the log level of a running server, without restarting it.

    The change lasts until the server stops; the setting `logging.level` applies at the next
    start. The server logs the change as a warning. See docs/logging.md.
    """
    from ragkeep.cli import output

    body = {"level": level.value} if level is not None else None
    status = _call(url.rstrip("/"), token, body)
    if json_:
        output.print_json(status)
        return
    if level is not None:
        output.info(f"log level changed to {status['level']}")
        return
    typer.echo(
        f"level {status['level']}, format {status['format']}, sample rate "
        f"{status['sample_rate']}, {status['queued']} queued, "
        f"{status['dropped_records']} record(s) dropped"
    )


def _call(base: str, token: str | None, body: dict[str, str] | None) -> Any:
    """GET (or with a body, PUT) /api/logging; exit 1 with one line when that fails."""
    import httpx

    from ragkeep.cli import output

    try:
        with server_client(base, token) as client:
            if body is None:
                response = client.get("/api/logging")
            else:
                response = client.put("/api/logging", json=body)
    except httpx.HTTPError as exc:
        output.error(f"cannot reach the server at {base}: {exc}")
        raise typer.Exit(1) from None
    if response.status_code != 200:
        message = error_message(response)
        output.error(f"the server at {base} answered {response.status_code}: {message}")
        raise typer.Exit(1)
    return response.json()
