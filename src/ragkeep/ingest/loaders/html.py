"""HTML: visible text with block structure kept as line breaks and blank lines."""

from __future__ import annotations

import codecs
import re
from pathlib import Path
from typing import TYPE_CHECKING

from ragkeep.ingest.loaders.base import pick_title, register, require_text
from ragkeep.ingest.loaders.text import decode_text
from ragkeep.models import LoadedDocument

if TYPE_CHECKING:
    from bs4 import BeautifulSoup, Tag

# Never visible, or not prose (head holds <title>, which is read separately).
_DROP = frozenset({"head", "title", "script", "style", "noscript", "template", "svg", "iframe"})
# Blocks that end a paragraph: separated from their neighbours by a blank line.
_PARAGRAPH_BLOCKS = frozenset(
    {
        "address", "article", "aside", "blockquote", "dl", "fieldset", "figure", "footer",
        "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "main", "nav", "ol",
        "p", "pre", "section", "table", "ul", "details",
    }
)  # fmt: skip
# Blocks that only start a new line.
_LINE_BLOCKS = frozenset(
    {
        "body", "caption", "dd", "div", "dt", "figcaption", "li", "summary", "tr", "option",
        "legend", "dialog", "center", "menu",
    }
)  # fmt: skip
_CELLS = frozenset({"td", "th"})
_SPACES = re.compile(r"\s+")
_BLANK_RUNS = re.compile(r"\n{3,}")
# Enough of the document head for any real <meta charset>; the HTML standard says 1024 bytes.
_SNIFF_BYTES = 4096
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.I)


def sniff_charset(data: bytes) -> str | None:
    """The ``<meta>`` charset, mapped as browsers do (WHATWG encoding rules)."""
    match = _META_CHARSET.search(data[:_SNIFF_BYTES])
    if not match:
        return None
    label = match.group(1).decode("ascii").lower()
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return label  # decode_text reports it as unknown
    if name in ("latin-1", "iso8859-1", "ascii"):
        return "cp1252"  # browsers treat these labels as windows-1252
    if name.startswith(("utf-16", "utf-32")):
        return "utf-8"  # a meta tag readable as ASCII cannot be in UTF-16/32
    return name


class _TextWriter:
    """Accumulates text, turning block boundaries into at most one blank line and
    HTML whitespace runs into single spaces."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._newlines = 0  # pending line breaks before the next text
        self._space = False  # pending inline space before the next text

    def text(self, value: str, preformatted: bool = False) -> None:
        if not preformatted:
            value = _SPACES.sub(" ", value)
            if value.startswith(" "):
                self._space = True
            value = value.strip()
        if not value:
            return
        if self._parts:
            if self._newlines:
                self._parts.append("\n" * self._newlines)
            elif self._space and not self._parts[-1].endswith(("\n", " ")):
                self._parts.append(" ")
        self._newlines = 0
        self._space = False
        self._parts.append(value)

    def trailing_space(self) -> None:
        self._space = True

    def block(self, newlines: int) -> None:
        self._newlines = max(self._newlines, newlines)
        self._space = False

    def line_break(self) -> None:
        # <br> is content, not a boundary: two in a row give a blank line.
        self._newlines = min(self._newlines + 1, 2) if self._parts else 0
        self._space = False

    def result(self) -> str:
        return _BLANK_RUNS.sub("\n\n", "".join(self._parts)).strip()


def html_to_text(soup: BeautifulSoup) -> str:
    from bs4.element import CData, NavigableString, PreformattedString, Tag

    writer = _TextWriter()
    # An explicit stack instead of recursion: deeply nested markup must not hit the
    # recursion limit. Entries are (node, entering, inside <pre>).
    stack: list[tuple[object, bool, bool]] = [(soup, True, False)]
    while stack:
        node, entering, pre = stack.pop()
        if isinstance(node, NavigableString):
            # Comments, doctypes and processing instructions are not text; CDATA is.
            if isinstance(node, PreformattedString) and not isinstance(node, CData):
                continue
            value = str(node)
            writer.text(value, preformatted=pre)
            if not pre and value[-1:].isspace():
                writer.trailing_space()
            continue
        if not isinstance(node, Tag):
            continue
        name = node.name.lower()
        if entering:
            if name in _DROP:
                continue
            if name == "br":
                writer.line_break()
                continue
            if name in _PARAGRAPH_BLOCKS:
                writer.block(2)
            elif name in _LINE_BLOCKS:
                writer.block(1)
            elif name in _CELLS and node.find_previous_sibling(_CELLS) is not None:
                writer.text(" | ", preformatted=True)  # keep a table row on one line
            stack.append((node, False, pre))
            inner_pre = pre or name in ("pre", "textarea")
            stack.extend((child, True, inner_pre) for child in reversed(node.contents))
        elif name in _PARAGRAPH_BLOCKS:
            writer.block(2)
        elif name in _LINE_BLOCKS:
            writer.block(1)
    return writer.result()


def _title(soup: BeautifulSoup) -> str | None:
    for tag in soup.find_all("title"):
        # <svg> has its own <title> elements (tooltips); only the document's counts.
        if tag.find_parent("svg") is None:
            title = tag.get_text(" ", strip=True)
            if title:
                return title
    for tag in soup.find_all("h1"):
        heading = _heading_text(tag)
        if heading:
            return heading
    return None


def _heading_text(tag: Tag) -> str:
    return " ".join(tag.get_text(" ", strip=True).split())


@register(".html", ".htm")
def load_html(data: bytes, path: Path) -> LoadedDocument:
    from bs4 import BeautifulSoup

    decoded = decode_text(data, declared=sniff_charset(data))
    soup = BeautifulSoup(decoded.text, "html.parser")
    text = html_to_text(soup)
    require_text(text)
    return LoadedDocument(
        text=text, title=pick_title(_title(soup), path=path), warnings=decoded.warnings
    )
