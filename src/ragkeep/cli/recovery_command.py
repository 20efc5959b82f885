"""`ragkeep backup`, `backup list`, `backup prune`, `restore`, `rollback` and `reembed`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from ragkeep.cli.help import PlainHelpCommand

if TYPE_CHECKING:
    from ragkeep.config.settings import LoadedSettings
    from ragkeep.keep import Keep
    from ragkeep.models.backups import RestoreReport
    from ragkeep.store.backups import BackupShelf

T = TypeVar("T")

# Its help is the callback's docstring: `ragkeep backup` alone makes a backup.
backup_app = typer.Typer(invoke_without_command=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]


def register(app: typer.Typer) -> None:
    app.add_typer(backup_app, name="backup")
    app.command(cls=PlainHelpCommand)(restore)
    app.command(cls=PlainHelpCommand)(rollback)
    app.command(cls=PlainHelpCommand)(reembed)


@backup_app.callback()
def backup(
    ctx: typer.Context,
    to: Annotated[
        Path | None,
        typer.Option(
            "--to",
            metavar="FOLDER",
            help="Write the backup to this new folder (e.g. on another disk) instead of the "
            "backups dir; such backups are not pruned.",
        ),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Back up the index (consistent, checksummed) while searches and writes go on.

    Without a subcommand, makes a backup in the backups dir (setting backup.dir, default
    DATA_DIR/backups) and keeps the newest backup.keep of them. `backup list` shows them,
    `ragkeep restore ID` brings one back (docs/recovery.md).
    """
    if ctx.invoked_subcommand is not None:
        return
    from ragkeep.cli import output

    manifest = _run(lambda keep: keep.recovery.backup(to))
    if json_:
        output.print_json(manifest)
        return
    where = to if to is not None else manifest.id
    output.info(
        f"backup {where}: {manifest.documents} document(s), generation {manifest.generation}, "
        f"{output.megabytes(manifest.size_bytes)}; `ragkeep restore {where}` brings it back"
    )


@backup_app.command("list", cls=PlainHelpCommand)
def backup_list(json_: JsonOpt = False) -> None:
    """The backups in the backups dir, newest first, with why each was made."""
    from ragkeep.cli import output

    entries = _shelf().entries()  # the index is not opened: this works when it is damaged
    if json_:
        output.print_json(entries)
        return
    output.backups(entries)


@backup_app.command("prune", cls=PlainHelpCommand)
def backup_prune(
    keep_n: Annotated[
        int | None,
        typer.Option("--keep", min=0, help="How many to keep. Default: setting backup.keep."),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Delete all but the newest backups, and any a killed run left incomplete."""
    from ragkeep.cli import output

    shelf = _shelf()
    removed = shelf.prune(shelf.keep if keep_n is None else keep_n)
    if json_:
        output.print_json({"removed": removed})
    else:
        output.info(
            f"removed {len(removed)} backup(s)" + (f": {', '.join(removed)}" if removed else "")
        )


def restore(
    backup_ref: Annotated[
        str,
        typer.Argument(metavar="ID|FOLDER", help="A backup id (`ragkeep backup list`) or folder."),
    ],
    json_: JsonOpt = False,
) -> None:
    """Replace the index by a backup, after checking its checksum.

    Searches running meanwhile finish on the old index, later ones see the restored one. The
    index it replaces is kept as a backup first; restoring that one undoes the restore. An
    index too damaged to open is renamed (kept) and the backup restored in its place.
    """
    _restore(backup_ref, json_)


def _restore(ref: str | None, json_: bool) -> None:
    """Restore `ref`, or roll back when None."""
    with _open_or_set_aside(ref) as keep:
        wait = _waiting(keep)
        if ref is None:
            report = keep.recovery.rollback(wait)
        else:
            report = keep.recovery.restore(ref, on_wait=wait)
    _restored(report, json_)


def _open_or_set_aside(ref: str | None) -> Keep:
    """The index, open. One too damaged to open cannot be kept as a backup: once the backup
    to restore is known to be good, it is renamed instead (never deleted), and the backup is
    restored into a new, empty index."""
    from ragkeep.cli import output
    from ragkeep.cli.app import _fail, open_keep
    from ragkeep.store import set_aside_damaged
    from ragkeep.store.backups import read_backup
    from ragkeep.store.base import NotAnIndexError, StoreCorruptError

    try:
        return open_keep(corrupt_ok=True)
    except NotAnIndexError as exc:  # another program's file: never moved
        _fail(str(exc))
    except StoreCorruptError as exc:
        damaged = exc
    config = _settings()
    shelf = _shelf(config)
    if ref is None:
        shelf.latest_snapshot()
    else:
        read_backup(shelf.locate(ref))
    moved = set_aside_damaged(config.settings.store, config.data_dir)
    output.info(
        f"the index cannot be opened ({type(damaged.__cause__ or damaged).__name__}): "
        f"moved it to {moved}, restoring the backup into a new index"
    )
    return open_keep()


def rollback(json_: JsonOpt = False) -> None:
    """Return to the latest snapshot: the one taken before the last migration, re-embed,
    repair, removal of a source, sync --snapshot or backup.

    A restore's own backups are skipped, so repeating rollback does not toggle between two
    states; `ragkeep restore ID` returns to any backup.
    """
    _restore(None, json_)


def reembed(json_: JsonOpt = False) -> None:
    """Embed every chunk again with the model this ragkeep uses (after a model change).

    The index is snapshotted first. The result must pass doctor's checks, a self-retrieval
    check and the optional query set (backup.validation_queries); otherwise the snapshot comes
    back by itself and the command exits 1 saying why.
    """
    from ragkeep.cli import output
    from ragkeep.cli.app import open_keep, state

    with open_keep(reembedding=True) as keep, output.counter("re-embedded", not state.quiet) as bar:
        report = keep.recovery.reembed(bar, on_wait=_waiting(keep))
    if json_:
        output.print_json(report)
    else:
        output.reembed(report)
    raise typer.Exit(1 if report.rolled_back else 0)


def _restored(report: RestoreReport, json_: bool) -> None:
    from ragkeep.cli import output

    if json_:
        output.print_json(report)
        return
    m = report.restored
    output.info(
        f"restored backup {m.id} ({m.reason}; {m.documents} document(s)); the index is now "
        f"generation {report.generation}"
    )
    if report.replaced is not None:
        output.info(
            f"the index it replaced is backup {report.replaced.id}: "
            f"`ragkeep restore {report.replaced.id}` undoes this"
        )
    else:
        output.info("the index it replaced was damaged and could not be kept as a backup")


def _settings() -> LoadedSettings:
    from ragkeep.cli.app import _fail, state
    from ragkeep.config.settings import ConfigError, load_settings

    try:
        return load_settings(state.data_dir, state.config_file, state.overrides)
    except ConfigError as exc:
        _fail(str(exc))


def _shelf(config: LoadedSettings | None = None) -> BackupShelf:
    """The backups dir, from the settings alone: listing and pruning never open the index."""
    from ragkeep.services.recovery import backups_dir
    from ragkeep.store.backups import BackupShelf

    config = config or _settings()
    backup = config.settings.backup
    return BackupShelf(backups_dir(backup, config.data_dir), backup.keep)


def _run(action: Callable[[Keep], T]) -> T:
    from ragkeep.cli.app import open_keep

    with open_keep() as keep:
        return action(keep)


def _waiting(keep: Keep) -> Callable[[], None]:
    from ragkeep.cli.app import _waiting_for

    return _waiting_for(keep)
