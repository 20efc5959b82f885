"""Feature flags at run time (risk M1): a flag switched by another process — another `Keep`,
`ragkeep flags` or the HTTP API — reaches a running one within about a second, without a
restart, changes what it does, and is logged once; a combination the running process cannot
apply leaves it on its last good state and says so."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from ragkeep import Keep
from ragkeep.cache.results import CacheConfig, ResultCache
from ragkeep.config.flags import FLAGS, FlagSpec, declare
from ragkeep.embed.base import Embedder, Tokenizer
from ragkeep.embed.registry import EmbedderConfig, get_embedder, loaded_count
from ragkeep.models import SearchResults
from ragkeep.models.flags import Stage
from ragkeep.services.flags import REFRESH_S

from conftest import run_cli, write
from server_harness import running_server

PICKUP_S = 2 * REFRESH_S + 1.0  # the bound ("within about a second"), with slack
SWITCHED = "feature flag {} switched {} (database)"

# Several passages of one document match the query, so collapsing visibly changes the hits.
TOMATOES = " ".join(
    f"Tomato note {i}: water tomatoes deeply twice a week, more in a heatwave, and always "
    f"at the base of the plant so the leaves stay dry and blight stays away. " * 3
    for i in range(6)
)
OTHERS = {
    "ups.md": "The UPS keeps the server running for eighteen minutes during a power cut.",
    "stars.md": "Orion is easy to find in the winter sky: look for the three belt stars.",
    "beds.md": "The raised beds are 1.2 m wide so you can reach the middle; water tomatoes there.",
}
QUERY = "how often to water tomatoes"


def _corpus(docs: Path) -> Path:
    write(docs / "tomatoes.md", TOMATOES)
    for name, text in OTHERS.items():
        write(docs / name, text)
    return docs


def _paths(results: SearchResults) -> list[str]:
    return [Path(h.path).name for h in results]


def _eventually(check: Callable[[], bool], within: float = PICKUP_S) -> float:
    """Seconds until `check()` held; fails past `within`."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < within, f"not seen within {within:g} s"
        time.sleep(0.05)
    return time.monotonic() - started


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Keep, Keep]]:
    """A long-lived index (`running`) and a second one on the same data dir (`other`), as a
    second process would have; ann_min_vectors=0 so that ann_index is really exercised."""
    data = tmp_path / "data"
    overrides = {"search.ann_min_vectors": 0}
    with Keep(data, overrides=overrides) as running:
        running.add([_corpus(tmp_path / "docs")])
        with Keep(data, overrides=overrides) as other:
            yield running, other


def _switches(caplog: pytest.LogCaptureFixture, name: str, on: bool) -> int:
    message = SWITCHED.format(name, "on" if on else "off")
    return sum(
        1 for r in caplog.records if r.levelno == logging.WARNING and r.getMessage() == message
    )


# -- (a) a long-lived Keep follows every flag ---------------------------------------------


def test_collapse_documents_switched_by_another_process_applies_and_is_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    with Keep(data) as running:
        running.add([_corpus(tmp_path / "docs")])
        before = _paths(running.search(QUERY, 5, "hybrid"))
        assert before.count("tomatoes.md") > 1
        caplog.set_level(logging.WARNING)
        assert run_cli("flags", "enable", "collapse_documents", data_dir=data).code == 0
        took = _eventually(
            lambda: _paths(running.search(QUERY, 5, "hybrid")).count("tomatoes.md") == 1
        )
        print(f"collapse_documents picked up after {took:.2f} s")
        assert running.flag("collapse_documents")
        for _ in range(3):
            running.search(QUERY, 5, "hybrid")
            time.sleep(REFRESH_S / 2)
        assert _switches(caplog, "collapse_documents", True) == 1  # once, not once per read
        assert not caplog.records or all(r.levelno < logging.ERROR for r in caplog.records)


