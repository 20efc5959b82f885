"""Issue 13 (the first hour with ragkeep): errors a new user met as tracebacks, Ctrl-C that
printed nothing, and papercuts. Every test runs `ragkeep` in a new process, as a user does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ragkeep.config.settings import StoreSettings
from ragkeep.embed.registry import default_model_spec
from ragkeep.store import open_store

from conftest import CliResult, run_cli, write
from fake_llm import FakeLLM


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


# -- item 4: Ctrl-C says what was kept -----------------------------------------------------


def _default_sigint() -> None:
    # A shell may start background jobs with SIGINT ignored; Python then keeps ignoring it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(data: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGKEEP_")}
    return subprocess.Popen(
        [sys.executable, "-m", "ragkeep", "--data-dir", str(data), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=_default_sigint,
    )


def _interrupt_when(proc: subprocess.Popen[str], ready: Callable[[], bool]) -> str:
    """SIGINT once `ready()`; the process's stderr."""
    try:
        deadline = time.monotonic() + 120
        while not ready():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "never ready to be interrupted"
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        return proc.communicate(timeout=60)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _committed(data: Path) -> int:
    """Documents in the index, read through the store (Keep's close would write)."""
    spec = default_model_spec()
    store = open_store(StoreSettings(), data, model_id=spec.model_id, dimension=spec.dimension)
    try:
        return store.counts().documents
    finally:
        store.close()


def test_ctrl_c_during_add_says_how_many_documents_were_kept(tmp_path: Path) -> None:
    docs, data = tmp_path / "docs", tmp_path / "data"
    for i in range(400):
        write(docs / f"n{i:03}.txt", f"Note {i}: the heron waited by pond {i} until dusk.\n")
    _committed(data)  # the index exists, so it can be polled
    proc = _start(data, "add", str(docs))
    stderr = _interrupt_when(proc, lambda: _committed(data) >= 5)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr, stderr
    kept = _committed(data)
    assert 5 <= kept < 400
    assert f"interrupted; {kept} document(s) committed in this run are kept" in stderr, stderr


def test_ctrl_c_in_any_command_is_reported(tmp_path: Path) -> None:
    """typer turns KeyboardInterrupt into a silent exit 130; main() says it. Here: an `ask`
    waiting for an LLM that does not answer."""
    data = tmp_path / "data"
    write(tmp_path / "docs" / "heron.txt", "The heron waited by the pond until dusk.\n")
    assert run_cli("add", str(tmp_path / "docs"), data_dir=data).code == 0
    with FakeLLM("never sent", hang_s=60) as llm:
        proc = _start(
            data, "--set", "llm.provider=ollama", "--set", f"llm.url={llm.url}", "ask", "heron?"
        )
        stderr = _interrupt_when(proc, lambda: bool(llm.requests))
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr, stderr
    assert "interrupted" in stderr, stderr


