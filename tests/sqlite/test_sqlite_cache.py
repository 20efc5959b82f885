"""A busy SQLite database costs the result cache an entry or a statistics flush, never a
search: the backend turns every SQLite error into a StoreError the cache absorbs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ragkeep.cache.persistent import PersistentCache
from ragkeep.cache.results import CacheConfig, ResultCache
from ragkeep.store.sqlite import SqliteStore


def _result_cache(store: SqliteStore) -> ResultCache:
    return ResultCache(store, CacheConfig(10_000, 10_000, 100, 0, 1000), "fp")


def _get(cache: PersistentCache, store: SqliteStore, key: str) -> str | None:
    with store.snapshot() as snap:
        return cache.get(snap, key)


def test_persistent_write_failure_costs_a_cache_entry_not_a_search(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "ragkeep.db", model_id="m", dimension=4, busy_timeout_ms=0)
    cache = PersistentCache(store, max_bytes=10_000, max_entries=100, ttl_s=0)
    blocker = sqlite3.connect(tmp_path / "ragkeep.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    cache.put("k", 1, "v")
    blocker.execute("ROLLBACK")
    blocker.close()
    assert cache.write_errors == 1 and _get(cache, store, "k") is None
    store.close()


def test_stats_flush_is_best_effort(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "ragkeep.db", model_id="m", dimension=4, busy_timeout_ms=0)
    cache = _result_cache(store)
    with store.snapshot() as c:
        cache.get(c, "missing", 1)
    blocker = sqlite3.connect(tmp_path / "ragkeep.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    cache.flush_stats()  # must not raise; the counters stay for a later flush
    blocker.execute("ROLLBACK")
    blocker.close()
    assert cache.process_stats().misses == 2
    store.close()
