"""BM25 through SQLite FTS5, inside the caller's read snapshot."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from ragkeep.store.base import Ranking


def match_expression(terms: Sequence[str]) -> str | None:
    """An FTS5 OR-query of quoted terms; None when there is nothing to search.

    Quoting every term means user input can never be parsed as FTS5 syntax (NEAR, column
    filters, unbalanced quotes), so no query text can make the search fail.
    """
    return " OR ".join(_quoted(t) for t in terms) if terms else None


def _quoted(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'  # FTS5 string: a quote is written twice


class Fts5Lexical:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def search(self, terms: Sequence[str], n: int) -> Ranking:
        match = match_expression(terms)
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
