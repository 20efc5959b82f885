"""`ragkeep doctor`: prove the index is consistent, and rebuild what is derived when it is not.

Every check is a query over the one database, so "healthy" means: SQLite's own integrity
check passes, the FTS5 index matches the chunks table, every chunk has a vector for the
active model, every document has exactly the chunks it records, and nothing is orphaned.
"""

from __future__ import annotations

import importlib.util
import sqlite3
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from ragkeep.embed.base import Embedder
from ragkeep.search.ann import AnnIndex
from ragkeep.search.vector_file import VectorFile
from ragkeep.store.sqlite import SqliteStore, state_id_of


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    repaired: bool = False


@dataclass
class DoctorReport:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok or c.repaired for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [asdict(c) for c in self.checks]}


def run_doctor(
    store: SqliteStore,
    embedder: Callable[[], Embedder],
    repair: bool = False,
    ann: AnnIndex | None = None,
    vector_file: VectorFile | None = None,
) -> DoctorReport:
    report = DoctorReport()
    report.checks.append(_sqlite_integrity(store))
    if not report.checks[-1].ok:
        return report  # a damaged file: the other checks would read garbage
    report.checks.append(_fts_integrity(store, repair))
    report.checks.append(_chunk_counts(store, repair))
    report.checks.append(_orphan_chunks(store, repair))
    report.checks.append(_missing_vectors(store, embedder, repair))
    report.checks.append(_unreferenced_vectors(store, repair))
    if ann is not None:
        report.checks.append(_ann_file(store, ann, repair))
    if vector_file is not None:
        report.checks.append(_vector_file(store, vector_file, repair))
    return report


def _vector_file(store: SqliteStore, vectors: VectorFile, repair: bool) -> Check:
    name = "vector file matches its header"
    state = vectors.state(store.state_id())
    if state != "damaged":
        detail = {
            "missing": "no vector file (written by the next dense search)",
            "fresh": "checksum ok, made from the current index state",
            "stale": "checksum ok, made from an older index state; rewritten by the next search",
        }[state]
        return Check(name, True, detail)
    check = Check(name, False, "vector file does not match its checksum (damaged)")
    if repair:
        vectors.delete()
        check.repaired = True
        check.detail += "; deleted (rewritten from the database by the next search)"
    return check


def _ann_file(store: SqliteStore, ann: AnnIndex, repair: bool) -> Check:
    name = "ANN index file matches its stamp"
    state = ann.state(store.state_id())
    if state == "missing":
        return Check(name, True, "no ANN file (built on demand when the ann_index flag is on)")
    if state in ("fresh", "stale"):
        note = "" if state == "fresh" else "; stale, rebuilt by the next search that needs it"
        return Check(
            name, True, f"checksum ok, index state {'current' if not note else 'old'}{note}"
        )
    check = Check(name, False, "ANN file does not match its stamp (damaged or half-written)")
    if repair and not _usearch_installed():
        # Without the optional `ann` extra it cannot be rebuilt (nor used): remove it.
        ann.delete()
        check.repaired = True
        check.detail += "; deleted (usearch is not installed: pip install 'ragkeep[ann]')"
    elif repair:
        with store.read() as c:
            table = store.load_vectors(c)
            state_id = state_id_of(c)
        ann.build(table.ids, table.per_chunk(), state_id)
        check.repaired = True
        check.detail += "; rebuilt from the database"
    return check


def _usearch_installed() -> bool:
    return importlib.util.find_spec("usearch") is not None


def _sqlite_integrity(store: SqliteStore) -> Check:
    with store.read() as c:
        rows = [r[0] for r in c.execute("PRAGMA integrity_check")]
    ok = rows == ["ok"]
    return Check("sqlite integrity_check", ok, "ok" if ok else "; ".join(rows[:5]))


def _fts_integrity(store: SqliteStore, repair: bool) -> Check:
    try:
        with store.write() as c:
            c.execute("INSERT INTO chunks_fts(chunks_fts, rank) VALUES ('integrity-check', 1)")
        return Check("full-text index matches chunks", True, "ok")
    except sqlite3.DatabaseError as exc:
        check = Check("full-text index matches chunks", False, f"FTS5: {exc}")
    if repair:
        with store.write() as c:
            c.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('rebuild')")
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


def _missing_vectors(store: SqliteStore, embedder: Callable[[], Embedder], repair: bool) -> Check:
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
        matrix = embedder().embed([r[1] for r in rows])
        with store.write() as c:
            c.executemany(
                "INSERT OR IGNORE INTO vectors(model_id, text_hash, vector) VALUES (?, ?, ?)",
                [(store.model_id, r[0], matrix[i].tobytes()) for i, r in enumerate(rows)],
            )
            store.bump(c)
        check.repaired = True
        check.detail += "; embedded and stored"
    return check


def _unreferenced_vectors(store: SqliteStore, repair: bool) -> Check:
    count = store.unreferenced_vectors()
    name = "no unreferenced vectors"
    if not count:
        return Check(name, True, "ok")
    # Harmless (they are reused if the text comes back), so not a failure unless repairing.
    check = Check(name, True, f"{count} vectors no chunk uses (ragkeep gc removes them)")
    if repair:
        removed = store.collect_garbage()
        check.repaired = True
        check.detail = f"{removed} unreferenced vectors removed"
    return check
