"""The SQLite schema as forward-only migrations; `PRAGMA user_version` is the schema version."""

from __future__ import annotations

# Each entry upgrades the schema from version i to i + 1. Never edit a released entry:
# append a new one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE sources (
        id       INTEGER PRIMARY KEY,
        path     TEXT NOT NULL UNIQUE,
        added_at REAL NOT NULL
    );
    -- Paths inside a source that `ragkeep remove` took out; sync does not walk them.
    CREATE TABLE excluded (
        path       TEXT PRIMARY KEY,
        excluded_at REAL NOT NULL
    );
    CREATE TABLE documents (
        id           INTEGER PRIMARY KEY,
        path         TEXT NOT NULL UNIQUE,
        source_id    INTEGER REFERENCES sources(id) ON DELETE SET NULL,
        title        TEXT NOT NULL,
        size         INTEGER NOT NULL,
        mtime_ns     INTEGER NOT NULL,
        inode        INTEGER NOT NULL,
        content_hash TEXT NOT NULL,
        chunk_count  INTEGER NOT NULL,
        indexed_at   REAL NOT NULL
    );
    CREATE INDEX documents_hash ON documents(content_hash);
    CREATE TABLE chunks (
        id        INTEGER PRIMARY KEY,
        doc_id    INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
        ordinal   INTEGER NOT NULL,
        text      TEXT NOT NULL,
        text_hash TEXT NOT NULL,
        start     INTEGER NOT NULL,
        end       INTEGER NOT NULL,
        page      INTEGER,
        tokens    INTEGER NOT NULL
    );
    CREATE INDEX chunks_doc ON chunks(doc_id, ordinal);
    CREATE INDEX chunks_hash ON chunks(text_hash);
    CREATE VIRTUAL TABLE chunks_fts USING fts5(
        text,
        content='chunks',
        content_rowid='id',
        tokenize='porter unicode61 remove_diacritics 2'
    );
    -- The FTS index follows the chunks table inside the same transaction.
    CREATE TRIGGER chunks_ai AFTER INSERT ON chunks BEGIN
        INSERT INTO chunks_fts(rowid, text) VALUES (new.id, new.text);
    END;
    CREATE TRIGGER chunks_ad AFTER DELETE ON chunks BEGIN
        INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.id, old.text);
    END;
    CREATE TRIGGER chunks_au AFTER UPDATE OF text ON chunks BEGIN
        INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.id, old.text);
        INSERT INTO chunks_fts(rowid, text) VALUES (new.id, new.text);
    END;
    -- Content-addressed: unchanged, duplicated or moved chunk texts are never re-embedded.
    CREATE TABLE vectors (
        model_id  TEXT NOT NULL,
        text_hash TEXT NOT NULL,
        vector    BLOB NOT NULL,
        PRIMARY KEY (model_id, text_hash)
    ) WITHOUT ROWID;
    CREATE TABLE flags (
        name       TEXT PRIMARY KEY,
        enabled    INTEGER NOT NULL,
        updated_at REAL NOT NULL
    );
    """,
    # 2: the persistent result cache, shared by every process that opens the index.
    """
    CREATE TABLE result_cache (
        key        TEXT PRIMARY KEY,
        generation INTEGER NOT NULL,
        value      TEXT NOT NULL,
        size       INTEGER NOT NULL,
        created_at REAL NOT NULL,
        used_at    REAL NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX result_cache_generation ON result_cache(generation);
    CREATE INDEX result_cache_used ON result_cache(used_at);
    CREATE TABLE cache_stats (
        name  TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    );
    """,
    # v3: a random token replaced in every commit, beside the generation. Derived files are
    # keyed by it: a rebuilt or restored database can reach a generation number it had
    # before with other contents, but never a token it had before.
    """
    INSERT OR IGNORE INTO meta(key, value) VALUES ('state_id', lower(hex(randomblob(16))));
    """,
    # v4: what each process did, per minute (request and error counts, latency buckets, cache
    # lookups, peak memory), so `ragkeep health` can judge an index no server is running on.
    """
    CREATE TABLE op_stats (
        minute INTEGER NOT NULL,
        name   TEXT NOT NULL,
        value  INTEGER NOT NULL,
        PRIMARY KEY (minute, name)
    ) WITHOUT ROWID;
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)
