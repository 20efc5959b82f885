"""A schema migration is snapshotted first and undone by itself when it fails or its result
does not validate; the snapshot stays readable by the ragkeep that wrote the old schema."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from ragkeep.models.search import LexicalQuery, Phrase
from ragkeep.store.backups import INDEX_FILE, BackupShelf
from ragkeep.store.base import StoreError
from ragkeep.store.sqlite import SqliteStore, schema
from ragkeep.store.sqlite import migration as migration_module
from ragkeep.store.sqlite import store as store_module

from contract_helpers import DIM, MODEL, put, vec

OLD = schema.SCHEMA_VERSION - 1  # the last migration only adds a table: easy to undo here

# Faults a migration can have. One commits and is wrong (drops every other chunk): the
# transaction cannot help, only the snapshot can. One fails halfway through.
DROPS_ROWS = "CREATE TABLE later_feature (x INTEGER);\nDELETE FROM chunks WHERE id % 2 = 0;\n"
FAILS_HALFWAY = "CREATE TABLE later_feature (x INTEGER);\nINSERT INTO no_such_table VALUES (1);\n"


def _open(folder: Path, shelf: BackupShelf | None) -> SqliteStore:
    return SqliteStore(folder / "ragkeep.db", model_id=MODEL, dimension=DIM, shelf=shelf)


def _old_index(folder: Path) -> Path:
    """An index at schema OLD holding a few documents, as the previous ragkeep left it."""
    store = _open(folder, None)
    for i in range(6):
        put(store, f"/doc{i}", {f"apple {i} pear": vec(1), f"plum {i} apple": vec(2)})
    store.close()
    conn = sqlite3.connect(folder / "ragkeep.db")
    conn.execute("DROP TABLE op_stats")  # what migration OLD -> OLD + 1 creates
    conn.execute(f"PRAGMA user_version = {OLD}")
    conn.commit()
    conn.close()
    return folder / "ragkeep.db"


def _results(store: SqliteStore) -> list[object]:
    query = LexicalQuery(scored=(Phrase(("apple",)),), required=(), exact=())
    with store.snapshot() as snap:
        ranking = snap.lexical.search(query, 20)
    return [ranking, [(d.path, d.chunk_count) for d in store.documents()]]


def _with_next_migration(monkeypatch: pytest.MonkeyPatch, sql: str) -> None:
    migrations = (*schema.MIGRATIONS, sql)
    monkeypatch.setattr(store_module, "MIGRATIONS", migrations)
    for module in (store_module, migration_module):
        monkeypatch.setattr(module, "SCHEMA_VERSION", len(migrations))


@pytest.mark.parametrize("fault", [DROPS_ROWS, FAILS_HALFWAY], ids=["drops-rows", "fails"])
def test_a_faulty_migration_is_rolled_back_to_the_results_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    db = _old_index(tmp_path / "live")
    # The results before: a copy migrated by this ragkeep's real migrations.
    (tmp_path / "reference").mkdir()
    shutil.copyfile(db, tmp_path / "reference" / "ragkeep.db")
    reference = _open(tmp_path / "reference", None)
    before = _results(reference)
    reference.close()
    shelf = BackupShelf(tmp_path / "backups", keep=5)
    with monkeypatch.context() as patched:
        _with_next_migration(patched, fault)
        with pytest.raises(StoreError, match="rolled back to schema") as raised:
            _open(tmp_path / "live", shelf)
    why = "failed validation (contents unchanged" if fault == DROPS_ROWS else "no such table"
    assert why in str(raised.value)  # the fault was met where it was put
    conn = sqlite3.connect(db)
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    conn.close()
    assert version == OLD and "later_feature" not in tables
    # This ragkeep (the real migrations) opens it and answers exactly as before.
    store = _open(tmp_path / "live", shelf)
    assert _results(store) == before
    store.close()


def test_the_snapshot_before_a_migration_keeps_the_old_schema(tmp_path: Path) -> None:
    """What the older ragkeep wrote is what its backup holds: the same schema version and
    tables, so that ragkeep opens it (docs/recovery.md, "Which ragkeep opens which index")."""
    _old_index(tmp_path / "live")
    old_tables = _tables(tmp_path / "live" / "ragkeep.db")
    shelf = BackupShelf(tmp_path / "backups", keep=5)
    store = _open(tmp_path / "live", shelf)
    [entry] = shelf.entries()
    assert entry.manifest is not None
    assert entry.manifest.reason == f"before migration {OLD} -> {schema.SCHEMA_VERSION}"
    assert entry.manifest.schema_version == OLD
    copy = entry.path / INDEX_FILE
    conn = sqlite3.connect(copy)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == OLD
    conn.close()
    assert _tables(copy) == old_tables
    assert store.schema_version() == schema.SCHEMA_VERSION
    store.close()


def test_an_up_to_date_or_new_index_takes_no_snapshot(tmp_path: Path) -> None:
    shelf = BackupShelf(tmp_path / "backups", keep=5)
    _open(tmp_path / "live", shelf).close()  # created: nothing to keep
    _open(tmp_path / "live", shelf).close()  # current: nothing to migrate
    assert shelf.entries() == []


def _tables(db: Path) -> set[str]:
    conn = sqlite3.connect(db)
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()
    return names
