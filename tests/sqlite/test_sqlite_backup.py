"""Backups of the SQLite index: consistent while a writer commits, trusted only when complete
and unchanged, restored in one step under a generation and token never seen before."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from ragkeep import Keep
from ragkeep.store.backups import INDEX_FILE, MANIFEST, TMP, BackupShelf, read_backup
from ragkeep.store.base import BackupError
from ragkeep.store.sqlite import SqliteStore
from ragkeep.store.sqlite.backup import RESTORE_DIR

from conftest import run_cli, write
from contract_helpers import DIM, MODEL, put, vec


def _store(folder: Path, name: str = "ragkeep.db") -> SqliteStore:
    return SqliteStore(folder / name, model_id=MODEL, dimension=DIM)


def test_a_backup_holds_the_commits_before_it_and_says_which(tmp_path: Path) -> None:
    store = _store(tmp_path / "live")
    for i in range(20):
        put(store, f"/d{i}", {f"text {i}": vec(1)})
    shelf = BackupShelf(tmp_path / "backups", keep=5)
    manifest = shelf.take(store.copy_to, "manual")
    assert manifest.generation == store.generation() and manifest.documents == 20
    assert read_backup(shelf.root / manifest.id) == manifest
    # One file, no WAL beside it: a copy whose last pages sat in a -wal file would lose them.
    assert sorted(p.name for p in (shelf.root / manifest.id).iterdir()) == [INDEX_FILE, MANIFEST]
    copy = _store(shelf.root / manifest.id, INDEX_FILE)
    assert [d.path for d in copy.documents()] == [d.path for d in store.documents()]
    copy.close()
    store.close()


def test_a_backup_taken_while_a_writer_commits_is_one_generation(tmp_path: Path) -> None:
    store = _store(tmp_path / "live")
    shelf = BackupShelf(tmp_path / "backups", keep=10)
    stop = threading.Event()

    def write() -> None:
        i = 0
        while not stop.is_set():
            put(store, f"/w{i}", {f"written {i}": vec(2)})
            i += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        manifests = [shelf.take(store.copy_to, "manual") for _ in range(5)]
    finally:
        stop.set()
        writer.join()
    for manifest in manifests:
        copy = _store(shelf.root / manifest.id, INDEX_FILE)
        # Each document is one commit, so generation N holds exactly N documents.
        assert len(copy.documents()) == manifest.documents == manifest.generation
        copy.close()
    store.close()


def test_a_changed_or_incomplete_backup_is_not_trusted(tmp_path: Path) -> None:
    store = _store(tmp_path / "live")
    put(store, "/a", {"alpha": vec(1)})
    shelf = BackupShelf(tmp_path / "backups", keep=5)
    folder = shelf.root / shelf.take(store.copy_to, "manual").id
    with (folder / INDEX_FILE).open("r+b") as fh:
        fh.seek(200)
        fh.write(b"\x00\x01")
    with pytest.raises(BackupError, match="checksum"):
        read_backup(folder)
    (folder / MANIFEST).write_text('{"id": 3}')
    with pytest.raises(BackupError, match="not valid"):
        read_backup(folder)
    # What a kill leaves: a temp copy and no manifest. Listed as incomplete, pruned.
    killed = shelf.root / "20990101-000000-killed"
    killed.mkdir()
    (killed / (INDEX_FILE + TMP)).write_bytes(b"half")
    with pytest.raises(BackupError, match="not a complete"):
        read_backup(killed)
    problems = {e.path.name: e.problem for e in shelf.entries()}
    assert problems[killed.name] is not None and problems[folder.name] is not None
    assert sorted(shelf.prune(keep=5)) == sorted([killed.name, folder.name])
    assert shelf.entries() == []
    store.close()


def test_pruning_keeps_the_newest(tmp_path: Path) -> None:
    store = _store(tmp_path / "live")
    shelf = BackupShelf(tmp_path / "backups", keep=2)
    ids = []
    for i in range(4):
        put(store, f"/d{i}", {f"text {i}": vec(1)})
        ids.append(shelf.take(store.copy_to, "manual").id)
    assert [e.path.name for e in shelf.entries()] == [ids[3], ids[2]]
    store.close()


def test_a_restore_brings_the_backup_back_under_a_new_generation_and_token(
    tmp_path: Path,
) -> None:
    store = _store(tmp_path / "live")
    put(store, "/kept", {"kept text": vec(1)})
    shelf = BackupShelf(tmp_path / "backups", keep=5)
    manifest = shelf.take(store.copy_to, "manual")
    put(store, "/later", {"later text": vec(2)})
    before_gen, before_token = store.generation(), store.state_id()
    generation = store.restore_from(shelf.root / manifest.id / INDEX_FILE)
    # The open store sees the restored contents on its next read.
    assert [d.path for d in store.documents()] == ["/kept"]
    assert store.generation() == generation > before_gen
    assert store.state_id() not in (before_token, manifest.state_id)
    assert not (tmp_path / "live" / RESTORE_DIR).exists()
    conn = sqlite3.connect(store.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # still WAL after
    conn.close()
    store.close()


def test_a_reader_mid_snapshot_finishes_on_the_old_index(tmp_path: Path) -> None:
    """Readers in a read transaction keep their snapshot through a restore; the next one
    sees the restored index."""
    store = _store(tmp_path / "live")
    put(store, "/kept", {"kept text": vec(1)})
    shelf = BackupShelf(tmp_path / "backups", keep=5)
    manifest = shelf.take(store.copy_to, "manual")
    put(store, "/later", {"later text": vec(2)})
    reader = _store(tmp_path / "live")
    with reader.read() as c:
        before = [r[0] for r in c.execute("SELECT path FROM documents ORDER BY path")]
        store.restore_from(shelf.root / manifest.id / INDEX_FILE)
        during = [r[0] for r in c.execute("SELECT path FROM documents ORDER BY path")]
    assert before == during == ["/kept", "/later"]
    assert [d.path for d in reader.documents()] == ["/kept"]
    reader.close()
    store.close()


def test_a_restore_empties_the_copied_result_cache(tmp_path: Path) -> None:
    store = _store(tmp_path / "live")
    put(store, "/a", {"alpha": vec(1)})
    with store.write() as c:
        c.execute(
            "INSERT INTO result_cache(key, generation, value, size, created_at, used_at) "
            "VALUES ('k', 1, 'v', 1, 0, 0)"
        )
    shelf = BackupShelf(tmp_path / "backups", keep=5)
    manifest = shelf.take(store.copy_to, "manual")
    store.restore_from(shelf.root / manifest.id / INDEX_FILE)
    assert store.cache.entries() == (0, 0)
    store.close()


def test_doctor_repair_snapshots_first_when_it_has_something_to_repair(
    data_dir: Path, docs_dir: Path
) -> None:
    write(docs_dir / "owls.md", "Barn owls hunt voles at night.")
    with Keep(data_dir) as keep:
        keep.add([docs_dir])
        keep.search("owls", 1, "dense")  # writes the vector file
        assert keep.doctor(repair=True).snapshot is None  # healthy: nothing to keep
        assert isinstance(keep.store, SqliteStore)
        path = keep.store.dense_state().vector_file.path
        raw = bytearray(path.read_bytes())
        raw[-384 * 4 :] = bytes(384 * 4)
        path.write_bytes(bytes(raw))
        report = keep.doctor(repair=True)
        [entry] = keep.recovery.entries()
        assert report.ok and entry.manifest is not None
        assert report.snapshot == entry.manifest.id
        assert entry.manifest.reason == "before doctor --repair"


def _indexed(tmp_path: Path) -> tuple[Path, str, list[str]]:
    docs = tmp_path / "docs"
    for i in range(30):
        write(docs / f"note{i}.md", f"Note {i} about owls, voles and the night. " * 40)
    data = tmp_path / "data"
    assert run_cli("add", str(docs), "-q", data_dir=data).code == 0
    backup_id = run_cli("backup", "--json", data_dir=data).json()["id"]
    listed = sorted(d["path"] for d in run_cli("list", "--json", data_dir=data).json())
    return data, backup_id, listed


def test_a_restore_over_an_index_that_cannot_be_opened_keeps_it_aside(tmp_path: Path) -> None:
    data, backup_id, listed = _indexed(tmp_path)
    db = data / "ragkeep.db"
    db.write_bytes(b"not a database at all" * 400)
    listed_backups = run_cli("backup", "list", "--json", data_dir=data)  # needs no index
    assert [e["manifest"]["id"] for e in listed_backups.json()] == [backup_id]
    typo = run_cli("restore", "no-such-id", data_dir=data)
    assert typo.code == 2 and db.exists()  # a bad backup moves nothing
    restored = run_cli("restore", backup_id, "--json", data_dir=data)
    assert restored.code == 0, restored.stderr
    assert "moved it to" in restored.stderr and restored.json()["replaced"] is None
    [aside] = data.glob("ragkeep.db.damaged-*")
    assert aside.read_bytes().startswith(b"not a database")  # kept, as it was
    assert sorted(d["path"] for d in run_cli("list", "--json", data_dir=data).json()) == listed
    assert run_cli("doctor", data_dir=data).code == 0


def test_a_restore_over_a_damaged_index_goes_on_without_keeping_it(tmp_path: Path) -> None:
    data, backup_id, listed = _indexed(tmp_path)
    db = data / "ragkeep.db"
    raw = bytearray(db.read_bytes())
    middle = len(raw) // 2
    raw[middle : middle + 20000] = bytes(range(256)) * 78 + bytes(32)
    db.write_bytes(bytes(raw))
    assert run_cli("doctor", data_dir=data).code == 1
    restored = run_cli("restore", backup_id, "--json", data_dir=data)
    assert restored.code == 0, restored.stderr
    assert restored.json()["replaced"] is None
    assert sorted(d["path"] for d in run_cli("list", "--json", data_dir=data).json()) == listed
    assert run_cli("doctor", data_dir=data).code == 0
