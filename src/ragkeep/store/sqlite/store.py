"""The SQLite backend: one database in WAL mode holds everything that must agree.

Every change to a document is one `BEGIN IMMEDIATE` transaction that replaces its chunks (the
FTS5 index follows through triggers), adds any new vectors and bumps the generation, so a
reader or a crash sees the old version or the new one, never a mix.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ragkeep.resources.slow import warn_if_slow
from ragkeep.store.base import (
    CacheTable,
    DenseOptions,
    EmbedTexts,
    NotAnIndexError,
    Removal,
    StoreBusyError,
    StoreCounts,
    StoreError,
)
from ragkeep.store.records import (
    DocumentRow,
    ExportedDocument,
    FileStamp,
    NewChunk,
    NewDocument,
    VectorTable,
)
from ragkeep.store.sqlite.errors import NOTHING_LOST, ErrorContext, data_dir_error, translate
from ragkeep.store.sqlite.rows import (
    batches,
    chunk_count_of,
    end_read,
    generation_of,
    state_id_of,
)
from ragkeep.store.sqlite.schema import MIGRATIONS, SCHEMA_VERSION
from ragkeep.store.sqlite.snapshot import SqliteSnapshot
from ragkeep.store.sqlite.writer_lock import WriterLock

if TYPE_CHECKING:
    from ragkeep.models import Check, DocumentInfo, UnusedVectors
    from ragkeep.models.backups import BackupContents
    from ragkeep.store.backups import BackupShelf
    from ragkeep.store.sqlite.dense import SqliteDense

DB_FILE_NAME = "ragkeep.db"  # the default file in the data dir
WRITER_LOCK = "writer.lock"  # beside the database: serialises add/sync/remove across processes
_DOC_COLUMNS = "id, path, title, size, mtime_ns, inode, content_hash, chunk_count, indexed_at"
_MB = 1024 * 1024
# Rows written per statement inside one transaction. One executemany of a 50,000-chunk
# document runs in C for 15 s (FTS triggers), and Ctrl-C only lands between statements:
# in slices it lands within a fraction of a second, and the transaction rolls back whole.
WRITE_SLICE = 1000
STATS_WAIT_S = 0.25  # statistics are best-effort: a busy store costs them, not the caller
OP_STATS_KEEP_MIN = 7 * 24 * 60  # minutes of operation statistics kept
# Tables every ragkeep schema version has; a SQLite file without them is something else.
_OWN_TABLES = frozenset({"meta", "documents", "chunks"})

log = logging.getLogger(__name__)


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)


class SqliteStore:
    def __init__(
        self,
        path: Path,
        *,
        model_id: str,
        dimension: int,
        busy_timeout_ms: int = 5000,
        synchronous: str = "NORMAL",
        lock_timeout_s: float = 120.0,
        writer_timeout_s: float = 600.0,
        max_size_mb: float = 0.0,
        slow_write_s: float = 30.0,
        shelf: BackupShelf | None = None,
        accept_model_change: bool = False,
    ) -> None:
        """`shelf`: where a snapshot goes before a schema migration (None: no snapshot).
        `accept_model_change`: open an index built with another embedding model (to re-embed
        it) instead of refusing."""
        self.path = path
        self.shelf = shelf
        self._accept_model_change = accept_model_change
        self.model_id = model_id
        self.dimension = dimension
        self._busy_timeout_ms = busy_timeout_ms
        self._synchronous = synchronous
        self._lock_timeout_s = lock_timeout_s
        self._max_size_mb = max_size_mb
        self.slow_write_s = slow_write_s
        self._writer = WriterLock(path.parent / WRITER_LOCK, writer_timeout_s, slow_write_s)
        self._local = threading.local()
        # Each thread's connection, by thread: a thread that has ended leaves its connection
        # here only until the next thread opens one (see _conn).
        self._all: dict[threading.Thread, sqlite3.Connection] = {}
        self._all_lock = threading.Lock()
        self._dense: SqliteDense | None = None
        self._dense_options = DenseOptions()
        self._dense_lock = threading.Lock()  # configure_dense may run during searches
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a file in the way, /proc, no permission: one line
            raise data_dir_error(exc, path.parent) from exc
        self._opening = True  # errors now mean the index cannot be opened at all
        try:
            self._migrate()
            self._check_model()
        except sqlite3.Error as exc:  # not one translate() knows: still one clear line
            self.close()
            raise StoreError(f"cannot open {path}: {exc}") from exc
        except BaseException:
            self.close()
            raise
        self._opening = False

    @property
    def location(self) -> str:
        return str(self.path)

    @property
    def derived_dir(self) -> Path:
        """Files rebuilt from the database (vector file, ANN index): always safe to delete."""
        from ragkeep.store.sqlite.vector_file import DERIVED_DIR

        return self.path.parent / DERIVED_DIR

    @functools.cached_property
    def cache(self) -> CacheTable:
        from ragkeep.store.sqlite.cache_table import SqliteCacheTable

        return SqliteCacheTable(self)

    def configure_dense(self, options: DenseOptions) -> None:
        """New options for dense retrieval, also while searches run (the ann_index flag
        switched in a running process): a search in flight finishes with the state it bound,
        the next one makes a new state with these options."""
        with self._dense_lock:
            self._dense_options = options
            self._dense = None

    def dense_state(self) -> SqliteDense:
        """The per-process dense retrieval state (matrix, vector file, ANN), made on first use."""
        dense = self._dense
        if dense is not None:
            return dense
        from ragkeep.store.sqlite.dense import SqliteDense

        # Under the lock: a state made from the options read before a concurrent
        # configure_dense() must not be installed after it (it would keep the old options).
        with self._dense_lock:
            if self._dense is None:
                self._dense = SqliteDense(self, self._dense_options)
            return self._dense

    def snapshot(self) -> SqliteSnapshot:
        # A plain class, not a generator context manager: the cached-search path takes one
        # snapshot per query, and two nested @contextmanager layers measurably cost there.
        return SqliteSnapshot(self, self._conn())

    def writer_lock(
        self, on_wait: Callable[[], None] | None
    ) -> contextlib.AbstractContextManager[None]:
        """The writer lock (deadline: store.writer_timeout_s), see writer_lock.py.

        Lock order: the writer lock first, then SQLite's. Waiting for the writer lock inside
        a write transaction would hold SQLite's lock while another writer that holds the
        writer lock waits for it: refused outright rather than left to time out.
        """
        if getattr(self._local, "writing", False):
            raise RuntimeError(
                "lock order violated: the writer lock was requested inside a write "
                "transaction (take it first; docs/concurrency.md)"
            )
        return self._writer.hold(on_wait)

    def writer_holder(self) -> str | None:
        owner = self._writer.owner()
        return owner.describe() if owner is not None else None

    def typed_error(self, exc: sqlite3.Error, kept: str | None = None) -> StoreError | None:
        """The StoreError a SQLite error means here (None: not a condition of the database)."""
        ctx = ErrorContext(self.path, self._max_size_mb, self._opening, kept or NOTHING_LOST)
        return translate(exc, ctx)

    def check(self, repair: bool, embed: EmbedTexts) -> list[Check]:
        from ragkeep.store.sqlite.checks import run_checks

        return run_checks(self, repair, embed)

    # -- connections ---------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            # One connection per thread: sqlite3 connections must not be shared across threads.
            conn = sqlite3.connect(
                self.path,
                isolation_level=None,
                timeout=self._busy_timeout_ms / 1000,
                check_same_thread=True,
            )
            try:
                self._configure(conn)
            except sqlite3.Error as exc:  # e.g. "file is not a database", a read-only disk
                conn.close()
                typed = self.typed_error(exc)
                if typed is None:
                    raise
                raise typed from exc
            self._local.conn = conn
            with self._all_lock:
                # A long-running server's worker threads come and go (anyio retires idle
                # ones): forgetting the ended threads' connections closes them (they were
                # only referenced here), or each thread ever seen would keep its files open.
                self._all = {t: c for t, c in self._all.items() if t.is_alive()}
                self._all[threading.current_thread()] = conn
        return conn

    def _configure(self, conn: sqlite3.Connection) -> None:
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        conn.execute("PRAGMA foreign_keys = ON")
        if self._max_size_mb > 0:
            # store.max_size_mb: past it SQLite fails writes with SQLITE_FULL, exactly as on
            # a full disk. Per connection, like every pragma here.
            page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
            pages = max(1, int(self._max_size_mb * _MB) // page_size)
            conn.execute(f"PRAGMA max_page_count = {pages}")

    @contextmanager
    def write(
        self, wait_s: float | None = None, kept: str | None = None
    ) -> Iterator[sqlite3.Connection]:
        """A write transaction: taken with BEGIN IMMEDIATE so it never upgrades mid-way.

        `wait_s` bounds how long to wait for the lock (default: store.lock_timeout_s);
        best-effort writers such as the result cache pass a short one. A busy, full,
        read-only or damaged database raises the matching StoreError (`kept` says, for its
        message, what stays as it was); the transaction is rolled back first.
        """
        conn = self._conn()
        try:
            self._begin(conn, wait_s)
            self._local.writing = True
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                # SQLite may have rolled back already (SQLITE_FULL does, for one).
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                raise
            finally:
                self._local.writing = False
        except sqlite3.Error as exc:
            typed = self.typed_error(exc, kept)
            if typed is None:
                raise
            raise typed from exc

    def _begin(self, conn: sqlite3.Connection, wait_s: float | None) -> None:
        if wait_s is None:
            self._begin_immediate(conn, self._lock_timeout_s)
            return
        conn.execute(f"PRAGMA busy_timeout = {int(wait_s * 1000)}")
        try:
            self._begin_immediate(conn, wait_s)
        finally:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")

    def _begin_immediate(self, conn: sqlite3.Connection, wait_s: float) -> None:
        """Take the write lock; wait (busy timeout, then retries with backoff) up to the deadline.

        "database is locked" never reaches the caller: past `lock_timeout_s` it becomes a
        StoreBusyError that says what is going on.
        """
        deadline = time.monotonic() + wait_s
        delay = 0.005
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise
                if time.monotonic() >= deadline:
                    raise StoreBusyError(
                        f"{self.path} is busy: another writer kept the lock for more than "
                        f"{wait_s:g} s (setting store.lock_timeout_s)"
                    ) from exc
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 0.25)

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every statement inside sees the same snapshot. A damaged or
        unreadable database raises the matching StoreError."""
        conn = self._conn()
        if conn.in_transaction:  # nested inside write() or read(): reuse its snapshot
            yield conn
            return
        try:
            conn.execute("BEGIN")
            try:
                yield conn
            except BaseException:
                with contextlib.suppress(sqlite3.Error):  # the body's error is the one to tell
                    end_read(conn)
                raise
            end_read(conn)
        except sqlite3.Error as exc:
            typed = self.typed_error(exc)
            if typed is None:
                raise
            raise typed from exc

    def close(self) -> None:
        if self._dense is not None:
            self._dense.close()
        with self._all_lock:
            conns, self._all = list(self._all.values()), {}
        for conn in conns:
            # A connection made in another thread refuses close() here; it closes with its thread.
            with contextlib.suppress(sqlite3.ProgrammingError):
                conn.close()
        self._local = threading.local()

    # -- schema and identity -------------------------------------------------------------

    def _migrate(self) -> None:
        # Read first: an up-to-date index opens without the write lock, so a read-only one
        # still answers searches and opening never waits for a long write transaction.
        with self.read() as c:
            version = self._known_version(c)
        if version == SCHEMA_VERSION:
            return
        if version > 0 and self.shelf is not None:
            from ragkeep.store.sqlite.migration import migrate_with_snapshot

            migrate_with_snapshot(self, version)
            return
        self.apply_migrations()

    def apply_migrations(self) -> None:
        """Bring the schema to SCHEMA_VERSION in one write transaction."""
        with self.write() as c:
            version = self._known_version(c)  # another process may have migrated meanwhile
            for target in range(version, SCHEMA_VERSION):
                for statement in _split_sql(MIGRATIONS[target]):
                    c.execute(statement)
                c.execute(f"PRAGMA user_version = {target + 1}")
            if version == 0:
                c.executemany(
                    "INSERT INTO meta(key, value) VALUES (?, ?)",
                    [
                        ("model_id", self.model_id),
                        ("dimension", str(self.dimension)),
                        ("generation", "0"),
                        ("created_at", str(time.time())),
                    ],
                )

    def _known_version(self, c: sqlite3.Connection) -> int:
        """The schema version, once sure this file is (or may become) a ragkeep index."""
        version = int(c.execute("PRAGMA user_version").fetchone()[0])
        tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        # Version 0 is a new, empty file; anything else must have ragkeep's tables. Another
        # program's database is never migrated into one.
        if (version == 0 and tables) or (version > 0 and not tables >= _OWN_TABLES):
            listed = ", ".join(sorted(tables)[:5]) or "none"
            raise NotAnIndexError(
                f"{self.path} is not a ragkeep index: it is a SQLite database of something "
                f"else (tables: {listed}; schema version {version}), left untouched; use "
                "another --data-dir or store.url, or move that file away"
            )
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has schema version {version}, newer than this ragkeep "
                f"understands ({SCHEMA_VERSION}); upgrade ragkeep"
            )
        return version

    def _check_model(self) -> None:
        meta = self.meta()
        if "model_id" not in meta or "generation" not in meta:
            raise NotAnIndexError(
                f"{self.path} is not a ragkeep index: its meta table has no ragkeep metadata; "
                "use another --data-dir or store.url, or move that file away"
            )
        if self._accept_model_change:
            return
        if meta.get("model_id") != self.model_id or meta.get("dimension") != str(self.dimension):
            raise StoreError(
                f"{self.path} was built with embedding model {meta.get('model_id')!r} "
                f"({meta.get('dimension')} dims), but ragkeep is using {self.model_id!r} "
                f"({self.dimension} dims); `ragkeep reembed` re-embeds it with this model "
                "(docs/recovery.md), or use another --data-dir"
            )

    def indexed_model(self) -> tuple[str, int]:
        """The embedding model (id, dimension) the stored vectors were made with."""
        meta = self.meta()
        return meta["model_id"], int(meta["dimension"])

    def schema_version(self) -> int:
        return SCHEMA_VERSION

    def meta(self) -> dict[str, str]:
        with self.read() as c:
            return {k: v for k, v in c.execute("SELECT key, value FROM meta")}

    def generation(self) -> int:
        with self.read() as c:
            return generation_of(c)

    def state_id(self) -> str:
        with self.read() as c:
            return state_id_of(c)

    @staticmethod
    def bump(c: sqlite3.Connection) -> int:
        """Advance the generation (and draw a new state token) inside the caller's write
        transaction."""
        c.execute("UPDATE meta SET value = lower(hex(randomblob(16))) WHERE key = 'state_id'")
        row = c.execute(
            "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation' "
            "RETURNING value"
        ).fetchone()
        return int(row[0])

    # -- sources -------------------------------------------------------------------------

    def sources(self) -> list[str]:
        with self.read() as c:
            return [r[0] for r in c.execute("SELECT path FROM sources ORDER BY path")]

    def add_sources(self, sources: Sequence[str], include: Sequence[str]) -> None:
        now = time.time()
        with self.write() as c:
            c.executemany(
                "INSERT INTO sources(path, added_at) VALUES (?, ?) ON CONFLICT(path) DO NOTHING",
                [(path, now) for path in sources],
            )
            c.executemany("DELETE FROM excluded WHERE path = ?", [(p,) for p in include])

    def apply_removal(self, removal: Removal) -> int:
        now = time.time()
        with self.write() as c:
            _delete_documents(c, removal.documents)
            c.executemany("DELETE FROM sources WHERE path = ?", [(p,) for p in removal.sources])
            c.executemany(
                "INSERT INTO excluded(path, excluded_at) VALUES (?, ?) "
                "ON CONFLICT(path) DO NOTHING",
                [(p, now) for p in removal.exclude],
            )
            return self.bump(c) if removal.documents else generation_of(c)

    def excluded(self) -> list[str]:
        with self.read() as c:
            return [r[0] for r in c.execute("SELECT path FROM excluded ORDER BY path")]

    # -- documents -----------------------------------------------------------------------

    def document(self, path: str) -> DocumentRow | None:
        with self.read() as c:
            row = c.execute(
                f"SELECT {_DOC_COLUMNS} FROM documents WHERE path = ?", (path,)
            ).fetchone()
        return DocumentRow.from_row(row) if row else None

    def documents(self) -> list[DocumentRow]:
        with self.read() as c:
            rows = c.execute(f"SELECT {_DOC_COLUMNS} FROM documents ORDER BY path").fetchall()
        return [DocumentRow.from_row(r) for r in rows]

    def document_infos(self) -> list[DocumentInfo]:
        return [d.info() for d in self.documents()]

    def missing_vectors(self, hashes: Iterable[str]) -> set[str]:
        wanted = set(hashes)
        if not wanted:
            return set()
        with self.read() as c:
            present: set[str] = set()
            for batch in batches(sorted(wanted), 500):
                marks = ",".join("?" * len(batch))
                present.update(
                    r[0]
                    for r in c.execute(
                        f"SELECT text_hash FROM vectors WHERE model_id = ? "
                        f"AND text_hash IN ({marks})",
                        (self.model_id, *batch),
                    )
                )
        return wanted - present

    def replace_document(
        self, doc: NewDocument, chunks: Sequence[NewChunk], vectors: dict[str, bytes]
    ) -> int:
        """Store a document's new version atomically; returns the new generation."""
        kept = f"the index keeps the previous version of {doc.path} (if it had one)"
        with (
            warn_if_slow(log, f"committing {doc.path}", self.slow_write_s),
            self.write(kept=kept) as c,
        ):
            source_id = _source_id(c, doc.source_path)
            row = c.execute("SELECT id FROM documents WHERE path = ?", (doc.path,)).fetchone()
            values = (
                doc.title,
                doc.stamp.size,
                doc.stamp.mtime_ns,
                doc.stamp.inode,
                doc.content_hash,
                len(chunks),
                time.time(),
                source_id,
            )
            if row:
                doc_id = int(row[0])
                _delete_chunks(c, doc_id)
                c.execute(
                    "UPDATE documents SET title=?, size=?, mtime_ns=?, inode=?, content_hash=?, "
                    "chunk_count=?, indexed_at=?, source_id=? WHERE id=?",
                    (*values, doc_id),
                )
            else:
                cur = c.execute(
                    "INSERT INTO documents(title, size, mtime_ns, inode, content_hash, "
                    "chunk_count, indexed_at, source_id, path) VALUES (?,?,?,?,?,?,?,?,?)",
                    (*values, doc.path),
                )
                doc_id = int(cur.lastrowid or 0)
            self._insert_vectors(c, vectors)
            for part in batches(chunks, WRITE_SLICE):
                c.executemany(
                    "INSERT INTO chunks(doc_id, ordinal, text, text_hash, start, end, page, "
                    "tokens) VALUES (?,?,?,?,?,?,?,?)",
                    [
                        (
                            doc_id,
                            ch.ordinal,
                            ch.text,
                            ch.text_hash,
                            ch.start,
                            ch.end,
                            ch.page,
                            ch.tokens,
                        )
                        for ch in part
                    ],
                )
            missing = c.execute(
                "SELECT count(*) FROM chunks ch LEFT JOIN vectors v "
                "ON v.model_id = ? AND v.text_hash = ch.text_hash "
                "WHERE ch.doc_id = ? AND v.text_hash IS NULL",
                (self.model_id, doc_id),
            ).fetchone()[0]
            if missing:
                # A chunk without a vector would be invisible to dense search: refuse to commit.
                raise StoreError(f"{doc.path}: {missing} chunk(s) have no vector; not committed")
            return self.bump(c)

    def add_vectors(self, vectors: dict[str, bytes]) -> int:
        """Store vectors by text hash (doctor's repair); returns the new generation."""
        with self.write() as c:
            self._insert_vectors(c, vectors)
            return self.bump(c)

    def _insert_vectors(self, c: sqlite3.Connection, vectors: dict[str, bytes]) -> None:
        rows = [(self.model_id, h, v) for h, v in vectors.items()]
        for part in batches(rows, WRITE_SLICE):  # in slices: see WRITE_SLICE
            c.executemany(
                "INSERT OR IGNORE INTO vectors(model_id, text_hash, vector) VALUES (?, ?, ?)",
                part,
            )

    def move_document(self, old_path: str, doc: NewDocument) -> int:
        """Give a document a new path (a moved file): chunks and vectors stay as they are."""
        with self.write() as c:
            c.execute(
                "UPDATE documents SET path=?, size=?, mtime_ns=?, inode=?, source_id=? "
                "WHERE path=?",
                (
                    doc.path,
                    doc.stamp.size,
                    doc.stamp.mtime_ns,
                    doc.stamp.inode,
                    _source_id(c, doc.source_path),
                    old_path,
                ),
            )
            return self.bump(c)

    def update_stamp(self, path: str, stamp: FileStamp) -> None:
        """Record new file metadata for unchanged content; results do not change."""
        with self.write() as c:
            c.execute(
                "UPDATE documents SET size=?, mtime_ns=?, inode=? WHERE path=?",
                (stamp.size, stamp.mtime_ns, stamp.inode, path),
            )

    def delete_documents(self, paths: Sequence[str]) -> int:
        """Delete documents (chunks and FTS rows follow); returns the new generation."""
        with self.write() as c:
            _delete_documents(c, paths)
            return self.bump(c) if paths else generation_of(c)

    def vector_count(self) -> int:
        with self.read() as c:
            return int(c.execute("SELECT count(*) FROM vectors").fetchone()[0])

    def unreferenced_vectors(self) -> UnusedVectors:
        with self.read() as c:
            return _unused(c)

    # -- backups and re-embedding --------------------------------------------------------

    def copy_to(self, target: Path) -> BackupContents:
        """A consistent copy of the committed index, made while reads and writes go on."""
        from ragkeep.store.base import BackupError
        from ragkeep.store.sqlite.backup import copy_database

        try:
            return copy_database(self.path, target, self._lock_timeout_s)
        except sqlite3.Error as exc:  # damaged, busy, unreadable: in the store's words
            raise self.typed_error(exc) or BackupError(f"cannot copy {self.path}: {exc}") from exc

    def copy_schema_version(self) -> int:
        return SCHEMA_VERSION

    def restore_from(self, source: Path, migrate: bool = True) -> int:
        """Replace the index by the copy at `source` (the caller holds the writer lock);
        with `migrate`, an older schema is brought up to date first."""
        from ragkeep.store.sqlite.backup import restore_database

        def prepare(copy: Path) -> None:
            if migrate:
                SqliteStore(copy, model_id=self.model_id, dimension=self.dimension).close()

        return restore_database(source, self.path, prepare)

    def export_document(self, path: str) -> ExportedDocument | None:
        with self.read() as c:
            row = c.execute(
                "SELECT d.id, d.title, d.size, d.mtime_ns, d.inode, d.content_hash, s.path "
                "FROM documents d LEFT JOIN sources s ON s.id = d.source_id WHERE d.path = ?",
                (path,),
            ).fetchone()
            if row is None:
                return None
            chunks = [
                NewChunk(*r)
                for r in c.execute(
                    "SELECT ordinal, text, text_hash, start, end, page, tokens FROM chunks "
                    "WHERE doc_id = ? ORDER BY ordinal",
                    (row[0],),
                )
            ]
            vectors = {
                str(h): bytes(v)
                for h, v in c.execute(
                    "SELECT v.text_hash, v.vector FROM vectors v WHERE v.model_id = ? AND "
                    "v.text_hash IN (SELECT text_hash FROM chunks WHERE doc_id = ?)",
                    (self.model_id, row[0]),
                )
            }
        stamp = FileStamp(int(row[2]), int(row[3]), int(row[4]))
        doc = NewDocument(path, str(row[1]), stamp, str(row[5]), row[6])
        return ExportedDocument(doc, chunks, vectors)

    def adopt_identity(self, generation: int, state_id: str) -> None:
        """Take another store's generation and state token (a copy of it just written)."""
        with self.write() as c:
            c.executemany(
                "UPDATE meta SET value = ? WHERE key = ?",
                [(str(generation), "generation"), (state_id, "state_id")],
            )

    def chunk_texts(self, after: str, n: int) -> list[tuple[str, str]]:
        """Distinct chunk texts as (text hash, text), in hash order, the n after `after`."""
        with self.read() as c:
            return [
                (str(h), str(t))
                for h, t in c.execute(
                    "SELECT text_hash, min(text) FROM chunks WHERE text_hash > ? "
                    "GROUP BY text_hash ORDER BY text_hash LIMIT ?",
                    (after, n),
                )
            ]

    def stage_vectors(self, tag: str, vectors: dict[str, bytes]) -> None:
        """Store re-embedded vectors under `tag`: searches go on with the current ones."""
        with self.write() as c:
            for part in batches(list(vectors.items()), WRITE_SLICE):
                c.executemany(
                    "INSERT OR REPLACE INTO vectors(model_id, text_hash, vector) VALUES (?, ?, ?)",
                    [(tag, h, v) for h, v in part],
                )

    def drop_vectors(self, tag: str) -> None:
        """Delete vectors staged under `tag` (what a killed or failed re-embed left)."""
        with self.write() as c:
            c.execute("DELETE FROM vectors WHERE model_id = ?", (tag,))

    def switch_model(self, tag: str) -> int:
        """Make the vectors staged under `tag` this model's, dropping every other model's,
        in one transaction; returns the new generation."""
        with self.write() as c:
            c.execute("DELETE FROM vectors WHERE model_id != ?", (tag,))
            c.execute("UPDATE vectors SET model_id = ? WHERE model_id = ?", (self.model_id, tag))
            c.executemany(
                "UPDATE meta SET value = ? WHERE key = ?",
                [(self.model_id, "model_id"), (str(self.dimension), "dimension")],
            )
            return self.bump(c)

    def collect_garbage(self) -> UnusedVectors:
        """Delete vectors no chunk refers to; returns what went. Results do not change."""
        with self.write() as c:
            unused = _unused(c)  # measured in the deleting transaction: exactly what goes
            c.execute(f"DELETE FROM vectors WHERE {_UNREFERENCED}")
            return unused

    # -- vectors for dense retrieval -----------------------------------------------------

    def load_vectors(self, c: sqlite3.Connection) -> VectorTable:
        import numpy as np

        ids: list[int] = []
        rows: list[int] = []
        blobs: list[bytes] = []
        row_of: dict[str, int] = {}  # text hash -> matrix row: equal texts share a row
        for cid, text_hash, blob in c.execute(
            "SELECT ch.id, ch.text_hash, v.vector FROM chunks ch JOIN vectors v "
            "ON v.model_id = ? AND v.text_hash = ch.text_hash",
            (self.model_id,),
        ):
            row = row_of.get(text_hash)
            if row is None:
                row = row_of[text_hash] = len(blobs)
                blobs.append(blob)
            ids.append(cid)
            rows.append(row)
        matrix = np.frombuffer(b"".join(blobs), dtype=np.float32)
        return VectorTable(
            ids=np.array(ids, dtype=np.int64),
            rows=np.array(rows, dtype=np.int64),
            matrix=matrix.reshape(len(blobs), self.dimension),
        )

    # -- operation statistics ------------------------------------------------------------

    def record_op_stats(
        self, minute: int, sums: Mapping[str, int], maxima: Mapping[str, int]
    ) -> None:
        with self.write(wait_s=STATS_WAIT_S) as c:
            c.executemany(
                "INSERT INTO op_stats(minute, name, value) VALUES (?, ?, ?) "
                "ON CONFLICT(minute, name) DO UPDATE SET value = value + excluded.value",
                [(minute, n, v) for n, v in sorted(sums.items())],
            )
            c.executemany(
                "INSERT INTO op_stats(minute, name, value) VALUES (?, ?, ?) "
                "ON CONFLICT(minute, name) DO UPDATE SET value = max(value, excluded.value)",
                [(minute, n, v) for n, v in sorted(maxima.items())],
            )
            c.execute("DELETE FROM op_stats WHERE minute < ?", (minute - OP_STATS_KEEP_MIN,))

    def op_stats(self, since_minute: int) -> list[tuple[int, str, int]]:
        with self.read() as c:
            return [
                (int(m), str(n), int(v))
                for m, n, v in c.execute(
                    "SELECT minute, name, value FROM op_stats WHERE minute >= ? "
                    "ORDER BY minute, name",
                    (since_minute,),
                )
            ]

    # -- flags and status ----------------------------------------------------------------

    def persisted_flags(self) -> dict[str, bool]:
        with self.read() as c:
            return {n: bool(e) for n, e in c.execute("SELECT name, enabled FROM flags")}

    def set_flag(self, name: str, enabled: bool | None) -> None:
        """Persist a flag value; None forgets it so the default applies again."""
        with self.write() as c:
            if enabled is None:
                c.execute("DELETE FROM flags WHERE name = ?", (name,))
            else:
                c.execute(
                    "INSERT INTO flags(name, enabled, updated_at) VALUES (?, ?, ?) "
                    "ON CONFLICT(name) DO UPDATE SET enabled=excluded.enabled, "
                    "updated_at=excluded.updated_at",
                    (name, int(enabled), time.time()),
                )

    def counts(self) -> StoreCounts:
        """Documents, chunks and generation from one snapshot."""
        with self.read() as c:
            docs = c.execute("SELECT count(*) FROM documents").fetchone()[0]
            return StoreCounts(int(docs), chunk_count_of(c), generation_of(c))

    def size_bytes(self) -> int:
        return sum(
            p.stat().st_size
            for p in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm"))
            if p.exists()
        )


