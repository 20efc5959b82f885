"""Indexing: add, sync and remove sources, index given texts, collect unused vectors.

One writer at a time per index (the store's writer lock); the pipeline itself commits one
document per transaction, so an interruption leaves every file whole, old or new.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ragkeep.config.settings import Settings
from ragkeep.embed.base import Embedder
from ragkeep.embed.onnx import minilm_tokenizer
from ragkeep.ingest.paths import absolute, is_under
from ragkeep.store.base import Removal, Store

if TYPE_CHECKING:
    from ragkeep.ingest.pipeline import Indexer, ProgressFn, TextDocument
    from ragkeep.models import IndexReport, UnusedVectors
    from ragkeep.observability.metrics import Metrics

_MB = 1024 * 1024
WaitFn = Callable[[], None]
# (reason, asked by the user) -> the snapshot's id; None: none taken (see backup.snapshots)
SnapshotFn = Callable[[str, bool], str | None]


class SourceError(ValueError):
    """A path that must not become a source (ragkeep's own data dir, or a folder inside it)."""


class IndexingService:
    def __init__(
        self,
        store: Store,
        embedder: Callable[[], Embedder],
        settings: Settings,
        metrics: Metrics | None = None,
        data_dir: Path | None = None,
        snapshot: SnapshotFn | None = None,
    ) -> None:
        self._store = store
        self._snapshot = snapshot or _no_snapshot
        self._embedder = embedder
        self._settings = settings
        self._metrics = metrics
        self._data_dir = data_dir

    @functools.cached_property
    def _indexer(self) -> Indexer:
        # Imported on first write: a search never loads the ingest pipeline or the loaders.
        from ragkeep.ingest.pipeline import Indexer

        return Indexer(
            self._store,
            self._embedder,
            self._settings,
            minilm_tokenizer,
            self._metrics,
            self._data_dir,
        )

    def add(
        self,
        paths: Sequence[str | Path],
        progress: ProgressFn | None = None,
        on_wait: WaitFn | None = None,
    ) -> IndexReport:
        """Register files or folders as sources and bring them into the index."""
        from ragkeep.models import FileOutcome, FileResult

        sources: list[str] = []
        missing: list[str] = []
        for p in paths:
            path = absolute(p)
            (sources if os.path.lexists(path) else missing).append(path)
        with self._store.writer_lock(on_wait):
            # Adding a removed path (or a folder holding one) brings it back.
            include = [p for p in self._store.excluded() if _within(p, sources)]
            self._store.add_sources(sources, include)
            report = self._indexer.sync_sources(sources, progress)
            self._collect_garbage_if_due(report)
        report.results[:0] = [
            FileResult(m, FileOutcome.FAILED, "no such file or folder") for m in missing
        ]
        return report

    def check_source(self, path: str | Path) -> None:
        """Refuse the data dir (or a path inside it) as a source named by a user: indexing
        the index's own files would change them, and `watch` would sync forever. A folder
        that merely contains the data dir is fine: walks skip the data dir. Not checked by
        `add` itself: the server's managed uploads folder lives inside the data dir."""
        if self._data_dir is None:
            return
        home, real = os.path.realpath(self._data_dir), os.path.realpath(absolute(path))
        if real == home or is_under(real, home):
            raise SourceError(
                f"{path} is ragkeep's data dir (or inside it) and cannot be a source; "
                "keep your documents elsewhere, or choose another --data-dir"
            )

    def sync(
        self,
        progress: ProgressFn | None = None,
        on_wait: WaitFn | None = None,
        only: Sequence[str | Path] | None = None,
        snapshot: bool = False,
    ) -> IndexReport:
        """Re-scan every registered source (or just `only`): index new and changed files,
        drop deleted ones. With `snapshot`, the index is backed up first."""
        with self._store.writer_lock(on_wait):
            taken = self._snapshot("before sync", True) if snapshot else None
            sources = [absolute(p) for p in only] if only is not None else self._store.sources()
            report = self._indexer.sync_sources(sources, progress)
            report.snapshot = taken
            self._collect_garbage_if_due(report)
        return report

    def remove(self, paths: Sequence[str | Path], on_wait: WaitFn | None = None) -> IndexReport:
        """Forget files or folders: their documents leave the index and they stop being
        sources, in one transaction."""
        from ragkeep.models import FileOutcome, FileResult, IndexReport

        targets = [absolute(p) for p in paths]
        with self._store.writer_lock(on_wait):
            sources = self._store.sources()
            removal = Removal(
                documents=[d.path for d in self._store.documents() if _within(d.path, targets)],
                sources=[s for s in sources if _within(s, targets)],
                # Inside a source that stays: remember it, or the next sync would re-add it.
                exclude=[t for t in targets if any(is_under(t, s) for s in sources if s != t)],
            )
            # A whole source can be most of the index: snapshot it first (`rollback`).
            taken = self._snapshot(_removing(removal.sources), False) if removal.sources else None
            generation = self._store.apply_removal(removal)
            results = [FileResult(p, FileOutcome.REMOVED) for p in removal.documents]
            report = IndexReport(results=results, generation=generation, snapshot=taken)
            self._collect_garbage_if_due(report)
        return report

    def index_texts(
        self, docs: Sequence[TextDocument], progress: ProgressFn | None = None
    ) -> IndexReport:
        """Index documents given as text (paths are labels, not files): used by `eval`."""
        with self._store.writer_lock(None):
            return self._indexer.index_texts(iter(docs), len(docs), progress)

    def gc(self) -> UnusedVectors:
        """Delete vectors that no chunk uses any more; returns how many, and their bytes."""
        with self._store.writer_lock(None):
            return self._store.collect_garbage()

    def _collect_garbage_if_due(self, report: IndexReport) -> None:
        """Keep unreferenced vectors (re-adding their texts then costs no embedding) until
        they take more than store.keep_unreferenced_mb; then collect them all, and say so in
        the report."""
        unused = self._store.unreferenced_vectors()
        if unused.bytes > self._settings.store.keep_unreferenced_mb * _MB:
            report.collected_vectors = self._store.collect_garbage()
        else:
            report.unreferenced_vectors = unused


def _removing(sources: Sequence[str]) -> str:
    more = f" and {len(sources) - 1} more" if len(sources) > 1 else ""
    return f"before remove of {sources[0]}{more}"


def _no_snapshot(reason: str, asked: bool) -> None:
    return None


def _within(path: str, folders: Sequence[str]) -> bool:
    """`path` is one of `folders` or inside one of them."""
    return any(path == f or is_under(path, f) for f in folders)
