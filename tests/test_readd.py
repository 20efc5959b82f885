"""Undoing a `remove`: the removed folder's vectors are kept (up to store.keep_unreferenced_mb),
so adding it back embeds nothing; `gc` frees them. Run as a user runs `ragkeep`: a real
process, real SQLite, the real model."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from conftest import CliResult, run_cli, scifact_docs, write

pytestmark = pytest.mark.timeout(300)

QUERY = "vitamin D deficiency and bone density"


def _folder(root: Path, n: int = 30) -> Path:
    """`n` SciFact abstracts as text files: a few dozen documents, one or more chunks each."""
    folder = root / "papers"
    for doc in scifact_docs(n):
        write(folder / f"{doc['_id']}.txt", f"{doc['title']}\n\n{doc['text']}\n")
    return folder


def _ok(result: CliResult) -> CliResult:
    assert result.code == 0, result.stderr
    return result


def _hits(data: Path) -> list[tuple[Any, ...]]:
    """What a user sees of a search: paths, passages and scores (not the row ids)."""
    out = _ok(run_cli("search", QUERY, "--json", "-k", "8", data_dir=data)).json()
    return [(h["path"], h["text"], round(h["score"], 6)) for h in out["hits"]]


def _remove_then_add(data: Path, folder: Path, env: dict[str, str] | None = None) -> tuple[
    dict[str, Any], dict[str, Any], dict[str, Any]
]:  # fmt: skip
    """add, remove, add again (all --json): the three reports."""
    first = _ok(run_cli("add", str(folder), "--json", data_dir=data, env=env)).json()
    removal = _ok(run_cli("remove", str(folder), "--json", data_dir=data, env=env)).json()
    again = _ok(run_cli("add", str(folder), "--json", data_dir=data, env=env)).json()
    return first, removal, again


def test_adding_a_removed_folder_back_embeds_nothing(tmp_path: Path) -> None:
    data, folder = tmp_path / "data", _folder(tmp_path)
    first = _ok(run_cli("add", str(folder), "--json", data_dir=data)).json()
    assert first["added"] == 30 and first["embedded_chunks"] > 30  # some span chunks
    before = _hits(data)

    removal = _ok(run_cli("remove", str(folder), data_dir=data))
    kept = _ok(run_cli("status", "--json", data_dir=data)).json()["unreferenced_vectors"]
    assert kept["count"] == first["embedded_chunks"]  # every vector the folder used is kept
    assert kept["bytes"] >= kept["count"] * 384 * 4  # float32 vectors, plus their keys
    mb = f"{kept['bytes'] / 1e6:.1f} MB"
    assert f"{kept['count']} vector(s) kept so re-adding is fast; `ragkeep gc` frees {mb}" in (
        removal.stderr
    )

    again = _ok(run_cli("add", str(folder), "--json", data_dir=data)).json()
    assert again["added"] == 30 and again["embedded_chunks"] == 0 and again["embedding"] is None
    assert again["unreferenced_vectors"]["count"] == 0  # all in use again
    assert _hits(data) == before


def test_with_no_room_for_unused_vectors_the_removal_collects_them(tmp_path: Path) -> None:
    env = {"RAGKEEP_STORE__KEEP_UNREFERENCED_MB": "0"}
    data, folder = tmp_path / "data", _folder(tmp_path, 12)
    first, removal, again = _remove_then_add(data, folder, env)
    assert removal["removed"] == 12
    assert removal["collected_vectors"]["count"] == first["embedded_chunks"] > 0
    assert removal["unreferenced_vectors"] == {"count": 0, "bytes": 0}
    assert again["embedded_chunks"] == first["embedded_chunks"]  # all embedded again
    # A threshold of a few vectors (~1.6 kB each) behaves the same once they exceed it.
    tiny = {"RAGKEEP_STORE__KEEP_UNREFERENCED_MB": "0.004"}
    removal = _ok(run_cli("remove", str(folder), data_dir=data, env=tiny))
    collected = re.search(r"collected (\d+) unreferenced vector\(s\), [\d.]+ MB", removal.stderr)
    assert collected and int(collected[1]) == first["embedded_chunks"], removal.stderr


def test_gc_frees_the_kept_vectors_and_says_how_much(tmp_path: Path) -> None:
    data, folder = tmp_path / "data", _folder(tmp_path, 12)
    _ok(run_cli("add", str(folder), "--json", data_dir=data))
    removal = _ok(run_cli("remove", str(folder), "--json", data_dir=data)).json()
    kept = removal["unreferenced_vectors"]
    assert kept["count"] > 0 and removal["collected_vectors"]["count"] == 0

    status = _ok(run_cli("status", data_dir=data)).stdout
    assert re.search(rf"unreferenced vectors\s+{kept['count']} \(", status), status
    doctor = run_cli("doctor", "--json", data_dir=data)  # information, not a failure
    assert doctor.code == 0 and doctor.json()["ok"], doctor.stdout
    check = next(c for c in doctor.json()["checks"] if c["name"] == "no unreferenced vectors")
    assert check["ok"] and f"{kept['count']} vectors" in check["detail"]

    freed = _ok(run_cli("gc", "--json", data_dir=data)).json()
    assert freed == {"removed_vectors": kept["count"], "removed_bytes": kept["bytes"]}
    after = _ok(run_cli("status", "--json", data_dir=data)).json()
    assert after["unreferenced_vectors"] == {"count": 0, "bytes": 0}
    assert _ok(run_cli("gc", data_dir=data)).stderr.strip() == (
        "removed 0 unreferenced vector(s), 0.0 MB"
    )
    again = _ok(run_cli("add", str(folder), "--json", data_dir=data)).json()
    assert again["embedded_chunks"] == kept["count"]  # freed, so embedded again
