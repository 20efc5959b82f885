"""Build small, valid test documents (PDF, DOCX, HTML) in memory, deterministically.

Used by the test-suite and by scripts/make_sample_docs.py. Nothing here imports
ragkeep, pypdf or python-docx: the files are written by hand so the outputs are
byte-for-byte reproducible and independent of the libraries that read them.
"""

from __future__ import annotations

import html
import io
import textwrap
import zipfile
from collections.abc import Sequence
from xml.sax.saxutils import escape as xml_escape

__all__ = ["DocxBlock", "make_docx", "make_html", "make_pdf"]

# ---------------------------------------------------------------------------
# PDF
# ---------------------------------------------------------------------------

_PAGE_WIDTH = 612  # US Letter, in points
_PAGE_HEIGHT = 792
_MARGIN = 72
_FONT_SIZE = 11
_LEADING = 15
_WRAP_COLUMNS = 88  # Helvetica 11pt averages ~5.3pt per character: 88 fits in 468pt
_MAX_LINES = (_PAGE_HEIGHT - 2 * _MARGIN) // _LEADING


def _pdf_string(text: str) -> bytes:
    """A PDF literal string in WinAnsiEncoding (the encoding the font declares)."""
    raw = text.encode("cp1252")  # raises for characters Helvetica/WinAnsi cannot show
    out = bytearray(b"(")
    for byte in raw:
        if byte in b"()\\":
            out += b"\\" + bytes([byte])
        elif 32 <= byte < 127:
            out.append(byte)
        else:  # keep the file 7-bit clean
            out += b"\\%03o" % byte
    out += b")"
    return bytes(out)


def _page_lines(text: str) -> list[str]:
    lines: list[str] = []
    for paragraph in text.split("\n"):
        wrapped = textwrap.wrap(paragraph, _WRAP_COLUMNS, break_on_hyphens=False)
        lines.extend(wrapped or [""])
    while lines and not lines[-1]:
        lines.pop()
    if len(lines) > _MAX_LINES:
        raise ValueError(f"page text needs {len(lines)} lines; at most {_MAX_LINES} fit")
    return lines


def _content_stream(text: str) -> bytes:
    lines = _page_lines(text)
    if not lines:
        # A page with only a grey box: what a scanned page without OCR looks like to a reader.
        return b"0.9 g 72 72 468 648 re f\n"
    ops = [
        b"BT",
        b"/F1 %d Tf" % _FONT_SIZE,
        b"%d TL" % _LEADING,
        b"%d %d Td" % (_MARGIN, _PAGE_HEIGHT - _MARGIN - _FONT_SIZE),
    ]
    for i, line in enumerate(lines):
        if i:
            ops.append(b"T*")
        if line:
            ops.append(_pdf_string(line) + b" Tj")
    ops.append(b"ET")
    return b"\n".join(ops) + b"\n"


def make_pdf(pages: Sequence[str], title: str | None = None) -> bytes:
    """A valid PDF 1.4 file with one page per string, set in Helvetica 11pt.

    Lines are wrapped at ~88 columns; "\\n" starts a new line and an empty string
    gives a page with a drawing but no text layer (like a scan). ``title`` goes
    into the document information dictionary.
    """
    if not pages:
        raise ValueError("a PDF needs at least one page")
    n = len(pages)
    # Object numbers: 1 catalog, 2 page tree, 3 font, 4 info, then (page, content) pairs.
    page_ids = [5 + 2 * i for i in range(n)]
    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids [%s] /Count %d >>"
        % (b" ".join(b"%d 0 R" % p for p in page_ids), n),
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        4: b"<< /Producer (ragkeep docfactory)"
        + (b" /Title " + _pdf_string(title) if title else b"")
        + b" >>",
    }
    for page_id, text in zip(page_ids, pages, strict=True):
        stream = _content_stream(text)
        objects[page_id] = (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>"
            % (_PAGE_WIDTH, _PAGE_HEIGHT, page_id + 1)
        )
        objects[page_id + 1] = b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"endstream"

    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")  # binary comment marks the file as binary
    offsets: dict[int, int] = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += b"%d 0 obj\n" % number + objects[number] + b"\nendobj\n"
    xref_at = len(out)
    size = max(objects) + 1
    out += b"xref\n0 %d\n" % size
    out += b"0000000000 65535 f \n"  # each entry is exactly 20 bytes, as the spec requires
    for number in range(1, size):
        out += b"%010d 00000 n \n" % offsets[number]
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 4 0 R >>\n" % size
    out += b"startxref\n%d\n%%%%EOF\n" % xref_at
    return bytes(out)


# ---------------------------------------------------------------------------
# DOCX
# ---------------------------------------------------------------------------

# A block is a plain paragraph (str), a styled paragraph ((style_id, text), e.g.
# ("Heading1", "Watering") or ("Title", "...")), or a table (rows of cell texts).
DocxBlock = str | tuple[str, str] | Sequence[Sequence[str]]

_W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_R_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_CT_NS = "http://schemas.openxmlformats.org/package/2006/content-types"
_OFFICE_DOC = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"
_CORE_REL = "http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties"
_STYLES_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles"

_WML = "application/vnd.openxmlformats-officedocument.wordprocessingml"
_CONTENT_TYPES = (
    f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Types xmlns="{_CT_NS}">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    f'<Override PartName="/word/document.xml" ContentType="{_WML}.document.main+xml"/>'
    f'<Override PartName="/word/styles.xml" ContentType="{_WML}.styles+xml"/>'
    '<Override PartName="/docProps/core.xml" '
    'ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>'
    "</Types>"
)

