"""Search requests' modes and their results."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

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
