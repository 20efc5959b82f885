"""Backup, restore, rollback and re-embed, as users run them: the CLI in new processes and
the Python API, over a real index."""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from ragkeep import Keep
from ragkeep.embed.base import EmbedderError
from ragkeep.ingest.pipeline import TextDocument
from ragkeep.services import recovery
from ragkeep.store.base import BackupError

from conftest import BackendStores, run_cli, scifact_docs, use_store, write
from pipeline_fakes import FakeEmbedder

ROOT = Path(__file__).resolve().parents[1]
TECHNOTES = ROOT / "tests" / "data" / "technotes"
QUERIES = ["vitamin D deficiency", "gene expression in cancer cells", "bacterial infection"]


def _paths(data: Path) -> list[str]:
    return sorted(d["path"] for d in run_cli("list", "--json", data_dir=data).json())


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    docs = tmp_path / "notes"
    shutil.copytree(TECHNOTES, docs)
    return docs


def test_backup_remove_rollback_and_undo_from_the_cli(
    tmp_path: Path, notes: Path, backend_stores: BackendStores
) -> None:
    """On both backends: on PostgreSQL too, a backup is an SQLite file and restore writes it
    back into the database (docs/scale-out.md)."""
    data = use_store(tmp_path / "data", backend_stores.new_url())
    assert run_cli("add", str(notes), "-q", data_dir=data).code == 0
    everything = _paths(data)
    made = run_cli("backup", "--json", data_dir=data)
    assert made.code == 0, made.stderr
    assert made.json()["documents"] == len(everything) and made.json()["reason"] == "manual"

    removed = run_cli("remove", str(notes), "--json", data_dir=data)  # a whole source
    snapshot = removed.json()["snapshot"]
    assert snapshot and _paths(data) == []
    listed = run_cli("backup", "list", "--json", data_dir=data).json()
    assert [e["manifest"]["id"] for e in listed][:2] == [snapshot, made.json()["id"]]

    back = run_cli("rollback", "--json", data_dir=data)
    assert back.code == 0, back.stderr
    assert back.json()["restored"]["id"] == snapshot and _paths(data) == everything
    replaced = back.json()["replaced"]["id"]  # the emptied index, kept: the rollback's undo
    # A second rollback goes to the same snapshot, not back and forth.
    assert run_cli("rollback", "--json", data_dir=data).json()["restored"]["id"] == snapshot
    assert run_cli("restore", replaced, data_dir=data).code == 0
    assert _paths(data) == []
    assert run_cli("doctor", data_dir=data).code == 0
    # The manual backup is an index of its own: a plain SQLite file, whatever the backend.
    copy = tmp_path / "backup-copy.db"
    shutil.copyfile(data / "backups" / made.json()["id"] / "index.db", copy)
    plain = use_store(tmp_path / "plain", f"sqlite:///{copy}")
    assert _paths(plain) == everything
    assert run_cli("doctor", data_dir=plain).code == 0


def test_sync_snapshot_and_pruning(tmp_path: Path, notes: Path) -> None:
    data = tmp_path / "data"
    run_cli("add", str(notes), "-q", data_dir=data)
    synced = run_cli("sync", "--snapshot", "--json", data_dir=data)
    assert synced.json()["snapshot"]
    plain = run_cli("sync", "--json", data_dir=data)
    assert plain.json()["snapshot"] is None
    for _ in range(3):
        run_cli("backup", data_dir=data, env={"RAGKEEP_BACKUP__KEEP": "2"})
    assert len(run_cli("backup", "list", "--json", data_dir=data).json()) == 2
    pruned = run_cli("backup", "prune", "--keep", "1", "--json", data_dir=data)
    assert len(pruned.json()["removed"]) == 1
    asked = run_cli("sync", "--snapshot", "--json", data_dir=data, env=_no_snapshots())
    assert asked.json()["snapshot"]  # asked for: taken although automatic ones are off
    off = run_cli("remove", str(notes), "--json", data_dir=data, env=_no_snapshots())
    assert off.json()["snapshot"] is None


