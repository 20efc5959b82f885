"""`ragkeep watch`: changes on disk reach the index without running sync by hand."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ragkeep import Keep
from ragkeep.ingest.watch import watch
from ragkeep.models import IndexReport

from conftest import write


def _eventually(check: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def test_watch_follows_creates_edits_deletes_and_flickering_files(
    keep: Keep, docs_dir: Path
) -> None:
    write(docs_dir / "start.md", "Initial note about eiders.")
    keep.add([docs_dir])
    reports: list[IndexReport] = []
    stop = threading.Event()
    t = threading.Thread(
        target=watch,
        args=(keep, [str(docs_dir)], stop),
        kwargs={"debounce_s": 0.2, "on_report": reports.append},
    )
    t.start()

    def paths(query: str) -> set[str]:
        return {Path(h.path).name for h in keep.search(query, 5, "bm25")}

    try:
        f = write(docs_dir / "new.md", "Scoters are sea ducks.")
        assert _eventually(lambda: "new.md" in paths("scoters"))
        write(f, "Scoters dive for mussels.")
        assert _eventually(
            lambda: "mussels" in " ".join(h.text for h in keep.search("scoters", 5, "bm25"))
        )
        # A file that appears and vanishes at once must not break the watcher.
        for i in range(20):
            g = write(docs_dir / f"flicker{i}.md", "Here and gone.")
            g.unlink()
        f.unlink()
        assert _eventually(lambda: "new.md" not in paths("scoters"))
        write(docs_dir / "after.md", "Goldeneyes whistle in flight.")
        assert _eventually(lambda: "after.md" in paths("goldeneyes"))
    finally:
        stop.set()
        t.join(10)
    assert not t.is_alive()
    assert all(r.ok or all("flicker" in x.path for x in r.results if x.outcome.value == "failed")
               for r in reports)  # fmt: skip
    assert keep.doctor().ok


def test_watch_command_runs_until_interrupted(tmp_path: Path) -> None:
    docs, data = tmp_path / "docs", tmp_path / "data"
    write(docs / "a.md", "Mergansers have serrated bills.")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGKEEP_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ragkeep", "--data-dir", str(data), "watch", str(docs),
         "--debounce", "0.2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        with Keep(data) as reader:
            assert _eventually(lambda: reader.status().documents == 1, 60)
            write(docs / "b.md", "Smew are small white ducks.")
            assert _eventually(lambda: bool(reader.search("smew", 1, "bm25")), 30)
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err
    assert "watching 1 folder" in err and "stopped" in err
