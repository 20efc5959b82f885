"""The PostgreSQL backend: one database (with pgvector) holds everything that must agree,
for any number of processes on any number of machines.

Every change to a document is one transaction that replaces its chunks and postings, adds
any new vectors, updates the BM25 totals and bumps the generation and state token in
`meta`, so a reader on any server sees the old version or the new one, never a mix; and
every search reads the generation inside its own snapshot, so no cache serves an older one.
"""

from __future__ import annotations

import functools
import logging
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragkeep.resources.slow import warn_if_slow
from ragkeep.store.base import (
    CacheTable,
    DenseOptions,
    EmbedTexts,
    NotAnIndexError,
    Removal,
    StoreCounts,
    StoreError,
)
from ragkeep.store.lexical_terms import terms as text_terms
from ragkeep.store.postgres.connections import Connections
from ragkeep.store.postgres.schema import MIGRATIONS, SCHEMA_VERSION
from ragkeep.store.postgres.snapshot import PgSnapshot, generation_and_state
from ragkeep.store.postgres.writer_lock import PgWriterLock
from ragkeep.store.records import (
    DocumentRow,
    ExportedDocument,
    FileStamp,
    NewChunk,
    NewDocument,
)

if TYPE_CHECKING:
    import psycopg

    from ragkeep.models import Check, DocumentInfo, UnusedVectors
    from ragkeep.models.backups import BackupContents
    from ragkeep.store.base import Store

log = logging.getLogger(__name__)

_DOC_COLUMNS = "id, path, title, size, mtime_ns, inode, content_hash, chunk_count, indexed_at"
# Rows written per statement inside one transaction: Ctrl-C lands between statements, and
# the transaction rolls back whole (as in the SQLite backend).
WRITE_SLICE = 1000
STATS_WAIT_S = 0.25  # statistics are best-effort: a busy store costs them, not the caller
OP_STATS_KEEP_MIN = 7 * 24 * 60
# Serialises schema migrations of one index across processes (transaction-level lock).
_MIGRATION_LOCK = "hashtext('ragkeep.migrate'), hashtext(current_schema())"
_OWN_TABLES = frozenset({"meta", "documents", "chunks", "postings"})


