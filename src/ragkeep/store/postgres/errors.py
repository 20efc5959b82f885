"""PostgreSQL errors in the store's words: one line that says what happened and what to do."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ragkeep.store.base import (
    StoreBusyError,
    StoreError,
    StoreFullError,
    StoreReadOnlyError,
)

if TYPE_CHECKING:
    import psycopg

# SQLSTATE codes (PostgreSQL's errcodes appendix).
_BUSY = {"55P03", "40P01", "40001"}  # lock_not_available, deadlock_detected, serialization
_FULL = {"53100", "53200", "54000"}  # disk_full, out_of_memory, program_limit_exceeded
_READ_ONLY = {"25006", "42501"}  # read_only_sql_transaction, insufficient_privilege


def translate(exc: psycopg.Error, location: str, kept: str) -> StoreError:
    """The StoreError a psycopg error means (`kept`: what stays as it was)."""
    import psycopg

    state = getattr(exc, "sqlstate", None) or ""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if state in _BUSY:
        return StoreBusyError(
            f"{location} is busy: another writer kept a lock past the deadline ({first}); "
            f"{kept}; try again (setting store.lock_timeout_s)"
        )
    if state in _FULL:
        return StoreFullError(f"{location} is out of space ({first}); {kept}")
    if state in _READ_ONLY:
        return StoreReadOnlyError(
            f"{location} cannot be written ({first}); a read-only replica or a user without "
            "write rights can search but not add, sync or remove"
        )
    if isinstance(exc, psycopg.OperationalError):
        return StoreError(f"cannot reach PostgreSQL at {location}: {first}; {kept}")
    return StoreError(f"{location}: {first}; {kept}")
