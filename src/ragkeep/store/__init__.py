"""Where the index lives: the embedded SQLite store."""

from ragkeep.store.records import ChunkRow, DocumentRow, FileStamp, NewChunk, NewDocument
from ragkeep.store.sqlite import DB_FILE_NAME, SqliteStore, StoreError

__all__ = [
    "DB_FILE_NAME",
    "ChunkRow",
    "DocumentRow",
    "FileStamp",
    "NewChunk",
    "NewDocument",
    "SqliteStore",
    "StoreError",
]
