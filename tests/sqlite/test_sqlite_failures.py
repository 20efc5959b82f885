"""The store's failure modes, on real SQLite files: a full disk (or store.max_size_mb), a
read-only index, a damaged file, a file that is not a ragkeep index. Each becomes a typed
StoreError with one line saying what happened and what to do; no document is ever left
half-written, and a later sync finishes the work.

Disk-full and read-only *disks* are real: a tiny tmpfs and a read-only bind mount inside a
private mount namespace (`unshare --mount`, needs root; skipped otherwise). Read-only *files*
are tested in a child process without CAP_DAC_OVERRIDE, so permissions bind even as root.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ragkeep import Keep
from ragkeep.store import (
    NotAnIndexError,
    StoreBusyError,
    StoreCorruptError,
    StoreError,
    StoreFullError,
)
from ragkeep.store.sqlite.errors import ErrorContext, translate

from conftest import _drop_file_capabilities, run_cli, write

MB = 1024 * 1024
TOPICS = ["puffins", "otters", "gannets", "kittiwakes", "fulmars", "shags", "terns", "eiders"]
QUERIES = ["puffins nesting burrows", "otters eating crabs", "diving seabirds"]


def _doc_text(topic: str, version: int, paragraphs: int) -> str:
    return "\n\n".join(
        f"Notes on {topic}, version {version}, part {p}: {topic} spend the winter at sea and "
        f"return to the colony in spring; observers count {topic} along transect {p}."
        for p in range(paragraphs)
    )


def _write_corpus(docs: Path) -> None:
    for topic in TOPICS:
        write(docs / f"{topic}.md", _doc_text(topic, 1, 1))


def _change_corpus(docs: Path) -> None:
    """Edit several files, add bigger ones (named to come last: edits go first)."""
    for topic in TOPICS[::2]:
        write(docs / f"{topic}.md", _doc_text(topic, 2, 1))
    for i in range(2):
        write(docs / f"zz-big{i}.md", _doc_text(f"big colony {i}", 1, 12))


def _contents(keep: Keep) -> dict[str, list[str]]:
    """Every document's chunk texts, by file name."""
    out: dict[str, list[str]] = {}
    for info in keep.documents():
        content = keep.document(info.path)
        assert content is not None
        out[Path(info.path).name] = [c.text for c in content.chunks]
    return out


def _answers(keep: Keep) -> list[list[tuple[str, str, float]]]:
    return [
        [(Path(h.path).name, h.text, round(h.score, 4)) for h in keep.search(q, 5, mode)]
        for q in QUERIES
        for mode in ("bm25", "dense", "hybrid")
    ]


def _clean_build(docs: Path, data: Path) -> tuple[dict[str, list[str]], list[Any]]:
    with Keep(data) as keep:
        keep.add([docs])
        return _contents(keep), _answers(keep)


def _one_line(what: BaseException | str) -> str:
    text = str(what)
    assert "\n" not in text and text, repr(text)
    return text


# -- a full store -------------------------------------------------------------------------


def test_a_full_store_keeps_every_document_whole_and_the_next_sync_finishes(
    tmp_path: Path,
) -> None:
    docs, data = tmp_path / "docs", tmp_path / "data"
    _write_corpus(docs)
    with Keep(data) as keep:
        keep.add([docs])
        before = _contents(keep)
    size_mb = (data / "ragkeep.db").stat().st_size / MB  # closed: the WAL is checkpointed
    _change_corpus(docs)
    headroom = 6 * 4096 / MB  # room for a few of the edits, not for the big files
    with Keep(data, overrides={"store.max_size_mb": size_mb + headroom}) as keep:
        with pytest.raises(StoreFullError) as raised:
            keep.sync()
        during = _contents(keep)
        doctor = keep.doctor()
    message = _one_line(raised.value)
    assert "store.max_size_mb" in message and "`ragkeep sync`" in message
    assert "keeps the previous version of" in message
    assert doctor.ok, doctor.to_dict()

    new, clean_answers = _clean_build(docs, tmp_path / "clean")
    assert before.keys() <= during.keys()  # nothing indexed before was lost
    for name, texts in during.items():  # each document whole: old version or new
        assert texts in (before.get(name), new[name]), name
    assert during != new  # the limit really stopped the sync part-way …
    assert any(during[n] == new[n] != before.get(n) for n in during)  # … after some edits

    with Keep(data) as keep:  # the limit lifted: sync finishes the rest
        keep.sync()
        assert _contents(keep) == new
        assert _answers(keep) == clean_answers
        assert keep.doctor().ok


