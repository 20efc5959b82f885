"""Where the index lives: the Store protocol and its backends (SQLite today)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ragkeep.store.base import (
    DenseOptions,
    LexicalIndex,
    NotAnIndexError,
    ReadSnapshot,
    Removal,
    Store,
    StoreBusyError,
    StoreCorruptError,
    StoreError,
    StoreFullError,
    StoreReadOnlyError,
)
from ragkeep.store.records import ChunkRow, DocumentRow, FileStamp, NewChunk, NewDocument
from ragkeep.store.url import parse_store_url

if TYPE_CHECKING:
    from ragkeep.config.settings import StoreSettings

__all__ = [
    "ChunkRow",
    "DenseOptions",
    "DocumentRow",
    "FileStamp",
    "LexicalIndex",
    "NewChunk",
    "NewDocument",
    "NotAnIndexError",
    "ReadSnapshot",
    "Removal",
    "Store",
    "StoreBusyError",
    "StoreCorruptError",
    "StoreError",
    "StoreFullError",
    "StoreReadOnlyError",
    "open_store",
]


def open_store(
    settings: StoreSettings,
    data_dir: Path,
    *,
    model_id: str,
    dimension: int,
    slow_write_s: float = 30.0,
) -> Store:
    """Open (creating and migrating if needed) the store that `store.url` names.

    `slow_write_s` is resources.slow_write_s: writes slower than it are logged as warnings.
    A file that is damaged or not a ragkeep index raises StoreCorruptError (one line)."""
    from ragkeep.store.sqlite.store import DB_FILE_NAME, SqliteStore

    location = parse_store_url(settings.url, data_dir, DB_FILE_NAME)

    return SqliteStore(
        location.path,
        model_id=model_id,
        dimension=dimension,
        busy_timeout_ms=settings.busy_timeout_ms,
        synchronous=settings.synchronous,
        lock_timeout_s=settings.lock_timeout_s,
        writer_timeout_s=settings.writer_timeout_s,
        max_size_mb=settings.max_size_mb,
        slow_write_s=slow_write_s,
    )
