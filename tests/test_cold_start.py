"""The CLI's cold path: no torch ever, and commands that need no model do not load one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import write


def _imported(*args: str) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "ragkeep", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "|" in line}


def test_search_never_imports_torch(tmp_path: Path) -> None:
    write(tmp_path / "docs" / "a.md", "Kingfishers dive for small fish.")
    data = str(tmp_path / "data")
    subprocess.run(
        [sys.executable, "-m", "ragkeep", "--data-dir", data, "add", str(tmp_path / "docs")],
        check=True,
        capture_output=True,
    )
    modules = _imported("--data-dir", data, "search", "kingfisher", "--json")
    assert "onnxruntime" in modules  # the check below would be vacuous otherwise
    assert not {m for m in modules if m.split(".")[0] in ("torch", "sentence_transformers")}
    # Scripts read --json: the terminal renderer is not loaded for them; nor is indexing.
    assert not {m for m in modules if m.split(".")[0] == "rich"}
    assert not {
        m for m in modules if m.startswith(("ragkeep.ingest.pipeline", "ragkeep.ingest.loaders"))
    }


def test_status_and_list_do_not_load_the_model_or_parsers(tmp_path: Path) -> None:
    for command in (["status"], ["list"], ["config", "show"], ["flags", "list"]):
        modules = _imported("--data-dir", str(tmp_path / "data"), *command)
        heavy = {m for m in modules if m.split(".")[0] in ("onnxruntime", "pypdf", "docx", "bs4")}
        assert not heavy, (command, heavy)