_ROOT_RELS = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="{_REL_NS}">
<Relationship Id="rId1" Type="{_OFFICE_DOC}" Target="word/document.xml"/>
<Relationship Id="rId2" Type="{_CORE_REL}" Target="docProps/core.xml"/>
</Relationships>"""

_DOCUMENT_RELS = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="{_REL_NS}">
<Relationship Id="rId1" Type="{_STYLES_REL}" Target="styles.xml"/>
</Relationships>"""


def _style(style_id: str, name: str, size_half_points: int | None = None) -> str:
    run = f'<w:rPr><w:b/><w:sz w:val="{size_half_points}"/></w:rPr>' if size_half_points else ""
    based = "" if style_id == "Normal" else '<w:basedOn w:val="Normal"/>'
    default = ' w:default="1"' if style_id == "Normal" else ""
    return (
        f'<w:style w:type="paragraph"{default} w:styleId="{style_id}">'
        f'<w:name w:val="{name}"/>{based}{run}</w:style>'
    )


_STYLES = (
    f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w:styles xmlns:w="{_W_NS}">'
    + _style("Normal", "Normal")
    + _style("Title", "Title", 48)
    + _style("Heading1", "heading 1", 32)
    + _style("Heading2", "heading 2", 28)
    + _style("Heading3", "heading 3", 24)
    + '<w:style w:type="table" w:styleId="TableGrid"><w:name w:val="Table Grid"/></w:style>'
    + "</w:styles>"
)


def _docx_paragraph(text: str, style_id: str | None = None) -> str:
    ppr = f'<w:pPr><w:pStyle w:val="{style_id}"/></w:pPr>' if style_id else ""
    runs = "<w:r><w:br/></w:r>".join(
        f'<w:r><w:t xml:space="preserve">{xml_escape(line)}</w:t></w:r>'
        for line in text.split("\n")
    )
    return f"<w:p>{ppr}{runs}</w:p>"


_CELL_PROPERTIES = '<w:tcPr><w:tcW w:w="2400" w:type="dxa"/></w:tcPr>'


def _docx_table(rows: Sequence[Sequence[str]]) -> str:
    width = max((len(row) for row in rows), default=0)
    grid = "".join('<w:gridCol w:w="2400"/>' for _ in range(width))
    body = "".join(
        "<w:tr>"
        + "".join(f"<w:tc>{_CELL_PROPERTIES}{_docx_paragraph(cell)}</w:tc>" for cell in row)
        + "</w:tr>"
        for row in rows
    )
    return (
        '<w:tbl><w:tblPr><w:tblStyle w:val="TableGrid"/><w:tblW w:w="0" w:type="auto"/></w:tblPr>'
        f"<w:tblGrid>{grid}</w:tblGrid>{body}</w:tbl>"
    )


def _core_xml(title: str | None) -> str:
    title_xml = f"<dc:title>{xml_escape(title)}</dc:title>" if title else ""
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/'
        'core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:dcterms="http://purl.org/dc/terms/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f"{title_xml}<dc:creator>ragkeep docfactory</dc:creator>"
        '<dcterms:created xsi:type="dcterms:W3CDTF">2024-01-01T00:00:00Z</dcterms:created>'
        "</cp:coreProperties>"
    )


def make_docx(blocks: Sequence[DocxBlock], title: str | None = None) -> bytes:
    """A minimal, valid DOCX (Office Open XML) file; ``title`` sets the core property.

    Each block is a Normal paragraph (str), a styled paragraph ((style_id, text),
    style ids: Title, Heading1..Heading3) or a table (a sequence of rows of cell
    texts). "\\n" inside a paragraph becomes a line break.
    """
    parts: list[str] = []
    for block in blocks:
        if isinstance(block, str):
            parts.append(_docx_paragraph(block))
        elif isinstance(block, tuple) and len(block) == 2 and isinstance(block[1], str):
            parts.append(_docx_paragraph(block[1], str(block[0])))
        else:
            parts.append(_docx_table(block))
            parts.append("<w:p/>")  # Word requires a paragraph between adjacent tables
    document = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<w:document xmlns:w="{_W_NS}" xmlns:r="{_R_NS}"><w:body>'
        + "".join(parts)
        + '<w:sectPr><w:pgSz w:w="12240" w:h="15840"/></w:sectPr></w:body></w:document>'
    )
    files = {
        "[Content_Types].xml": _CONTENT_TYPES,
        "_rels/.rels": _ROOT_RELS,
        "word/document.xml": document,
        "word/_rels/document.xml.rels": _DOCUMENT_RELS,
        "word/styles.xml": _STYLES,
        "docProps/core.xml": _core_xml(title),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            # A fixed timestamp keeps the archive byte-for-byte reproducible.
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content.encode("utf-8"))
    return buffer.getvalue()


# ---------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------


def make_html(
    paragraphs: Sequence[str],
    title: str | None = None,
    heading: str | None = None,
    *,
    head_extra: str = "",
    body_extra: str = "",
    charset: str | None = "utf-8",
) -> str:
    """A small HTML5 page; returns text, encode it as you need (e.g. to test charsets).

    ``head_extra``/``body_extra`` are inserted verbatim (scripts, styles, nav...).
    """
    meta = f'<meta charset="{charset}">' if charset else ""
    title_tag = f"<title>{html.escape(title)}</title>" if title is not None else ""
    h1 = f"<h1>{html.escape(heading)}</h1>\n" if heading is not None else ""
    body = "\n".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    return (
        f"<!DOCTYPE html>\n<html>\n<head>{meta}{title_tag}{head_extra}</head>\n"
        f"<body>\n{h1}{body}\n{body_extra}</body>\n</html>\n"
    )
