"""The persistent result-cache table every backend provides."""

from __future__ import annotations

from ragkeep.store import Store
from ragkeep.store.base import CacheSweep, CacheWrite


def _write(
    key: str,
    generation: int = 1,
    value: str = "v",
    now: float = 100.0,
    touched: frozenset[str] = frozenset(),
    sweep: CacheSweep | None = None,
) -> CacheWrite:
    return CacheWrite(key, generation, value, now, touched, sweep)


def test_entries_are_read_inside_a_snapshot(store: Store) -> None:
    store.cache.put(_write("k", value="hits"))
    with store.snapshot() as snap:
        row = snap.cached_result("k")
        assert snap.cached_result("absent") is None
    assert row is not None and (row.value, row.created_at, row.used_at) == ("hits", 100, 100)
    assert store.cache.entries() == (1, 4)


def test_a_write_purges_older_generations_and_refreshes_touched_keys(store: Store) -> None:
    store.cache.put(_write("old", generation=1))
    store.cache.put(_write("kept", generation=2, now=100))
    store.cache.put(_write("new", generation=2, now=200, touched=frozenset({"kept"})))
    with store.snapshot() as snap:
        assert snap.cached_result("old") is None
        kept = snap.cached_result("kept")
    assert kept is not None and kept.used_at == 200 and kept.created_at == 100


def test_a_sweep_expires_then_evicts_least_recently_used(store: Store) -> None:
    for i, key in enumerate(["a", "b", "c"]):
        store.cache.put(_write(key, now=100 + i))
    result = store.cache.put(_write("d", now=160.5, sweep=CacheSweep(60, 2, 10_000)))
    # "a" (created at 100) expired at 160; then one of b, c, d must go: b is the oldest.
    assert (result.expired, result.evicted) == (1, 1)
    with store.snapshot() as snap:
        assert [k for k in "abcd" if snap.cached_result(k)] == ["c", "d"]
    result = store.cache.put(_write("e", value="x" * 10, now=162, sweep=CacheSweep(0, 100, 10)))
    assert result.evicted == 2 and store.cache.entries() == (1, 10)


def test_clear_and_statistics(store: Store) -> None:
    store.cache.put(_write("k"))
    store.cache.add_stats({"memory.hits": 2, "memory.misses": 1})
    store.cache.add_stats({"memory.hits": 3})
    assert store.cache.stats() == {"memory.hits": 5, "memory.misses": 1}
    assert store.cache.clear() == 1 and store.cache.entries() == (0, 0)
    store.cache.reset_stats()
    assert store.cache.stats() == {}
