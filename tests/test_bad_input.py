"""A folder of good and bad files: every bad one reported with a reason, every good one indexed."""

from __future__ import annotations

import os
from pathlib import Path

from conftest import run_cli, write
from docfactory import make_docx, make_html, make_pdf


def _bad_folder(root: Path) -> dict[str, str]:
    """Write the folder; return {file name: expected outcome}."""
    write(root / "good.md", "# Lighthouse\n\nThe lighthouse keeper logs the weather at dawn.")
    write(root / "good.txt", "Ferries leave the harbour every forty minutes.")
    write(root / "good.html", make_html(["Spring tides follow the full moon."], title="Tides"))
    (root / "good.pdf").write_bytes(make_pdf(["Gulls nest on the cliffs in May."]))
    (root / "good.docx").write_bytes(make_docx(["The pier was rebuilt in 1998."]))
    (root / "latin1.txt").write_bytes("Caf\xe9 cr\xe8me at the quay.".encode("latin-1"))
    (root / "empty.txt").write_bytes(b"")
    (root / "binary.txt").write_bytes(bytes(range(256)) * 4)
    full = make_pdf(["This PDF was cut off while copying."])
    (root / "truncated.pdf").write_bytes(full[: len(full) // 2])
    (root / "zero.docx").write_bytes(b"")
    secret = write(root / "unreadable.txt", "Nobody may read this.")
    secret.chmod(0)
    os.symlink("self.txt", root / "self.txt")  # a link to itself: ELOOP
    os.symlink(".", root / "loop")  # a folder link back to its parent
    return {
        "good.md": "added",
        "good.txt": "added",
        "good.html": "added",
        "good.pdf": "added",
        "good.docx": "added",
        "latin1.txt": "added",
        "empty.txt": "skipped",
        "zero.docx": "skipped",
        "binary.txt": "failed",
        "truncated.pdf": "failed",
        "unreadable.txt": "failed",
        "self.txt": "skipped",  # symlink loops are warnings, not failures (issue 13)
        "loop": "skipped",
    }


def test_bad_files_are_reported_and_good_ones_indexed(tmp_path: Path) -> None:
    docs, data = tmp_path / "docs", tmp_path / "data"
    expected = _bad_folder(docs)
    first = run_cli("add", str(docs), "--json", data_dir=data, without_root_powers=True)
    assert first.code == 1, first.stderr
    summary = first.json()
    got = {Path(f["path"]).name: f for f in summary["files"]}
    assert {name: f["outcome"] for name, f in got.items()} == expected
    for name, f in got.items():
        if f["outcome"] in ("failed", "skipped"):
            assert f["reason"], f"{name} has no reason"
    assert "binary" in got["binary.txt"]["reason"]
    assert "PDF" in got["truncated.pdf"]["reason"]
    assert "Permission denied" in got["unreadable.txt"]["reason"]
    assert "symlink loop" in got["self.txt"]["reason"]
    assert "symlink loop" in got["loop"]["reason"]
    assert "empty" in got["empty.txt"]["reason"]
    assert got["latin1.txt"]["warnings"] and "UTF-8" in got["latin1.txt"]["warnings"][0]
    assert summary["added"] == 6 and summary["failed"] == 3

    # Integrity, the full-text index, and every document with all its chunks.
    assert run_cli("doctor", "--json", data_dir=data).json()["ok"]

    hits = run_cli("search", "café crème quay", "--json", data_dir=data).json()["hits"]
    assert Path(hits[0]["path"]).name == "latin1.txt"

    second = run_cli("add", str(docs), "--json", data_dir=data, without_root_powers=True)
    assert second.code == 1
    again = second.json()
    assert again["generation"] == summary["generation"]
    assert again["added"] == again["updated"] == again["removed"] == 0
    assert again["unchanged"] == 6