# -- item 10: papercuts --------------------------------------------------------------------


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(docs, data): a long path that a table would wrap, and a file name holding a newline."""
    root = tmp_path_factory.mktemp("indexed")
    docs = root / "docs"
    deep = docs / "a folder whose name goes on and on" / "and another folder nested inside it"
    write(
        deep / "notes-on-the-heron-that-waited-by-the-pond.txt", "The heron waited by the pond.\n"
    )
    write(docs / "new\nline.txt", "A heron flew over the line of trees.\n")
    assert run_cli("add", str(docs), data_dir=root / "data").code == 0
    return docs, root / "data"


def test_list_in_a_pipe_is_one_whole_line_per_document(indexed: tuple[Path, Path]) -> None:
    docs, data = indexed
    result = run_cli("list", data_dir=data, env={"COLUMNS": "80"})
    assert result.code == 0, result
    lines = result.stdout.splitlines()
    assert len(lines) == 2, result.stdout
    deep = next(ln for ln in lines if "heron-that-waited" in ln)
    assert deep.split("\t")[0].endswith("notes-on-the-heron-that-waited-by-the-pond.txt")
    assert any(ln.startswith(f"{docs}/new\\nline.txt\t") for ln in lines), result.stdout


def test_a_newline_in_a_file_name_keeps_a_result_on_one_line(indexed: tuple[Path, Path]) -> None:
    _, data = indexed
    result = run_cli("search", "heron flew over trees", "-k", "2", data_dir=data)
    assert result.code == 0, result
    ranked = [ln for ln in result.stdout.splitlines() if ln[:2] in ("1.", "2.")]
    assert len(ranked) == 2 and any("new\\nline.txt" in ln for ln in ranked), result.stdout
    assert len(result.stdout.splitlines()) == 4, result.stdout  # rank line + excerpt, twice


def test_quiet_works_after_the_command(indexed: tuple[Path, Path]) -> None:
    _, data = indexed
    result = run_cli("sync", "-q", data_dir=data)
    assert (result.code, result.stdout, result.stderr) == (0, "", ""), result


@pytest.mark.parametrize("group", ["flags", "config", "cache"])
def test_a_command_group_alone_shows_its_help(group: str) -> None:
    """Like `ragkeep` alone: the help, on stderr, exit 2 (no command was run)."""
    result = run_cli(group)
    assert result.code == 2 and "Missing command" not in result.stderr, result
    assert "Commands:" in result.stderr and f"ragkeep {group}" in result.stderr, result


@pytest.mark.parametrize("command", [("search", ""), ("ask", "   ")])
def test_an_empty_query_is_refused(indexed: tuple[Path, Path], command: tuple[str, ...]) -> None:
    _, data = indexed
    result = run_cli(*command, data_dir=data)
    _one_line_error(result, "is empty")
    assert result.stdout == ""


def test_removing_what_is_not_indexed_says_so(indexed: tuple[Path, Path], tmp_path: Path) -> None:
    _, data = indexed
    result = run_cli("remove", str(tmp_path / "nonexistent"), data_dir=data)
    _one_line_error(result, "not in the index", str(tmp_path / "nonexistent"))


@pytest.mark.parametrize(
    ("command", "usage"),
    [
        (["add"], "add [OPTIONS] PATH..."),
        (["remove"], "remove [OPTIONS] PATH..."),
        (["watch"], "watch [OPTIONS] [PATH...]"),
        (["flags", "enable"], "enable [OPTIONS] NAME"),
        ([], "--set KEY=VALUE"),
    ],
)
def test_help_shows_plain_metavars(command: list[str], usage: str) -> None:
    result = run_cli(*command, "--help", env={"COLUMNS": "100"})
    assert result.code == 0, result
    assert usage in result.stdout, result.stdout
    for python_syntax in ("<list[", "{", "[["):
        assert python_syntax not in result.stdout, result.stdout


def test_config_show_prints_toml_values(tmp_path: Path) -> None:
    import tomllib

    result = run_cli("config", "show", data_dir=tmp_path / "data")
    assert result.code == 0, result
    rows = [ln.split("\t") for ln in result.stdout.splitlines()]
    values = {key: value for key, value, _ in rows}
    assert values["ingest.ignore"].startswith('["'), values["ingest.ignore"]
    assert "false" in values.values() and "False" not in values.values()
    for key, value in values.items():
        assert value == "(not set)" or "x" in tomllib.loads(f"x = {value}"), (key, value)


def test_pypdf_warnings_are_the_files_warnings_not_stderr(tmp_path: Path) -> None:
    from docfactory import make_pdf

    pdf = make_pdf(["The heron waited by the pond until dusk.", "A second page on kilns."])
    docs = tmp_path / "docs"
    docs.mkdir()
    # A wrong startxref pointer, which pypdf repairs (and logs); no %%EOF at all (it fails).
    cut = pdf.rfind(b"startxref")
    (docs / "repaired.pdf").write_bytes(pdf[:cut] + b"startxref\n5\n%%EOF\n")
    (docs / "no-eof.pdf").write_bytes(pdf[: pdf.rfind(b"%%EOF")])
    result = run_cli("add", str(docs), "--json", data_dir=tmp_path / "data")
    assert result.code == 1, result  # no-eof.pdf failed; each file has its own line
    assert "pypdf" not in result.stderr and "WARNING" not in result.stderr, result.stderr
    files = {Path(f["path"]).name: f for f in result.json()["files"]}
    assert files["repaired.pdf"]["outcome"] == "added"
    assert any(w.startswith("pypdf: ") for w in files["repaired.pdf"]["warnings"]), files
    assert files["no-eof.pdf"]["outcome"] == "failed" and files["no-eof.pdf"]["reason"]


def test_a_symlink_loop_is_a_warning_not_a_failing_cron_job(tmp_path: Path) -> None:
    docs, data = tmp_path / "docs", tmp_path / "data"
    write(docs / "heron.txt", "The heron waited by the pond.\n")
    (docs / "sub").mkdir()
    (docs / "sub" / "up").symlink_to("..")  # a folder loop
    (docs / "one").symlink_to("two")  # a link loop
    (docs / "two").symlink_to("one")
    for command in ("add", "sync", "sync"):  # every run: exit 0, each loop one line
        args = (command, str(docs)) if command == "add" else (command,)
        result = run_cli(*args, data_dir=data)
        assert result.code == 0, result
        for name in ("sub/up", "one", "two"):
            lines = [ln for ln in result.stderr.splitlines() if f"{docs}/{name}:" in ln]
            assert len(lines) == 1 and "symlink loop" in lines[0], result.stderr
    report = run_cli("sync", "--json", data_dir=data).json()
    loops = [f for f in report["files"] if f["skip"] == "symlink_loop"]
    assert len(loops) == 3 and report["failed"] == 0, report
