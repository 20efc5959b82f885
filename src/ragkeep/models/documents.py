"""Documents as the loaders produce them and as the index lists them."""

from __future__ import annotations

from dataclasses import dataclass


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
class DocumentInfo:
    doc_id: int
    path: str
    title: str
    size: int
    chunks: int
    indexed_at: float


@dataclass(frozen=True, slots=True)
class DocumentChunk:
    """One passage of an indexed document, as `get_document` hands it out."""

    chunk_id: int
    page: int | None
    start: int
    end: int
    text: str


@dataclass(frozen=True, slots=True)
class DocumentContent:
    """An indexed document's passages, in document order."""

    doc_id: int
    path: str
    title: str
    chunks: tuple[DocumentChunk, ...]
