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
from ragkeep.store.url import parse_store_url, sqlite_path

if TYPE_CHECKING:
    from ragkeep.config.settings import StoreSettings
    from ragkeep.store.backups import BackupShelf

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


def set_aside_damaged(settings: StoreSettings, data_dir: Path) -> Path:
    """Move an index that cannot be opened out of the way (renamed, never deleted), under
    the writer lock, so `restore` can bring a backup into its place; returns where it went."""
    from ragkeep.store.sqlite.backup import set_aside
    from ragkeep.store.sqlite.store import DB_FILE_NAME, WRITER_LOCK
    from ragkeep.store.sqlite.writer_lock import WriterLock

    try:
        path = sqlite_path(settings.url, data_dir, DB_FILE_NAME)
    except ValueError:
        raise StoreError(
            "a PostgreSQL index is never set aside: `ragkeep restore` replaces its contents "
            "in place"
        ) from None
    with WriterLock(path.parent / WRITER_LOCK, settings.writer_timeout_s, 30.0).hold(None):
        return set_aside(path)


def open_store(
    settings: StoreSettings,
    data_dir: Path,
    *,
    model_id: str,
    dimension: int,
    slow_write_s: float = 30.0,
    shelf: BackupShelf | None = None,
    accept_model_change: bool = False,
) -> Store:
    """Open (creating and migrating if needed) the store that `store.url` names.

    `slow_write_s` is resources.slow_write_s: writes slower than it are logged as warnings.
    `shelf` takes the snapshot before a schema migration. `accept_model_change` opens an
    index built with another embedding model, to re-embed it.
    A file that is damaged or not a ragkeep index raises StoreCorruptError (one line)."""
    from ragkeep.store.sqlite.store import DB_FILE_NAME, SqliteStore

    location = parse_store_url(settings.url, data_dir, DB_FILE_NAME)
    if location.path is None:
        return _open_postgres(
            location.url, settings, model_id, dimension, slow_write_s, accept_model_change
        )
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
        shelf=shelf,
        accept_model_change=accept_model_change,
    )


def _open_postgres(
    url: str,
    settings: StoreSettings,
    model_id: str,
    dimension: int,
    slow_write_s: float,
    accept_model_change: bool,
) -> Store:
    import importlib.util

    missing = [
        m for m in ("psycopg", "psycopg_pool", "pgvector") if not importlib.util.find_spec(m)
    ]
    if missing:
        raise StoreError(
            f"store.url names PostgreSQL, which needs the postgres extra ({missing[0]} is "
            "missing): pip install 'ragkeep[postgres]'"
        )
    from ragkeep.store.postgres.store import PostgresStore

    return PostgresStore(
        url,
        model_id=model_id,
        dimension=dimension,
        pool_size=settings.pool_size,
        connect_timeout_s=settings.connect_timeout_s,
        lock_timeout_s=settings.lock_timeout_s,
        writer_timeout_s=settings.writer_timeout_s,
        ef_search=settings.hnsw_ef_search,
        slow_write_s=slow_write_s,
        accept_model_change=accept_model_change,
    )