class PostgresStore:
    def __init__(
        self,
        url: str,
        *,
        model_id: str,
        dimension: int,
        pool_size: int = 8,
        connect_timeout_s: float = 10.0,
        lock_timeout_s: float = 120.0,
        writer_timeout_s: float = 600.0,
        ef_search: int = 100,
        slow_write_s: float = 30.0,
        accept_model_change: bool = False,
    ) -> None:
        self.model_id = model_id
        self.dimension = dimension
        self.connections = Connections(url, pool_size, connect_timeout_s)
        self._lock_timeout_s = lock_timeout_s
        self.ef_search = ef_search
        self.slow_write_s = slow_write_s
        self.dense_options = DenseOptions()
        self._accept_model_change = accept_model_change
        self._writer = PgWriterLock(self.connections, writer_timeout_s, slow_write_s)
        try:
            self._migrate()
            self._check_model()
        except BaseException:
            self.close()
            raise

    @property
    def location(self) -> str:
        return self.connections.location

    @functools.cached_property
    def cache(self) -> CacheTable:
        from ragkeep.store.postgres.cache_table import PgCacheTable

        return PgCacheTable(self)

    def snapshot(self) -> PgSnapshot:
        return PgSnapshot(self)

    def writer_lock(self, on_wait: Callable[[], None] | None) -> AbstractContextManager[None]:
        return self._writer.hold(on_wait)

    def writer_holder(self) -> str | None:
        owner = self._writer.owner()
        return owner.describe() if owner is not None else None

    def configure_dense(self, options: DenseOptions) -> None:
        self.dense_options = options
        if options.ann:
            self.ensure_hnsw()

    def close(self) -> None:
        self.connections.close()

    @contextmanager
    def write(
        self, wait_s: float | None = None, kept: str | None = None
    ) -> Iterator[psycopg.Connection[Any]]:
        with self.connections.write(wait_s or self._lock_timeout_s, kept) as c:
            yield c

    def read(self) -> AbstractContextManager[psycopg.Connection[Any]]:
        return self.connections.read()

    def check(self, repair: bool, embed: EmbedTexts) -> list[Check]:
        from ragkeep.store.postgres.checks import run_checks

        return run_checks(self, repair, embed)

    # -- schema and identity -------------------------------------------------------------

    def _migrate(self) -> None:
        conn = self.connections.direct()
        try:
            with conn.transaction():
                conn.execute(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
                version = self._known_version(conn)
                for target in range(version, SCHEMA_VERSION):
                    conn.execute(MIGRATIONS[target])
                    conn.execute(
                        "INSERT INTO meta(key, value) VALUES ('schema_version', %s) "
                        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        (str(target + 1),),
                    )
                if version == 0:
                    conn.cursor().executemany(
                        "INSERT INTO meta(key, value) VALUES (%s, %s)",
                        [
                            ("model_id", self.model_id),
                            ("dimension", str(self.dimension)),
                            ("generation", "0"),
                            ("state_id", secrets.token_hex(16)),
                            ("created_at", str(time.time())),
                        ],
                    )
        except StoreError:
            raise
        except Exception as exc:
            import psycopg

            if not isinstance(exc, psycopg.Error):
                raise
            from ragkeep.store.postgres.errors import translate

            raise translate(exc, self.location, "nothing was changed") from exc
        finally:
            conn.close()

    def _known_version(self, conn: psycopg.Connection[Any]) -> int:
        tables = {
            str(r[0])
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            )
        }
        if not tables:
            return 0
        if not tables >= _OWN_TABLES:
            listed = ", ".join(sorted(tables)[:5])
            raise NotAnIndexError(
                f"{self.location} is not a ragkeep index: its schema holds other tables "
                f"({listed}), left untouched; use another database or schema "
                "(options=-csearch_path=NAME in store.url)"
            )
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = int(row[0]) if row else 0
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.location} has schema version {version}, newer than this ragkeep "
                f"understands ({SCHEMA_VERSION}); upgrade ragkeep"
            )
        return version

    def _check_model(self) -> None:
        meta = self.meta()
        if "model_id" not in meta or "generation" not in meta:
            raise NotAnIndexError(
                f"{self.location} is not a ragkeep index: its meta table has no ragkeep "
                "metadata; use another database or schema"
            )
        if self._accept_model_change:
            return
        if meta.get("model_id") != self.model_id or meta.get("dimension") != str(self.dimension):
            raise StoreError(
                f"{self.location} was built with embedding model {meta.get('model_id')!r} "
                f"({meta.get('dimension')} dims), but ragkeep is using {self.model_id!r} "
                f"({self.dimension} dims); `ragkeep reembed` re-embeds it with this model "
                "(docs/recovery.md), or use another database"
            )

    def meta(self) -> dict[str, str]:
        with self.read() as c:
            return {str(k): str(v) for k, v in c.execute("SELECT key, value FROM meta")}

    def indexed_model(self) -> tuple[str, int]:
        meta = self.meta()
        return meta["model_id"], int(meta["dimension"])

    def schema_version(self) -> int:
        return SCHEMA_VERSION

    def generation(self) -> int:
        with self.read() as c:
            return generation_and_state(c)[0]

    def state_id(self) -> str:
        with self.read() as c:
            return generation_and_state(c)[1]

    @staticmethod
    def bump(c: psycopg.Connection[Any]) -> int:
        """Advance the generation and draw a new state token, in the caller's transaction.
        The row lock on the generation also orders concurrent writers' commits."""
        row = c.execute(
            "UPDATE meta SET value = (value::bigint + 1)::text WHERE key = 'generation' "
            "RETURNING value"
        ).fetchone()
        c.execute("UPDATE meta SET value = %s WHERE key = 'state_id'", (secrets.token_hex(16),))
        return int(row[0]) if row else 0

    @staticmethod
    def current_generation(c: psycopg.Connection[Any]) -> int:
        return generation_and_state(c)[0]

    # -- sources -------------------------------------------------------------------------

    def sources(self) -> list[str]:
        with self.read() as c:
            return [str(r[0]) for r in c.execute("SELECT path FROM sources ORDER BY path")]

    def excluded(self) -> list[str]:
        with self.read() as c:
            return [str(r[0]) for r in c.execute("SELECT path FROM excluded ORDER BY path")]

    def add_sources(self, sources: Sequence[str], include: Sequence[str]) -> None:
        now = time.time()
        with self.write() as c:
            c.cursor().executemany(
                "INSERT INTO sources(path, added_at) VALUES (%s, %s) ON CONFLICT (path) DO NOTHING",
                [(path, now) for path in sources],
            )
            c.execute("DELETE FROM excluded WHERE path = ANY(%s)", (list(include),))

    def apply_removal(self, removal: Removal) -> int:
        now = time.time()
        with self.write() as c:
            _delete_documents(c, removal.documents)
            c.execute("DELETE FROM sources WHERE path = ANY(%s)", (list(removal.sources),))
            c.cursor().executemany(
                "INSERT INTO excluded(path, excluded_at) VALUES (%s, %s) "
                "ON CONFLICT (path) DO NOTHING",
                [(p, now) for p in removal.exclude],
            )
            return self.bump(c) if removal.documents else self.current_generation(c)

    # -- documents -----------------------------------------------------------------------

    def document(self, path: str) -> DocumentRow | None:
        with self.read() as c:
            row = c.execute(
                f"SELECT {_DOC_COLUMNS} FROM documents WHERE path = %s", (path,)
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
            present = {
                str(r[0])
                for r in c.execute(
                    "SELECT text_hash FROM vectors WHERE model_id = %s AND text_hash = ANY(%s)",
                    (self.model_id, sorted(wanted)),
                )
            }
        return wanted - present

    def replace_document(
        self, doc: NewDocument, chunks: Sequence[NewChunk], vectors: dict[str, bytes]
    ) -> int:
        """Store a document's new version atomically; returns the new generation."""
        kept = f"the index keeps the previous version of {doc.path} (if it had one)"
        streams = [text_terms(ch.text) for ch in chunks]  # before the transaction: CPU only
        with (
            warn_if_slow(log, f"committing {doc.path}", self.slow_write_s),
            self.write(kept=kept) as c,
        ):
            self._write_document(c, doc, chunks, vectors, streams)
            return self.bump(c)

    def _write_document(
        self,
        c: psycopg.Connection[Any],
        doc: NewDocument,
        chunks: Sequence[NewChunk],
        vectors: Mapping[str, bytes],
        streams: Sequence[list[str]],
    ) -> None:
        source_id = _source_id(c, doc.source_path)
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
        row = c.execute("SELECT id FROM documents WHERE path = %s", (doc.path,)).fetchone()
        if row:
            doc_id = int(row[0])
            _delete_chunks(c, doc_id)
            c.execute(
                "UPDATE documents SET title=%s, size=%s, mtime_ns=%s, inode=%s, "
                "content_hash=%s, chunk_count=%s, indexed_at=%s, source_id=%s WHERE id=%s",
                (*values, doc_id),
            )
        else:
            inserted = c.execute(
                "INSERT INTO documents(title, size, mtime_ns, inode, content_hash, "
                "chunk_count, indexed_at, source_id, path) "
                "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s) RETURNING id",
                (*values, doc.path),
            ).fetchone()
            doc_id = int(inserted[0]) if inserted else 0
        self.insert_vectors(c, self.model_id, vectors)
        _insert_chunks(c, doc_id, chunks, streams)
        missing = c.execute(
            "SELECT count(*) FROM chunks ch LEFT JOIN vectors v "
            "ON v.model_id = %s AND v.text_hash = ch.text_hash "
            "WHERE ch.doc_id = %s AND v.text_hash IS NULL",
            (self.model_id, doc_id),
        ).fetchone()
        if missing and missing[0]:
            # A chunk without a vector would be invisible to dense search: refuse to commit.
            raise StoreError(f"{doc.path}: {missing[0]} chunk(s) have no vector; not committed")

    def replace_all(self, copy: Store) -> int:
        """Replace the whole index by `copy`'s contents in one transaction (the caller holds
        the writer lock); returns a generation past both indexes' own."""
        with copy.snapshot() as snap, self.write(kept="the index is as it was") as c:
            old = self.current_generation(c)
            c.execute(
                "TRUNCATE documents, chunks, postings, vectors, sources, excluded, flags, "
                "result_cache"
            )
            c.execute("UPDATE lexical_totals SET chunks = 0, terms = 0")
            c.cursor().executemany(
                "INSERT INTO sources(path, added_at) VALUES (%s, %s)",
                [(p, time.time()) for p in copy.sources()],
            )
            for row in copy.documents():
                exported = copy.export_document(row.path)
                if exported is None:
                    continue
                streams = [text_terms(ch.text) for ch in exported.chunks]
                self._write_document(
                    c, exported.document, exported.chunks, exported.vectors, streams
                )
            c.cursor().executemany(
                "INSERT INTO excluded(path, excluded_at) VALUES (%s, %s)",
                [(p, time.time()) for p in copy.excluded()],
            )
            c.cursor().executemany(
                "INSERT INTO flags(name, enabled, updated_at) VALUES (%s, %s, %s)",
                [(n, e, time.time()) for n, e in sorted(copy.persisted_flags().items())],
            )
            c.execute(
                "UPDATE meta SET value = %s WHERE key = 'generation'",
                (str(max(old, snap.generation)),),
            )
            return self.bump(c)

    def add_vectors(self, vectors: dict[str, bytes]) -> int:
        """Store vectors by text hash (doctor's repair); returns the new generation."""
        with self.write() as c:
            self.insert_vectors(c, self.model_id, vectors)
            return self.bump(c)

    def insert_vectors(
        self,
        c: psycopg.Connection[Any],
        model_id: str,
        vectors: Mapping[str, bytes],
        replace: bool = False,
    ) -> None:
        """Store vectors by text hash under `model_id`; an existing one is kept, or with
        `replace` overwritten (a re-embed staging its vectors again)."""
        import numpy as np

        on_conflict = "DO UPDATE SET embedding = excluded.embedding" if replace else "DO NOTHING"
        rows = [(model_id, h, np.frombuffer(v, dtype=np.float32)) for h, v in vectors.items()]
        for start in range(0, len(rows), WRITE_SLICE):
            c.cursor().executemany(
                "INSERT INTO vectors(model_id, text_hash, embedding) VALUES (%s, %s, %b) "
                f"ON CONFLICT (model_id, text_hash) {on_conflict}",
                rows[start : start + WRITE_SLICE],
            )

    def move_document(self, old_path: str, doc: NewDocument) -> int:
        with self.write() as c:
            c.execute(
                "UPDATE documents SET path=%s, size=%s, mtime_ns=%s, inode=%s, source_id=%s "
                "WHERE path=%s",
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
        with self.write() as c:
            c.execute(
                "UPDATE documents SET size=%s, mtime_ns=%s, inode=%s WHERE path=%s",
                (stamp.size, stamp.mtime_ns, stamp.inode, path),
            )

    def delete_documents(self, paths: Sequence[str]) -> int:
        with self.write() as c:
            _delete_documents(c, paths)
            return self.bump(c) if paths else self.current_generation(c)

    def vector_count(self) -> int:
        with self.read() as c:
            row = c.execute("SELECT count(*) FROM vectors").fetchone()
        return int(row[0]) if row else 0

    def unreferenced_vectors(self) -> UnusedVectors:
        with self.read() as c:
            return _unused(c)

    def collect_garbage(self) -> UnusedVectors:
        with self.write() as c:
            unused = _unused(c)
            c.execute(f"DELETE FROM vectors WHERE {_UNREFERENCED}")
            return unused

    # -- backups and re-embedding --------------------------------------------------------

    def copy_to(self, target: Path) -> BackupContents:
        from ragkeep.store.transfer import copy_to_file

        return copy_to_file(self, target)

    def copy_schema_version(self) -> int:
        from ragkeep.store.sqlite.schema import SCHEMA_VERSION as SQLITE_SCHEMA_VERSION

        return SQLITE_SCHEMA_VERSION

    def restore_from(self, source: Path, migrate: bool = True) -> int:
        from ragkeep.store.transfer import restore_from_file

        return restore_from_file(self, source)

    def export_document(self, path: str) -> ExportedDocument | None:
        with self.read() as c:
            row = c.execute(
                "SELECT d.id, d.title, d.size, d.mtime_ns, d.inode, d.content_hash, s.path "
                "FROM documents d LEFT JOIN sources s ON s.id = d.source_id WHERE d.path = %s",
                (path,),
            ).fetchone()
            if row is None:
                return None
            chunks = [
                NewChunk(*r)
                for r in c.execute(
                    'SELECT ordinal, text, text_hash, start, "end", page, tokens FROM chunks '
                    "WHERE doc_id = %s ORDER BY ordinal",
                    (row[0],),
                )
            ]
            vectors = {
                str(h): vector_bytes(v)
                for h, v in c.execute(
                    "SELECT v.text_hash, v.embedding FROM vectors v WHERE v.model_id = %s AND "
                    "v.text_hash IN (SELECT text_hash FROM chunks WHERE doc_id = %s)",
                    (self.model_id, row[0]),
                )
            }
        stamp = FileStamp(int(row[2]), int(row[3]), int(row[4]))
        doc = NewDocument(path, str(row[1]), stamp, str(row[5]), row[6])
        return ExportedDocument(doc, chunks, vectors)

    def chunk_texts(self, after: str, n: int) -> list[tuple[str, str]]:
        with self.read() as c:
            return [
                (str(h), str(t))
                for h, t in c.execute(
                    "SELECT text_hash, min(text) FROM chunks WHERE text_hash > %s "
                    "GROUP BY text_hash ORDER BY text_hash LIMIT %s",
                    (after, n),
                )
            ]

    def stage_vectors(self, tag: str, vectors: dict[str, bytes]) -> None:
        with self.write() as c:
            self.insert_vectors(c, tag, vectors, replace=True)

    def drop_vectors(self, tag: str) -> None:
        with self.write() as c:
            c.execute("DELETE FROM vectors WHERE model_id = %s", (tag,))

    def switch_model(self, tag: str) -> int:
        with self.write() as c:
            c.execute("DELETE FROM vectors WHERE model_id != %s", (tag,))
            c.execute("UPDATE vectors SET model_id = %s WHERE model_id = %s", (self.model_id, tag))
            c.cursor().executemany(
                "UPDATE meta SET value = %s WHERE key = %s",
                [(self.model_id, "model_id"), (str(self.dimension), "dimension")],
            )
            return self.bump(c)

    # -- approximate dense index ---------------------------------------------------------

    def ensure_hnsw(self) -> None:
        """Build the HNSW index over this model's vectors if it is missing (once, by any
        process: CREATE INDEX IF NOT EXISTS; concurrent builds wait for each other)."""
        from ragkeep.store.postgres.dense import hnsw_index_name

        name = hnsw_index_name(self.model_id, self.dimension)
        dim = int(self.dimension)
        conn = self.connections.direct()
        try:
            with conn.cursor() as cur:
                cur.execute(
                    f"CREATE INDEX IF NOT EXISTS {name} ON vectors USING hnsw "
                    f"((embedding::vector({dim})) vector_ip_ops) "
                    "WHERE model_id = " + _literal(conn, self.model_id)
                )
        finally:
            conn.close()

    # -- operation statistics ------------------------------------------------------------

    def record_op_stats(
        self, minute: int, sums: Mapping[str, int], maxima: Mapping[str, int]
    ) -> None:
        with self.write(wait_s=STATS_WAIT_S) as c:
            cur = c.cursor()
            cur.executemany(
                "INSERT INTO op_stats(minute, name, value) VALUES (%s, %s, %s) "
                "ON CONFLICT (minute, name) DO UPDATE SET value = op_stats.value + excluded.value",
                [(minute, n, v) for n, v in sorted(sums.items())],
            )
            cur.executemany(
                "INSERT INTO op_stats(minute, name, value) VALUES (%s, %s, %s) "
                "ON CONFLICT (minute, name) DO UPDATE "
                "SET value = greatest(op_stats.value, excluded.value)",
                [(minute, n, v) for n, v in sorted(maxima.items())],
            )
            c.execute("DELETE FROM op_stats WHERE minute < %s", (minute - OP_STATS_KEEP_MIN,))

    def op_stats(self, since_minute: int) -> list[tuple[int, str, int]]:
        with self.read() as c:
            return [
                (int(m), str(n), int(v))
                for m, n, v in c.execute(
                    "SELECT minute, name, value FROM op_stats WHERE minute >= %s "
                    "ORDER BY minute, name",
                    (since_minute,),
                )
            ]

    # -- flags and status ----------------------------------------------------------------

    def persisted_flags(self) -> dict[str, bool]:
        with self.read() as c:
            return {str(n): bool(e) for n, e in c.execute("SELECT name, enabled FROM flags")}

    def set_flag(self, name: str, enabled: bool | None) -> None:
        with self.write() as c:
            if enabled is None:
                c.execute("DELETE FROM flags WHERE name = %s", (name,))
            else:
                c.execute(
                    "INSERT INTO flags(name, enabled, updated_at) VALUES (%s, %s, %s) "
                    "ON CONFLICT (name) DO UPDATE SET enabled = excluded.enabled, "
                    "updated_at = excluded.updated_at",
                    (name, enabled, time.time()),
                )

    def counts(self) -> StoreCounts:
        with self.read() as c:
            row = c.execute(
                "SELECT (SELECT count(*) FROM documents), (SELECT chunks FROM lexical_totals)"
            ).fetchone()
            generation = self.current_generation(c)
        return StoreCounts(int(row[0]), int(row[1]), generation) if row else StoreCounts(0, 0, 0)

    def size_bytes(self) -> int:
        with self.read() as c:
            row = c.execute(
                "SELECT coalesce(sum(pg_total_relation_size((quote_ident(schemaname) || '.' || "
                "quote_ident(tablename))::regclass)), 0) FROM pg_tables "
                "WHERE schemaname = current_schema()"
            ).fetchone()
        return int(row[0]) if row else 0


# A vector whose text no chunk has.
_UNREFERENCED = "NOT EXISTS (SELECT 1 FROM chunks ch WHERE ch.text_hash = vectors.text_hash)"


def _unused(c: psycopg.Connection[Any]) -> UnusedVectors:
    from ragkeep.models import UnusedVectors

    row = c.execute(
        "SELECT count(*), coalesce(sum(pg_column_size(embedding) + length(text_hash) "
        f"+ length(model_id)), 0) FROM vectors WHERE {_UNREFERENCED}"
    ).fetchone()
    return UnusedVectors(int(row[0]), int(row[1])) if row else UnusedVectors(0, 0)


def _insert_chunks(
    c: psycopg.Connection[Any],
    doc_id: int,
    chunks: Sequence[NewChunk],
    streams: Sequence[list[str]],
) -> None:
    """The chunks, their postings and the BM25 totals, in slices of WRITE_SLICE rows."""
    for start in range(0, len(chunks), WRITE_SLICE):
        part = chunks[start : start + WRITE_SLICE]
        lengths = [len(s) for s in streams[start : start + WRITE_SLICE]]
        rows = c.execute(
            'INSERT INTO chunks(doc_id, ordinal, text, text_hash, start, "end", page, '
            "tokens, terms) SELECT %s, o, t, h, s, e, p, k, n FROM unnest(%s::integer[], "
            "%s::text[], %s::text[], %s::integer[], %s::integer[], %s::integer[], "
            "%s::integer[], %s::integer[]) AS u(o, t, h, s, e, p, k, n) RETURNING id, ordinal",
            (
                doc_id,
                [ch.ordinal for ch in part],
                [ch.text for ch in part],
                [ch.text_hash for ch in part],
                [ch.start for ch in part],
                [ch.end for ch in part],
                [ch.page for ch in part],
                [ch.tokens for ch in part],
                lengths,
            ),
        ).fetchall()
        id_of = {int(ordinal): int(cid) for cid, ordinal in rows}
        ids = [id_of[ch.ordinal] for ch in part]
        with c.cursor().copy("COPY postings(term, chunk_id, tf, dl, positions) FROM STDIN") as copy:
            for chunk_id, stream, length in zip(
                ids, streams[start : start + WRITE_SLICE], lengths, strict=True
            ):
                for term, positions in term_positions(stream).items():
                    copy.write_row((term, chunk_id, len(positions), length, positions))
        c.execute(
            "UPDATE lexical_totals SET chunks = chunks + %s, terms = terms + %s",
            (len(part), sum(lengths)),
        )


def term_positions(stream: Sequence[str]) -> dict[str, list[int]]:
    """Where in the chunk's term stream each term stands."""
    where: dict[str, list[int]] = {}
    for i, term in enumerate(stream):
        where.setdefault(term, []).append(i)
    return where


def _delete_documents(c: psycopg.Connection[Any], paths: Sequence[str]) -> None:
    for path in paths:
        row = c.execute("SELECT id FROM documents WHERE path = %s", (path,)).fetchone()
        if row:
            _delete_chunks(c, int(row[0]))
            c.execute("DELETE FROM documents WHERE id = %s", (row[0],))


def _delete_chunks(c: psycopg.Connection[Any], doc_id: int) -> None:
    """Delete a document's chunks (postings follow) and take them out of the BM25 totals,
    in slices (see WRITE_SLICE)."""
    while True:
        row = c.execute(
            "WITH gone AS (DELETE FROM chunks WHERE id IN (SELECT id FROM chunks "
            "WHERE doc_id = %s LIMIT %s) RETURNING terms) "
            "SELECT count(*), coalesce(sum(terms), 0) FROM gone",
            (doc_id, WRITE_SLICE),
        ).fetchone()
        if not row or not row[0]:
            return
        c.execute(
            "UPDATE lexical_totals SET chunks = chunks - %s, terms = terms - %s",
            (int(row[0]), int(row[1])),
        )


def _source_id(c: psycopg.Connection[Any], source_path: str | None) -> int | None:
    if source_path is None:
        return None
    row = c.execute("SELECT id FROM sources WHERE path = %s", (source_path,)).fetchone()
    return int(row[0]) if row else None


def _literal(conn: psycopg.Connection[Any], value: str) -> str:
    from psycopg import sql

    return sql.Literal(value).as_string(conn)


def vector_bytes(value: Any) -> bytes:
    """A vector as read (pgvector's Vector) as the store's float32 bytes."""
    import numpy as np

    return np.asarray(value.to_numpy(), dtype=np.float32).tobytes()
