"""BM25 in SQL over the `postings` table, inside the caller's snapshot.

The same formula, constants and phrase semantics as SQLite FTS5's bm25() (k1 = 1.2,
b = 0.75; idf = ln((N - n + 0.5) / (n + 0.5)), floored at 1e-6; a phrase counts where its
terms stand side by side), over the same terms (store/lexical_terms.py), so both backends
rank alike. Every phrase in the query scores, required ones included, as in FTS5.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ragkeep.store.lexical_terms import phrase_terms

if TYPE_CHECKING:
    import psycopg

    from ragkeep.models.search import LexicalQuery, Phrase
    from ragkeep.store.base import Ranking

K1 = 1.2
B = 0.75


@dataclass(frozen=True, slots=True)
class _Sql:
    text: str
    params: list[Any]


def phrase_hits(terms: Sequence[str]) -> _Sql:
    """(chunk_id, tf, dl) of every chunk holding the phrase; tf counts its occurrences."""
    if len(terms) == 1:
        return _Sql("SELECT chunk_id, tf, dl FROM postings WHERE term = %s", [terms[0]])
    joins = " ".join(
        f"JOIN postings p{i} ON p{i}.term = %s AND p{i}.chunk_id = p0.chunk_id"
        for i in range(1, len(terms))
    )
    follows = " AND ".join(f"s.pos + {i} = ANY(p{i}.positions)" for i in range(1, len(terms)))
    return _Sql(
        f"SELECT p0.chunk_id, count(*)::integer AS tf, min(p0.dl) AS dl FROM postings p0 {joins} "
        f"CROSS JOIN LATERAL unnest(p0.positions) AS s(pos) "
        f"WHERE p0.term = %s AND {follows} GROUP BY p0.chunk_id",
        [*terms[1:], terms[0]],
    )


def bm25_sql(phrases: Sequence[Sequence[str]], required: int) -> _Sql:
    """Scores of the chunks matching: the first `required` phrases all, and any of the rest
    (if there are any). `phrases` are non-empty term lists."""
    parts: list[str] = []
    params: list[Any] = []
    for i, terms in enumerate(phrases):
        hits = phrase_hits(terms)
        parts.append(f"SELECT {i} AS i, h.chunk_id, h.tf, h.dl FROM ({hits.text}) h")
        params.extend(hits.params)
    conditions = []
    if required:
        conditions.append(f"count(*) FILTER (WHERE hits.i < {required}) = {required}")
    if len(phrases) > required:
        conditions.append(f"bool_or(hits.i >= {required})")
    having = f"HAVING {' AND '.join(conditions)}" if conditions else ""
    # Summed in phrase order: a sum in another order can differ in the last bit, and equal
    # chunks must score exactly equal (ties are broken by location, above the store).
    text = (
        f"WITH hits AS MATERIALIZED ({' UNION ALL '.join(parts)}), "
        "df AS (SELECT i, count(*)::float8 AS n FROM hits GROUP BY i), "
        "tot AS (SELECT chunks::float8 AS n, "
        "CASE WHEN chunks > 0 THEN terms::float8 / chunks ELSE 1 END AS avgdl "
        "FROM lexical_totals) "
        "SELECT hits.chunk_id, sum(greatest(ln((tot.n - df.n + 0.5) / (df.n + 0.5)), 1e-6) "
        f"* hits.tf * {K1 + 1} / (hits.tf + {K1} * ({1 - B} + {B} * hits.dl / tot.avgdl)) "
        "ORDER BY hits.i) AS score "
        "FROM hits JOIN df ON df.i = hits.i CROSS JOIN tot "
        f"GROUP BY hits.chunk_id {having}"
    )
    return _Sql(text, params)


class PgLexical:
    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def search(self, query: LexicalQuery, n: int) -> Ranking:
        required = [t for t in (phrase_terms(p) for p in query.required) if t]
        scored = [t for t in (phrase_terms(p) for p in query.scored) if t]
        if len(required) < len(query.required) or not (required or scored):
            return []  # a required phrase with no terms matches nothing, as in FTS5
        scores = bm25_sql([*required, *scored], len(required))
        ranking = self._run(
            f"SELECT chunk_id, score FROM ({scores.text}) s ORDER BY score DESC LIMIT %s",
            [*scores.params, n + 1],
        )
        if len(ranking) > n > 0 and ranking[n][1] == ranking[n - 1][1]:
            # Chunks tie at the cut-off: fetch every one of them so the cut is by location.
            return self._run(
                f"SELECT chunk_id, score FROM ({scores.text}) s WHERE score >= %s "
                "ORDER BY score DESC",
                [*scores.params, ranking[n][1]],
            )
        return ranking[:n]

    def term_chunks(self, term: str, at_most: int) -> int:
        terms = phrase_terms((term,))
        if not terms:
            return 0
        hits = phrase_hits(terms)
        row = self._conn.execute(
            f"SELECT count(*) FROM ({hits.text} LIMIT %s) h", [*hits.params, at_most]
        ).fetchone()
        return int(row[0]) if row else 0

    def holding(self, phrases: Sequence[Phrase], ids: Sequence[int]) -> set[int]:
        found = set(ids)
        for phrase in phrases:
            if not found:
                break
            terms = phrase_terms(phrase)
            if not terms:
                return set()
            hits = phrase_hits(terms)
            rows = self._conn.execute(
                f"SELECT chunk_id FROM ({hits.text}) h WHERE chunk_id = ANY(%s)",
                [*hits.params, sorted(found)],
            )
            found = {int(r[0]) for r in rows}
        return found

    def _run(self, sql: str, params: list[Any]) -> Ranking:
        return [(int(r[0]), float(r[1])) for r in self._conn.execute(sql, params)]
