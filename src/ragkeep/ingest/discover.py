"""Walk sources and list candidate files, reporting (never raising on) anything unusable."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ragkeep.ingest.loaders import supported_suffixes
from ragkeep.models import SkipReason
from ragkeep.store.records import FileStamp


@dataclass(frozen=True, slots=True)
class Candidate:
    path: str  # absolute, symlinks not resolved: the path the user sees
    stamp: FileStamp
    source: str


@dataclass(frozen=True, slots=True)
class Unusable:
    path: str
    reason: str
    source: str
    skip: SkipReason | None = None  # set: nothing to index here, not an error


@dataclass(frozen=True, slots=True)
class WalkRules:
    ignore: frozenset[str]
    include_hidden: bool
    excluded: frozenset[str] = frozenset()  # absolute paths removed from inside a source
    # Folders never walked, by (device, inode) so that a symlink or a relative path to them
    # is caught too: ragkeep's own data dir, whose writes would otherwise be indexed (and,
    # under `watch`, trigger the next sync, forever).
    skip_dirs: frozenset[tuple[int, int]] = frozenset()


def walk_source(source: str, rules: WalkRules) -> Iterator[Candidate | Unusable]:
    """Yield every file under `source` (a file or a folder), following symlinks safely."""
    suffixes = supported_suffixes()
    try:
        st = os.stat(source)
    except OSError as exc:
        yield Unusable(source, _stat_reason(source, exc), source)
        return
    if not stat.S_ISDIR(st.st_mode):
        yield _classify(source, st, source, suffixes)
        return
    if (st.st_dev, st.st_ino) in rules.skip_dirs:
        return
    seen_dirs: set[tuple[int, int]] = {(st.st_dev, st.st_ino)}
    stack = [source]
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            yield Unusable(folder, f"cannot list folder: {exc.strerror}", source)
            continue
        for entry in entries:
            if (
                entry.name in rules.ignore
                or (entry.name.startswith(".") and not rules.include_hidden)
                or entry.path in rules.excluded
            ):
                continue
            try:
                est = os.stat(entry.path)  # follows symlinks
            except OSError as exc:
                loop = SkipReason.SYMLINK_LOOP if exc.errno == errno.ELOOP else None
                yield Unusable(entry.path, _stat_reason(entry.path, exc), source, loop)
                continue
            if stat.S_ISDIR(est.st_mode):
                key = (est.st_dev, est.st_ino)
                if key in rules.skip_dirs:
                    continue
                if key in seen_dirs:
                    yield Unusable(
                        entry.path,
                        "symlink loop: folder already walked through another path",
                        source,
                        SkipReason.SYMLINK_LOOP,
                    )
                    continue
                seen_dirs.add(key)
                stack.append(entry.path)
            else:
                yield _classify(entry.path, est, source, suffixes)


def dir_key(path: str | Path) -> tuple[int, int] | None:
    """A folder's (device, inode), or None when it does not exist (yet)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _classify(
    path: str, st: os.stat_result, source: str, suffixes: frozenset[str]
) -> Candidate | Unusable:
    if not stat.S_ISREG(st.st_mode):
        return Unusable(path, "not a regular file", source, SkipReason.NOT_REGULAR_FILE)
    suffix = Path(path).suffix.lower()
    if suffix not in suffixes:
        reason = f"unsupported file type: {suffix or '(no extension)'}"
        return Unusable(path, reason, source, SkipReason.UNSUPPORTED_TYPE)
    return Candidate(path, FileStamp(st.st_size, st.st_mtime_ns, st.st_ino), source)


def _stat_reason(path: str, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "symlink loop"
    if exc.errno == errno.ENOENT and os.path.islink(path):
        return "broken symlink"
    if exc.errno == errno.ENOENT:
        return "no such file or folder"
    return f"cannot access: {exc.strerror}"