# -- a full disk and a read-only disk (real file systems, private mount namespace) --------


@functools.cache
def _can_mount() -> bool:
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return False
    probe = ["unshare", "--mount", "--propagation", "private", "true"]
    return subprocess.run(probe, capture_output=True).returncode == 0


needs_mount = pytest.mark.skipif(
    not _can_mount(), reason="needs unshare --mount (root): a real tmpfs / read-only mount"
)

_DISK_FULL_CHILD = r"""
import json, logging, os, subprocess, sys
from pathlib import Path
from ragkeep import Keep
from ragkeep.store import StoreFullError

data, docs = Path(sys.argv[1]), Path(sys.argv[2])
data.mkdir(parents=True)
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=320k", "tmpfs", str(data)], check=True)
warnings = []

class Collect(logging.Handler):
    def emit(self, record):
        warnings.append(record.getMessage())

logging.getLogger("ragkeep").addHandler(Collect(logging.WARNING))
out = {}
with Keep(data) as keep:
    try:
        keep.add([docs])
        out["error"] = None
    except StoreFullError as exc:
        out["error"] = str(exc)
    out["documents_when_full"] = keep.status().documents
    out["doctor_when_full"] = keep.doctor().ok
    fd = os.open(data / "filler", os.O_WRONLY | os.O_CREAT)
    try:  # take the last free bytes: the vector file cannot be written either
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        os.close(fd)
    out["dense_hits_when_full"] = len(keep.search("puffins burrows", 3, "dense"))
os.unlink(data / "filler")
subprocess.run(["mount", "-o", "remount,size=64m", str(data)], check=True)
with Keep(data) as keep:
    keep.sync()
    out["documents_after"] = keep.status().documents
    out["doctor_after"] = keep.doctor().ok
out["warnings"] = warnings
print(json.dumps(out))
"""


