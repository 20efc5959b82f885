"""`ragkeep migrate --to URL`: copy the index to another store, either backend."""

from __future__ import annotations

from typing import Annotated

import typer

from ragkeep.cli.help import PlainHelpCommand


def register(app: typer.Typer) -> None:
    app.command(cls=PlainHelpCommand)(migrate)


def migrate(
    to: Annotated[
        str,
        typer.Option(
            "--to",
            metavar="URL",
            help="The store to copy the index into, which must be empty: "
            "postgresql://USER@HOST:PORT/DATABASE, or sqlite:////ABSOLUTE/PATH.db.",
        ),
    ],
    json_: Annotated[
        bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")
    ] = False,
) -> None:
    """Copy the index to another store (SQLite to PostgreSQL or back) without re-embedding.

    Documents, chunks, vectors, sources and flags are copied from one snapshot while add,
    sync and remove wait. The copy is then verified: the same documents and counts,
    doctor's checks, and a fixed query set (backup.validation_queries plus sampled chunk
    texts) whose BM25 and dense top 10 must agree. Exit 1 when verification fails. The
    index itself is not changed: point store.url at the copy to use it (docs/scale-out.md).
    """
    from ragkeep.cli import output
    from ragkeep.cli.app import _fail, _waiting_for, open_keep, state

    with open_keep() as keep, output.counter("copied", not state.quiet) as bar:
        try:
            report = keep.migration.migrate_to(to, bar, on_wait=_waiting_for(keep))
        except ValueError as exc:  # a target that is not empty, a URL of no store
            _fail(str(exc))
    if json_:
        output.print_json(report)
    else:
        output.migration(report)
    raise typer.Exit(0 if report.ok else 1)
