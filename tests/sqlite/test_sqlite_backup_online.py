"""`ragkeep backup` taken while a writer process commits and readers search (issue 14).

Each backup is one generation: it holds exactly the commits its manifest's generation
counts (and every commit made before the command started), passes doctor, and neither the
writer nor a search waits on it anywhere near the busy deadline.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ragkeep import Keep
from ragkeep.ingest.pipeline import TextDocument
from ragkeep.store.backups import read_backup

from conftest import run_cli, scifact_docs
from pipeline_fakes import FakeEmbedder

TESTS = Path(__file__).resolve().parents[1]
LOCK_TIMEOUT_S = 5.0  # the busy deadline configured for every process of the test
ENV = {"RAGKEEP_STORE__LOCK_TIMEOUT_S": f"{LOCK_TIMEOUT_S:g}"}
BASE_DOCS = 2000  # ~27 MB: the copy takes ~0.2 s, so commits land while it runs
BACKUPS = 3

# One small document per commit, each logged with the generation its commit produced and
# how long the commit took (monotonic clock: the same across processes on Linux).
WRITER = """
import json, sys, time
from pathlib import Path
from ragkeep import Keep
from ragkeep.ingest.pipeline import TextDocument
from ragkeep.store.base import StoreError
from pipeline_fakes import FakeEmbedder

data, log, stop = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
embedder = FakeEmbedder()
with Keep(data, embedder=lambda: embedder) as keep, log.open("w") as out:
    i = 0
    while not stop.exists():
        path = f"/kb/writer-{i:05}.txt"
        doc = TextDocument(path, f"note {i}", f"Writer note {i}: sample {i} was logged.")
        start = time.monotonic()
        try:
            generation = keep.index_texts([doc]).generation
        except StoreError as exc:
            record = {"path": path, "error": f"{type(exc).__name__}: {exc}"}
        else:
            record = {"path": path, "generation": generation, "start": start,
                      "end": time.monotonic()}
        out.write(json.dumps(record) + "\\n")
        out.flush()
        i += 1
