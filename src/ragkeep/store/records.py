"""Rows as the store hands them out and takes them in."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FileStamp:
    """What `sync` compares to decide whether a file may have changed without reading it."""

    size: int
    mtime_ns: int
    inode: int


@dataclass(frozen=True, slots=True)
class DocumentRow:
    id: int
    path: str
    title: str
    stamp: FileStamp
    content_hash: str
    chunk_count: int
    indexed_at: float


@dataclass(frozen=True, slots=True)
class NewDocument:
    path: str
    title: str
    stamp: FileStamp
    content_hash: str
    source_path: str | None


@dataclass(frozen=True, slots=True)
class NewChunk:
    ordinal: int
    text: str
    text_hash: str
    start: int
    end: int
    page: int | None
    tokens: int


@dataclass(frozen=True, slots=True)
class ChunkRow:
    id: int
    doc_id: int
    path: str
    title: str
    text: str
    start: int
    end: int
    page: int | None