def test_caching_switched_off_elsewhere_bypasses_both_caches_then_comes_back(
    pair: tuple[Keep, Keep],
) -> None:
    running, other = pair
    first = running.search(QUERY, 5, "hybrid")
    assert running.search(QUERY, 5, "hybrid") == first
    hits, vector_hits = running.cache_stats().memory.hits, running.cache_stats().embeddings.hits
    assert hits >= 1
    entries = running.store.cache.entries()

    other.set_flag("caching", False)
    _eventually(lambda: not running.cache_stats().enabled)
    for _ in range(3):  # cached before the switch: with caching off it must not be served
        assert running.search(QUERY, 5, "hybrid") == first
    running.search("three belt stars", 5, "hybrid")  # new: must not be stored either
    assert running.store.cache.entries() == entries

    other.set_flag("caching", None)
    _eventually(lambda: running.cache_stats().enabled)
    assert running.cache_stats().memory.hits == hits  # no hit was counted while off
    assert running.cache_stats().embeddings.hits == vector_hits  # nor a query vector reused
    assert running.search(QUERY, 5, "hybrid") == first  # same generation: the entry is valid
    assert running.cache_stats().memory.hits == hits + 1


def _ann_files(data: Path) -> list[Path]:
    return sorted(data.rglob("ann-*.usearch"))


def test_ann_index_switched_elsewhere_moves_dense_search_to_the_ann_index_and_back(
    tmp_path: Path,
) -> None:
    data, ann = tmp_path / "data", {"search.ann_min_vectors": 0}
    with Keep(data, overrides=ann) as running, Keep(data, overrides=ann) as other:
        running.add([_corpus(tmp_path / "docs")])
        exact = running.search(QUERY, 5, "dense")
        assert _ann_files(data) == []  # off: dense search never builds the ANN index

        other.set_flag("ann_index", True)
        # The ANN path builds the derived index in the background on its first search.
        _eventually(lambda: bool(running.search("raised beds", 5, "dense")) and _ann_files(data))
        approx = running.search(QUERY, 5, "dense")
        assert [h.chunk_id for h in approx] == [h.chunk_id for h in exact]

        other.set_flag("ann_index", False)
        _eventually(lambda: not running.flag("ann_index"))
    # Closing waited for any build still running. Reopened the same way, with the flag off
    # in the database, dense search must not build the index again.
    for path in data.rglob("ann-*"):
        path.unlink()
    with Keep(data, overrides=ann) as again:
        again.search("belt stars in winter", 5, "dense")
        time.sleep(0.5)
        assert _ann_files(data) == []


def test_length_batching_switched_elsewhere_applies_without_a_second_model(
    pair: tuple[Keep, Keep], tmp_path: Path
) -> None:
    running, other = pair
    model = running.embedder()
    assert getattr(model, "length_batching", None) is True
    loaded = loaded_count()

    other.set_flag("length_batching", False)
    _eventually(lambda: getattr(running.embedder(), "length_batching", None) is False)
    view = running.embedder()
    assert getattr(view, "model", None) is model  # the same ONNX session
    write(tmp_path / "docs" / "more.md", "Comets have tails that point away from the sun.")
    assert running.sync().results  # ingest embeds through the shared model
    assert loaded_count() == loaded
    assert _paths(running.search("comet tails", 1, "dense")) == ["more.md"]


def test_answer_streaming_switched_elsewhere_is_seen(pair: tuple[Keep, Keep]) -> None:
    running, other = pair
    assert running.flag("answer_streaming")
    other.set_flag("answer_streaming", False)
    _eventually(lambda: not running.flag("answer_streaming"))


def test_every_flag_is_followed(pair: tuple[Keep, Keep]) -> None:
    """Every declared flag, the ones added later too: flipped elsewhere, seen here."""
    running, other = pair
    for name, spec in FLAGS.items():
        other.set_flag(name, not spec.default)
    took = _eventually(lambda: all(running.flag(n) is not s.default for n, s in FLAGS.items()))
    print(f"all {len(FLAGS)} flags picked up after {took:.2f} s")
    assert running.search(QUERY, 5, "hybrid")
    assert {s.name: s.source.value for s in running.flags()} == dict.fromkeys(FLAGS, "database")


