"""BM25 through SQLite FTS5: turning free text into a safe FTS5 query."""

from __future__ import annotations

import re

_WORD = re.compile(r"\w+", re.UNICODE)


def match_query(text: str) -> str | None:
    """Free text → an FTS5 OR-query of quoted terms; None when there is nothing to search.

    Quoting every term means user input can never be parsed as FTS5 syntax (NEAR, column
    filters, unbalanced quotes), so no query text can make the search fail.
    """
    terms = dict.fromkeys(t.lower() for t in _WORD.findall(text))
    if not terms:
        return None
    return " OR ".join(f'"{t}"' for t in terms)
