"""Copying the SQLite index out (a backup) and back in (a restore), both while it is in use.

The copy is made with `VACUUM INTO` on a connection of its own: it reads inside one read
transaction, so in WAL mode writers go on, and the copy holds exactly the commits made before
it started (its generation says which). It is compact: free pages are not copied.

A restore prepares the copy beside the index (`restore.tmp/`: migrated to this schema, given
a generation above both and a new state token, its result cache emptied), then writes it
into the live database with SQLite's backup API. That is one write transaction: readers
finish on the old contents and then see the restored ones, and a kill leaves the one or the
other, never a mix. `restore.tmp/` is never read by anything but the restore that made it;
the next restore removes what a killed one left.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from ragkeep.models.backups import BackupContents
from ragkeep.store.base import BackupError

RESTORE_DIR = "restore.tmp"  # in the data dir: the copy being prepared, never trusted


def copy_database(live: Path, target: Path, timeout_s: float) -> BackupContents:
    """A consistent, compact copy of the database at `live`, written to `target`."""
    conn = sqlite3.connect(str(live), timeout=timeout_s, isolation_level=None)
    try:
        conn.execute("VACUUM INTO ?", (str(target),))
    except sqlite3.Error as exc:  # a damaged index: the caller says so in its words
        target.unlink(missing_ok=True)
        if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)) from exc
        raise
    finally:
        conn.close()
    return describe(target)


def describe(db: Path) -> BackupContents:
    """What the database file at `db` holds (any schema version with ragkeep's tables)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        return BackupContents(
            generation=int(meta["generation"]),
            state_id=str(meta.get("state_id", "")),
            schema_version=int(conn.execute("PRAGMA user_version").fetchone()[0]),
            model_id=str(meta["model_id"]),
            dimension=int(meta["dimension"]),
            documents=int(conn.execute("SELECT count(*) FROM documents").fetchone()[0]),
            chunks=int(conn.execute("SELECT count(*) FROM chunks").fetchone()[0]),
        )
    except (sqlite3.Error, KeyError, ValueError) as exc:
        raise BackupError(f"{db} is not a readable ragkeep index: {exc}") from exc
    finally:
        conn.close()


def restore_database(source: Path, live: Path, prepare: Callable[[Path], None]) -> int:
    """Replace the database at `live` by the copy at `source`; returns the new generation.

    The caller holds the writer lock and has verified `source`. `prepare` opens the prepared
    copy as an index (migrating an older schema, refusing another model) or does nothing.
    """
    work = live.parent / RESTORE_DIR
    shutil.rmtree(work, ignore_errors=True)
    try:
        try:
            work.mkdir()
            prepared = work / live.name
            shutil.copyfile(source, prepared)
            prepare(prepared)
            generation = max(_generation(live), _generation(prepared)) + 1
            _stamp(prepared, generation)
        except OSError as exc:  # a full disk: the live index is not touched yet
            raise BackupError(
                f"cannot prepare the restore in {work}: {exc.strerror or exc}; "
                "the index is unchanged"
            ) from exc
        _write_into(prepared, live)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return generation


def set_aside(live: Path) -> Path:
    """Rename a database that cannot be opened (and its WAL files) out of the way, so a
    restore can start from an empty index; returns the new name. Nothing is deleted."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    aside = live.with_name(f"{live.name}.damaged-{stamp}")
    for suffix in ("-wal", "-shm", ""):
        source = Path(f"{live}{suffix}")
        if source.exists():
            os.replace(source, Path(f"{aside}{suffix}"))
    return aside


def _stamp(db: Path, generation: int) -> None:
    """A generation above both and a token never seen: no cache keyed by either can serve
    the old contents. The copied result cache answered for another state: emptied."""
    conn = sqlite3.connect(str(db), isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = DELETE")  # one file to copy from
        conn.execute("BEGIN")
        conn.execute("UPDATE meta SET value = ? WHERE key = 'generation'", (str(generation),))
        conn.execute(
            "INSERT OR REPLACE INTO meta(key, value) "
            "VALUES ('state_id', lower(hex(randomblob(16))))"
        )
        if _has_table(conn, "result_cache"):
            conn.execute("DELETE FROM result_cache")
        conn.execute("COMMIT")
    finally:
        conn.close()


def _write_into(prepared: Path, live: Path) -> None:
    source = sqlite3.connect(str(prepared))
    target = sqlite3.connect(str(live), timeout=60.0)
    try:
        source.backup(target)  # every page in one step: one transaction on the target
    except sqlite3.Error as exc:
        raise BackupError(f"cannot write the restored copy into {live}: {exc}") from exc
    finally:
        target.close()
        source.close()


def _generation(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        return int(row[0]) if row else 0
    except sqlite3.Error:  # an empty or unreadable live file: the copy's number wins
        return 0
    finally:
        conn.close()


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
    return row.fetchone() is not None


def content_fingerprint(conn: sqlite3.Connection, model_id: str) -> str:
    """A digest of what searches answer from (documents, chunk texts, vectors): a migration
    must leave it unchanged. Read inside the caller's transaction."""
    digest = hashlib.sha256()
    queries = (
        "SELECT path, content_hash, chunk_count FROM documents ORDER BY path",
        "SELECT d.path, c.ordinal, c.text_hash, c.start, c.end FROM chunks c "
        "JOIN documents d ON d.id = c.doc_id ORDER BY d.path, c.ordinal",
    )
    for sql in queries:
        for row in conn.execute(sql):
            digest.update(repr(tuple(row)).encode())
    vectors = conn.execute("SELECT count(*) FROM vectors WHERE model_id = ?", (model_id,))
    digest.update(str(vectors.fetchone()[0]).encode())
    return digest.hexdigest()
