"""kill -9 during `ragkeep backup` and during `ragkeep restore`, at random points (issue 14).

Like scripts/kill_harness.py: SIGKILL the command after a random delay (seeded) spread over
its measured duration, then check what it left. A killed backup leaves a folder that is
either complete with a matching checksum or reported incomplete and never restorable; a
killed restore leaves the index it replaced or the restored one, never a mix, and nothing
it left half-made (restore.tmp, *.tmp) is ever used.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from ragkeep import Keep
from ragkeep.ingest.pipeline import TextDocument
from ragkeep.store.backups import INDEX_FILE, read_backup
from ragkeep.store.base import BackupError

from conftest import CliResult, run_cli, scifact_docs
from pipeline_fakes import FakeEmbedder

DOCS = 1500  # ~20 MB: the copy, checksum and write-back each take a good part of a second
# keep: a restore's own backups pile up over the kills; the one restored must not be pruned.
ENV = {"RAGKEEP_BACKUP__KEEP": "1000"}
KILLS = [8, pytest.param(40, marks=pytest.mark.slow)]


def _docs() -> list[TextDocument]:
    return [
        TextDocument(f"/kb/sci-{d['_id']}.txt", d["title"], d["text"]) for d in scifact_docs(DOCS)
    ]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An index of every document of _docs(), built once; each test works on a copy."""
    data = tmp_path_factory.mktemp("built") / "data"
    with pytest.MonkeyPatch.context() as mp:  # the autouse isolation is per test
        for name in [n for n in os.environ if n.startswith("RAGKEEP_")]:
            mp.delenv(name)
        mp.setenv("HOME", str(data.parent / "home"))
        with _keep(data) as keep:
            keep.index_texts(_docs())
    return data


def _keep(data: Path) -> Keep:
    embedder = FakeEmbedder()  # vectors without the model's cost: nothing here searches
    return Keep(data, embedder=lambda: embedder)


def _cli(data: Path, *args: str) -> CliResult:
    return run_cli(*args, data_dir=data, env=ENV)


def _parallel(data: Path, *commands: Sequence[str]) -> list[CliResult]:
    """Read-only checks run side by side: the test's time goes to kills, not start-ups."""
    with ThreadPoolExecutor(len(commands)) as pool:
        return list(pool.map(lambda args: _cli(data, *args), commands))


@dataclass(frozen=True)
class Timing:
    """One uninterrupted run, in seconds from its start: when its first folder appeared in
    the backups dir, when that folder held a complete copy, and when the run ended."""

    began: float
    copied: float
    full: float

    @property
    def copying(self) -> float:
        return max(self.copied - self.began, 0.01)