def _in_namespace(code: str, *args: Path) -> dict[str, Any]:
    cmd = ["unshare", "--mount", "--propagation", "private", "--", sys.executable, "-c", code]
    proc = subprocess.run([*cmd, *map(str, args)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


@needs_mount
def test_a_full_disk_is_a_clear_error_and_the_next_sync_finishes(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    for i in range(20):
        write(docs / f"{i:02}.md", _doc_text(f"{TOPICS[i % 8]} {i}", 1, 1))
    out = _in_namespace(_DISK_FULL_CHILD, tmp_path / "data", docs)
    assert out["error"] and "the disk holding" in out["error"] and "is full" in out["error"]
    assert "\n" not in out["error"] and "`ragkeep sync`" in out["error"]
    assert 0 < out["documents_when_full"] < 20  # stopped part-way …
    assert out["doctor_when_full"]  # … with every document whole
    assert out["dense_hits_when_full"] == 3  # searches still answer
    assert any("is full" in w and "vectors-" in w for w in out["warnings"]), out["warnings"]
    assert out["documents_after"] == 20 and out["doctor_after"]


_READ_ONLY_DISK_CHILD = r"""
import json, subprocess, sys
from pathlib import Path
from ragkeep import Keep
from ragkeep.store import StoreError

data = sys.argv[1]
subprocess.run(["mount", "--bind", data, data], check=True)
subprocess.run(["mount", "-o", "remount,bind,ro", data], check=True)
try:
    Keep(data).close()
    print(json.dumps(None))
except StoreError as exc:
    print(json.dumps([type(exc).__name__, str(exc)]))
"""


@needs_mount
def test_an_index_on_a_read_only_disk_is_a_clear_error(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Keep(data) as keep:
        keep.set_flag("caching", True)
    out = _in_namespace(_READ_ONLY_DISK_CHILD, data)
    assert out is not None and out[0] == "StoreReadOnlyError", out
    assert "read-only disk" in out[1] and "\n" not in out[1]


# -- a read-only file or folder (permissions bind: the child has no CAP_DAC_OVERRIDE) -----

_READ_ONLY_CHILD = r"""
import json, sys
from pathlib import Path
from ragkeep import Keep
from ragkeep.store import StoreError

data, docs = Path(sys.argv[1]), Path(sys.argv[2])
out = {}
try:
    with Keep(data) as keep:
        out["search"] = [Path(h.path).name for h in keep.search("puffins burrows", 1)]
        try:
            keep.add([docs])
            out["add"] = None
        except StoreError as exc:
            out["add"] = [type(exc).__name__, str(exc)]
except StoreError as exc:
    out["open"] = [type(exc).__name__, str(exc)]
print(json.dumps(out))
"""


def _without_root_powers(code: str, *args: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_drop_file_capabilities,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture
def small_index(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    docs, data = tmp_path / "docs", tmp_path / "data"
    write(docs / "puffins.md", "Puffins nest in burrows on grassy cliff tops.")
    with Keep(data) as keep:
        keep.add([docs])
    write(docs / "otters.md", "Otters crack crabs open on their bellies.")
    yield docs, data
    data.chmod(0o755)
    for name in ("ragkeep.db", "writer.lock"):
        (data / name).chmod(0o644)


def test_a_read_only_index_file_answers_searches_and_refuses_writes(
    small_index: tuple[Path, Path],
) -> None:
    docs, data = small_index
    db = data / "ragkeep.db"
    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    db.chmod(0o444)
    out = _without_root_powers(_READ_ONLY_CHILD, data, docs)
    assert "open" not in out, out  # opening needs no write: searches still work
    assert out["search"] == ["puffins.md"]
    kind, message = out["add"]
    assert kind == "StoreReadOnlyError" and "is read-only" in message and "\n" not in message
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest
    (data / "writer.lock").chmod(0o444)  # not even the writer lock can be taken
    kind, message = _without_root_powers(_READ_ONLY_CHILD, data, docs)["add"]
    assert kind == "StoreReadOnlyError" and "writer.lock cannot be written" in message


def test_an_index_in_a_read_only_folder_is_a_clear_error(
    small_index: tuple[Path, Path],
) -> None:
    docs, data = small_index
    data.chmod(0o555)  # SQLite cannot create the -shm file beside the database
    out = _without_root_powers(_READ_ONLY_CHILD, data, docs)
    kind, message = out["open"]
    assert kind == "StoreReadOnlyError" and "\n" not in message


# -- damaged files and files that are not an index ----------------------------------------


@pytest.fixture(scope="module")
def clean_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real index of 30 documents; each test damages its own copy."""
    root = tmp_path_factory.mktemp("clean")
    for i in range(30):
        write(root / "docs" / f"d{i:02}.md", _doc_text(f"{TOPICS[i % 8]} {i}", 1, 1))
    with Keep(root / "data") as keep:
        keep.add([root / "docs"])
    return root / "data" / "ragkeep.db"


def _copy(clean_db: Path, data: Path) -> Path:
    data.mkdir(parents=True)
    shutil.copy(clean_db, data / "ragkeep.db")
    return data / "ragkeep.db"


def _attempt(data: Path) -> list[BaseException]:
    """Open the index and use it as a user would; the StoreErrors met on the way."""
    errors: list[BaseException] = []
    try:
        keep = Keep(data, overrides={"flags.caching": False})
    except StoreError as exc:
        return [exc]
    with keep:
        for action in (
            keep.status,
            keep.documents,
            lambda: keep.search("puffins winter at sea", 5, "bm25"),
            lambda: keep.search("puffins winter at sea", 5, "dense"),
            lambda: keep.search("otters transect", 5, "hybrid"),
        ):
            try:
                action()
            except StoreError as exc:
                errors.append(exc)
    return errors


def test_random_bytes_over_the_middle_of_the_file(clean_db: Path, tmp_path: Path) -> None:
    db = _copy(clean_db, tmp_path / "data")
    data = bytearray(db.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 20000] = random.Random(7).randbytes(20000)
    db.write_bytes(bytes(data))
    errors = _attempt(db.parent)
    assert errors, "the damage went unnoticed"
    for exc in errors:  # never a raw sqlite3 error, always one line with what to do
        assert isinstance(exc, StoreCorruptError), repr(exc)
        assert str(db) in _one_line(exc) and "re-add your folders" in str(exc)
    with Keep(db.parent) as keep:
        report = keep.doctor()
    assert not report.ok
    detail = report.checks[0].detail
    assert "damaged" in _one_line(detail) and "--repair cannot fix" in detail


@pytest.mark.parametrize("content", [b"\0" * 65536, b"not a database at all" * 400])
def test_a_file_of_zeros_or_garbage(tmp_path: Path, content: bytes) -> None:
    db = tmp_path / "data" / "ragkeep.db"
    write(db, "")
    db.write_bytes(content)
    with pytest.raises(StoreCorruptError, match="file is not a database") as raised:
        Keep(db.parent)
    assert "re-add your folders" in _one_line(raised.value)
    cli = run_cli("status", data_dir=db.parent)
    assert cli.code != 0 and "Traceback" not in cli.stderr
    assert "cannot be opened as a ragkeep index" in cli.stderr + cli.stdout


def test_a_truncated_file(clean_db: Path, tmp_path: Path) -> None:
    db = _copy(clean_db, tmp_path / "data")
    db.write_bytes(db.read_bytes()[: db.stat().st_size // 2])
    errors = _attempt(db.parent)
    assert errors and all(isinstance(e, StoreCorruptError) for e in errors), errors
    assert "malformed" in _one_line(errors[0])


def test_another_programs_database_is_refused_and_left_untouched(tmp_path: Path) -> None:
    db = tmp_path / "data" / "ragkeep.db"
    db.parent.mkdir()
    other = sqlite3.connect(db)
    other.execute("CREATE TABLE invoices(id INTEGER PRIMARY KEY, amount REAL)")
    other.execute("INSERT INTO invoices(amount) VALUES (12.5)")
    other.commit()
    other.close()
    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    with pytest.raises(NotAnIndexError, match="not a ragkeep index") as raised:
        Keep(db.parent)
    assert "invoices" in _one_line(raised.value)
    other = sqlite3.connect(db)  # a user_version of its own does not fool it either
    other.execute("PRAGMA user_version = 2")
    other.close()
    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    with pytest.raises(NotAnIndexError):
        Keep(db.parent)
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest


def test_doctor_summarises_a_long_list_of_problems(clean_db: Path, tmp_path: Path) -> None:
    db = _copy(clean_db, tmp_path / "data")
    raw = sqlite3.connect(db)
    roots = dict(raw.execute("SELECT name, rootpage FROM sqlite_master WHERE type = 'index'"))
    page_size = raw.execute("PRAGMA page_size").fetchone()[0]
    raw.close()
    # One index's page written over another's (same record format, other entries): every
    # document goes missing from documents_hash, one integrity_check line each.
    data = bytearray(db.read_bytes())
    pair = ("sqlite_autoindex_documents_1", "documents_hash")
    src, dst = ((roots[n] - 1) * page_size for n in pair)
    data[dst : dst + page_size] = data[src : src + page_size]
    db.write_bytes(bytes(data))
    raw = sqlite3.connect(db)
    problems = raw.execute("PRAGMA integrity_check").fetchall()
    raw.close()
    assert len(problems) >= 20  # what SQLite itself says: one line per problem
    with Keep(db.parent) as keep:
        report = keep.doctor()
    integrity = report.checks[0]
    assert not integrity.ok and len(report.checks) == 1
    assert f"{len(problems)} problem(s)" in _one_line(integrity.detail)
    assert f"and {len(problems) - 5} more" in integrity.detail
    assert "--repair cannot fix" in integrity.detail
    cli = run_cli("doctor", data_dir=db.parent)
    assert cli.code == 1 and len(cli.stdout.strip().splitlines()) <= 12, cli.stdout


def test_a_damaged_full_text_index_points_to_doctor_repair(clean_db: Path, tmp_path: Path) -> None:
    db = _copy(clean_db, tmp_path / "data")
    raw = sqlite3.connect(db, isolation_level=None)
    raw.execute("UPDATE chunks_fts_data SET block = randomblob(length(block)) WHERE id > 10")
    raw.close()
    with Keep(db.parent) as keep:
        with pytest.raises(StoreCorruptError, match=r"doctor --repair") as raised:
            keep.search("puffins winter", 3, "bm25")
        assert "full-text index" in _one_line(raised.value)
        assert keep.doctor(repair=True).ok
        assert keep.search("puffins winter", 3, "bm25")


def test_results_cached_from_a_broken_full_text_index_go_with_the_repair(
    clean_db: Path, tmp_path: Path
) -> None:
    db = _copy(clean_db, tmp_path / "data")
    raw = sqlite3.connect(db, isolation_level=None)
    raw.execute("UPDATE chunks_fts_data SET block = zeroblob(length(block)) WHERE id > 10")
    raw.close()
    with Keep(db.parent) as keep:
        assert not keep.search("puffins winter", 3, "bm25")  # silently empty: now cached
        assert keep.doctor(repair=True).ok
        assert keep.search("puffins winter", 3, "bm25")  # not the cached empty answer


# -- the mapping itself --------------------------------------------------------------------


def test_a_locked_database_is_still_a_busy_error(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("CREATE TABLE t(x)")
    holder.execute("BEGIN IMMEDIATE")
    other = sqlite3.connect(db, isolation_level=None, timeout=0)
    with pytest.raises(sqlite3.OperationalError) as raised:
        other.execute("BEGIN IMMEDIATE")
    typed = translate(raised.value, ErrorContext(db))
    assert isinstance(typed, StoreBusyError) and str(db) in str(typed)
    bug = sqlite3.connect(":memory:")
    with pytest.raises(sqlite3.OperationalError) as raised:
        bug.execute("SELECT no_such_column FROM sqlite_master")
    assert translate(raised.value, ErrorContext(db)) is None  # a bug stays a bug
    holder.close()
    other.close()


def test_every_message_is_one_line(tmp_path: Path) -> None:
    from ragkeep.store.sqlite.errors import corrupt_message, full_message, read_only_message

    db = tmp_path / "ragkeep.db"
    messages = [
        full_message(ErrorContext(db), None),
        full_message(ErrorContext(db, max_size_mb=5), 10 * MB),
        full_message(ErrorContext(db, max_size_mb=5), 10**12),
        read_only_message(db),
        corrupt_message(ErrorContext(db), "malformed", fts_only=False),
        corrupt_message(ErrorContext(db, opening=True), "not a database", fts_only=False),
        corrupt_message(ErrorContext(db), "malformed", fts_only=True),
    ]
    for message in messages:
        assert "\n" not in message and str(db) in message
    assert "store.max_size_mb" not in messages[0] and "disk holding" in messages[0]
    assert "full, or store.max_size_mb" in messages[1]  # little disk left: could be either
    assert "reached its size limit" in messages[2]


_BACKUP_FULL_CHILD = r"""
import json, subprocess, sys
from pathlib import Path
from ragkeep import Keep
from ragkeep.store.base import BackupError

data, disk = Path(sys.argv[1]), Path(sys.argv[2])
disk.mkdir(parents=True)
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], check=True)
out = {}
with Keep(data) as keep:
    before = keep.status().documents
    try:
        keep.recovery.backup(disk / "backup")
        out["error"] = None
    except BackupError as exc:
        out["error"] = str(exc)
    out["left"] = sorted(p.name for p in disk.iterdir())
    out["same_documents"] = keep.status().documents == before
    out["doctor"] = keep.doctor().ok
print(json.dumps(out))
"""


@needs_mount
def test_a_backup_to_a_full_disk_leaves_nothing_and_changes_nothing(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    for i in range(12):
        write(docs / f"{i:02}.md", _doc_text(f"{TOPICS[i % 8]} {i}", 1, 1))
    data = tmp_path / "data"
    with Keep(data) as keep:
        keep.add([docs])
    out = _in_namespace(_BACKUP_FULL_CHILD, data, tmp_path / "small-disk")
    assert out["error"] and "No space left" in out["error"] and "\n" not in out["error"]
    assert out["left"] == []  # no temp copy, no manifest, no folder
    assert out["same_documents"] and out["doctor"]