# A vector whose text no chunk has (chunks_hash makes this one index probe per vector).
_UNREFERENCED = "NOT EXISTS (SELECT 1 FROM chunks ch WHERE ch.text_hash = vectors.text_hash)"


def _unused(c: sqlite3.Connection) -> UnusedVectors:
    from ragkeep.models import UnusedVectors

    # length() of a blob reads its size from the record header, not the blob itself.
    count, size = c.execute(
        "SELECT count(*), coalesce(sum(length(vector) + length(text_hash) + length(model_id)), 0) "
        f"FROM vectors WHERE {_UNREFERENCED}"
    ).fetchone()
    return UnusedVectors(int(count), int(size))


def _delete_documents(c: sqlite3.Connection, paths: Sequence[str]) -> None:
    for path in paths:
        row = c.execute("SELECT id FROM documents WHERE path = ?", (path,)).fetchone()
        if row:
            _delete_chunks(c, int(row[0]))
            c.execute("DELETE FROM documents WHERE id = ?", (row[0],))


def _delete_chunks(c: sqlite3.Connection, doc_id: int) -> None:
    """Delete a document's chunks in slices (see WRITE_SLICE): one DELETE of 50,000 chunks
    and their FTS rows is one uninterruptible statement of many seconds."""
    while c.execute(
        "DELETE FROM chunks WHERE id IN (SELECT id FROM chunks WHERE doc_id = ? LIMIT ?)",
        (doc_id, WRITE_SLICE),
    ).rowcount:
        pass


def _source_id(c: sqlite3.Connection, source_path: str | None) -> int | None:
    if source_path is None:
        return None
    row = c.execute("SELECT id FROM sources WHERE path = ?", (source_path,)).fetchone()
    return int(row[0]) if row else None


def _split_sql(script: str) -> list[str]:
    """Split a migration into statements (executescript would commit our transaction)."""
    statements: list[str] = []
    buf = ""
    for line in script.splitlines(keepends=True):
        if line.strip().startswith("--"):
            continue
        buf += line
        if sqlite3.complete_statement(buf):
            statements.append(buf.strip())
            buf = ""
    if buf.strip():
        statements.append(buf.strip())
    return statements
