"""PDF via pypdf: text per page, joined with blank lines, with page spans for citations."""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ragkeep.ingest.loaders.base import (
    EmptyDocumentError,
    LoaderError,
    first_line,
    pick_title,
    register,
    truncate,
)
from ragkeep.models import LoadedDocument, PageSpan

if TYPE_CHECKING:
    from pypdf import PdfReader

PAGE_SEPARATOR = "\n\n"
_HEADER_WINDOW = 1024  # readers accept junk before %PDF- within the first KiB
_MAX_WARNINGS = 5
_REASON_CHARS = 200


class _WarningCollector:
    """What pypdf logs while one thread loads one PDF."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def add(self, record: logging.LogRecord) -> None:
        message = truncate(record.getMessage().strip(), _REASON_CHARS)
        if message not in self.messages and len(self.messages) < _MAX_WARNINGS:
            self.messages.append(message)


class _PypdfRouter(logging.Handler):
    """The only way out of the "pypdf" logger (which no longer propagates): a record
    logged while its thread loads a PDF becomes that file's warning (in the add/sync
    report, --json included), never a line on stderr; any other goes on to the root
    logger as before. By thread, as other threads may be loading other PDFs meanwhile."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self._lock = threading.Lock()
        self._collecting: dict[int, _WarningCollector] = {}

    def emit(self, record: logging.LogRecord) -> None:
        # Handlers run in the logging thread; record.thread is not used, because the
        # CLI's logging turns logThreads off (it is then None).
        with self._lock:
            collector = self._collecting.get(threading.get_ident())
        if collector is not None:
            collector.add(record)
        else:
            logging.getLogger().handle(record)

    @contextmanager
    def collecting(self) -> Iterator[_WarningCollector]:
        collector = _WarningCollector()
        me = threading.get_ident()
        with self._lock:
            self._collecting[me] = collector
        try:
            yield collector
        finally:
            with self._lock:
                del self._collecting[me]


_router = _PypdfRouter()


def _install_router() -> None:
    logger = logging.getLogger("pypdf")
    if _router not in logger.handlers:
        logger.addHandler(_router)
        logger.propagate = False


@contextmanager
def _pypdf_warnings() -> Iterator[_WarningCollector]:
    _install_router()
    with _router.collecting() as collector:
        yield collector


def _describe(e: Exception) -> str:
    from pypdf.errors import PyPdfError

    # pypdf's own messages are already readable ("EOF marker not found").
    message = str(e) if isinstance(e, PyPdfError) and str(e) else f"{type(e).__name__}: {e}"
    return truncate(message, _REASON_CHARS)


def _decrypt(reader: PdfReader) -> None:
    from pypdf import PasswordType
    from pypdf.errors import DependencyError

    if not reader.is_encrypted:
        return
    # Many PDFs are "encrypted" only to restrict printing/copying: the empty user
    # password opens them.
    try:
        result = reader.decrypt("")
    except DependencyError:
        raise LoaderError("encrypted PDF (AES needs the 'cryptography' package)") from None
    if result == PasswordType.NOT_DECRYPTED:
        raise LoaderError("encrypted PDF")


def _metadata_title(reader: PdfReader) -> str | None:
    try:
        metadata = reader.metadata
        title = metadata.title if metadata is not None else None
    except Exception:  # a broken info dictionary costs the title, not the document
        return None
    if not isinstance(title, str):
        return None
    title = title.strip()
    # Word's PDF export often stores "Microsoft Word - file.docx"; that is a file name.
    if title.lower().startswith("microsoft word - ") or title.lower() in ("untitled", "untitled-1"):
        return None
    return title


def _page_texts(reader: PdfReader) -> tuple[list[str], list[str]]:
    """Text of each page ("" when a page fails) and one message per failed page."""
    texts: list[str] = []
    failures: list[str] = []
    for number, page in enumerate(reader.pages, start=1):
        try:
            raw = page.extract_text()
        except Exception as e:  # one bad content stream should not lose the other pages
            failures.append(f"page {number}: text extraction failed ({_describe(e)})")
            raw = ""
        texts.append(raw.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "").strip())
    return texts, failures


@register(".pdf")
def load_pdf(data: bytes, path: Path) -> LoadedDocument:
    if not data:
        raise EmptyDocumentError("empty file")
    if b"%PDF-" not in data[:_HEADER_WINDOW]:
        raise LoaderError("not a PDF file (no %PDF- header)")
    from pypdf import PdfReader

    with _pypdf_warnings() as collected:
        try:
            reader = PdfReader(io.BytesIO(data), strict=False)
            _decrypt(reader)
            texts, failures = _page_texts(reader)
            title = _metadata_title(reader)
        except LoaderError:
            raise
        except Exception as e:
            raise LoaderError(f"truncated or damaged PDF: {_describe(e)}") from e

    if not texts:
        raise EmptyDocumentError("PDF has no pages")
    if not any(texts):
        if failures and len(failures) == len(texts):
            raise LoaderError(f"could not extract text: {failures[0]}")
        raise EmptyDocumentError("no extractable text (scanned PDF?)")

    spans: list[PageSpan] = []
    offset = 0
    for number, page_text in enumerate(texts, start=1):
        if number > 1:
            offset += len(PAGE_SEPARATOR)
        spans.append(PageSpan(page=number, start=offset, end=offset + len(page_text)))
        offset += len(page_text)
    text = PAGE_SEPARATOR.join(texts)
    warnings = failures + [f"pypdf: {message}" for message in collected.messages]
    return LoadedDocument(
        text=text,
        title=pick_title(title, first_line(text), path=path),
        pages=tuple(spans),
        warnings=tuple(warnings),
    )
