"""The embedder contract the rest of ragkeep relies on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Vectors = npt.NDArray[np.float32]


class EmbedderError(Exception):
    """The embedding model could not be loaded or run."""


class EmbedderUnavailableError(EmbedderError):
    """A search needed the embedder and it failed, timed out or its breaker is open.
    Hybrid searches fall back to BM25 instead of raising this; dense ones cannot."""


class Tokenizer(Protocol):
    def count(self, text: str) -> int:
        """Tokens the model sees for `text`, special tokens excluded."""

    def offsets(self, text: str) -> list[tuple[int, int]]:
        """Character span of every token of `text` (special tokens excluded)."""


class Embedder(Protocol):
    @property
    def model_id(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    @property
    def max_tokens(self) -> int:
        """The model's window, special tokens included."""

    @property
    def tokenizer(self) -> Tokenizer: ...

    def embed(self, texts: Sequence[str]) -> Vectors:
        """L2-normalised float32 vectors, one row per text, in input order."""

    def close(self) -> None: ...
