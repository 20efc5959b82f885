"""DOCX via python-docx: body paragraphs and tables in document order."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ragkeep.ingest.loaders.base import (
    EmptyDocumentError,
    LoaderError,
    describe_exception,
    first_line,
    pick_title,
    register,
    require_text,
)
from ragkeep.models import LoadedDocument

if TYPE_CHECKING:
    from docx.document import Document
    from docx.table import Table, _Cell
    from docx.text.paragraph import Paragraph

# Legacy Word files and password-protected Office files are OLE compound files.
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_TITLE_STYLE_PREFIXES = ("heading", "title")


def _open(data: bytes) -> Document:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    if data.startswith(_OLE_MAGIC):
        raise LoaderError("not a valid DOCX (zip) file: legacy .doc or password-protected document")
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise LoaderError("not a valid DOCX (zip) file")
    try:
        return docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, KeyError, ValueError, zipfile.BadZipFile) as e:
        # A zip, but not a Word document (missing parts, .xlsx renamed, a template...).
        raise LoaderError(f"not a valid DOCX document: {describe_exception(e)}") from e


def _style_name(paragraph: Paragraph) -> str:
    try:
        style = paragraph.style
    except Exception:  # a dangling style reference only costs us the heading hint
        return ""
    return (style.name or "") if style is not None else ""


def _cell_blocks(cell: _Cell) -> Iterator[str]:
    from docx.table import Table

    for item in cell.iter_inner_content():
        if isinstance(item, Table):  # nested table
            yield from _table_lines(item)
        elif item.text.strip():
            yield item.text.strip()


def _table_lines(table: Table) -> Iterator[str]:
    """One line per row, cells separated by " | " so a row's facts stay together."""
    for row in table.rows:
        cells: list[str] = []
        seen: set[int] = set()
        for cell in row.cells:
            # A horizontally merged cell is returned once per grid column it spans.
            if id(cell._tc) in seen:
                continue
            seen.add(id(cell._tc))
            cells.append(" / ".join(_cell_blocks(cell)))
        while cells and not cells[-1]:
            cells.pop()
        if cells:
            yield " | ".join(cells)


@register(".docx")
def load_docx(data: bytes, path: Path) -> LoadedDocument:
    if not data:
        raise EmptyDocumentError("empty file")
    from docx.table import Table

    document = _open(data)
    blocks: list[str] = []
    heading: str | None = None
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            rows = list(_table_lines(item))
            if rows:
                blocks.append("\n".join(rows))
            continue
        text = item.text.strip()
        if not text:
            continue
        if heading is None and _style_name(item).lower().startswith(_TITLE_STYLE_PREFIXES):
            heading = text
        blocks.append(text)
    # Blank lines between blocks mark paragraph boundaries, as in Markdown.
    text = "\n\n".join(blocks)
    require_text(text)
    try:
        core_title = document.core_properties.title
    except Exception:  # malformed core.xml: fall back to the content
        core_title = None
    return LoadedDocument(
        text=text, title=pick_title(core_title, heading, first_line(text), path=path)
    )
