"""Copying a whole index from one store to another, whatever their backends: documents,
chunks and vectors as they are (vectors are content-addressed, so nothing is re-embedded),
plus sources, exclusions and persisted flags. `ragkeep migrate` and PostgreSQL's backups
(which are SQLite files, restorable anywhere) go through here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ragkeep.store.base import Removal

if TYPE_CHECKING:
    from ragkeep.models.backups import BackupContents
    from ragkeep.store.base import Store
    from ragkeep.store.postgres.store import PostgresStore

Progress = Callable[[int, int], None]  # (documents copied, documents in all)


@dataclass(frozen=True, slots=True)
class Copied:
    documents: int
    chunks: int
    generation: int  # the source's, at the snapshot copied
    state_id: str


def copy_index(source: Store, target: Store, progress: Progress | None = None) -> Copied:
    """Copy everything `source` holds in one snapshot into `target`, which must be empty.
    Each document is one transaction in the target: a copy cut short holds whole documents."""
    if target.counts().documents:
        raise ValueError(f"{target.location} is not empty; copy into an empty index")
    with source.snapshot() as snap:  # every read below nests in this one snapshot
        documents = source.documents()
        target.add_sources(source.sources(), [])
        chunks = 0
        for done, row in enumerate(documents, 1):
            exported = source.export_document(row.path)
            if exported is not None:
                target.replace_document(exported.document, exported.chunks, exported.vectors)
                chunks += len(exported.chunks)
            if progress is not None:
                progress(done, len(documents))
        excluded = source.excluded()
        if excluded:
            target.apply_removal(Removal([], [], excluded))
        for name, enabled in sorted(source.persisted_flags().items()):
            target.set_flag(name, enabled)
        return Copied(len(documents), chunks, snap.generation, snap.state_id)


def copy_to_file(source: PostgresStore, target: Path) -> BackupContents:
    """A PostgreSQL index's backup: a SQLite index file holding the same contents, under the
    source's generation and state token."""
    from ragkeep.store.sqlite.backup import describe
    from ragkeep.store.sqlite.store import SqliteStore

    copy = SqliteStore(target, model_id=source.model_id, dimension=source.dimension)
    try:
        copied = copy_index(source, copy)
        copy.adopt_identity(copied.generation, copied.state_id)
    except BaseException:
        copy.close()
        for leftover in (target, *target.parent.glob(f"{target.name}-*")):
            leftover.unlink(missing_ok=True)
        raise
    copy.close()
    return describe(target)


def restore_from_file(live: PostgresStore, source: Path) -> int:
    """Replace a PostgreSQL index's contents by the SQLite index file at `source`, in one
    transaction (readers see the old or the new contents); returns the new generation."""
    import shutil
    import tempfile

    from ragkeep.store.sqlite.store import SqliteStore

    # Opened from a copy: opening migrates an older schema, and the backup stays as it was.
    with tempfile.TemporaryDirectory(prefix="ragkeep-restore-") as tmp:
        working = Path(tmp) / source.name
        shutil.copyfile(source, working)
        copy = SqliteStore(working, model_id=live.model_id, dimension=live.dimension)
        try:
            return live.replace_all(copy)
        finally:
            copy.close()