def test_with_one_backup_kept_a_restore_still_finds_it(tmp_path: Path, notes: Path) -> None:
    """The restore backs up the index it replaces first; pruning then must not delete the
    backup being restored."""
    data, one = tmp_path / "data", {"RAGKEEP_BACKUP__KEEP": "1"}
    run_cli("add", str(notes), "-q", data_dir=data)
    made = run_cli("backup", "--json", data_dir=data, env=one).json()["id"]
    run_cli("remove", str(notes), "-q", data_dir=data, env=_no_snapshots())
    restored = run_cli("restore", made, "--json", data_dir=data, env=one)
    assert restored.code == 0, restored.stderr
    assert len(_paths(data)) == restored.json()["restored"]["documents"] > 0
    kept = run_cli("backup", "list", "--json", data_dir=data, env=one).json()
    assert [e["manifest"]["id"] for e in kept] == [restored.json()["replaced"]["id"]]


def _no_snapshots() -> dict[str, str]:
    return {"RAGKEEP_BACKUP__SNAPSHOTS": "false"}


def test_a_bad_backup_is_refused_in_one_line(tmp_path: Path, notes: Path) -> None:
    data = tmp_path / "data"
    run_cli("add", str(notes), "-q", data_dir=data)
    missing = run_cli("restore", "no-such-backup", data_dir=data)
    assert missing.code == 2 and "no backup 'no-such-backup'" in missing.stderr
    assert "Traceback" not in missing.stderr
    elsewhere = tmp_path / "offsite"
    made = run_cli("backup", "--to", str(elsewhere), "--json", data_dir=data).json()
    assert made["id"] == "offsite" and (elsewhere / "manifest.json").is_file()
    again = run_cli("backup", "--to", str(elsewhere), data_dir=data)
    assert again.code == 2 and "already holds a backup" in again.stderr
    copy = next(p for p in elsewhere.iterdir() if p.name != "manifest.json")
    with copy.open("r+b") as fh:
        fh.seek(4096)
        fh.write(b"tampered")
    before = _paths(data)
    tampered = run_cli("restore", str(elsewhere), data_dir=data)
    assert tampered.code == 2 and "checksum" in tampered.stderr
    assert tampered.stderr.count("\n") == 1 and "Traceback" not in tampered.stderr
    assert _paths(data) == before
    assert run_cli("rollback", data_dir=data).code == 2  # nothing to roll back to yet


def test_a_running_process_sees_a_restore_through_its_caches(
    tmp_path: Path, data_dir: Path
) -> None:
    """A long-running process searched (result caches, dense matrix, vector file) before
    another process restored a backup: it answers from the restored index, and a later
    commit cannot reach a generation its caches hold answers for."""
    docs = tmp_path / "docs"
    write(docs / "owls.md", "Barn owls hunt voles at night.")
    with Keep(data_dir) as running:
        running.add([docs])
        backup_id = running.recovery.backup().id
        running.add([write(tmp_path / "x" / "otters.md", "River otters catch fish and crabs.")])
        for mode in ("dense", "hybrid"):
            assert Path(running.search("otters eating fish", 1, mode)[0].path).name == "otters.md"
        assert run_cli("restore", backup_id, data_dir=data_dir).code == 0
        assert [Path(d.path).name for d in running.documents()] == ["owls.md"]
        # The same path and chunk ids the otters had, another text and vector.
        running.add([write(tmp_path / "x" / "otters.md", "Volcanic ash and lava flows.")])
        for mode in ("dense", "hybrid"):
            top = running.search("otters eating fish", 1, mode)[0]
            assert Path(top.path).name == "owls.md", mode
            assert "Volcanic" in running.search("lava from a volcano", 1, mode)[0].text
        assert running.doctor().ok


