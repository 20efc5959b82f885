"""Loader protocol, registry, errors and the small helpers every format shares.

A loader turns the raw bytes of one file into a LoadedDocument. Loaders register
themselves for one or more file suffixes; ``load_document`` dispatches on the
lower-cased suffix and guarantees that only LoaderError ever escapes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from ragkeep.models import LoadedDocument

TITLE_MAX_CHARS = 120
_REASON_MAX_CHARS = 200


class LoaderError(Exception):
    """A file could not be turned into text; ``reason`` is short and meant for users."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class EmptyDocumentError(LoaderError):
    """The file is readable but holds no extractable text (empty, blank, scanned PDF)."""


class Loader(Protocol):
    def __call__(self, data: bytes, path: Path) -> LoadedDocument: ...


_LOADERS: dict[str, Loader] = {}


def register(*suffixes: str) -> Callable[[Loader], Loader]:
    """Register the decorated function as the loader for ``suffixes`` (e.g. ".md")."""

    def decorate(loader: Loader) -> Loader:
        for suffix in suffixes:
            key = suffix.lower()
            if not key.startswith("."):
                raise ValueError(f"suffix must start with '.': {suffix!r}")
            if key in _LOADERS and _LOADERS[key] is not loader:
                raise ValueError(f"a loader is already registered for {key}")
            _LOADERS[key] = loader
        return loader

    return decorate


def supported_suffixes() -> frozenset[str]:
    return frozenset(_LOADERS)


def load_document(data: bytes, path: Path) -> LoadedDocument:
    """Parse ``data`` (the content of ``path``) with the loader for its suffix.

    Raises LoaderError (EmptyDocumentError when there is no text) and nothing else:
    callers index whole folders and must be able to record one bad file and go on.
    """
    suffix = path.suffix.lower()
    loader = _LOADERS.get(suffix)
    if loader is None:
        raise LoaderError(f"unsupported file type: {suffix or '(no suffix)'}")
    try:
        document = loader(data, path)
    except LoaderError:
        raise
    except Exception as e:  # a parser bug or a pathological file must not stop a whole sync
        raise LoaderError(describe_exception(e)) from e
    if not document.text.strip():
        raise EmptyDocumentError("no text")
    return document


def describe_exception(e: BaseException) -> str:
    return truncate(f"{type(e).__name__}: {e}", _REASON_MAX_CHARS)


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def clean_title(candidate: str | None) -> str | None:
    """Collapse whitespace and cap the length; None when nothing is left."""
    if not candidate:
        return None
    title = re.sub(r"\s+", " ", candidate).strip()
    if not title:
        return None
    if len(title) > TITLE_MAX_CHARS:
        cut = title[: TITLE_MAX_CHARS - 1]
        # Prefer ending on a word boundary unless that throws away too much.
        space = cut.rfind(" ")
        if space >= TITLE_MAX_CHARS // 2:
            cut = cut[:space]
        title = cut.rstrip() + "…"
    return title


def first_line(text: str) -> str | None:
    for line in text.splitlines():
        if line.strip():
            return line
    return None


def pick_title(*candidates: str | None, path: Path) -> str:
    """The first usable candidate, else the file stem (else the whole name)."""
    for candidate in candidates:
        title = clean_title(candidate)
        if title:
            return title
    return path.stem or path.name


def require_text(text: str) -> None:
    if not text.strip():
        raise EmptyDocumentError("no text")
