"""Issue 13 (the first hour): `doctor` on a database whose pages are damaged says how many
problems there are and shows a few, on one line, instead of ~100 raw SQLite lines."""

from __future__ import annotations

from pathlib import Path

from ragkeep import Keep

from conftest import run_cli, write

PAGE = 4096


def _index(tmp_path: Path) -> Path:
    for i in range(24):
        words = " ".join(f"term{i}x{j} about kilns and glazes" for j in range(60))
        write(tmp_path / "docs" / f"n{i:02}.md", f"# Note {i}\n\n{words}\n")
    with Keep(tmp_path / "data") as keep:
        keep.add([tmp_path / "docs"])
    return tmp_path / "data" / "ragkeep.db"


def test_doctor_summarises_damaged_pages_on_one_short_line(tmp_path: Path) -> None:
    db = _index(tmp_path)
    data = bytearray(db.read_bytes())
    pages = len(data) // PAGE
    # Every third page of the last two thirds overwritten inside (headers kept): SQLite
    # reports the damage as ONE row holding a header and a problem per line.
    for page in range(pages // 3, pages, 3):
        start = page * PAGE
        for i in range(start + 100, start + PAGE - 96, 5):
            data[i] = 0x5A
    db.write_bytes(bytes(data))
    result = run_cli("doctor", data_dir=db.parent)
    assert result.code == 1, result
    lines = result.stdout.strip().splitlines()
    failing = [ln for ln in lines if "FAIL" in ln]
    assert len(failing) == 1, result.stdout
    assert "problem(s)" in failing[0] and " more." in failing[0], failing[0]
    assert len(failing[0]) < 1000, failing[0]  # a few problems shown, not all of them
    assert "--repair cannot fix this" in failing[0]
    assert "Traceback" not in result.stderr