@pytest.fixture(scope="module")
def scifact_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 SciFact abstracts (133 chunks) embedded with the real model, built once."""
    data = tmp_path_factory.mktemp("scifact") / "data"
    docs = [TextDocument(f"/scifact/{d['_id']}", d["title"], d["text"]) for d in scifact_docs(60)]
    with Keep(data) as keep:
        keep.indexing.index_texts(docs)
    return data


@pytest.fixture
def index_copy(scifact_index: Path, tmp_path: Path) -> Iterator[Path]:
    data = tmp_path / "data"
    shutil.copytree(scifact_index, data)
    yield data


def _answers(data: Path) -> list[list[tuple[str, float]]]:
    with Keep(data, overrides={"flags.caching": False}) as keep:
        return [
            [(h.path, round(h.score, 5)) for h in keep.search(q, 5, mode)]
            for q in QUERIES
            for mode in ("dense", "hybrid")
        ]


def test_a_reembed_with_garbage_vectors_rolls_back_by_itself(index_copy: Path) -> None:
    before = _answers(index_copy)
    with Keep(index_copy, embedder=FakeEmbedder) as keep:
        report = keep.recovery.reembed()
    assert report.rolled_back and not report.validation.ok
    assert "first words" in report.validation.failures()
    assert report.snapshot is not None and report.texts == 133
    assert _answers(index_copy) == before
    with Keep(index_copy) as keep:
        assert keep.doctor().ok
        # The snapshot stays listed: the user can see what was restored.
        assert keep.recovery.entries()[0].manifest == report.snapshot


def test_a_reembed_with_the_model_passes_and_answers_the_same(
    index_copy: Path, tmp_path: Path
) -> None:
    before = _answers(index_copy)
    queries = write(tmp_path / "queries.txt", "# validation queries\n" + "\n".join(QUERIES))
    result = run_cli(
        "reembed",
        "--json",
        data_dir=index_copy,
        env={"RAGKEEP_BACKUP__VALIDATION_QUERIES": str(queries)},
    )
    assert result.code == 0, result.stderr
    report = result.json()
    assert not report["rolled_back"] and report["validation"]["ok"]
    names = [c["name"] for c in report["validation"]["checks"]]
    assert "the validation queries keep their results" in names
    assert _answers(index_copy) == before


def test_a_query_set_that_changes_rolls_the_reembed_back(index_copy: Path, tmp_path: Path) -> None:
    """Only the query set judges here (self-retrieval off): garbage vectors change every
    query's top 10."""
    queries = write(tmp_path / "queries.txt", "\n".join(QUERIES))
    overrides = {"backup.validation_queries": str(queries), "backup.min_self_recall": 0.0}
    with Keep(index_copy, embedder=FakeEmbedder, overrides=overrides) as keep:
        report = keep.recovery.reembed()
    assert report.rolled_back
    assert "the validation queries keep their results" in report.validation.failures()


def test_restore_refuses_a_backup_of_another_model(index_copy: Path, tmp_path: Path) -> None:
    with Keep(index_copy) as keep:
        folder = tmp_path / "b"
        keep.recovery.backup(folder)
        manifest = (folder / "manifest.json").read_text()
        (folder / "manifest.json").write_text(manifest.replace(keep.store.model_id, "other"))
        with pytest.raises(BackupError, match="embedding model 'other'"):
            keep.recovery.restore(str(folder))


class _BreaksAt(FakeEmbedder):
    """The fake model, failing at its n-th call. With 50 texts a page, the 133 texts take
    calls 1-3: 2 breaks after one page was staged, 4 in the validation after the switch."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if len(self.calls) + 1 == self.n:
            raise EmbedderError("the model broke")
        return super().embed(texts)


@pytest.mark.parametrize("n", [2, 4], ids=["while-embedding", "while-validating"])
def test_a_reembed_that_breaks_leaves_the_index_as_it_was(
    index_copy: Path, n: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recovery, "_PAGE", 50)
    before = _answers(index_copy)
    broken = _BreaksAt(n)
    with Keep(index_copy, embedder=lambda: broken) as keep:
        vectors = keep.store.vector_count()
        error = EmbedderError if n == 2 else BackupError
        with pytest.raises(error):
            keep.recovery.reembed()
        assert keep.store.vector_count() == vectors  # nothing staged is left behind
    assert _answers(index_copy) == before
