"""`doctor` for the SQLite backend: prove the index is consistent, rebuild what is derived.

"Healthy" means: SQLite's own integrity check passes, the FTS5 index matches the chunks table,
every chunk has a vector for the active model, every document has exactly the chunks it
records, nothing is orphaned, and the derived files match their checksums.
"""

from __future__ import annotations

import importlib.util
import sqlite3
from typing import TYPE_CHECKING

from ragkeep.models import Check, DerivedState
from ragkeep.store.base import EmbedTexts, StoreCorruptError
from ragkeep.store.checks_common import unreferenced_vectors
from ragkeep.store.sqlite.errors import derived_full_error

if TYPE_CHECKING:
    from ragkeep.store.sqlite.store import SqliteStore

# integrity_check lists up to this many problems (SQLite's own default); doctor shows a few.
_INTEGRITY_MAX = 100
_INTEGRITY_SHOWN = 5


def run_checks(store: SqliteStore, repair: bool, embed: EmbedTexts) -> list[Check]:
    checks = [_sqlite_integrity(store)]
    if not checks[0].ok:
        return checks  # a damaged file: the other checks would read garbage
    checks.append(_fts_integrity(store, repair))
    checks.append(_chunk_counts(store, repair))
    checks.append(_orphan_chunks(store, repair))
    checks.append(_missing_vectors(store, embed, repair))
    checks.append(unreferenced_vectors(store, repair))
    checks.append(_ann_file(store, repair))
    checks.append(_vector_file(store, repair))
    return checks


def migration_checks(store: SqliteStore) -> list[Check]:
    """What a freshly migrated index must pass: the file and its full-text index intact."""
    checks = [_sqlite_integrity(store)]
    if checks[0].ok:
        checks.append(_fts_integrity(store, False))
    return checks


def _vector_file(store: SqliteStore, repair: bool) -> Check:
    name = "vector file matches its header"
    vectors = store.dense_state().vector_file
    state = vectors.state(store.state_id())
    if state is not DerivedState.DAMAGED:
        detail = {
            DerivedState.MISSING: "no vector file (written by the next dense search)",
            DerivedState.FRESH: "checksum ok, made from the current index state",
            DerivedState.STALE: "checksum ok, made from an older index state; "
            "rewritten by the next search",
        }[state]
        return Check(name, True, detail)
    check = Check(name, False, "vector file does not match its checksum (damaged)")
    if repair:
        vectors.delete()
        check.repaired = True
        check.detail += "; deleted (rewritten from the database by the next search)"
    return check


def _ann_file(store: SqliteStore, repair: bool) -> Check:
    name = "ANN index file matches its stamp"
    ann = store.dense_state().ann_index()
    state = ann.state(store.state_id())
    if state is DerivedState.MISSING:
        return Check(name, True, "no ANN file (built on demand when the ann_index flag is on)")
    if state is not DerivedState.DAMAGED:
        if state is DerivedState.FRESH:
            return Check(name, True, "checksum ok, index state current")
        return Check(name, True, "checksum ok, index state old; stale, rebuilt by the next "
                     "search that needs it")  # fmt: skip
    check = Check(name, False, "ANN file does not match its stamp (damaged or half-written)")
    if repair and not _usearch_installed():
        # Without the optional `ann` extra it cannot be rebuilt (nor used): remove it.
        ann.delete()
        check.repaired = True
        check.detail += "; deleted (usearch is not installed: pip install 'ragkeep[ann]')"
    elif repair:
        with store.snapshot() as snap:
            table = store.load_vectors(snap.conn)
            state_id = snap.state_id
        try:
            ann.build(table.ids, table.per_chunk(), state_id)
        except OSError as exc:  # a full or read-only disk: a typed error, not a traceback
            raise derived_full_error(exc, ann.path) from exc
        check.repaired = True
        check.detail += "; rebuilt from the database"
    return check


def _usearch_installed() -> bool:
    return importlib.util.find_spec("usearch") is not None


def _sqlite_integrity(store: SqliteStore) -> Check:
    name = "sqlite integrity_check"
    try:
        with store.read() as c:
            rows = [r[0] for r in c.execute(f"PRAGMA integrity_check({_INTEGRITY_MAX})")]
    except StoreCorruptError as exc:  # too damaged for SQLite to even list the problems
        found = f"the database file is damaged ({exc.__cause__ or exc})"
    else:
        if rows == ["ok"]:
            return Check(name, True, "ok")
        found = integrity_summary(rows)
    detail = f"{found}. {_CANNOT_REPAIR.format(path=store.path)}"
    return Check(name, False, detail, repairable=False)


