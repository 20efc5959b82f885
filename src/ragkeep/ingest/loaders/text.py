"""Plain text (.txt), plus the byte-decoding helper shared with Markdown and HTML."""

from __future__ import annotations

import codecs
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from ragkeep.ingest.loaders.base import (
    EmptyDocumentError,
    LoaderError,
    first_line,
    pick_title,
    register,
    require_text,
)
from ragkeep.models import LoadedDocument

# Longest first: the UTF-32 LE BOM starts with the UTF-16 LE one.
_BOMS: tuple[tuple[bytes, str, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32", "UTF-32"),
    (codecs.BOM_UTF8, "utf-8-sig", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16", "UTF-16"),
)
_ALLOWED_CONTROLS = frozenset("\t\n\r\f\v")
_BINARY_SAMPLE_CHARS = 8192
_BINARY_CONTROL_RATIO = 0.3  # real text, even with ANSI colour codes, stays far below this


@dataclass(frozen=True, slots=True)
class DecodedText:
    text: str  # newlines normalised to "\n"
    encoding: str
    warnings: tuple[str, ...] = ()


def decode_text(data: bytes, declared: str | None = None) -> DecodedText:
    """Decode bytes of a text format: BOM, then ``declared`` charset, then UTF-8,
    cp1252 and latin-1 (which never fails), with a warning for every guess.

    Raises EmptyDocumentError for 0 bytes and LoaderError for binary content.
    """
    if not data:
        raise EmptyDocumentError("empty file")
    warnings: list[str] = []
    text: str | None = None
    encoding = ""
    for bom, codec, label in _BOMS:
        if data.startswith(bom):
            encoding = label
            try:
                text = data.decode(codec)
            except UnicodeDecodeError:
                text = data.decode(codec, errors="replace")
                warnings.append(f"invalid {label}; undecodable bytes replaced")
            break
    if text is None:
        # Without a UTF-16/32 BOM, NUL bytes mean this is not a text file (or is BOM-less
        # UTF-16, which is rare enough that guessing would do more harm than good).
        if b"\x00" in data:
            raise LoaderError("binary content, not text")
        text, encoding = _decode_8bit(data, declared, warnings)
    if _looks_binary(text):
        raise LoaderError("binary content, not text")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return DecodedText(text=text, encoding=encoding, warnings=tuple(warnings))


def _decode_8bit(data: bytes, declared: str | None, warnings: list[str]) -> tuple[str, str]:
    if declared:
        try:
            return data.decode(declared), declared
        except UnicodeDecodeError:
            pass  # the declaration lies, which is common; guess like for undeclared text
        except LookupError:
            warnings.append(f"unknown charset {declared!r} ignored")
            declared = None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        if declared:
            warnings.append(f"not valid {declared} as declared; decoded as UTF-8")
        return text, "utf-8"
    for fallback in ("cp1252", "latin-1"):
        try:
            text = data.decode(fallback)
        except UnicodeDecodeError:
            continue
        if declared:
            warnings.append(f"not valid {declared} as declared; decoded as {fallback}")
        else:
            warnings.append(f"not valid UTF-8; decoded as {fallback}")
        return text, fallback
    raise AssertionError("latin-1 decodes any byte string")  # pragma: no cover


def _looks_binary(text: str) -> bool:
    sample = text[:_BINARY_SAMPLE_CHARS]
    if not sample:
        return False
    controls = sum(
        1 for ch in sample if ch not in _ALLOWED_CONTROLS and unicodedata.category(ch) == "Cc"
    )
    return "\x00" in sample or controls / len(sample) > _BINARY_CONTROL_RATIO


@register(".txt")
def load_text(data: bytes, path: Path) -> LoadedDocument:
    decoded = decode_text(data)
    require_text(decoded.text)
    return LoadedDocument(
        text=decoded.text,
        title=pick_title(first_line(decoded.text), path=path),
        warnings=decoded.warnings,
    )
