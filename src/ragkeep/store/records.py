"""Rows as the store hands them out and takes them in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from ragkeep.models import DocumentInfo

OrderKey = tuple[str, int]  # (document path, chunk ordinal): where a chunk lives


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

    @classmethod
    def from_row(cls, r: Sequence[Any]) -> DocumentRow:
        """From (id, path, title, size, mtime_ns, inode, content_hash, chunk_count,
        indexed_at), the columns every backend selects."""
        return cls(
            id=int(r[0]),
            path=str(r[1]),
            title=str(r[2]),
            stamp=FileStamp(size=int(r[3]), mtime_ns=int(r[4]), inode=int(r[5])),
            content_hash=str(r[6]),
            chunk_count=int(r[7]),
            indexed_at=float(r[8]),
        )

    def info(self) -> DocumentInfo:
        """What `ragkeep list` and the API show of it."""
        from ragkeep.models import DocumentInfo

        return DocumentInfo(
            doc_id=self.id,
            path=self.path,
            title=self.title,
            size=self.stamp.size,
            chunks=self.chunk_count,
            indexed_at=self.indexed_at,
        )


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


@dataclass(frozen=True, slots=True)
class VectorTable:
    """The vectors of every chunk: one matrix row per distinct vector, `rows[i]` the row of
    chunk `ids[i]`. Chunks with the same text share a row, so they always score exactly the
    same (BLAS may round two equal rows differently depending on where they sit)."""

    ids: npt.NDArray[np.int64]
    rows: npt.NDArray[np.int64]
    matrix: npt.NDArray[np.float32]

    def per_chunk(self) -> npt.NDArray[np.float32]:
        """One row per chunk, in `ids` order."""
        out: npt.NDArray[np.float32] = self.matrix[self.rows]
        return out


@dataclass(frozen=True, slots=True)
class ExportedDocument:
    """A document as another store takes it in: no text is re-embedded on the way."""

    document: NewDocument
    chunks: list[NewChunk]
    vectors: dict[str, bytes]  # text hash -> the current model's vector
