"""Building blocks for the contract tests: documents, chunks and unit vectors."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ragkeep.store import FileStamp, NewChunk, NewDocument, Store

MODEL = "contract-model"
DIM = 4

OpenStore = Callable[..., Store]  # open_store for the backend under test: (model=, dim=)


def doc(path: str, content: str = "h", source: str | None = None) -> NewDocument:
    return NewDocument(path, "title", FileStamp(1, 2, 3), content, source)


def chunk(i: int, text: str) -> NewChunk:
    return NewChunk(i, text, f"hash-{text}", 0, len(text), None, 3)


def vec(*values: float) -> bytes:
    v = np.array(values + (0.0,) * (DIM - len(values)), dtype=np.float32)
    v /= np.linalg.norm(v)
    return v.tobytes()


def put(store: Store, path: str, chunks: dict[str, bytes | None]) -> int:
    """Index document `path` with these chunk texts and their vectors (None: the text is
    already stored, so it needs none); returns the new generation."""
    drafts = [chunk(i, text) for i, text in enumerate(chunks)]
    vectors = {f"hash-{t}": v for t, v in chunks.items() if v is not None}
    return store.replace_document(doc(path, content="|".join(chunks)), drafts, vectors)


def query(*values: float) -> np.ndarray:
    return np.frombuffer(vec(*values), dtype=np.float32)
