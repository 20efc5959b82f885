"""`ragkeep watch`: keep the index in sync with file-system events.

Events only mark the watched sources dirty; once they have been quiet for the debounce
interval, the same code path as `ragkeep sync` runs over them. A burst of saves therefore
costs one sync, and a file that appears and vanishes mid-read is simply picked up (or
dropped) by the next one.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from ragkeep.ingest.paths import is_under
from ragkeep.models import FileOutcome, IndexReport

if TYPE_CHECKING:
    from ragkeep.keep import Keep

log = logging.getLogger(__name__)


class _Dirty(FileSystemEventHandler):
    def __init__(self, ignore: Sequence[str] = ()) -> None:
        # Real paths: the data dir may be reached through a symlink or a relative path.
        self._ignore = [os.path.realpath(p) for p in ignore]
        self.last_event = 0.0
        self.pending = False
        self._lock = threading.Lock()

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return  # reads (including our own) change nothing
        if self._ignore and all(self._ignored(p) for p in _paths_of(event)):
            return  # our own writes (the data dir): a sync would cause the next, forever
        with self._lock:
            self.pending = True
            self.last_event = time.monotonic()

    def _ignored(self, path: str) -> bool:
        real = os.path.realpath(path)
        return any(real == p or is_under(real, p) for p in self._ignore)

    def take_if_quiet(self, debounce_s: float) -> bool:
        with self._lock:
            if self.pending and time.monotonic() - self.last_event >= debounce_s:
                self.pending = False
                return True
            return False


def watch(
    keep: Keep,
    sources: Sequence[str],
    stop: threading.Event,
    *,
    debounce_s: float = 1.0,
    on_report: Callable[[IndexReport], None] | None = None,
    ignore: Sequence[str] = (),
) -> None:
    """Sync `sources` now and after every quiet burst of changes, until `stop` is set.
    Changes under `ignore` (folders: ragkeep's data dir) do not count as changes."""
    dirty = _Dirty(ignore)
    observer = Observer()
    for source in sources:
        observer.schedule(dirty, source, recursive=True)
    observer.start()
    try:
        _sync(keep, sources, on_report)
        while not stop.wait(min(0.2, debounce_s / 2)):
            if dirty.take_if_quiet(debounce_s):
                _sync(keep, sources, on_report)
    finally:
        observer.stop()
        observer.join()


def _paths_of(event: FileSystemEvent) -> list[str]:
    paths = [os.fsdecode(event.src_path)]
    if event.dest_path:
        paths.append(os.fsdecode(event.dest_path))
    return paths


def _sync(
    keep: Keep, sources: Sequence[str], on_report: Callable[[IndexReport], None] | None
) -> None:
    try:
        report = keep.indexing.sync(only=sources)
    except Exception:  # keep watching: the next change triggers another attempt
        log.exception("sync failed; will retry on the next change")
        return
    changed = sum(r.outcome is not FileOutcome.UNCHANGED for r in report.results)
    log.info("watch: synced %d folder(s); %d file(s) not unchanged", len(sources), changed)
    if on_report is not None:
        on_report(report)