"""


@dataclass
class Readers:
    """Threads searching without pause (bm25 and hybrid in turn), timing every search."""

    keep: Keep
    queries: list[str]
    stop: threading.Event = field(default_factory=threading.Event)
    seconds: dict[str, list[float]] = field(default_factory=lambda: {"bm25": [], "hybrid": []})
    errors: list[str] = field(default_factory=list)
    empty: int = 0

    def run(self, offset: int) -> None:
        i = offset
        while not self.stop.is_set():
            mode = ("bm25", "hybrid")[i % 2]
            started = time.monotonic()
            try:
                hits = self.keep.search(self.queries[i % len(self.queries)], k=5, mode=mode)
            except Exception as exc:  # recorded: an exception in a thread would vanish
                self.errors.append(f"{mode}: {type(exc).__name__}: {exc}")
            else:
                self.seconds[mode].append(time.monotonic() - started)
                self.empty += not hits
            i += 1


@dataclass(frozen=True)
class Backup:
    manifest: dict[str, Any]
    started: float
    ended: float


def _build(data: Path, embedder: FakeEmbedder) -> list[str]:
    docs = [
        TextDocument(f"/kb/sci-{d['_id']}.txt", d["title"], d["text"])
        for d in scifact_docs(BASE_DOCS)
    ]
    with Keep(data, embedder=lambda: embedder) as keep:
        keep.index_texts(docs)
    return [d.path for d in docs]


def _writer_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGKEEP_")}
    paths = [str(TESTS), env.get("PYTHONPATH", "")]
    return {**env, **ENV, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


def _commits(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def _wait_for_commits(log: Path, n: int, writer: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and writer.poll() is None:
        if log.exists() and len(_commits(log)) >= n:
            return
        time.sleep(0.05)
    pytest.fail(f"the writer made fewer than {n} commits (exit code {writer.poll()})")


def _documents_in_copy(index_copy: Path, tmp: Path) -> set[str]:
    """Doctor must pass on the copy as an index of its own; returns its documents."""
    fresh = tmp / f"copy-of-{index_copy.parent.name}"
    fresh.mkdir()
    shutil.copyfile(index_copy, fresh / "ragkeep.db")
    doctor = run_cli("doctor", "--json", data_dir=fresh, env=ENV)
    assert doctor.code == 0, f"doctor failed on {index_copy}: {doctor.stdout}{doctor.stderr}"
    with Keep(fresh) as keep:
        return {d.path for d in keep.documents()}


def test_backups_under_a_committing_writer_and_searching_readers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    data, log, stop = tmp_path / "data", tmp_path / "writer.jsonl", tmp_path / "stop"
    embedder = FakeEmbedder()
    base = _build(data, embedder)

    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(data), str(log), str(stop)],
        env=_writer_env(),
        stderr=subprocess.PIPE,
    )
    backups: list[Backup] = []
    with Keep(data, embedder=lambda: embedder) as keep:
        queries = [d["title"] for d in scifact_docs(60)]
        readers = Readers(keep, queries)
        threads = [threading.Thread(target=readers.run, args=(n,)) for n in range(2)]
        for t in threads:
            t.start()
        try:
            _wait_for_commits(log, 5, writer)
            for _ in range(BACKUPS):
                started = time.monotonic()
                made = run_cli("backup", "--json", data_dir=data, env=ENV)
                ended = time.monotonic()
                assert made.code == 0, made.stderr
                backups.append(Backup(made.json(), started, ended))
                time.sleep(0.2)
        finally:
            stop.touch()
            readers.stop.set()
            for t in threads:
                t.join(30)
            _, writer_err = writer.communicate(timeout=30)
    assert writer.returncode == 0, writer_err.decode()

    commits = _commits(log)
    busy = [c["error"] for c in commits if "error" in c]
    assert not busy, f"writer commits failed (busy deadline {LOCK_TIMEOUT_S} s): {busy[:3]}"
    generations = [c["generation"] for c in commits]
    # Nothing else commits: each document is its own generation, so the log says exactly
    # which documents any generation holds.
    assert generations == list(range(generations[0], generations[0] + len(commits)))
    commit_s = max(c["end"] - c["start"] for c in commits)
    search_s = {mode: max(s, default=0.0) for mode, s in readers.seconds.items()}
    assert not readers.errors, readers.errors[:3]
    assert all(readers.seconds.values()) and readers.empty == 0

    landed_during = []
    for b in backups:
        gen = b.manifest["generation"]
        folder = data / "backups" / b.manifest["id"]
        assert read_backup(folder, verify=True).generation == gen
        expected = set(base) | {c["path"] for c in commits if c["generation"] <= gen}
        assert _documents_in_copy(folder / "index.db", tmp_path) == expected
        assert b.manifest["documents"] == len(expected)
        # A consistent copy holds every commit made before the command started.
        before = [c["generation"] for c in commits if c["end"] < b.started]
        assert gen >= max(before), f"backup at generation {gen} lacks commits up to {max(before)}"
        # Commits after the copy's snapshot that finished while the command still ran.
        landed_during.append(
            sum(1 for c in commits if c["generation"] > gen and c["end"] < b.ended)
        )
    searches = ", ".join(
        f"{m} {len(s)} (slowest {search_s[m] * 1000:.0f} ms)" for m, s in readers.seconds.items()
    )
    took = ", ".join(f"{b.ended - b.started:.2f} s" for b in backups)
    print(
        f"\n{len(commits)} commits (slowest {commit_s * 1000:.0f} ms); searches: {searches}; "
        f"commits after each backup's snapshot, before it ended: {landed_during}; "
        f"backup commands took {took}"
    )
    assert commit_s < LOCK_TIMEOUT_S and max(search_s.values()) < LOCK_TIMEOUT_S
    assert all(n >= 1 for n in landed_during), landed_during  # the backups overlapped commits