def _start(data: Path, *args: str, stderr: int = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGKEEP_")}
    return subprocess.Popen(
        [sys.executable, "-m", "ragkeep", "--data-dir", str(data), "-q", *args],
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        env={**env, **ENV},
    )


def _new_folder(shelf: Path, before: set[Path]) -> Path | None:
    return next(iter(set(shelf.iterdir()) - before), None)


def _measure(data: Path, *args: str) -> Timing:
    """Run `ragkeep ARGS` to the end and time it (see Timing)."""
    shelf = data / "backups"
    before = set(shelf.iterdir())
    started = time.monotonic()
    proc = _start(data, *args, stderr=subprocess.PIPE)
    began = copied = None
    while proc.poll() is None:
        folder = _new_folder(shelf, before)
        if folder is not None and began is None:
            began = time.monotonic() - started
        if folder is not None and copied is None and (folder / INDEX_FILE).exists():
            copied = time.monotonic() - started
        time.sleep(0.002)
    full = time.monotonic() - started
    _, err = proc.communicate()
    assert proc.returncode == 0 and began is not None, f"ragkeep {args}: {err.decode()}"
    return Timing(began, full if copied is None else copied, full)


def _kill_after(data: Path, delay: float, *args: str, anchored: bool = False) -> int:
    """Start `ragkeep ARGS`, SIGKILL it `delay` seconds after its start or, `anchored`,
    after its first folder appears in the backups dir: a start-up a little slower or
    faster than the measured one then cannot move the kill out of the copy. Its exit
    code (-9: it was running)."""
    shelf = data / "backups"
    before = set(shelf.iterdir())
    proc = _start(data, *args)
    while anchored and proc.poll() is None and _new_folder(shelf, before) is None:
        time.sleep(0.002)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    return proc.wait()


def _kill_points(rng: random.Random, kills: int, run: Timing) -> list[tuple[float, bool]]:
    """Half the kills spread over the measured run from just before it began writing to
    its end (a kill while Python still imports ragkeep tests nothing), half anchored to the
    folder's appearance and spread over the copy: the copy is a small part of the run."""
    return [
        (rng.uniform(0.0, run.copying), True)
        if n % 2
        else (rng.uniform(max(0.0, run.began - 0.05), run.full), False)
        for n in range(kills)
    ]


def _complete(folder: Path) -> bool:
    """Complete (manifest and copy present) or not; a complete folder must also match its
    checksum: a folder that looks complete but was changed is the failure looked for."""
    try:
        read_backup(folder, verify=False)
    except BackupError:
        return False
    read_backup(folder, verify=True)  # raises BackupError on a checksum mismatch
    return True


def _assert_refused(result: CliResult, what: str) -> None:
    assert result.code == 2, f"{what}: exit {result.code}: {result.stderr}"
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, (
        result.stderr
    )


def _doctor_ok(result: CliResult, when: str) -> None:
    assert result.code == 0, f"{when}: doctor failed: {result.stdout}{result.stderr}"


def _temp_files(data: Path) -> list[Path]:
    return [p for p in data.rglob("*.tmp*")]


@pytest.mark.parametrize("kills", KILLS)
def test_kill_during_backup(tmp_path: Path, built: Path, kills: int) -> None:
    """After every kill: doctor passes on the live index; every folder in the backups dir
    is complete with a matching checksum, or listed as incomplete and refused by restore.
    Prune removes the incomplete folders; a new backup then succeeds."""
    data, shelf = tmp_path / "data", tmp_path / "data" / "backups"
    shutil.copytree(built, data)
    shelf.mkdir()
    run = _measure(data, "backup")
    rng = random.Random(14)
    outcome: Counter[str] = Counter()
    refused: set[str] = set()

    def kill_and_check(delay: float, anchored: bool) -> set[str]:
        """One killed backup and the checks after it; the incomplete folders it left."""
        before = {p.name for p in shelf.iterdir()}
        code = _kill_after(data, delay, "backup", anchored=anchored)
        assert code in (0, -signal.SIGKILL), f"backup exited {code} before the kill"
        new = {p.name for p in shelf.iterdir() if p.is_dir()} - before
        incomplete = {p.name for p in shelf.iterdir() if p.is_dir() and not _complete(p)}
        if code == 0:
            outcome["finished before the kill"] += 1
        elif new & incomplete:
            outcome["killed mid-backup"] += 1
        elif new:
            outcome["killed after the copy was complete"] += 1
        else:
            outcome["killed before the copy began"] += 1
        unrefused = sorted(incomplete - refused)
        checks = [("doctor", "--json"), ("backup", "list", "--json")]
        doctor, listed, *restores = _parallel(data, *checks, *(("restore", i) for i in unrefused))
        _doctor_ok(doctor, f"kill at {delay:.2f} s")
        reported = {e["path"].rsplit("/", 1)[-1]: e["manifest"] is None for e in listed.json()}
        assert {name for name, bad in reported.items() if bad} == incomplete, listed.stdout
        for result, name in zip(restores, unrefused, strict=True):
            _assert_refused(result, f"restore of incomplete backup {name}")
            refused.add(name)
        return incomplete

    for delay, anchored in _kill_points(rng, kills, run):
        left = kill_and_check(delay, anchored)
    print(f"\n{kills} kills of backup ({run}): {outcome}")
    assert outcome["killed mid-backup"] >= 1, outcome  # the kills did interrupt backups
    for _ in range(5):  # so that prune has something to remove, kill one mid-copy
        if left:
            break
        left = kill_and_check(rng.uniform(0.0, run.copying / 2), anchored=True)
    assert left, "no kill left an incomplete backup for prune to remove"
    pruned = _cli(data, "backup", "prune", "--json")
    assert pruned.code == 0, pruned.stderr
    assert set(pruned.json()["removed"]) >= left
    assert all(_complete(p) for p in shelf.iterdir() if p.is_dir())
    assert not _temp_files(shelf)
    made = _cli(data, "backup", "--json")
    assert made.code == 0, made.stderr
    assert read_backup(shelf / made.json()["id"]).documents == DOCS


def _paths(result: CliResult) -> list[str]:
    assert result.code == 0, result.stderr
    return sorted(d["path"] for d in result.json())


@pytest.mark.parametrize("kills", KILLS)
def test_kill_during_restore(tmp_path: Path, built: Path, kills: int) -> None:
    """State A, a backup of it, then state C (some documents removed, others added). After
    every kill of `restore A`: doctor passes and the index holds exactly A or exactly C;
    what the kill left is never used; a later restore succeeds and leaves nothing behind."""
    data, shelf = tmp_path / "data", tmp_path / "data" / "backups"
    docs = _docs()
    a_docs, added = docs[: DOCS - 100], docs[DOCS - 100 :]
    removed = [d.path for d in a_docs[:100]]
    shutil.copytree(built, data)
    with _keep(data) as keep:
        keep.remove([d.path for d in added])
        backup_a = keep.recovery.backup().id
    state_a = sorted(d.path for d in a_docs)
    state_c = sorted(set(state_a) - set(removed) | {d.path for d in added})

    def to_c() -> None:
        with _keep(data) as keep:
            keep.remove(removed)
            keep.index_texts(added)
            assert sorted(d.path for d in keep.documents()) == state_c

    to_c()
    run = _measure(data, "restore", backup_a)
    to_c()
    rng = random.Random(41)
    outcome: Counter[str] = Counter()
    for n, (delay, anchored) in enumerate(_kill_points(rng, kills, run)):
        before = {p.name for p in shelf.iterdir()}
        code = _kill_after(data, delay, "restore", backup_a, anchored=anchored)
        assert code in (0, -signal.SIGKILL), f"restore exited {code} before the kill"
        when = f"kill {n} at {delay:.2f} s" + (" after the folder appeared" if anchored else "")
        work = data / "restore.tmp"
        left_work = work.exists()
        backed_up = left_work or bool({p.name for p in shelf.iterdir()} - before)
        doctor, listed = _parallel(data, ("doctor", "--json"), ("list", "--json"))
        _doctor_ok(doctor, when)
        live = _paths(listed)
        assert live in (state_a, state_c), f"{when}: the index is neither A nor C"
        for folder in (p for p in shelf.iterdir() if p.is_dir()):
            _complete(folder)  # a folder that looks complete must match its checksum
        if code == 0:
            outcome["finished before the kill"] += 1
        elif live == state_a:
            outcome["killed after the swap"] += 1
        elif left_work:
            outcome["killed while preparing or writing the copy"] += 1
        elif backed_up:
            outcome["killed while backing up the index it replaces"] += 1
        else:
            outcome["killed before the restore began"] += 1
        if left_work:  # what a killed restore left is garbage to the next one
            for f in work.iterdir():
                f.write_bytes(os.urandom(4096))
        if live == state_a:
            to_c()

    print(f"\n{kills} kills of restore ({run}): {outcome}")
    mid = outcome["killed while preparing or writing the copy"]
    mid += outcome["killed while backing up the index it replaces"]
    assert mid >= 1, outcome  # the kills did interrupt restores before they were done
    final = _cli(data, "restore", backup_a, "--json")
    assert final.code == 0, final.stderr
    doctor, listed = _parallel(data, ("doctor", "--json"), ("list", "--json"))
    _doctor_ok(doctor, "after the final restore")
    assert _paths(listed) == state_a
    assert not (data / "restore.tmp").exists()
    assert not _temp_files(data)