# -- (b, c) a real server follows `ragkeep flags`, run as another process ------------------


def test_running_server_follows_the_cli_without_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Keep(data) as keep:
        keep.add([_corpus(tmp_path / "docs")])
    with running_server(data) as server, server.client() as client:

        def names() -> list[str]:
            hits = client.get("/api/search", params={"q": QUERY, "k": 5}).json()["hits"]
            return [Path(h["path"]).name for h in hits]

        def flag(name: str) -> dict[str, object]:
            flags = client.get("/api/status").json()["flags"]
            return next(f for f in flags if f["name"] == name)

        assert names().count("tomatoes.md") > 1
        cli = run_cli("flags", "enable", "collapse_documents", data_dir=data)
        assert cli.code == 0, cli.stderr
        took = _eventually(lambda: names().count("tomatoes.md") == 1)
        print(f"the server picked up the CLI's switch after {took:.2f} s")
        assert (flag("collapse_documents")["enabled"], flag("collapse_documents")["source"]) == (
            True,
            "database",
        )
        assert client.get("/api/status").json()["flags_error"] is None

        # The API's own switch applies at once.
        put = client.put("/api/flags/collapse_documents", json={"enabled": None}).json()
        assert put["applies"] == "now" and put["enabled"] is False
        assert names().count("tomatoes.md") > 1
        assert server.proc.poll() is None  # the same process all along

        # `ragkeep status` (another process) shows the flags too.
        assert run_cli("flags", "disable", "caching", data_dir=data).code == 0
        _eventually(lambda: flag("caching")["enabled"] is False)
        status = run_cli("status", "--json", data_dir=data).json()
        caching = next(f for f in status["flags"] if f["name"] == "caching")
        assert (caching["enabled"], caching["source"], caching["stage"]) == (
            False,
            "database",
            "stable",
        )
        assert "caching off (database)" in run_cli("status", data_dir=data).stdout
        log = server.output()
    assert SWITCHED.format("collapse_documents", "on") in log
    assert log.count(SWITCHED.format("collapse_documents", "on")) == 1
    assert "feature flag collapse_documents switched off (default)" in log  # the API's reset
    assert SWITCHED.format("caching", "off") in log


# -- a combination the running process cannot apply -------------------------------------


