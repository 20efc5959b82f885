"""Markdown: the source is kept as the text (headings and lists help search and
chunking); only YAML front matter is removed, after reading its ``title:``."""

from __future__ import annotations

import re
from pathlib import Path

from ragkeep.ingest.loaders.base import pick_title, register, require_text
from ragkeep.ingest.loaders.text import decode_text
from ragkeep.models import LoadedDocument

_FRONT_MATTER_KEY = re.compile(r"^[A-Za-z0-9_][\w.-]*\s*:")
_FRONT_MATTER_TITLE = re.compile(r"^title\s*:\s*(.*?)\s*$", re.IGNORECASE)
_ATX_H1 = re.compile(r"^ {0,3}#[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_SETEXT_H1_UNDERLINE = re.compile(r"^ {0,3}=+[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_EMPHASIS = re.compile(r"\*\*|__|`")


def split_front_matter(text: str) -> tuple[list[str] | None, str]:
    """(front matter lines or None, the rest). Only a block that opens the file with
    ``---``, closes with ``---``/``...`` and starts with a ``key:`` line counts, so a
    document that merely begins with a horizontal rule keeps its text."""
    lines = text.split("\n")
    if not lines or lines[0].rstrip() != "---":
        return None, text
    for end in range(1, len(lines)):
        if lines[end].rstrip() in ("---", "..."):
            block = lines[1:end]
            first = next((line for line in block if line.strip()), None)
            if first is not None and not _FRONT_MATTER_KEY.match(first):
                return None, text
            return block, "\n".join(lines[end + 1 :]).lstrip("\n")
    return None, text


def front_matter_title(block: list[str]) -> str | None:
    """``title:`` from a YAML block, handling quotes, comments and ``|``/``>`` scalars
    without a YAML dependency."""
    for i, line in enumerate(block):
        match = _FRONT_MATTER_TITLE.match(line)
        if not match:
            continue
        value = match.group(1)
        if value[:1] in ("|", ">"):
            continued = []
            for following in block[i + 1 :]:
                if following.strip() and not following[:1].isspace():
                    break
                continued.append(following.strip())
            return " ".join(continued)
        if value[:1] in ("'", '"'):
            quote = value[0]
            closing = value.rfind(quote)
            inner = value[1:closing] if closing > 0 else value[1:]
            return inner.replace("''", "'") if quote == "'" else inner.replace('\\"', '"')
        return value.split(" #", 1)[0]
    return None


def first_h1(text: str) -> str | None:
    """The first level-1 heading (ATX ``# x`` or setext ``x\\n===``) outside code fences."""
    fence: str | None = None
    previous = ""
    for line in text.split("\n"):
        fence_match = _FENCE.match(line)
        if fence is not None:
            closing = fence_match.group(1) if fence_match else ""
            if closing[:1] == fence[0] and len(closing) >= len(fence):
                fence = None
            previous = ""
            continue
        if fence_match:
            fence = fence_match.group(1)
            previous = ""
            continue
        atx = _ATX_H1.match(line)
        if atx and atx.group(1).strip():
            return _strip_inline(atx.group(1))
        if previous.strip() and _SETEXT_H1_UNDERLINE.match(line):
            return _strip_inline(previous)
        previous = line
    return None


def _strip_inline(heading: str) -> str:
    return _EMPHASIS.sub("", _LINK.sub(r"\1", heading)).strip()


@register(".md", ".markdown")
def load_markdown(data: bytes, path: Path) -> LoadedDocument:
    decoded = decode_text(data)
    front_matter, text = split_front_matter(decoded.text)
    require_text(text)
    title = pick_title(
        front_matter_title(front_matter) if front_matter else None,
        first_h1(text),
        path=path,
    )
    return LoadedDocument(text=text, title=title, warnings=decoded.warnings)
