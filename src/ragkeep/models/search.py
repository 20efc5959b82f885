"""Search requests' modes and their results."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, overload

from ragkeep.models.degradation import Degradation
from ragkeep.models.json import to_json

Phrase = tuple[str, ...]  # words that must appear in this order, next to each other


@dataclass(frozen=True, slots=True)
class LexicalQuery:
    """What BM25 looks for, the same on every backend.

    `scored`: phrases (a single word is a phrase of one) any of which may match; a chunk scores
    for each one it holds, so a chunk holding a whole term ranks above one holding its parts.
    `required`: phrases every hit holds (the user's quoted phrases), in every search mode.
    `exact`: technical terms as typed, case-folded (`rebase-merges`, `os.path.join`); each
    is also a scored phrase. Chunks holding one verbatim rank above the rest.
    """

    scored: tuple[Phrase, ...] = ()
    required: tuple[Phrase, ...] = ()
    exact: tuple[str, ...] = ()

    @classmethod
    def words(cls, *words: str) -> LexicalQuery:
        return cls(scored=tuple((w,) for w in words))

    def __bool__(self) -> bool:
        return bool(self.scored or self.required)


class SearchMode(StrEnum):
    HYBRID = "hybrid"
    BM25 = "bm25"
    DENSE = "dense"


@dataclass(frozen=True, slots=True)
class SearchHit:
    rank: int
    score: float
    doc_id: int
    path: str
    title: str
    chunk_id: int
    text: str
    start: int
    end: int
    page: int | None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = to_json(self)
        return out


@dataclass(frozen=True, slots=True)
class SearchResults(Sequence[SearchHit]):
    """The hits of one search, and any fallback taken to find them. A sequence of hits, so
    code that only wants the hits can iterate, index and take len() as from a list."""

    hits: tuple[SearchHit, ...]
    degraded: tuple[Degradation, ...] = ()

    @overload
    def __getitem__(self, index: int) -> SearchHit: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[SearchHit]: ...
    def __getitem__(self, index: int | slice) -> SearchHit | Sequence[SearchHit]:
        return self.hits[index]

    def __len__(self) -> int:
        return len(self.hits)

    def __json__(self) -> dict[str, Any]:
        return {"hits": self.hits, "degraded": self.degraded}
