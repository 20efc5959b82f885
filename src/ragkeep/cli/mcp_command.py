"""`ragkeep mcp`: serve the index to MCP clients over stdin/stdout.

The MCP SDK is an optional extra and is imported only when this command runs, so the other
commands neither need it nor pay for importing it.
"""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from mcp.server.mcpserver import MCPServer

    from ragkeep.keep import Keep

MISSING_EXTRA = "ragkeep mcp needs the \"mcp\" extra: pip install 'ragkeep[mcp]'"

HELP = """Serve this index to AI assistants over MCP (the Model Context Protocol), on stdio.

An MCP client (Claude Desktop, an editor, an agent) starts this command itself and talks to
it on stdin/stdout; it is not meant to be run by hand. Its tools are search, ask,
get_document, list_sources and status. It reads the same data dir and settings as every
other command (global options such as --data-dir go before `mcp`). stdout carries only the
protocol; logs and errors go to stderr. Stop it by closing its stdin.

For Claude Desktop, add to claude_desktop_config.json:

\b
  {"mcpServers": {"ragkeep": {
      "command": "/full/path/to/ragkeep",
      "args": ["--data-dir", "/full/path/to/data", "mcp"]}}}

Needs the "mcp" extra: pip install 'ragkeep[mcp]'. See docs/mcp.md.
"""


def register(app: typer.Typer) -> None:
    app.command("mcp", help=HELP)(mcp)


def mcp() -> None:
    build_server = _load_sdk()
    from ragkeep.cli.app import open_keep  # here: app.py imports this module

    with open_keep() as keep:
        server = build_server(keep)
        # The SDK reads stdin on a thread that cannot be cancelled, so a KeyboardInterrupt
        # would wait for the next line of input. Let Ctrl-C end the process at once, as
        # SIGTERM does: the server only reads, and SQLite makes any cache write atomic.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        server.run("stdio")


def _load_sdk() -> Callable[[Keep], MCPServer[Any]]:
    """The server factory, or exit 2 with one line naming the extra when the SDK is missing."""
    from ragkeep.cli import output

    try:
        from ragkeep.mcp_server.server import build_server
    except ImportError as exc:
        if (exc.name or "").startswith("ragkeep"):
            raise  # our own bug, not a missing extra
        output.error(MISSING_EXTRA)
        raise typer.Exit(2) from None
    return build_server
