"""The optional ANN index: used only when fresh and intact, rebuilt otherwise, never wrong."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ragkeep import Keep
from ragkeep.store.sqlite import SqliteStore
from ragkeep.store.sqlite.ann import AnnIndex

from conftest import run_cli, write

ANN = {"flags.ann_index": True, "search.ann_min_vectors": 0}


def _ann(keep: Keep) -> AnnIndex:
    assert isinstance(keep.store, SqliteStore)
    ann = keep.store.dense_state().ann
    assert ann is not None
    return ann


def _unit(rows: int, dim: int = 8, seed: int = 0) -> np.ndarray:  # type: ignore[type-arg]
    rng = np.random.default_rng(seed)
    m = rng.normal(size=(rows, dim)).astype(np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def test_build_stamp_and_states(tmp_path: Path) -> None:
    ann = AnnIndex(tmp_path, "model", 8)
    assert ann.state("s1") == "missing" and ann.get("s1") is None
    vectors = _unit(200)
    ids = np.arange(1000, 1200, dtype=np.int64)
    ann.build(ids, vectors, state_id="s5")
    assert ann.state("s5") == "fresh" and ann.state("s6") == "stale"
    index = ann.get("s5")
    assert index is not None and ann.get("s6") is None
    hits = ann.search(index, vectors[17], 3)
    assert hits[0][0] == 1017 and hits[0][1] == pytest.approx(1.0, abs=1e-2)
    assert not list(ann.dir.glob("*.tmp"))  # the temp files are gone


def test_a_damaged_file_is_never_used(tmp_path: Path) -> None:
    ann = AnnIndex(tmp_path, "model", 8)
    ann.build(np.arange(50, dtype=np.int64), _unit(50), state_id="s1")
    data = bytearray(ann.path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    ann.path.write_bytes(bytes(data))
    fresh = AnnIndex(tmp_path, "model", 8)  # a new process: nothing cached
    assert fresh.state("s1") == "damaged" and fresh.get("s1") is None
    ann.stamp_path.write_text("{not json")
    assert fresh.state("s1") == "damaged"
    ann.delete()
    assert fresh.state("s1") == "missing"


@pytest.fixture
def ann_keep(data_dir: Path, docs_dir: Path) -> Keep:
    for i, topic in enumerate(["puffins nest in burrows", "otters eat crabs", "gannets dive"]):
        write(docs_dir / f"{i}.md", f"Seabird notes: {topic}. " * 5)
    k = Keep(data_dir, overrides=ANN)
    k.add([docs_dir])
    return k


def test_search_answers_exactly_until_the_index_is_built(ann_keep: Keep, docs_dir: Path) -> None:
    exact = ann_keep.search("otters crabs", 3, "dense")  # no index yet: exact, build starts
    _ann(ann_keep).wait(30)
    assert _ann(ann_keep).state(ann_keep.store.state_id()) == "fresh"
    approx = ann_keep.search("otters crabs", 3, "dense")
    assert [h.chunk_id for h in approx] == [h.chunk_id for h in exact]
    # A commit makes the file stale: the next search is exact again and triggers a rebuild.
    write(docs_dir / "new.md", "Otters crack crabs on their bellies.")
    ann_keep.sync()
    after = ann_keep.search("otters crabs bellies", 1, "dense")
    assert after[0].path.endswith("new.md")
    _ann(ann_keep).wait(30)
    assert _ann(ann_keep).state(ann_keep.store.state_id()) == "fresh"
    ann_keep.close()


def test_exact_stand_ins_are_not_cached(ann_keep: Keep) -> None:
    ann_keep.search("gannets", 2, "dense")  # exact stand-in while building
    assert ann_keep.cache_stats().persistent_entries == 0
    _ann(ann_keep).wait(30)
    ann_keep.search("gannets", 2, "dense")
    assert ann_keep.cache_stats().persistent_entries == 1
    ann_keep.close()


def test_doctor_checks_and_rebuilds_the_ann_file(ann_keep: Keep) -> None:
    ann_keep.search("puffins", 1, "dense")
    ann = _ann(ann_keep)
    ann.wait(30)
    assert ann_keep.doctor().ok
    ann.path.write_bytes(b"garbage")
    report = ann_keep.doctor()
    assert not report.ok and "damaged" in str(report.to_dict())
    assert ann_keep.doctor(repair=True).ok
    assert ann.state(ann_keep.store.state_id()) == "fresh"
    ann_keep.close()


def test_the_flag_is_off_by_default_and_leaves_no_file(keep: Keep, docs_dir: Path) -> None:
    write(docs_dir / "a.md", "Shags and cormorants.")
    keep.add([docs_dir])
    keep.search("shags", 1, "dense")
    assert not list((keep.data_dir / "derived").glob("ann-*"))
    assert run_cli("flags", "list", "--json", data_dir=keep.data_dir).json()


def test_enabling_the_flag_without_usearch_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    import ragkeep.config.flags as flags_module
    from ragkeep.config.flags import FlagError, check_requirements

    spec = flags_module.FLAGS["ann_index"]
    monkeypatch.setitem(
        flags_module.FLAGS, "ann_index", dataclasses.replace(spec, module="no_such_package_x")
    )
    with pytest.raises(FlagError, match=r"ragkeep\[ann\]"):
        check_requirements({"ann_index": True})
    check_requirements({"ann_index": False})
    # PostgreSQL's HNSW is pgvector's, inside the database: no package to install.
    check_requirements({"ann_index": True}, "postgresql")


def test_doctor_deletes_a_damaged_ann_file_when_usearch_is_missing(
    ann_keep: Keep, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ragkeep.store.sqlite.checks as checks_module

    ann_keep.search("puffins", 1, "dense")
    ann = _ann(ann_keep)
    ann.wait(30)
    ann.path.write_bytes(b"garbage")
    monkeypatch.setattr(checks_module, "_usearch_installed", lambda: False)
    report = ann_keep.doctor(repair=True)
    assert report.ok and "deleted (usearch is not installed" in str(report.to_dict())
    assert ann.state(ann_keep.store.state_id()) == "missing"
    assert ann_keep.doctor().ok
    ann_keep.close()
