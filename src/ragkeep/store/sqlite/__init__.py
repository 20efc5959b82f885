"""The SQLite backend: the default, embedded store (one file, no server to run)."""

from ragkeep.store.sqlite.store import DB_FILE_NAME, SqliteStore

__all__ = ["DB_FILE_NAME", "SqliteStore"]