_CANNOT_REPAIR = (
    "--repair cannot fix this: it rebuilds only what is derived from intact tables (the "
    "full-text index, vectors, derived files). Restore a backup, or delete {path} and re-add "
    "your folders (ragkeep add)"
)


def integrity_summary(rows: list[str]) -> str:
    """SQLite's problem list (up to 100 entries, some spanning lines) in one line: a count
    and the first few."""
    # A damaged b-tree comes back as ONE row of many lines (a header, then one problem a
    # line): count and show the lines, not the rows.
    lines = [ln for r in rows for ln in r.replace("*** in database main ***", "").splitlines()]
    flat = [" ".join(ln.split()) for ln in lines if ln.strip()]
    count = f"at least {len(flat)}" if len(flat) >= _INTEGRITY_MAX else str(len(flat))
    rest = len(flat) - _INTEGRITY_SHOWN
    more = f" and {rest} more" if rest > 0 else ""
    shown = "; ".join(flat[:_INTEGRITY_SHOWN])
    return f"the database file is damaged: {count} problem(s): {shown}{more}"


def _fts_integrity(store: SqliteStore, repair: bool) -> Check:
    try:
        with store.write() as c:
            c.execute("INSERT INTO chunks_fts(chunks_fts, rank) VALUES ('integrity-check', 1)")
        return Check("full-text index matches chunks", True, "ok")
    except (sqlite3.DatabaseError, StoreCorruptError) as exc:
        # The store reports a damaged FTS index as StoreCorruptError; SQLite's words are its cause.
        reason = exc.__cause__ if isinstance(exc, StoreCorruptError) else exc
        check = Check("full-text index matches chunks", False, f"FTS5: {reason}")
    if repair:
        with store.write() as c:
            c.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('rebuild')")
            # Results change (found again): results cached from the broken index must go.
            store.bump(c)
        check.repaired = True
        check.detail += "; rebuilt from the chunks table"
    return check


def _chunk_counts(store: SqliteStore, repair: bool) -> Check:
    with store.read() as c:
        bad = c.execute(
            "SELECT d.id, d.path FROM documents d WHERE d.chunk_count != "
            "(SELECT count(*) FROM chunks ch WHERE ch.doc_id = d.id)"
        ).fetchall()
    if not bad:
        return Check("documents have all their chunks", True, "ok")
    paths = ", ".join(str(r[1]) for r in bad[:5])
    check = Check("documents have all their chunks", False, f"{len(bad)} incomplete: {paths}")
    if repair:
        # The text can only come from the file again: make the next sync re-index them.
        with store.write() as c:
            c.executemany(
                "UPDATE documents SET content_hash = '', mtime_ns = -1 WHERE id = ?",
                [(r[0],) for r in bad],
            )
        check.repaired = True
        check.detail += "; marked for re-indexing by the next sync"
    return check


def _orphan_chunks(store: SqliteStore, repair: bool) -> Check:
    where = "doc_id NOT IN (SELECT id FROM documents)"
    with store.read() as c:
        count = int(c.execute(f"SELECT count(*) FROM chunks WHERE {where}").fetchone()[0])
    if not count:
        return Check("no orphaned chunks", True, "ok")
    check = Check("no orphaned chunks", False, f"{count} chunks belong to no document")
    if repair:
        with store.write() as c:
            c.execute(f"DELETE FROM chunks WHERE {where}")
            store.bump(c)
        check.repaired = True
        check.detail += "; deleted"
    return check


def _missing_vectors(store: SqliteStore, embed: EmbedTexts, repair: bool) -> Check:
    with store.read() as c:
        rows = c.execute(
            "SELECT DISTINCT ch.text_hash, ch.text FROM chunks ch LEFT JOIN vectors v "
            "ON v.model_id = ? AND v.text_hash = ch.text_hash WHERE v.text_hash IS NULL",
            (store.model_id,),
        ).fetchall()
    name = f"every chunk has a vector for {store.model_id}"
    if not rows:
        return Check(name, True, "ok")
    check = Check(name, False, f"{len(rows)} chunk texts have no vector")
    if repair:
        matrix = embed([r[1] for r in rows])
        store.add_vectors({r[0]: matrix[i].tobytes() for i, r in enumerate(rows)})
        check.repaired = True
        check.detail += "; embedded and stored"
    return check
