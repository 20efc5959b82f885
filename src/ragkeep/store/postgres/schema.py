"""The PostgreSQL schema as forward-only migrations; meta's `schema_version` is the version.

The same tables as the SQLite backend, except full-text search: PostgreSQL's own ranking
(ts_rank) is not BM25, so chunk texts are tokenized in Python exactly as SQLite's FTS5 does
(store/lexical_terms.py) into `postings`, and BM25 is computed in SQL from them and the
totals kept in `lexical_totals` (store/postgres/lexical.py).
"""

from __future__ import annotations

# Each entry upgrades the schema from version i to i + 1. Never edit a released entry:
# append a new one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE EXTENSION IF NOT EXISTS vector;
    CREATE TABLE meta (
        key   text PRIMARY KEY,
        value text NOT NULL
    );
    CREATE TABLE sources (
        id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        path     text NOT NULL UNIQUE,
        added_at double precision NOT NULL
    );
    CREATE TABLE excluded (
        path        text PRIMARY KEY,
        excluded_at double precision NOT NULL
    );
    CREATE TABLE documents (
        id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        path         text NOT NULL UNIQUE,
        source_id    bigint REFERENCES sources(id) ON DELETE SET NULL,
        title        text NOT NULL,
        size         bigint NOT NULL,
        mtime_ns     bigint NOT NULL,
        inode        bigint NOT NULL,
        content_hash text NOT NULL,
        chunk_count  integer NOT NULL,
        indexed_at   double precision NOT NULL
    );
    CREATE INDEX documents_hash ON documents(content_hash);
    CREATE INDEX documents_source ON documents(source_id);
    CREATE TABLE chunks (
        id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        doc_id    bigint NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
        ordinal   integer NOT NULL,
        text      text NOT NULL,
        text_hash text NOT NULL,
        start     integer NOT NULL,
        "end"     integer NOT NULL,
        page      integer,
        tokens    integer NOT NULL,
        terms     integer NOT NULL  -- BM25's document length: how many terms the text has
    );
    CREATE INDEX chunks_doc ON chunks(doc_id, ordinal);
    CREATE INDEX chunks_hash ON chunks(text_hash);
    -- One row per (term, chunk): where in the chunk's term stream the term stands.
    CREATE TABLE postings (
        term      text NOT NULL,
        chunk_id  bigint NOT NULL REFERENCES chunks(id) ON DELETE CASCADE,
        tf        integer NOT NULL,
        dl        integer NOT NULL,  -- the chunk's term count, here so BM25 reads no chunk
        positions integer[] NOT NULL,
        PRIMARY KEY (term, chunk_id) INCLUDE (tf, dl)
    );
    CREATE INDEX postings_chunk ON postings(chunk_id);
    -- BM25's corpus statistics, kept in every write transaction (one row).
    CREATE TABLE lexical_totals (
        id     integer PRIMARY KEY CHECK (id = 1),
        chunks bigint NOT NULL,
        terms  bigint NOT NULL
    );
    INSERT INTO lexical_totals VALUES (1, 0, 0);
    -- Content-addressed: unchanged, duplicated or moved chunk texts are never re-embedded.
    CREATE TABLE vectors (
        model_id  text NOT NULL,
        text_hash text NOT NULL,
        embedding vector NOT NULL,
        PRIMARY KEY (model_id, text_hash)
    );
    CREATE TABLE flags (
        name       text PRIMARY KEY,
        enabled    boolean NOT NULL,
        updated_at double precision NOT NULL
    );
    CREATE TABLE result_cache (
        key        text PRIMARY KEY,
        generation bigint NOT NULL,
        value      text NOT NULL,
        size       integer NOT NULL,
        created_at double precision NOT NULL,
        used_at    double precision NOT NULL
    );
    CREATE INDEX result_cache_generation ON result_cache(generation);
    CREATE INDEX result_cache_used ON result_cache(used_at);
    CREATE TABLE cache_stats (
        name  text PRIMARY KEY,
        value bigint NOT NULL
    );
    CREATE TABLE op_stats (
        minute integer NOT NULL,
        name   text NOT NULL,
        value  bigint NOT NULL,
        PRIMARY KEY (minute, name)
    );
    -- Who holds the writer lock (an advisory lock), for the message of those who wait.
    CREATE TABLE writer_owner (
        id      integer PRIMARY KEY CHECK (id = 1),
        pid     integer NOT NULL,
        host    text NOT NULL,
        command text NOT NULL,
        since   double precision NOT NULL,
        backend integer NOT NULL  -- pg_backend_pid() of the lock's session: alive or not
    );
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)
