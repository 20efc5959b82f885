"""`doctor` for the PostgreSQL backend: prove the index is consistent, rebuild what is derived.

PostgreSQL looks after its own pages; what ragkeep must prove is its own bookkeeping: the
postings (BM25's terms) match the chunk texts, the BM25 totals match the chunks, every
document has exactly the chunks it records, and every chunk has a vector.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ragkeep.models import Check
from ragkeep.store.checks_common import unreferenced_vectors
from ragkeep.store.lexical_terms import terms as text_terms
from ragkeep.store.postgres.store import term_positions

if TYPE_CHECKING:
    import psycopg

    from ragkeep.store.base import EmbedTexts
    from ragkeep.store.postgres.store import PostgresStore

_SHOWN = 5


def run_checks(store: PostgresStore, repair: bool, embed: EmbedTexts) -> list[Check]:
    return [
        _extension(store),
        _postings(store, repair),
        _totals(store, repair),
        _chunk_counts(store, repair),
        _missing_vectors(store, embed, repair),
        unreferenced_vectors(store, repair),
    ]


def _extension(store: PostgresStore) -> Check:
    with store.read() as c:
        row = c.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
    if row is None:
        return Check("pgvector is installed", False, "the vector extension is missing", False)
    return Check("pgvector is installed", True, f"pgvector {row[0]}")


def _postings(store: PostgresStore, repair: bool) -> Check:
    """Every chunk's postings add up to its term count, and every chunk's term count to the
    terms its text has (a cheap sum first; texts are re-tokenized only where it disagrees)."""
    name = "full-text postings match chunks"
    with store.read() as c:
        bad = _disagreeing_chunks(c)
    if not bad:
        return Check(name, True, "ok")
    check = Check(name, False, f"{len(bad)} chunks' postings do not match their text")
    if repair:
        with store.write() as c:
            for chunk_id in bad:
                _rebuild_postings(c, chunk_id)
            _recount_totals(c)
            store.bump(c)  # results change: what was cached from the broken index must go
        check.repaired = True
        check.detail += "; rebuilt from the chunk texts"
    return check


def _disagreeing_chunks(c: psycopg.Connection[Any]) -> list[int]:
    rows = c.execute(
        "SELECT ch.id FROM chunks ch LEFT JOIN (SELECT chunk_id, sum(tf) AS n, "
        "bool_and(dl = ch2.terms) AS dl_ok FROM postings p JOIN chunks ch2 ON ch2.id = p.chunk_id "
        "GROUP BY chunk_id) s ON s.chunk_id = ch.id "
        "WHERE coalesce(s.n, 0) != ch.terms OR NOT coalesce(s.dl_ok, true)"
    ).fetchall()
    orphans = c.execute(
        "SELECT DISTINCT chunk_id FROM postings p WHERE NOT EXISTS "
        "(SELECT 1 FROM chunks ch WHERE ch.id = p.chunk_id)"
    ).fetchall()
    return sorted({int(r[0]) for r in rows} | {int(r[0]) for r in orphans})


def _rebuild_postings(c: psycopg.Connection[Any], chunk_id: int) -> None:
    c.execute("DELETE FROM postings WHERE chunk_id = %s", (chunk_id,))
    row = c.execute("SELECT text FROM chunks WHERE id = %s", (chunk_id,)).fetchone()
    if row is None:
        return
    stream = text_terms(str(row[0]))
    where = term_positions(stream)
    c.execute("UPDATE chunks SET terms = %s WHERE id = %s", (len(stream), chunk_id))
    c.cursor().executemany(
        "INSERT INTO postings(term, chunk_id, tf, dl, positions) VALUES (%s, %s, %s, %s, %s)",
        [(t, chunk_id, len(p), len(stream), p) for t, p in where.items()],
    )


def _totals(store: PostgresStore, repair: bool) -> Check:
    name = "BM25 totals match chunks"
    with store.read() as c:
        row = c.execute(
            "SELECT t.chunks, t.terms, (SELECT count(*) FROM chunks), "
            "(SELECT coalesce(sum(terms), 0) FROM chunks) FROM lexical_totals t"
        ).fetchone()
    if row is not None and (row[0], row[1]) == (row[2], row[3]):
        return Check(name, True, "ok")
    found = f"{row[0]} chunks / {row[1]} terms recorded, {row[2]} / {row[3]} found" if row else ""
    check = Check(name, False, found or "no totals row")
    if repair:
        with store.write() as c:
            _recount_totals(c)
            store.bump(c)
        check.repaired = True
        check.detail += "; recounted"
    return check


def _recount_totals(c: psycopg.Connection[Any]) -> None:
    c.execute(
        "INSERT INTO lexical_totals(id, chunks, terms) SELECT 1, count(*), "
        "coalesce(sum(terms), 0) FROM chunks ON CONFLICT (id) DO UPDATE "
        "SET chunks = excluded.chunks, terms = excluded.terms"
    )


def _chunk_counts(store: PostgresStore, repair: bool) -> Check:
    name = "documents have all their chunks"
    with store.read() as c:
        bad = c.execute(
            "SELECT d.id, d.path FROM documents d WHERE d.chunk_count != "
            "(SELECT count(*) FROM chunks ch WHERE ch.doc_id = d.id)"
        ).fetchall()
    if not bad:
        return Check(name, True, "ok")
    paths = ", ".join(str(r[1]) for r in bad[:_SHOWN])
    check = Check(name, False, f"{len(bad)} incomplete: {paths}")
    if repair:
        # The text can only come from the file again: make the next sync re-index them.
        with store.write() as c:
            c.execute(
                "UPDATE documents SET content_hash = '', mtime_ns = -1 WHERE id = ANY(%s)",
                ([int(r[0]) for r in bad],),
            )
        check.repaired = True
        check.detail += "; marked for re-indexing by the next sync"
    return check


def _missing_vectors(store: PostgresStore, embed: EmbedTexts, repair: bool) -> Check:
    with store.read() as c:
        rows = c.execute(
            "SELECT DISTINCT ch.text_hash, ch.text FROM chunks ch LEFT JOIN vectors v "
            "ON v.model_id = %s AND v.text_hash = ch.text_hash WHERE v.text_hash IS NULL",
            (store.model_id,),
        ).fetchall()
    name = f"every chunk has a vector for {store.model_id}"
    if not rows:
        return Check(name, True, "ok")
    check = Check(name, False, f"{len(rows)} chunk texts have no vector")
    if repair:
        matrix = embed([str(r[1]) for r in rows])
        store.add_vectors({str(r[0]): matrix[i].tobytes() for i, r in enumerate(rows)})
        check.repaired = True
        check.detail += "; embedded and stored"
    return check
