"""BM25 through SQLite FTS5, inside the caller's read snapshot."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from ragkeep.models.search import LexicalQuery, Phrase
from ragkeep.store.base import Ranking
from ragkeep.store.sqlite.rows import batches


def match_expression(query: LexicalQuery) -> str | None:
    """An FTS5 query: the required phrases AND any of the scored ones; None when there is
    nothing to search. FTS5's bm25() scores every phrase in the expression, so a chunk
    holding a scored phrase (a whole technical term) ranks above one holding only its words.

    Quoting every phrase means user input can never be parsed as FTS5 syntax (NEAR, column
    filters, unbalanced quotes), so no query text can make the search fail.
    """
    scored = " OR ".join(_quoted(p) for p in query.scored)
    required = _all_of(query.required)
    if not required:
        return scored or None
    return f"{required} AND ({scored})" if scored else required


def _all_of(phrases: Sequence[Phrase]) -> str:
    return " AND ".join(_quoted(p) for p in phrases)


def _quoted(phrase: Phrase | str) -> str:
    """An FTS5 string; of several words, a phrase (FTS5 tokenizes the string)."""
    text = phrase if isinstance(phrase, str) else " ".join(phrase)
    return '"' + text.replace('"', '""') + '"'  # FTS5 string: a quote is written twice


class Fts5Lexical:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def search(self, query: LexicalQuery, n: int) -> Ranking:
        match = match_expression(query)
        if match is None:
            return []
        ranking = self._top(match, n + 1)
        if len(ranking) > n > 0 and ranking[n][1] == ranking[n - 1][1]:
            # Chunks tie at the cut-off: fetch every one of them so the cut is by location.
            return self._at_least(match, ranking[n][1])
        return ranking[:n]

    def term_chunks(self, term: str, at_most: int) -> int:
        return int(
            self._conn.execute(
                "SELECT count(*) FROM (SELECT 1 FROM chunks_fts WHERE chunks_fts MATCH ? LIMIT ?)",
                (_quoted(term), at_most),
            ).fetchone()[0]
        )

    def holding(self, phrases: Sequence[Phrase], ids: Sequence[int]) -> set[int]:
        if not phrases:
            return set(ids)
        found: set[int] = set()
        for part in batches(ids, 500):  # SQLite's bound-variable limit
            sql = (
                "SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ? "
                f"AND rowid IN ({','.join('?' * len(part))})"
            )
            found.update(int(r[0]) for r in self._conn.execute(sql, (_all_of(phrases), *part)))
        return found

    # FTS5's bm25() is lower-is-better; negated so every retriever ranks higher-is-better.
    # bm25() named explicitly: measured faster than ORDER BY rank (FTS5's sorter path).
    def _top(self, match: str, limit: int) -> Ranking:
        sql = (
            "SELECT rowid, -bm25(chunks_fts) AS score FROM chunks_fts "
            "WHERE chunks_fts MATCH ? ORDER BY score DESC LIMIT ?"
        )
        return [(int(r[0]), float(r[1])) for r in self._conn.execute(sql, (match, limit))]

    def _at_least(self, match: str, score: float) -> Ranking:
        sql = (
            "SELECT rowid, -bm25(chunks_fts) AS score FROM chunks_fts "
            "WHERE chunks_fts MATCH ? AND bm25(chunks_fts) <= ? ORDER BY score DESC"
        )
        return [(int(r[0]), float(r[1])) for r in self._conn.execute(sql, (match, -score))]
