"""`ragkeep health`: the monitoring table, from a running server or from the index."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ragkeep.cli.remote import TokenOpt, error_message, server_client

if TYPE_CHECKING:
    from ragkeep.models.health import HealthReport

CRITICAL_EXIT = 2  # Level.CRITICAL.exit_code, without importing the models at start-up

UrlOpt = Annotated[
    str | None,
    typer.Option(
        "--url",
        help="A running `ragkeep serve`, e.g. http://127.0.0.1:8765: judge its live window. "
        "Without it: the statistics every process recorded in the local index.",
    ),
]


def register(app: typer.Typer) -> None:
    app.command()(health)


def health(
    url: UrlOpt = None,
    token: TokenOpt = None,
    json_: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Error rate, memory, cache hit rate and search p95 against their thresholds.

    Exit 0 while no metric alerts, 1 on an alert, 2 on critical (or when the server cannot
    be reached). Thresholds and the window are the `health.*` settings.
    """
    from ragkeep.cli import output
    from ragkeep.cli.app import open_keep

    if url is not None:
        report, where = fetch_report(url, token), url
    else:
        with open_keep() as keep:
            report, where = keep.health(), str(keep.data_dir)
    if json_:
        output.print_json(report)
    else:
        output.health(report, where)
    raise typer.Exit(report.exit_code)


class ReportUnavailable(Exception):
    """GET /api/health failed; the message says why, `status` is the HTTP status if any."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def fetch_report(url: str, token: str | None) -> HealthReport:
    """GET /api/health; a server that cannot be reached or answers oddly exits 2."""
    from ragkeep.cli import output

    try:
        return request_report(url, token)
    except ReportUnavailable as exc:
        output.error(str(exc))
        raise typer.Exit(CRITICAL_EXIT) from None


def request_report(url: str, token: str | None) -> HealthReport:
    """GET /api/health, or ReportUnavailable (`ragkeep monitor` retries rather than exit)."""
    import httpx

    from ragkeep.models.health import HealthReport

    endpoint = url.rstrip("/") + "/api/health"
    try:
        with server_client(url, token) as client:
            response = client.get("/api/health")
        response.raise_for_status()
        return HealthReport.from_json(response.json())
    except httpx.HTTPStatusError as exc:
        status = exc.response.status_code
        message = f"{endpoint} answered {status}: {error_message(exc.response)}"
        raise ReportUnavailable(message, status) from None
    except httpx.HTTPError as exc:
        raise ReportUnavailable(f"cannot reach {endpoint}: {exc or type(exc).__name__}") from None
    except (ValueError, KeyError, TypeError):
        raise ReportUnavailable(f"{endpoint} did not answer with a health report") from None
