"""Where the index lives: the Store protocol and its backends (SQLite today)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ragkeep.store.base import (
    DenseOptions,
    LexicalIndex,
    ReadSnapshot,
    Removal,
    Store,
    StoreBusyError,
    StoreError,
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
    "ReadSnapshot",
    "Removal",
    "Store",
    "StoreBusyError",
    "StoreError",
    "open_store",
]


def open_store(settings: StoreSettings, data_dir: Path, *, model_id: str, dimension: int) -> Store:
    """Open (creating and migrating if needed) the store that `store.url` names."""
    from ragkeep.store.sqlite.store import DB_FILE_NAME, SqliteStore

    location = parse_store_url(settings.url, data_dir, DB_FILE_NAME)

    return SqliteStore(
        location.path,
        model_id=model_id,
        dimension=dimension,
        busy_timeout_ms=settings.busy_timeout_ms,
        synchronous=settings.synchronous,
        lock_timeout_s=settings.lock_timeout_s,
    )
