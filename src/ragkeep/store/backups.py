"""The backups dir: complete, checksummed copies of the index, newest kept, others pruned.

A backup is a folder holding the copy (`index.db`) and `manifest.json` (generation,
schema version, model, counts, size, SHA-256). It is written so that a kill at any point
leaves nothing a later run would trust: the copy is written under a temp name, fsynced and
hashed, the manifest is written (temp, fsync, rename), and last the copy is renamed into
place. A folder missing either file, or whose copy does not match the checksum, is never
restored; the next backup removes incomplete folders.

Making, pruning and cleaning hold `<dir>/.lock`, so a backup in progress in another process
is never taken for an incomplete one and removed. The copy itself is made by the backend
(`Store.copy_to`); this module knows only files.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ragkeep.models.backups import BackupContents, BackupEntry, BackupManifest
from ragkeep.store.base import BackupError

INDEX_FILE = "index.db"
MANIFEST = "manifest.json"
TMP = ".tmp"
_LOCK = ".lock"
_LOCK_WAIT_S = 600.0  # another process's backup of a large index

CopyInto = Callable[[Path], BackupContents]


def new_backup_id(now: float | None = None) -> str:
    """Sorts by time to the microsecond, unique across processes: 20261130-191500-042137-3f9c."""
    now = time.time() if now is None else now
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
    return f"{stamp}-{int(now % 1 * 1e6):06d}-{uuid.uuid4().hex[:4]}"


class BackupShelf:
    """The backups dir of one index: `keep` is how many backups pruning leaves."""

    def __init__(self, root: Path, keep: int) -> None:
        self.root = root
        self.keep = keep

    def take(
        self, copy: CopyInto, reason: str, folder: Path | None = None, prune: bool = True
    ) -> BackupManifest:
        """Make a backup (in `folder`, else a new folder in the backups dir), then prune
        the backups dir to `keep` unless told not to."""
        if folder is not None:
            return write_backup(copy, folder, reason)
        with self._locked():
            self._remove_incomplete()
            manifest = write_backup(copy, self.root / new_backup_id(), reason)
            if prune:
                self._prune(self.keep)
        return manifest

    def entries(self) -> list[BackupEntry]:
        """Every folder in the backups dir, newest first (checksums are not verified here)."""
        if not self.root.is_dir():
            return []
        found = []
        for folder in sorted(self.root.iterdir(), reverse=True):
            if not folder.is_dir():
                continue
            try:
                found.append(BackupEntry(folder, read_backup(folder, verify=False)))
            except BackupError as exc:
                found.append(BackupEntry(folder, None, str(exc)))
        return found

    def latest_snapshot(self) -> BackupManifest:
        """The newest complete backup that a restore did not make: what `rollback` returns to."""
        for entry in self.entries():
            if entry.manifest is not None and not entry.manifest.replaced_by_restore:
                return entry.manifest
        raise BackupError(f"no snapshot to roll back to in {self.root} (`ragkeep backup list`)")

    def locate(self, ref: str) -> Path:
        """A backup's folder from its id (in the backups dir) or its path."""
        by_id = self.root / ref
        if "/" not in ref and by_id.is_dir():
            return by_id
        path = Path(ref).expanduser()
        if path.name == MANIFEST:
            path = path.parent
        if path.is_dir():
            return path
        raise BackupError(
            f"no backup {ref!r}: neither an id in {self.root} nor a folder "
            "(`ragkeep backup list` shows the ids)"
        )

    def prune(self, keep: int) -> list[str]:
        """Delete all but the newest `keep` complete backups and every incomplete folder."""
        with self._locked():
            return self._remove_incomplete() + self._prune(keep)

    def _prune(self, keep: int) -> list[str]:
        complete = [e for e in self.entries() if e.manifest is not None]
        removed = []
        for entry in complete[keep:]:
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.path.name)
        return removed

    def _remove_incomplete(self) -> list[str]:
        removed = []
        for entry in self.entries():
            if entry.manifest is None:
                shutil.rmtree(entry.path, ignore_errors=True)
                removed.append(entry.path.name)
        return removed

    @contextmanager
    def _locked(self) -> Iterator[None]:
        from filelock import FileLock, Timeout

        self.root.mkdir(parents=True, exist_ok=True)
        lock = FileLock(self.root / _LOCK, thread_local=False)
        try:
            lock.acquire(timeout=_LOCK_WAIT_S)
        except Timeout:
            raise BackupError(
                f"another process has been making a backup in {self.root} for more than "
                f"{_LOCK_WAIT_S:g} s"
            ) from None
        try:
            yield
        finally:
            lock.release()


def write_backup(copy: CopyInto, folder: Path, reason: str) -> BackupManifest:
    """Copy the index into `folder` (created; must not hold a backup yet). On any failure
    nothing is left: not the temp copy, not the manifest, not a folder this call made."""
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BackupError(f"cannot create {folder}: {exc.strerror or exc}") from exc
    target = folder / INDEX_FILE
    if (folder / MANIFEST).exists() or target.exists():
        raise BackupError(f"{folder} already holds a backup; choose another folder")
    tmp = folder / (INDEX_FILE + TMP)
    tmp.unlink(missing_ok=True)
    try:
        contents = copy(tmp)
        fsync(tmp)
        manifest = _manifest(tmp, folder.name, reason, contents)
        _write_atomic(folder / MANIFEST, manifest.to_json())
        os.replace(tmp, target)
        fsync(folder)
    except BaseException as exc:  # a full disk, a damaged index, Ctrl-C
        tmp.unlink(missing_ok=True)
        (folder / MANIFEST).unlink(missing_ok=True)
        if created:
            shutil.rmtree(folder, ignore_errors=True)
        if isinstance(exc, OSError):
            raise BackupError(f"cannot write a backup to {folder}: {exc.strerror or exc}") from exc
        raise
    return manifest


def read_backup(folder: Path, verify: bool = True) -> BackupManifest:
    """The manifest of a complete backup; with `verify`, the copy's checksum is checked."""
    try:
        text = (folder / MANIFEST).read_text(encoding="utf-8")
    except OSError:
        raise BackupError(f"{folder} is not a complete ragkeep backup (no {MANIFEST})") from None
    manifest = BackupManifest.from_json(text)
    target = folder / INDEX_FILE
    if not target.is_file():
        raise BackupError(f"{folder} is incomplete: {INDEX_FILE} is missing")
    if verify and sha256_of(target) != manifest.sha256:
        raise BackupError(f"{target} does not match its manifest's checksum: it was changed")
    return manifest


def remove_temp_files(folder: Path) -> None:
    """Temp files a killed backup left: never trusted, removed on the next run."""
    for path in folder.glob(f"*{TMP}"):
        with contextlib.suppress(OSError):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()


def _manifest(copy: Path, backup_id: str, reason: str, c: BackupContents) -> BackupManifest:
    return BackupManifest(
        **c.model_dump(),
        id=backup_id,
        created_at=time.time(),
        reason=reason,
        size_bytes=copy.stat().st_size,
        sha256=sha256_of(copy),
    )


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + TMP)
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
