"""Issue 13, items 5, 6 and 8, through the CLI as a user runs it: output that reads (one line
for unsupported files; `watch` prints only what changed), honest progress, and a data dir
and sources that cannot feed on each other."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ragkeep import Keep

from bigdoc import write_big_text
from conftest import run_cli, write

_JUNK = (".gz", ".png", ".xyz", ".bin", ".deb")


def _folder_with_junk(docs: Path) -> None:
    write(docs / "notes.md", "Sourdough needs a ripe starter and a long cold proof.\n")
    for i, suffix in enumerate(_JUNK):
        for j in range(i + 1):  # 1 .gz, 2 .png, ...: 15 files of 5 types
            write(docs / "junk" / f"f{j}{suffix}", "not indexable\n")


def _eventually(check: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


# -- item 5: progress that tells the truth ---------------------------------------------------


def test_progress_counts_documents_in_the_index_not_files_read(keep: Keep, docs_dir: Path) -> None:
    # Small files are committed in groups (pipeline._GROUP_CHUNKS): a count taken as files are
    # read runs ahead of what an interruption would keep (35/491 shown, 6 saved, in issue 13).
    for i in range(40):
        write(docs_dir / f"f{i:02}.md", f"Document {i} is about starlings at dusk.\n")
    seen: list[tuple[int, int]] = []

    def check(done: int, total: int, path: str) -> None:
        seen.append((done, len(keep.documents())))

    keep.add([docs_dir], progress=check)

    assert seen[-1] == (40, 40)
    ahead = [(done, stored) for done, stored in seen if done > stored]
    assert not ahead, f"the count ran ahead of the index: {ahead[:3]}"


def test_the_bar_shows_chunks_per_second_and_progress_within_a_big_file(tmp_path: Path) -> None:
    docs, data = tmp_path / "docs", tmp_path / "data"
    write_big_text(docs / "big.txt", 1_500_000)  # over the bar's 1 M characters
    for i in range(3):
        write(docs / f"s{i}.md", f"Note {i} about herons and egrets.\n")

    code, screen = _run_in_terminal(data, "add", str(docs))

    assert code == 0, screen
    assert "chunking" in screen and "/1500000" in screen and "chars/s" in screen, screen
    assert "0/4" in screen and "chunks/s" in screen and "4/4" in screen, screen
    assert "4 added" in screen


def _run_in_terminal(data: Path, *args: str) -> tuple[int, str]:
    """Run the CLI with stderr on a pseudo-terminal (the bar shows only on a terminal);
    returns the exit code and everything written there, escape sequences removed."""
    import pty
    import re

    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGKEEP_")}
    env.update(TERM="xterm", COLUMNS="160")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ragkeep", "--data-dir", str(data), *args],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave, env=env,
    )  # fmt: skip
    os.close(slave)
    out = bytearray()
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    code = proc.wait(timeout=300)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.decode(errors="replace"))
    return code, text.replace("\r", "\n")


# -- item 6: output noise --------------------------------------------------------------------


def test_unsupported_files_are_one_summary_line_and_verbose_lists_the_types(
    tmp_path: Path,
) -> None:
    docs, data = tmp_path / "docs", tmp_path / "data"
    _folder_with_junk(docs)

    added = run_cli("add", str(docs), data_dir=data)

    assert added.code == 0, added.stderr
    lines = added.stderr.splitlines()
    assert lines[0].startswith("1 added, 15 skipped")
    assert "skipped 15 files of 5 unsupported types; --verbose lists them" in lines[1]
    assert len(lines) == 2, added.stderr
    assert "unsupported file type" not in added.stderr

    synced = run_cli("-v", "sync", data_dir=data)
    assert synced.code == 0, synced.stderr
    listed = [line.split() for line in synced.stderr.splitlines() if line.startswith("    ")]
    # Most common first: 5 .deb, 4 .bin, 3 .xyz, 2 .png, 1 .gz.
    assert listed == [["5", ".deb"], ["4", ".bin"], ["3", ".xyz"], ["2", ".png"], ["1", ".gz"]]


def test_watch_prints_only_what_changed(tmp_path: Path) -> None:
    docs, data = tmp_path / "docs", tmp_path / "data"
    _folder_with_junk(docs)
    assert run_cli("add", str(docs), data_dir=data).code == 0
    proc = _watch(data, "--debounce", "0.2")
    try:
        time.sleep(3)  # the first sync: nothing changed, so nothing is printed
        new = write(docs / "b.md", "Smew are small white ducks.\n")
        write(docs / "junk" / "more.gz", "still not indexable\n")
        assert _eventually(lambda: _document_count(data) == 2, 60)
        time.sleep(1)  # let the watcher print
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err
    lines = err.splitlines()
    assert lines[0] == "watching 1 folder(s); Ctrl-C to stop"
    assert lines[1:] == [f"  added {new} (1 chunks)", "stopped"], err


def _watch(data: Path, *args: str, verbose: bool = False) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGKEEP_")}
    loud = ["-v"] if verbose else []
    return subprocess.Popen(
        [sys.executable, "-m", "ragkeep", "--data-dir", str(data), *loud, "watch", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


def _document_count(data: Path) -> int:
    result = run_cli("status", "--json", data_dir=data)
    return int(result.json()["documents"]) if result.code == 0 else -1


# -- item 8: the data dir and sources --------------------------------------------------------


def test_the_data_dir_cannot_be_a_source(tmp_path: Path) -> None:
    docs, data = tmp_path / "docs", tmp_path / "data"
    write(docs / "a.md", "Mergansers have serrated bills.\n")
    assert run_cli("add", str(docs), data_dir=data).code == 0

    for refused in (data, data / "inside", Path(os.path.relpath(data))):
        (data / "inside").mkdir(exist_ok=True)
        result = run_cli("add", str(refused), data_dir=data)
        assert result.code == 2, result.stderr
        assert result.stderr.count("\n") == 1, result.stderr
        assert "is ragkeep's data dir (or inside it) and cannot be a source" in result.stderr
        watched = run_cli("watch", str(refused), data_dir=data)
        assert watched.code == 2 and "cannot be a source" in watched.stderr, watched.stderr

    assert run_cli("status", "--json", data_dir=data).json()["sources"] == [str(docs)]


def test_a_folder_holding_the_data_dir_is_walked_without_it(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    data = docs / "index"  # e.g. `--data-dir ./index` inside a project folder
    write(docs / "a.md", "Mergansers have serrated bills.\n")
    write(data / "stray.md", "Not a document of the user's: inside the data dir.\n")

    first = run_cli("add", str(docs), "--json", data_dir=data)
    again = run_cli("sync", "--json", data_dir=data)

    assert first.code == 0, first.stderr
    assert [f["path"] for f in first.json()["files"]] == [str(docs / "a.md")], first.stdout
    assert again.code == 0, again.stderr
    counts = {k: again.json()[k] for k in ("added", "unchanged", "skipped")}
    assert counts == {"added": 0, "unchanged": 1, "skipped": 0}, again.stdout


def test_watching_a_folder_that_holds_the_data_dir_does_not_sync_forever(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    data = docs / "index"
    write(docs / "a.md", "Mergansers have serrated bills.\n")
    proc = _watch(data, str(docs), "--debounce", "0.1", verbose=True)
    try:
        assert _eventually(lambda: _document_count(data) == 1, 60)
        time.sleep(4)  # before the fix: a sync every ~0.2 s, each one writing to the data dir
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err
    assert err.count("watch: synced") == 1, err
    assert f"added as source(s), kept after watch stops: {docs}" in err


def test_watch_says_its_folders_become_sources(tmp_path: Path) -> None:
    result = run_cli("watch", "--help", data_dir=tmp_path / "data", env={"COLUMNS": "200"})
    assert result.code == 0
    assert "stay sources after watch stops" in " ".join(result.stdout.split())


def test_nested_sources_are_counted_once_after_remove_then_add(tmp_path: Path) -> None:
    docs, data = tmp_path / "docs", tmp_path / "data"
    for name in ("a.md", "b.md", "sub/c.md", "sub/d.md"):
        write(docs / name, f"Notes called {name} about herons and egrets.\n")
    assert run_cli("add", str(docs), data_dir=data).code == 0
    assert run_cli("remove", str(docs / "sub"), data_dir=data).code == 0
    readded = run_cli("add", str(docs / "sub"), "--json", data_dir=data)
    assert readded.code == 0, readded.stderr
    assert readded.json()["added"] == 2

    synced = run_cli("sync", "--json", data_dir=data)

    assert synced.code == 0, synced.stderr
    report = synced.json()
    assert (report["unchanged"], report["added"], report["files"]) == (4, 0, [])
    assert run_cli("status", "--json", data_dir=data).json()["documents"] == 4
