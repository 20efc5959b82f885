"""Backups, restore, rollback and re-embedding: every large rewrite can be undone.

A restore first backs up the index it replaces (so it can itself be undone), then swaps the
copy in under the writer lock. A re-embed snapshots the index, writes the new vectors beside
the old ones, switches in one transaction, validates, and brings the snapshot back by itself
when validation fails.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ragkeep.config.settings import BackupSettings
from ragkeep.embed.base import Embedder
from ragkeep.models.backups import (
    RESTORE_REASON,
    BackupEntry,
    BackupManifest,
    ReembedReport,
    RestoreReport,
)
from ragkeep.store.backups import INDEX_FILE, BackupShelf, read_backup
from ragkeep.store.base import BackupError, Store, StoreCorruptError

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

WaitFn = Callable[[], None]
ProgressFn = Callable[[int, int], None]  # (texts embedded, chunks in the index)
_PAGE = 256  # chunk texts embedded and staged per transaction


def backups_dir(settings: BackupSettings, data_dir: Path) -> Path:
    return Path(settings.dir).expanduser() if settings.dir else data_dir / "backups"


class RecoveryService:
    def __init__(
        self,
        store: Store,
        shelf: BackupShelf,
        embedder: Callable[[], Embedder],
        settings: BackupSettings,
    ) -> None:
        self._store = store
        self.shelf = shelf
        self._embedder = embedder
        self._settings = settings

    def backup(self, to: Path | None = None) -> BackupManifest:
        """A consistent copy of the index, made while searches and writes go on."""
        return self.shelf.take(self._store.copy_to, "manual", to)

    def entries(self) -> list[BackupEntry]:
        return self.shelf.entries()

    def prune(self, keep: int | None = None) -> list[str]:
        """Delete all but the newest `keep` (default backup.keep) backups, and incomplete ones."""
        return self.shelf.prune(self._settings.keep if keep is None else keep)

    def snapshot(self, reason: str, asked: bool = False) -> str | None:
        """A snapshot before a large rewrite; its id. None when it was not `asked` for
        and automatic snapshots are off (backup.snapshots)."""
        if not (asked or self._settings.snapshots):
            return None
        try:
            return self.shelf.take(self._store.copy_to, reason).id
        except BackupError as exc:
            raise BackupError(
                f"{exc}; nothing was changed: the snapshot taken {reason} failed (free space, "
                "or set backup.snapshots = false to go on without one)"
            ) from exc

    def restore(self, ref: str, on_wait: WaitFn | None = None) -> RestoreReport:
        """Bring back a backup (id or folder); the index it replaces is kept as a backup."""
        folder = self.shelf.locate(ref)
        manifest = read_backup(folder)
        self._check_compatible(manifest)
        with self._store.writer_lock(on_wait):
            replaced = self._keep_replaced(manifest)
            generation = self._store.restore_from(folder / INDEX_FILE)
        self.shelf.prune(self._settings.keep)
        return RestoreReport(manifest, generation, replaced)

    def _keep_replaced(self, restoring: BackupManifest) -> BackupManifest | None:
        """Back up the index about to be replaced; a damaged one cannot be copied whole,
        and restoring is then exactly what it needs: it goes on without. A new, never
        written index (one set aside before) has nothing to keep."""
        if self._store.generation() == 0:
            return None
        try:
            # Not pruned yet: with backup.keep = 1 that would delete the copy to restore.
            return self.shelf.take(
                self._store.copy_to, f"{RESTORE_REASON} of {restoring.id}", prune=False
            )
        except StoreCorruptError as exc:
            log.warning("the index being replaced is damaged and is not kept: %s", exc)
            return None

    def rollback(self, on_wait: WaitFn | None = None) -> RestoreReport:
        """Restore the latest snapshot or backup that a restore did not make."""
        return self.restore(self.shelf.latest_snapshot().id, on_wait)

    def _check_compatible(self, manifest: BackupManifest) -> None:
        ours = self._store.copy_schema_version()
        if manifest.schema_version > ours:
            raise BackupError(
                f"backup {manifest.id} has schema version {manifest.schema_version}, newer "
                f"than this ragkeep reads ({ours}); restore it with the ragkeep that made it"
            )
        if (manifest.model_id, manifest.dimension) != (
            self._store.model_id,
            self._store.dimension,
        ):
            raise BackupError(
                f"backup {manifest.id} was made with embedding model {manifest.model_id!r}, "
                f"but ragkeep is using {self._store.model_id!r}; restore it with the ragkeep "
                "that made it, or restore it there and `ragkeep reembed` (docs/recovery.md)"
            )

    def reembed(
        self, progress: ProgressFn | None = None, on_wait: WaitFn | None = None
    ) -> ReembedReport:
        """Embed every chunk text again with the current model, then validate; a failed
        validation restores the snapshot taken before, by itself."""
        from ragkeep.services.validation import ReembedValidator, read_queries

        store = self._store
        embedder = self._embedder()
        validator = ReembedValidator(
            store,
            self._embed,
            read_queries(self._settings.validation_queries),
            self._settings.min_overlap,
            self._settings.min_self_recall,
        )
        with store.writer_lock(on_wait):
            before = store.indexed_model()[0]
            baseline = validator.baseline() if before == store.model_id else None
            snapshot = self.shelf.take(
                store.copy_to, f"before re-embed ({before} -> {store.model_id})"
            )
            try:
                texts = self._stage(embedder, progress)
            except BaseException:  # a broken model, Ctrl-C: the index was not touched
                store.drop_vectors(_staging_tag(store))
                raise
            generation = store.switch_model(_staging_tag(store))
            back = self.shelf.root / snapshot.id / INDEX_FILE
            try:
                report = validator.validate(baseline)
            except Exception as exc:  # cannot tell whether it is good: it is not kept
                store.restore_from(back)
                raise BackupError(
                    f"validating the re-embedded index failed ({exc}); it was rolled back "
                    f"to snapshot {snapshot.id}"
                ) from exc
            if not report.ok:
                generation = store.restore_from(back)
        return ReembedReport(
            before, store.model_id, texts, snapshot, report, not report.ok, generation
        )

    def _stage(self, embedder: Embedder, progress: ProgressFn | None) -> int:
        """Embed every distinct chunk text into the staging tag; returns how many."""
        store = self._store
        if embedder.dimension != store.dimension:
            raise BackupError(
                f"the embedder makes {embedder.dimension}-dimensional vectors, the index "
                f"expects {store.dimension}"
            )
        tag = _staging_tag(store)
        store.drop_vectors(tag)  # what a killed re-embed left
        total, done, after = store.counts().chunks, 0, ""
        while page := store.chunk_texts(after, _PAGE):
            matrix = embedder.embed([text for _, text in page])
            store.stage_vectors(tag, {h: matrix[i].tobytes() for i, (h, _) in enumerate(page)})
            done, after = done + len(page), page[-1][0]
            if progress is not None:
                progress(done, total)
        return done

    def _embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        return self._embedder().embed(texts)


def _staging_tag(store: Store) -> str:
    return f"{store.model_id}#reembed"
