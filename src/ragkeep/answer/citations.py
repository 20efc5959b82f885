"""Numbering of sources and parsing of the [n] markers an answer cites them with."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from ragkeep.models import Citation, SearchHit

# "[3]", "[1, 2]", "[1,2; 4]", "[2-4]" / "[2–4]" (ranges). "[1][2]" is two matches.
_MARKER = re.compile(r"\[\s*(\d+(?:\s*[-–]\s*\d+)?(?:\s*[,;]\s*\d+(?:\s*[-–]\s*\d+)?)*)\s*\]")
_ITEM = re.compile(r"(\d+)(?:\s*[-–]\s*(\d+))?")
# A model writing "[1-999]" should not make us enumerate hundreds of sources.
_MAX_RANGE = 50


def citations_for(hits: Sequence[SearchHit]) -> tuple[Citation, ...]:
    """Number hits 1..k in the given (ranked) order; the prompt uses the same numbers."""
    return tuple(
        Citation(
            number=i,
            path=hit.path,
            title=hit.title,
            page=hit.page,
            chunk_id=hit.chunk_id,
            text=hit.text,
            doc_id=hit.doc_id,
        )
        for i, hit in enumerate(hits, start=1)
    )


def cited_numbers(answer_text: str) -> list[int]:
    """The source numbers cited in ``answer_text``, unique, in order of first appearance."""
    seen: dict[int, None] = {}
    for marker in _MARKER.finditer(answer_text):
        for item in _ITEM.finditer(marker.group(1)):
            first = int(item.group(1))
            last = int(item.group(2)) if item.group(2) else first
            if last < first or last - first > _MAX_RANGE:
                last = first
            for n in range(first, last + 1):
                if n > 0:
                    seen.setdefault(n, None)
    return list(seen)


def used_citations(citations: Iterable[Citation], answer_text: str) -> tuple[Citation, ...]:
    """Keep only the citations the answer refers to; numbers are kept, not renumbered,
    so they still match the [n] markers in the text."""
    used = set(cited_numbers(answer_text))
    return tuple(c for c in citations if c.number in used)
