"""SQLite errors a user can act on, turned into typed StoreErrors with one-line messages.

Every public store method reads and writes through `SqliteStore.read`/`write`/`snapshot`,
which call `translate` on a `sqlite3.Error`: a busy, full, read-only or damaged database
becomes a StoreError subclass that says what happened and what to do. Anything else (a
malformed statement: a bug) is returned as None and re-raised unchanged.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from ragkeep.store.base import (
    StoreBusyError,
    StoreCorruptError,
    StoreError,
    StoreFullError,
    StoreReadOnlyError,
)

_MB = 1024 * 1024
# With a size limit set, less free disk than this means the disk may be what filled up.
_DISK_LOW_BYTES = 64 * _MB
_CORRUPT_VTAB = 267  # SQLITE_CORRUPT_VTAB: the full-text index, which doctor can rebuild
NOTHING_LOST = "the transaction was rolled back, nothing was half-written"


@dataclass(frozen=True, slots=True)
class ErrorContext:
    """What the store was doing, for the message."""

    path: Path  # the database file
    max_size_mb: float = 0.0  # store.max_size_mb (0: no limit)
    opening: bool = False  # the error came while opening the index (doctor cannot run)
    kept: str = NOTHING_LOST  # what stayed as it was


def translate(exc: sqlite3.Error, ctx: ErrorContext) -> StoreError | None:
    """The StoreError for `exc`, or None when it is not a condition of the database."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if code is not None else _code_from_text(str(exc))
    if primary in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return StoreBusyError(f"{ctx.path} is busy: {exc} (setting store.lock_timeout_s)")
    if primary == sqlite3.SQLITE_FULL:
        return StoreFullError(full_message(ctx, _disk_free(ctx.path)))
    if primary == sqlite3.SQLITE_READONLY:
        return StoreReadOnlyError(read_only_message(ctx.path))
    if primary == sqlite3.SQLITE_CANTOPEN and _on_read_only_fs(ctx.path):
        return StoreReadOnlyError(
            f"{ctx.path} is on a read-only disk: ragkeep cannot open it there (SQLite needs to "
            f"create {ctx.path.name}-shm beside it); remount the disk read-write, or copy the "
            "data dir to a writable disk and use --data-dir"
        )
    if primary in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return StoreCorruptError(corrupt_message(ctx, str(exc), code == _CORRUPT_VTAB))
    return None


def full_message(ctx: ErrorContext, free_bytes: int | None) -> str:
    if ctx.max_size_mb > 0 and (free_bytes is None or free_bytes >= _DISK_LOW_BYTES):
        what = (
            f"{ctx.path} reached its size limit (store.max_size_mb = {ctx.max_size_mb:g}): "
            "raise the limit or free space in the index (ragkeep remove, ragkeep gc)"
        )
    elif ctx.max_size_mb > 0:
        what = (
            f"the disk holding {ctx.path} is full, or store.max_size_mb "
            f"({ctx.max_size_mb:g}) was reached: free space or raise the limit"
        )
    else:
        what = f"the disk holding {ctx.path} is full: free space"
    return f"{what}, then run `ragkeep sync` to finish; {ctx.kept}"


def read_only_message(path: Path) -> str:
    return (
        f"{path} is read-only (its permissions, its folder's, or a read-only disk): searches "
        "work but add, sync and remove cannot write; make the file and its folder writable "
        "for this user, then run again"
    )


def corrupt_message(ctx: ErrorContext, reason: str, fts_only: bool) -> str:
    if fts_only:
        return (
            f"the full-text index in {ctx.path} is damaged ({reason}): run "
            "`ragkeep doctor --repair` to rebuild it from the stored chunks"
        )
    where = f"delete {ctx.path} and re-add your folders (ragkeep add)"
    if ctx.opening:
        return (
            f"{ctx.path} cannot be opened as a ragkeep index ({reason}): restore a backup, "
            f"or {where}"
        )
    return (
        f"{ctx.path} is damaged ({reason}): run `ragkeep doctor` for details; restore a "
        f"backup, or {where}"
    )


def data_dir_error(exc: OSError, data_dir: Path) -> StoreError:
    """The data dir cannot be made into a folder: one line naming it and what to do."""
    if data_dir.exists() and not data_dir.is_dir():
        return StoreError(
            f"the data dir {data_dir} is a file, not a folder: pass another --data-dir "
            "(or RAGKEEP_HOME), or move the file away"
        )
    reason = exc.strerror or str(exc)
    return StoreError(
        f"cannot create the data dir {data_dir} ({reason}): pass a --data-dir (or "
        "RAGKEEP_HOME) in a folder you can write to"
    )


def derived_write_failed(exc: OSError, path: Path, fallback: str) -> str:
    """A warning for a derived file that could not be written: the database is unaffected,
    and `fallback` says what searches do instead."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"the disk holding {path} is full, so it was not written: {fallback}; free space"
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"{path} cannot be written ({exc.strerror}): {fallback}"
    return f"could not write {path} ({exc}): {fallback}"


def derived_full_error(exc: OSError, path: Path) -> StoreError:
    """For a derived file written on request (doctor --repair): a typed error."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StoreFullError(
            f"the disk holding {path} is full: free space, then run `ragkeep doctor --repair` "
            "again; searches use exact search from the database meanwhile"
        )
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return StoreReadOnlyError(f"{path} cannot be written ({exc.strerror})")
    return StoreError(f"could not write {path}: {exc}")


def _code_from_text(text: str) -> int | None:
    # Only for sqlite3 errors that carry no code (raised by the module, not by SQLite).
    for needle, code in (
        ("locked", sqlite3.SQLITE_BUSY),
        ("busy", sqlite3.SQLITE_BUSY),
        ("disk is full", sqlite3.SQLITE_FULL),
        ("readonly", sqlite3.SQLITE_READONLY),
        ("malformed", sqlite3.SQLITE_CORRUPT),
        ("not a database", sqlite3.SQLITE_NOTADB),
    ):
        if needle in text:
            return code
    return None


def _disk_free(path: Path) -> int | None:
    try:
        return shutil.disk_usage(path.parent).free
    except OSError:
        return None


def _on_read_only_fs(path: Path) -> bool:
    try:
        return bool(os.statvfs(path.parent).f_flag & os.ST_RDONLY)
    except OSError:
        return False
