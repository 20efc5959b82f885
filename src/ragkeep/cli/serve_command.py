"""`ragkeep serve`: the HTTP API and the web page."""

from __future__ import annotations

import logging
import signal
from typing import Annotated

import typer

GRACEFUL_SHUTDOWN_S = 10  # open streams get this long to end after SIGTERM / Ctrl-C
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def register(app: typer.Typer) -> None:
    app.command()(serve)


def serve(
    host: Annotated[
        str | None,
        typer.Option("--host", help="Address to bind. Default: server.host (127.0.0.1)."),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", min=0, max=65535, help="TCP port. Default: server.port (8765)."),
    ] = None,
) -> None:
    """Serve the HTTP API (OpenAPI at /docs) and the web page.

    Binds 127.0.0.1 unless told otherwise; any other address needs an auth token
    (RAGKEEP_SERVER__TOKEN). Stop with Ctrl-C or SIGTERM: the running sync stops between
    two documents and the index stays consistent.
    """
    from ragkeep.cli.app import _fail, open_keep, state

    keep = open_keep()
    cfg = keep.settings.server
    bind = host or cfg.host
    try:
        from ragkeep.server.security import BindError, check_bind

        check_bind(bind, cfg.token is not None)
    except BindError as exc:
        keep.close()
        _fail(str(exc))
    import uvicorn

    from ragkeep.observability.logs import QueryStringFilter
    from ragkeep.server.app import create_app

    # uvicorn's loggers go through ragkeep's queue like every other: no handlers or levels
    # of their own, so `ragkeep log-level` also switches its access log (INFO) on and off.
    logging.getLogger("uvicorn.access").addFilter(QueryStringFilter())
    config = uvicorn.Config(
        create_app(keep, bind_host=bind),
        host=bind,
        port=cfg.port if port is None else port,
        log_config=None,
        log_level=None,
        access_log=True,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        server_header=False,
    )
    server = uvicorn.Server(config)
    if not state.quiet:
        shown = f"[{bind}]" if ":" in bind else bind
        typer.echo(f"ragkeep serving {keep.data_dir} on http://{shown}:{config.port}/", err=True)
    # uvicorn handles SIGTERM and Ctrl-C itself (graceful shutdown, then the job queue stops
    # between two documents), and afterwards re-raises the signal under the handler that was
    # there before: these, so that the index is closed and the exit is a clean 0.
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in STOP_SIGNALS}
    try:
        server.run()
    except SystemExit:  # uvicorn exits this way when it cannot start, e.g. the port is taken
        if server.started:
            raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        keep.close()
    if not server.started:
        _fail(f"could not listen on {bind}:{config.port} (is the port taken?)")
    if not state.quiet:
        typer.echo("ragkeep server stopped; the index is consistent", err=True)
