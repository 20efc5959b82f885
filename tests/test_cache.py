"""The caches: byte bounds, TTL (injected clock), keys that change with everything that matters,
and sharing across processes without ever serving a result from before a commit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ragkeep import Keep
from ragkeep.cache.memory import CacheStats, MemoryLRU
from ragkeep.cache.persistent import TOUCH_INTERVAL_S, PersistentCache
from ragkeep.cache.results import CacheConfig, EmbeddingCache, ResultCache, normalize_query
from ragkeep.config.settings import StoreSettings
from ragkeep.models import CacheReport, SearchHit, TierStats, to_json
from ragkeep.store import Store, open_store

from conftest import run_cli, write


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _hit(i: int, text: str = "t") -> SearchHit:
    return SearchHit(i, 1.0 / i, i, f"/p{i}", "title", i, text, 0, len(text), None)


# -- the in-memory LRU -------------------------------------------------------------------------


def test_memory_lru_evicts_least_recently_used_by_bytes() -> None:
    lru: MemoryLRU[str] = MemoryLRU(max_bytes=100)
    lru.put("a", "A", 40)
    lru.put("b", "B", 40)
    assert lru.get("a") == "A"  # a is now the most recently used
    lru.put("c", "C", 40)  # 120 bytes > 100: b goes
    assert lru.get("b") is None and lru.get("a") == "A" and lru.get("c") == "C"
    assert lru.bytes_used == 80 and len(lru) == 2
    assert lru.stats.evictions == 1
    lru.put("huge", "H", 101)  # bigger than the cache: not stored, nothing evicted
    assert lru.get("huge") is None and len(lru) == 2
    lru.put("a", "A2", 10)  # replacing an entry re-counts its size
    assert lru.get("a") == "A2" and lru.bytes_used == 50


def test_memory_lru_ttl_with_an_injected_clock() -> None:
    clock = Clock()
    lru: MemoryLRU[str] = MemoryLRU(max_bytes=100, ttl_s=10, clock=clock)
    lru.put("a", "A", 1)
    clock.now += 9.9
    assert lru.get("a") == "A"
    clock.now += 0.1
    assert lru.get("a") is None
    assert lru.stats == CacheStats(hits=1, misses=1, evictions=0, expirations=1)
    assert len(lru) == 0


def test_memory_lru_drops_older_tags_and_clears() -> None:
    lru: MemoryLRU[str] = MemoryLRU(max_bytes=100)
    lru.put("old", "x", 1, tag=1)
    lru.put("new", "y", 1, tag=2)
    assert lru.drop_tags_below(2) == 1
    assert lru.get("old") is None and lru.get("new") == "y"
    lru.clear()
    assert len(lru) == 0 and lru.bytes_used == 0


def test_stats_arithmetic() -> None:
    s = CacheStats(hits=3, misses=1).add(CacheStats(evictions=2, expirations=1))
    assert to_json(s.frozen()) == {
        "hits": 3,
        "misses": 1,
        "evictions": 2,
        "expirations": 1,
        "hit_rate": 0.75,
    }
    assert CacheStats().frozen().hit_rate == 0.0


# -- the persistent tier -----------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(StoreSettings(), tmp_path, model_id="m", dimension=4)
    yield s
    s.close()


def _get(cache: PersistentCache, store: Store, key: str) -> str | None:
    with store.snapshot() as snap:
        return cache.get(snap, key)


def test_persistent_ttl_expiry_and_sweep(store: Store) -> None:
    clock = Clock()
    cache = PersistentCache(
        store, max_bytes=10_000, max_entries=100, ttl_s=60, clock=clock, sweep_every=1
    )
    cache.put("k", 1, "value")
    clock.now += 59
    assert _get(cache, store, "k") == "value"
    clock.now += 1
    assert _get(cache, store, "k") is None
    assert cache.stats.expirations == 1 and cache.stats.hits == 1 and cache.stats.misses == 1
    cache.put("other", 1, "v")  # a put sweeps expired rows
    assert cache.entries()[0] == 1
    assert cache.stats.expirations == 2


def test_persistent_without_ttl_never_expires(store: Store) -> None:
    clock = Clock()
    cache = PersistentCache(store, max_bytes=10_000, max_entries=100, ttl_s=0, clock=clock)
    cache.put("k", 1, "value")
    clock.now += 10**9
    assert _get(cache, store, "k") == "value"


def test_persistent_bounds_evict_least_recently_used(store: Store) -> None:
    clock = Clock()
    cache = PersistentCache(
        store, max_bytes=10_000, max_entries=3, ttl_s=0, clock=clock, sweep_every=1
    )
    for i, key in enumerate("abc"):
        clock.now = 1000 + i
        cache.put(key, 1, "v")
    clock.now = 1000 + TOUCH_INTERVAL_S + 10
    assert _get(cache, store, "a") == "v"  # old enough to be touched: recency recorded on put
    cache.put("d", 1, "v")
    assert _get(cache, store, "b") is None  # b was least recently used
    assert {k for k in "acd" if _get(cache, store, k)} == set("acd")
    assert cache.stats.evictions == 1
    by_bytes = PersistentCache(
        store, max_bytes=10, max_entries=100, ttl_s=0, clock=clock, sweep_every=1
    )
    by_bytes.put("e", 1, "x" * 8)
    by_bytes.put("f", 1, "y" * 8)  # 16 bytes > 10: everything older goes
    assert by_bytes.entries() == (1, 8)


def test_bounds_are_enforced_every_few_writes_not_every_write(store: Store) -> None:
    cache = PersistentCache(store, max_bytes=10_000, max_entries=2, ttl_s=0, sweep_every=4)
    for key in "abc":
        cache.put(key, 1, "v")
    assert cache.entries()[0] == 3  # over the bound until the next sweep
    cache.put("d", 1, "v")  # the 4th write sweeps
    assert cache.entries()[0] == 2 and cache.stats.evictions == 2


def test_persistent_purges_older_generations(store: Store) -> None:
    cache = PersistentCache(store, max_bytes=10_000, max_entries=100, ttl_s=0)
    cache.put("g1", 1, "v")
    cache.put("g2", 2, "v")
    assert _get(cache, store, "g1") is None and _get(cache, store, "g2") == "v"
    assert cache.clear() == 1


# -- the result cache ------------------------------------------------------------------------


def _result_cache(store: Store, fp: str = "fp", clock: Clock | None = None) -> ResultCache:
    config = CacheConfig(10_000, 10_000, 100, 0, 1000)
    return ResultCache(store, config, fp, clock or Clock())


def test_keys_change_with_everything_a_result_depends_on(store: Store) -> None:
    cache = _result_cache(store)
    base = {"query": "q", "mode": "hybrid", "k": 10, "collapse": False, "candidates": 100}
    key = cache.key(base, 1)
    assert key == cache.key(dict(base), 1)
    variants = [cache.key({**base, field: value}, 1) for field, value in
                [("query", "q2"), ("mode", "bm25"), ("k", 5), ("collapse", True),
                 ("candidates", 50)]]  # fmt: skip
    variants += [cache.key(base, 2), _result_cache(store, "other-settings").key(base, 1)]
    assert len({key, *variants}) == len(variants) + 1


def test_result_cache_round_trip_and_generation_purge(store: Store) -> None:
    cache = _result_cache(store)
    hits = [_hit(1, "alpha"), _hit(2, "beta")]
    cache.put("k1", 1, hits)
    with store.snapshot() as c:
        assert cache.get(c, "k1", 1) == hits  # memory tier
    fresh = _result_cache(store)  # another process: only the persistent tier is shared
    with store.snapshot() as c:
        assert fresh.get(c, "k1", 1) == hits
        assert fresh.get(c, "k1", 1) == hits  # promoted to its memory tier
    assert fresh.memory.stats.hits == 1 and fresh.persistent.stats.hits == 1
    with store.snapshot() as c:
        assert cache.get(c, "k2", 2) is None  # a newer generation drops older memory entries
    assert len(cache.memory) == 0


def test_stats_are_shared_through_the_database(store: Store) -> None:
    a, b = _result_cache(store), _result_cache(store)
    with store.snapshot() as c:
        a.get(c, "missing", 1)
    a.flush_stats()
    a.flush_stats()  # nothing new: no write
    with store.snapshot() as c:
        b.get(c, "missing", 1)
    totals = b.totals()
    assert totals["memory"].misses == 2 and totals["persistent"].misses == 2
    b.reset_stats()
    assert b.totals()["memory"].misses == 0


def test_embedding_cache_normalises_and_freezes() -> None:
    calls: list[str] = []

    def compute(text: str) -> np.ndarray:  # type: ignore[type-arg]
        calls.append(text)
        return np.ones(4, dtype=np.float32)

    cache = EmbeddingCache("m", 10_000)
    a = cache.get_or_compute("barn  owls ", compute)
    b = cache.get_or_compute("barn owls", compute)
    assert a is b and calls == ["barn  owls "]
    assert not a.flags.writeable
    assert normalize_query("\tbarn\nowls ") == "barn owls"


# -- through Keep and the CLI ---------------------------------------------------------------


def test_a_commit_makes_cached_results_unreachable(keep: Keep, docs_dir: Path) -> None:
    write(docs_dir / "a.md", "Puffins nest in burrows on sea cliffs.")
    keep.add([docs_dir])
    first = keep.search("puffins", 5, "bm25")
    assert keep.search("puffins", 5, "bm25") == first
    write(docs_dir / "b.md", "Puffins eat sand eels.")
    keep.sync()
    assert len(keep.search("puffins", 5, "bm25")) == 2


@pytest.mark.parametrize(
    "override",
    [{"search.dense_weight": 0.3}, {"search.fusion": "rrf"}, {"search.bm25_stopwords": False}],
)
def test_a_settings_change_misses_the_cache(data_dir: Path, docs_dir: Path,
                                            override: dict[str, object]) -> None:  # fmt: skip
    write(docs_dir / "a.md", "Terns migrate from pole to pole.")
    with Keep(data_dir) as k:
        k.add([docs_dir])
        k.search("terns migrate", 5, "hybrid")
    with Keep(data_dir, overrides=override) as k:
        k.search("terns migrate", 5, "hybrid")
        assert k.cache_stats().persistent.hits == 0


def test_caching_flag_off_means_no_cache(data_dir: Path, docs_dir: Path) -> None:
    write(docs_dir / "a.md", "Gannets dive from thirty metres.")
    with Keep(data_dir, overrides={"flags.caching": False}) as k:
        k.add([docs_dir])
        k.search("gannets", 3)
        assert k.cache_stats() == CacheReport(enabled=False)
        assert to_json(k.status().cache) == {"enabled": False}
        assert k.clear_cache() == 0
        assert k.store.cache.entries() == (0, 0)


def test_across_processes_a_new_document_is_seen(tmp_path: Path) -> None:
    """Process A searches, process B adds a matching document, A searches again and sees it."""
    docs, data = tmp_path / "docs", tmp_path / "data"
    write(docs / "a.md", "Cormorants dry their wings in the sun.")
    assert run_cli("add", str(docs), data_dir=data).code == 0
    with Keep(data) as a:
        before = a.search("cormorants wings", 5, "hybrid")
        assert a.search("cormorants wings", 5, "hybrid") == before  # served from A's cache
        write(docs / "b.md", "Cormorants have wings that are not waterproof.")
        assert run_cli("add", str(docs), data_dir=data).code == 0  # process B
        after = a.search("cormorants wings", 5, "hybrid")
        assert {Path(h.path).name for h in after} == {"a.md", "b.md"}


def test_repeated_cli_search_is_served_from_the_persistent_cache(tmp_path: Path) -> None:
    docs, data = tmp_path / "docs", tmp_path / "data"
    write(docs / "a.md", "Shearwaters glide low over the waves.")
    run_cli("add", str(docs), data_dir=data)
    first = run_cli("search", "shearwaters", "--json", data_dir=data)
    second = run_cli("search", "shearwaters", "--json", data_dir=data)
    assert first.json() == second.json()
    stats = run_cli("cache", "stats", "--json", data_dir=data).json()
    assert stats["persistent"]["hits"] == 1 and stats["persistent"]["misses"] == 1
    status = run_cli("status", "--json", data_dir=data).json()
    assert status["cache"]["hit_rate"] == 0.5
    cleared = run_cli("cache", "clear", data_dir=data)
    assert cleared.code == 0 and "removed 1" in cleared.stderr
    assert run_cli("cache", "stats", "--json", data_dir=data).json()["persistent_entries"] == 0
    text = run_cli("cache", "stats", data_dir=data)
    assert text.code == 0 and "persistent" in text.stdout


def test_clear_empties_both_tiers(store: Store) -> None:
    cache = _result_cache(store)
    cache.put("k", 1, [_hit(1)])
    assert cache.clear() == 1
    assert len(cache.memory) == 0 and cache.persistent.entries() == (0, 0)


def test_a_schema_or_model_change_misses_the_cache(
    data_dir: Path, docs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(docs_dir / "a.md", "Kittiwakes nest on narrow ledges.")
    with Keep(data_dir) as k:
        k.add([docs_dir])
        k.search("kittiwakes", 3, "hybrid")
    newer = k.store.schema_version() + 1  # as after a migration
    monkeypatch.setattr(type(k.store), "schema_version", lambda self: newer)
    with Keep(data_dir) as k:
        k.search("kittiwakes", 3, "hybrid")
        assert k.cache_stats().persistent.hits == 0
    monkeypatch.undo()
    # The model id is part of the fingerprint in the same way (an index refuses a different
    # model outright, see tests/contract): the same parts with another model give another key.
    base = {"search": {}, "ann_index": False, "model": "m1", "schema": 2}
    from ragkeep.cache.results import fingerprint

    assert fingerprint(base) != fingerprint({**base, "model": "m2"})


def test_clearing_through_keep_empties_every_tier_and_the_counters(
    keep: Keep, docs_dir: Path
) -> None:
    write(docs_dir / "a.md", "Skuas chase other seabirds for their catch.")
    keep.add([docs_dir])
    keep.search("skuas", 3, "hybrid")
    keep.search("skuas", 3, "hybrid")
    before = keep.cache_stats()
    assert before.memory.hits == 1 and before.persistent_entries == 1
    assert before.embeddings.misses == 1 and before.memory_entries == 1
    assert keep.clear_cache() == 1
    after = keep.cache_stats()
    assert after.persistent_entries == after.memory_entries == 0
    assert after.memory == after.persistent == TierStats()
    assert keep.querying.search("skuas", 3, "hybrid")  # a miss again, computed afresh
    assert keep.cache_stats().memory.misses == 1
