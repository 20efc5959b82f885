"""Issue 13 (the first hour with ragkeep): errors a new user met as tracebacks, Ctrl-C that
printed nothing, and papercuts. Every test runs `ragkeep` in a new process, as a user does."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import CliResult, run_cli, write


def _one_line_error(result: CliResult, *needles: str, code: int = 2) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    assert result.code == code, (result.code, result.stdout, result.stderr)
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# -- item 3: errors that were tracebacks ---------------------------------------------------


@pytest.mark.parametrize("command", [("status",), ("search", "kiln"), ("add", "."), ("doctor",)])
def test_a_data_dir_that_is_a_file_is_one_line(tmp_path: Path, command: tuple[str, ...]) -> None:
    afile = write(tmp_path / "afile", "not a folder")
    result = run_cli(*command, data_dir=afile)
    _one_line_error(result, str(afile), "is a file, not a folder", "--data-dir")


def test_a_data_dir_that_cannot_be_created_is_one_line(tmp_path: Path) -> None:
    for where in (Path("/proc/nope"), tmp_path / "afile" / "below"):
        write(tmp_path / "afile", "a file where a folder would be needed")
        result = run_cli("status", data_dir=where)
        _one_line_error(result, f"cannot create the data dir {where}", "--data-dir")