def test_a_combination_this_process_cannot_apply_keeps_the_last_good_state(
    pair: tuple[Keep, Keep], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """E.g. ann_index switched on by a process that has usearch, in one that has not: the
    running one keeps searching on its previous flags, logs an error once and reports it."""
    running, other = pair
    other.set_flag("collapse_documents", True)
    other.set_flag("ann_index", True)
    monkeypatch.setitem(sys.modules, "usearch", None)  # this process: usearch not importable
    caplog.set_level(logging.WARNING)
    for _ in range(3):
        running.feature_flags.refresh()
    assert not running.flag("ann_index") and not running.flag("collapse_documents")
    error = running.feature_flags.error
    assert error is not None and "usearch" in error and "keeping the previous" in error
    assert [r.levelno for r in caplog.records].count(logging.ERROR) == 1
    assert running.search(QUERY, 5, "dense")  # still answering, exactly

    other.set_flag("ann_index", None)
    running.feature_flags.refresh()
    assert running.feature_flags.error is None
    assert running.flag("collapse_documents")  # the rest applies once it can


# -- caching stays correct across an ann_index switch during a search ----------------------


class SwitchingEmbedder:
    """The real model, with a hook run inside the next embed: lets a test switch a flag
    while a search is between computing its cache key and storing its result."""

    def __init__(self) -> None:
        self.model = get_embedder(EmbedderConfig())
        self.during_next_embed: Callable[[], None] | None = None

    @property
    def model_id(self) -> str:
        return self.model.model_id

    @property
    def dimension(self) -> int:
        return self.model.dimension

    @property
    def max_tokens(self) -> int:
        return self.model.max_tokens

    @property
    def tokenizer(self) -> Tokenizer:
        return self.model.tokenizer

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        hook, self.during_next_embed = self.during_next_embed, None
        if hook is not None:
            hook()
        return self.model.embed(texts)

    def close(self) -> None:
        pass


def test_a_search_overlapping_an_ann_index_switch_is_not_cached(tmp_path: Path) -> None:
    """Its key was made for one dense index and its result may come from the other."""
    data = tmp_path / "data"
    switching = SwitchingEmbedder()
    embedder: Callable[[], Embedder] = lambda: switching  # noqa: E731
    with (
        Keep(data, embedder=embedder) as running,
        Keep(data, embedder=embedder) as other,
    ):
        running.add([_corpus(tmp_path / "docs")])
        entries = running.store.cache.entries()[0]

        def switch() -> None:
            other.set_flag("ann_index", not running.flag("ann_index"))
            running.feature_flags.refresh()

        switching.during_next_embed = switch
        overlapped = running.search("orion belt", 3, "dense")
        assert running.flag("ann_index")
        assert running.store.cache.entries()[0] == entries  # not stored
        assert running.search("orion belt", 3, "dense") == overlapped  # now stored ...
        assert running.store.cache.entries()[0] == entries + 1


def test_result_cache_epoch_brackets_a_settings_switch(tmp_path: Path) -> None:
    with Keep(tmp_path / "data") as keep:
        cache = ResultCache(keep.store, CacheConfig(10_000, 10_000, 100, 0, 1000), "fp-a")
        base = {"query": "q"}
        before, key_a = cache.epoch, cache.key(base, 1)
        assert cache.unchanged_since(before)
        with cache.changing_settings("fp-b"):
            during = cache.epoch
            assert not cache.unchanged_since(before) and not cache.unchanged_since(during)
        assert not cache.unchanged_since(before) and not cache.unchanged_since(during)
        assert cache.unchanged_since(cache.epoch) and cache.key(base, 1) != key_a


def test_ann_index_switches_during_concurrent_searches_never_fail(tmp_path: Path) -> None:
    """The dense index is replaced while other threads search through it (caching off, so
    every search really reaches it)."""
    data = tmp_path / "data"
    overrides = {"search.ann_min_vectors": 0, "flags.caching": False}
    with Keep(data, overrides=overrides) as running, Keep(data) as other:
        running.add([_corpus(tmp_path / "docs")])
        modes = ("dense", "hybrid", "dense")
        expected = {m: [h.chunk_id for h in running.search(QUERY, 3, m)] for m in modes}
        errors: list[BaseException] = []
        searches = [0]
        stop = threading.Event()

        def search(mode: str) -> None:
            while not stop.is_set():
                try:
                    got = [h.chunk_id for h in running.search(QUERY, 3, mode)]
                    assert got == expected[mode], (mode, got)
                    searches[0] += 1
                except BaseException as exc:
                    errors.append(exc)
                    return

        threads = [threading.Thread(target=search, args=(m,)) for m in modes]
        for t in threads:
            t.start()
        try:
            for i in range(12):
                other.set_flag("ann_index", i % 2 == 0)
                running.feature_flags.refresh()
                time.sleep(0.05)
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        assert errors == []
        assert searches[0] > 12


# -- stages ----------------------------------------------------------------------------------


def test_an_alpha_flag_must_default_to_off() -> None:
    with pytest.raises(ValueError, match="alpha feature flag 'wip' must default to off"):
        declare(FlagSpec("wip", True, Stage.ALPHA, "unfinished"))
    assert declare(FlagSpec("wip", False, Stage.ALPHA, "unfinished"))["wip"].default is False
    assert all(not s.default for s in FLAGS.values() if s.stage is Stage.ALPHA)


def test_flags_list_shows_each_stage(tmp_path: Path) -> None:
    listed = run_cli("flags", "list", "--json", data_dir=tmp_path).json()
    assert {f["name"]: f["stage"] for f in listed} == {n: s.stage.value for n, s in FLAGS.items()}
    text = run_cli("flags", "list", data_dir=tmp_path).stdout
    assert "stage" in text and all(s.stage.value in text for s in FLAGS.values())
