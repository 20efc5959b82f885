"""Consistency checks every backend runs the same way, through the Store protocol."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ragkeep.models import Check

if TYPE_CHECKING:
    from ragkeep.store.base import Store


def unreferenced_vectors(store: Store, repair: bool) -> Check:
    unused = store.unreferenced_vectors()
    name = "no unreferenced vectors"
    if not unused.count:
        return Check(name, True, "ok")
    # Harmless and useful (re-adding their texts needs no embedding): information, never a
    # failure. Kept up to store.keep_unreferenced_mb.
    check = Check(
        name,
        True,
        f"{unused.count} vectors ({unused.bytes / 1e6:.1f} MB) no chunk uses, kept for "
        "re-adding (ragkeep gc removes them)",
    )
    if repair:
        removed = store.collect_garbage()
        check.repaired = True
        check.detail = f"{removed.count} unreferenced vectors removed"
    return check
