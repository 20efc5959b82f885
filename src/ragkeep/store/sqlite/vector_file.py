"""A derived, memory-mapped copy of the vector matrix, so a new process need not read every
vector out of SQLite before its first dense search.

Like the ANN index it is never trusted blindly. One file holds a JSON header and the arrays;
the header names the committed state it was made from (`state_id`, a random token the store
replaces in every commit), the model, the array sizes and a CRC-32 of the arrays. It is used
only when all of them match the snapshot being searched; anything else (stale, another or a
restored database, damaged, half-written) means the vectors are read from SQLite as before
and the file is rewritten. It is written to a temp file and renamed, so a reader sees a
whole file or the old one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import mmap
import os
import struct
import tempfile
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ragkeep.store.records import VectorTable
from ragkeep.store.sqlite.errors import derived_write_failed

if TYPE_CHECKING:
    from ragkeep.models import DerivedState

log = logging.getLogger(__name__)

DERIVED_DIR = "derived"  # files rebuilt from the database; safe to delete
_MAGIC = b"RKVEC1\n"
_ALIGN = 64  # arrays start on a 64-byte boundary


@dataclass(frozen=True, slots=True)
class VectorFileHeader:
    state_id: str
    generation: int  # for people reading the header; the state_id is what is matched
    model_id: str
    dimension: int
    chunks: int  # entries in ids and rows
    vectors: int  # rows of the matrix
    crc32: int  # of everything after the header


class VectorFile:
    def __init__(self, directory: Path, model_id: str, dimension: int) -> None:
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in model_id)
        self.path = directory / f"vectors-{safe}.bin"
        self.model_id = model_id
        self.dimension = dimension

    def load(self, state_id: str) -> VectorTable | None:
        """The vectors of exactly this committed state, or None."""
        data = self._map()
        if data is None:
            return None
        header, offset = _read_header(data)
        if header is None or not self._matches(header, state_id):
            return None
        if not _intact(data, header, offset):
            log.warning("%s is damaged; reading vectors from the database", self.path)
            return None
        return _arrays(data, offset, header)

    def save(self, table: VectorTable, state_id: str, generation: int) -> None:
        """Best effort: a failure only means the next process reads SQLite again."""
        payload = [_padded(a.tobytes()) for a in (table.ids, table.rows, table.matrix)]
        header = VectorFileHeader(
            state_id=state_id,
            generation=generation,
            model_id=self.model_id,
            dimension=self.dimension,
            chunks=len(table.ids),
            vectors=len(table.matrix),
            crc32=_crc(payload),
        )
        tmp = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".vectors-", suffix=".tmp")
            with os.fdopen(fd, "wb") as fh:
                fh.write(_header_bytes(header))
                for part in payload:
                    fh.write(part)
            os.replace(tmp, self.path)
            tmp = None
        except OSError as exc:
            fallback = "searches read vectors from the database (slower to start)"
            log.warning("%s", derived_write_failed(exc, self.path, fallback))
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    def state(self, state_id: str) -> DerivedState:
        """The file against the given committed state (what `doctor` reports)."""
        from ragkeep.models import DerivedState

        data = self._map()
        if data is None:
            return DerivedState.DAMAGED if self.path.exists() else DerivedState.MISSING
        header, offset = _read_header(data)
        if header is None or not _intact(data, header, offset):
            return DerivedState.DAMAGED
        return DerivedState.FRESH if self._matches(header, state_id) else DerivedState.STALE

    def delete(self) -> None:
        self.path.unlink(missing_ok=True)

    def _map(self) -> mmap.mmap | None:
        try:
            with open(self.path, "rb") as fh:
                return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):  # missing, unreadable, or empty (nothing to map)
            return None

    def _matches(self, header: VectorFileHeader, state_id: str) -> bool:
        return (
            header.state_id == state_id
            and header.model_id == self.model_id
            and header.dimension == self.dimension
        )


def _padded(raw: bytes) -> bytes:
    return raw + b"\0" * (-len(raw) % _ALIGN)


def _crc(parts: list[bytes]) -> int:
    crc = 0
    for part in parts:
        crc = zlib.crc32(part, crc)
    return crc


def _header_bytes(header: VectorFileHeader) -> bytes:
    text = json.dumps(asdict(header)).encode()
    head = _MAGIC + struct.pack("<I", len(text)) + text
    return _padded(head)


def _read_header(data: bytes | mmap.mmap) -> tuple[VectorFileHeader | None, int]:
    start = len(_MAGIC) + 4
    if len(data) < start or data[: len(_MAGIC)] != _MAGIC:
        return None, 0
    (length,) = struct.unpack("<I", data[len(_MAGIC) : start])
    try:
        fields = json.loads(bytes(data[start : start + length]))
        header = VectorFileHeader(**fields)
    except (ValueError, TypeError):
        return None, 0
    end = start + length
    return header, end + (-end % _ALIGN)


def _intact(data: mmap.mmap, header: VectorFileHeader, offset: int) -> bool:
    if len(data) != offset + sum(_layout(header)):
        return False
    return zlib.crc32(memoryview(data)[offset:]) == header.crc32


def _layout(header: VectorFileHeader) -> list[int]:
    """Padded byte sizes of ids, rows and matrix."""
    raw = [8 * header.chunks, 8 * header.chunks, 4 * header.vectors * header.dimension]
    return [n + (-n % _ALIGN) for n in raw]


def _arrays(data: mmap.mmap, offset: int, header: VectorFileHeader) -> VectorTable:
    import numpy as np

    id_size, row_size, _ = _layout(header)
    n = header.chunks
    return VectorTable(
        ids=np.frombuffer(data, dtype=np.int64, count=n, offset=offset),
        rows=np.frombuffer(data, dtype=np.int64, count=n, offset=offset + id_size),
        matrix=np.frombuffer(
            data,
            dtype=np.float32,
            count=header.vectors * header.dimension,
            offset=offset + id_size + row_size,
        ).reshape(header.vectors, header.dimension),
    )
