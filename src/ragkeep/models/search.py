"""Search requests' modes and their results."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, overload

from ragkeep.models.degradation import Degradation
from ragkeep.models.json import to_json


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
