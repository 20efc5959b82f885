"""A schema migration that can be undone: snapshot, migrate, validate, or restore the snapshot.

A migration runs in one transaction, so an error inside it leaves the old schema. That does
not cover a migration that commits and is wrong (a bug that drops rows, a step SQLite cannot
run in a transaction). So the old index is copied to the backups dir first, the migrated one
must pass SQLite's integrity check, the full-text check, and hold the same documents, chunks
and vectors as before (what searches answer from: equal contents give equal results), and
otherwise the copy is written back and opening fails with the reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ragkeep.models.backups import ValidationReport
from ragkeep.store.base import StoreError
from ragkeep.store.sqlite.schema import SCHEMA_VERSION

if TYPE_CHECKING:
    from ragkeep.models import Check
    from ragkeep.store.sqlite.store import SqliteStore


def migrate_with_snapshot(store: SqliteStore, version: int) -> None:
    """Migrate `store` from `version`; on failure the snapshot comes back and this raises."""
    from ragkeep.store.backups import INDEX_FILE
    from ragkeep.store.sqlite.backup import content_fingerprint

    assert store.shelf is not None
    with store.writer_lock(None):
        with store.read() as c:
            if int(c.execute("PRAGMA user_version").fetchone()[0]) == SCHEMA_VERSION:
                return  # another process migrated while this one waited for the lock
            model_id = store.indexed_model()[0]
            before = content_fingerprint(c, model_id)
        step = f"{version} -> {SCHEMA_VERSION}"
        snapshot = store.shelf.take(store.copy_to, f"before migration {step}")
        try:
            store.apply_migrations()
            report = validate_migration(store, before, model_id)
        except Exception as exc:  # any failure: the snapshot comes back
            why = f"failed ({exc})"
        else:
            if report.ok:
                return
            why = f"failed validation ({report.failures()})"
        store.restore_from(store.shelf.root / snapshot.id / INDEX_FILE, migrate=False)
    raise StoreError(
        f"upgrading {store.path} from schema {step} {why}; it was rolled back to schema "
        f"{version} from backup {snapshot.id}, which ragkeep versions that read schema "
        f"{version} open (docs/recovery.md#a-bad-upgrade)"
    )


def validate_migration(store: SqliteStore, before: str, model_id: str) -> ValidationReport:
    from ragkeep.store.sqlite.backup import content_fingerprint
    from ragkeep.store.sqlite.checks import migration_checks

    checks = migration_checks(store)
    with store.read() as c:
        same = content_fingerprint(c, model_id) == before
    checks.append(_contents_check(same))
    return ValidationReport(checks)


def _contents_check(same: bool) -> Check:
    from ragkeep.models import Check

    detail = (
        "documents, chunks and vectors unchanged"
        if same
        else ("documents, chunks or vectors differ from before the migration")
    )
    return Check("contents unchanged", same, detail)
