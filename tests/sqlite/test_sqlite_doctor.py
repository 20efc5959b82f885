"""doctor on the SQLite backend: damage made behind the store's back is found, and --repair
fixes what can be rebuilt; the synchronous setting reaches SQLite."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ragkeep import Keep
from ragkeep.models import FileOutcome
from ragkeep.store.sqlite import SqliteStore

from conftest import run_cli, write


def _indexed(keep: Keep, docs: Path) -> None:
    write(docs / "a.md", "Avocets sweep their curved bills through shallow water.")
    write(docs / "b.md", "Godwits probe deep into the mud with long straight bills.")
    keep.add([docs])


def _raw(keep: Keep) -> sqlite3.Connection:
    assert isinstance(keep.store, SqliteStore)
    return sqlite3.connect(keep.store.path, isolation_level=None)


def test_doctor_finds_and_repairs_a_broken_fts_index(keep: Keep, docs_dir: Path) -> None:
    _indexed(keep, docs_dir)
    db = _raw(keep)
    # Corrupt the derived full-text index behind the triggers' back.
    db.execute("INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', 1, "
               "(SELECT text FROM chunks WHERE id = 1))")  # fmt: skip
    db.close()
    broken = keep.doctor()
    assert not broken.ok
    assert any(not c.ok and "full-text" in c.name for c in broken.checks)
    repaired = keep.doctor(repair=True)
    assert repaired.ok and any(c.repaired for c in repaired.checks)
    assert keep.doctor().ok
    assert keep.search("avocets", 1, "bm25")[0].path.endswith("a.md")


def test_doctor_repairs_missing_vectors(keep: Keep, docs_dir: Path) -> None:
    _indexed(keep, docs_dir)
    db = _raw(keep)
    db.execute("DELETE FROM vectors")
    db.close()
    report = keep.doctor()
    assert not report.ok
    assert "2 chunk texts have no vector" in str(report.to_dict())
    assert keep.doctor(repair=True).ok
    assert keep.doctor().ok
    assert keep.search("curved bills sweeping", 1, "dense")[0].path.endswith("a.md")


def test_doctor_marks_incomplete_documents_for_reindexing(keep: Keep, docs_dir: Path) -> None:
    _indexed(keep, docs_dir)
    db = _raw(keep)
    db.execute(
        "DELETE FROM chunks WHERE doc_id = (SELECT id FROM documents WHERE path LIKE '%b.md')"
    )
    db.close()
    assert not keep.doctor().ok
    assert keep.doctor(repair=True).ok
    report = keep.sync()
    assert {Path(r.path).name: r.outcome for r in report.results}["b.md"] is FileOutcome.UPDATED
    assert keep.doctor().ok and keep.search("godwits", 1, "bm25")


def test_doctor_removes_orphaned_chunks(keep: Keep, docs_dir: Path) -> None:
    _indexed(keep, docs_dir)
    db = _raw(keep)
    db.execute("PRAGMA foreign_keys = OFF")
    db.execute("INSERT INTO chunks(doc_id, ordinal, text, text_hash, start, end, page, tokens) "
               "VALUES (999, 0, 'orphan', 'x', 0, 6, NULL, 1)")  # fmt: skip
    db.close()
    assert not keep.doctor().ok
    assert keep.doctor(repair=True).ok and keep.doctor().ok


def test_doctor_cli_exit_codes(tmp_path: Path) -> None:
    docs, data = tmp_path / "docs", tmp_path / "data"
    write(docs / "a.md", "Curlews have the longest bills of all waders.")
    run_cli("add", str(docs), data_dir=data)
    assert run_cli("doctor", data_dir=data).code == 0
    db = sqlite3.connect(data / "ragkeep.db", isolation_level=None)
    db.execute("DELETE FROM vectors")
    db.close()
    broken = run_cli("doctor", "--json", data_dir=data)
    assert broken.code == 1 and broken.json()["ok"] is False
    fixed = run_cli("doctor", "--repair", data_dir=data)
    assert fixed.code == 0 and "fixed" in fixed.stdout


def test_synchronous_setting_is_applied(data_dir: Path) -> None:
    with Keep(data_dir, overrides={"store.synchronous": "FULL"}) as k:
        assert isinstance(k.store, SqliteStore)
        with k.store.read() as c:
            assert c.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    with Keep(data_dir) as k:
        assert isinstance(k.store, SqliteStore)
        with k.store.read() as c:
            assert c.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
