"""Data passed between the layers: plain frozen dataclasses, no behaviour beyond conversion."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class SearchMode(StrEnum):
    HYBRID = "hybrid"
    BM25 = "bm25"
    DENSE = "dense"


@dataclass(frozen=True, slots=True)
class PageSpan:
    """Where a page of a paged document (PDF) starts and ends in the document's text."""

    page: int  # 1-based
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class LoadedDocument:
    """A parsed document: its plain text, a title, and page spans for paged formats."""

    text: str
    title: str
    pages: tuple[PageSpan, ...] = ()
    warnings: tuple[str, ...] = ()

    def page_at(self, offset: int) -> int | None:
        for span in self.pages:
            if span.start <= offset < span.end:
                return span.page
        return self.pages[-1].page if self.pages and offset >= self.pages[-1].end else None


@dataclass(frozen=True, slots=True)
class ChunkDraft:
    """A chunk before it is stored: text plus its place in the document."""

    ordinal: int
    text: str
    start: int
    end: int
    page: int | None
    token_count: int


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
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Citation:
    number: int  # the [n] used in the answer
    path: str
    title: str
    page: int | None
    chunk_id: int
    text: str

    def label(self) -> str:
        return f"{self.path} (p. {self.page})" if self.page is not None else self.path

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Answer:
    question: str
    text: str
    citations: tuple[Citation, ...]
    mode: str  # "llm" or "passages"
    notice: str | None = None  # why there is no LLM answer, when there is none
    model: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.text,
            "mode": self.mode,
            "notice": self.notice,
            "model": self.model,
            "citations": [c.to_dict() for c in self.citations],
        }


class FileOutcome(StrEnum):
    ADDED = "added"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"
    FAILED = "failed"
    REMOVED = "removed"
    RENAMED = "renamed"


@dataclass(frozen=True, slots=True)
class FileResult:
    path: str
    outcome: FileOutcome
    reason: str | None = None
    chunks: int = 0
    warnings: tuple[str, ...] = ()


@dataclass(slots=True)
class IndexReport:
    """What one add/sync run did, file by file."""

    results: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0
    generation: int = 0

    def count(self, outcome: FileOutcome) -> int:
        return sum(1 for r in self.results if r.outcome is outcome)

    @property
    def ok(self) -> bool:
        return self.count(FileOutcome.FAILED) == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": self.count(FileOutcome.ADDED),
            "updated": self.count(FileOutcome.UPDATED),
            "unchanged": self.count(FileOutcome.UNCHANGED),
            "skipped": self.count(FileOutcome.SKIPPED),
            "failed": self.count(FileOutcome.FAILED),
            "removed": self.count(FileOutcome.REMOVED),
            "renamed": self.count(FileOutcome.RENAMED),
            "seconds": round(self.seconds, 3),
            "generation": self.generation,
            "files": [
                {
                    "path": r.path,
                    "outcome": r.outcome.value,
                    "reason": r.reason,
                    "chunks": r.chunks,
                    "warnings": list(r.warnings),
                }
                for r in self.results
                if r.outcome is not FileOutcome.UNCHANGED
            ],
        }


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    doc_id: int
    path: str
    title: str
    size: int
    chunks: int
    indexed_at: float


@dataclass(frozen=True, slots=True)
class StoreStatus:
    documents: int
    chunks: int
    sources: list[str]
    model_id: str
    dimension: int
    generation: int
    schema_version: int
    database_path: str
    database_bytes: int
    cache: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
