"""The derived vector file: used only for exactly the snapshot it was made from."""

from __future__ import annotations

import shutil
from pathlib import Path

from ragkeep import Keep
from ragkeep.store.sqlite import SqliteStore

from conftest import write

OFF = {"flags.caching": False}  # every search below must really search


def _file(keep: Keep) -> Path:
    assert isinstance(keep.store, SqliteStore)
    return keep.store.dense_state().vector_file.path


def _top(keep: Keep, query: str) -> str:
    return Path(keep.search(query, 1, "dense")[0].path).name


def test_a_new_process_reads_the_file_of_its_snapshot(data_dir: Path, docs_dir: Path) -> None:
    write(docs_dir / "owls.md", "Barn owls hunt voles at night.")
    write(docs_dir / "bees.md", "Honey bees build wax combs.")
    with Keep(data_dir, overrides=OFF) as first:
        first.add([docs_dir])
        assert _top(first, "nocturnal birds of prey") == "owls.md"
        written = _file(first).stat().st_ino
    with Keep(data_dir, overrides=OFF) as second:
        assert _top(second, "nocturnal birds of prey") == "owls.md"
        # Loaded, not rewritten: os.replace would have given the file a new inode.
        assert _file(second).stat().st_ino == written
        assert second.doctor().ok


def test_a_stale_file_is_never_used(data_dir: Path, docs_dir: Path) -> None:
    write(docs_dir / "owls.md", "Barn owls hunt voles at night.")
    with Keep(data_dir, overrides=OFF) as keep:
        keep.add([docs_dir])
        _top(keep, "owls")
    with Keep(data_dir, overrides=OFF) as keep:
        write(docs_dir / "otters.md", "River otters catch fish and crabs.")
        keep.sync()
    with Keep(data_dir, overrides=OFF) as keep:
        assert _top(keep, "otters eating fish") == "otters.md"


def test_a_restored_database_does_not_trust_a_file_of_the_same_generation(
    tmp_path: Path, data_dir: Path
) -> None:
    """Restore a backup, then reach the generation the file was made at with other
    contents: a file keyed by generation alone would answer with the wrong vectors."""
    docs = tmp_path / "docs"
    write(docs / "owls.md", "Barn owls hunt voles at night.")
    with Keep(data_dir, overrides=OFF) as keep:
        keep.add([docs])
    backup = tmp_path / "backup.db"
    db = data_dir / "ragkeep.db"
    shutil.copy(db, backup)
    with Keep(data_dir, overrides=OFF) as keep:
        keep.add([write(tmp_path / "x" / "otters.md", "River otters catch fish and crabs.")])
        generation = keep.status().generation
        assert _top(keep, "otters eating fish") == "otters.md"  # the file now holds otters
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    shutil.copy(backup, db)
    with Keep(data_dir, overrides=OFF) as keep:
        # Same path and chunk ids as the otters would get, different text and vector.
        keep.add([write(tmp_path / "x" / "otters.md", "Volcanic ash and lava flows.")])
        assert keep.status().generation == generation
        assert _top(keep, "lava from a volcano") == "otters.md"
        assert _top(keep, "otters eating fish") == "owls.md"


def test_a_damaged_file_is_not_used_and_doctor_repairs_it(data_dir: Path, docs_dir: Path) -> None:
    write(docs_dir / "owls.md", "Barn owls hunt voles at night.")
    write(docs_dir / "bees.md", "Honey bees build wax combs.")
    with Keep(data_dir, overrides=OFF) as keep:
        keep.add([docs_dir])
        _top(keep, "owls")
    path = _file(keep)
    raw = bytearray(path.read_bytes())
    raw[-2 * 384 * 4 :] = bytes(2 * 384 * 4)  # zero both vectors (the matrix is last)
    path.write_bytes(bytes(raw))
    with Keep(data_dir, overrides=OFF) as keep:
        report = keep.doctor()
        check = next(c for c in report.checks if c.name == "vector file matches its header")
        assert not check.ok and not report.ok
        assert keep.doctor(repair=True).ok
        assert not path.exists()
    path.write_bytes(bytes(raw))  # damaged again: a search must not use it either
    with Keep(data_dir, overrides=OFF) as keep:
        # Zero vectors would tie every chunk, and ties go by path: bees.md would win.
        assert _top(keep, "nocturnal birds of prey") == "owls.md"
        assert keep.doctor().ok  # rewritten from the database


def test_a_long_running_process_writes_the_file_once(data_dir: Path, docs_dir: Path) -> None:
    """Searches during an ingest reload the matrix after every commit; they must not also
    rewrite the whole file each time."""
    write(docs_dir / "owls.md", "Barn owls hunt voles at night.")
    with Keep(data_dir, overrides=OFF) as keep:
        keep.add([docs_dir])
        _top(keep, "owls")
        written = _file(keep).stat().st_ino
        for name, text in (("otters.md", "River otters catch fish."), ("bees.md", "Bees.")):
            write(docs_dir / name, text)
            keep.sync()
            _top(keep, "owls")
        assert _top(keep, "otters eating fish") == "otters.md"  # fresh vectors in memory
        assert _file(keep).stat().st_ino == written
