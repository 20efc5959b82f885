"""Every pair of feature flags in each of its four on/off combinations (risk M1): add, sync,
search in every mode and ask (with an LLM and without) all work, and with caching on the
results equal those with caching off.

A pairwise covering array keeps it small: a few full configurations in which every pair of
flags takes all four value combinations. It is computed from FLAGS, so a flag added later is
covered without touching this file, and the covering property itself is asserted.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from ragkeep import Keep
from ragkeep.config.flags import FLAGS
from ragkeep.models import AnswerMode, FileOutcome, SearchMode, SearchResults, to_json

from conftest import write
from docfactory import make_docx, make_html
from fake_llm import FakeLLM

Config = dict[str, bool]
REPLY = "Water tomatoes twice a week [1]."
QUERIES = ("how often to water tomatoes", "how long does the UPS last", "orion belt stars")
# Several passages of tomatoes.md match the first query: collapsing is visible.
TOMATOES = " ".join(
    f"Tomato note {i}: water tomatoes deeply twice a week, more in a heatwave, at the base "
    f"of the plant so the leaves stay dry and blight stays away. " * 3
    for i in range(5)
)


def _pairs(config: Mapping[str, bool], names: Sequence[str]) -> set[tuple[str, bool, str, bool]]:
    return {(a, config[a], b, config[b]) for a, b in itertools.combinations(names, 2)}


def covering_array(names: Sequence[str]) -> list[Config]:
    """Greedy pairwise covering array over on/off flags: repeatedly take the full
    configuration that covers the most pairs not covered yet (first in a fixed order on a
    tie, so the array is the same on every run)."""
    wanted = {
        (a, va, b, vb)
        for a, b in itertools.combinations(names, 2)
        for va, vb in itertools.product((False, True), repeat=2)
    }
    candidates = [
        dict(zip(names, values, strict=True))
        for values in itertools.product((False, True), repeat=len(names))
    ]
    rows: list[Config] = []
    while wanted:
        best = max(candidates, key=lambda c: len(_pairs(c, names) & wanted))
        rows.append(best)
        wanted -= _pairs(best, names)
    return rows


NAMES = sorted(FLAGS)
CONFIGS = covering_array(NAMES)


def _label(config: Config) -> str:
    return ",".join(f"{n}={'on' if v else 'off'}" for n, v in config.items())


def test_the_configurations_cover_every_pair_of_flags_in_all_four_combinations() -> None:
    for a, b in itertools.combinations(NAMES, 2):
        seen = {(c[a], c[b]) for c in CONFIGS}
        assert seen == set(itertools.product((False, True), repeat=2)), (a, b, seen)
    assert all(set(c) == set(FLAGS) for c in CONFIGS)  # full configurations: every flag set
    assert len(CONFIGS) < 2 ** len(NAMES)  # and fewer than all of them
    print(f"{len(CONFIGS)} configurations cover all pairs of {len(NAMES)} flags")


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    with FakeLLM(REPLY) as server:
        yield server


def _corpus(docs: Path) -> None:
    write(docs / "tomatoes.md", TOMATOES)
    write(
        docs / "ups.md", "# The UPS\n\nThe UPS keeps the server up for 18 minutes in a power cut."
    )
    (docs / "sky.docx").write_bytes(
        make_docx([("Title", "The winter sky"), "Orion's belt is three stars in a row."])
    )
    write(
        docs / "beds.html",
        make_html(["Raised beds are 1.2 m wide.", "Water tomatoes at the base."], "Raised beds"),
    )


def _overrides(config: Config, **extra: Any) -> dict[str, Any]:
    # ann_min_vectors=0: the ANN index really answers dense searches on this tiny corpus.
    return {**{f"flags.{n}": v for n, v in config.items()}, "search.ann_min_vectors": 0, **extra}


def _check_hits(results: SearchResults, collapse: bool) -> None:
    assert len(results) > 0 and not results.degraded
    docs = [h.doc_id for h in results]
    if collapse:
        assert len(docs) == len(set(docs))


@pytest.mark.parametrize("config", CONFIGS, ids=_label)
def test_every_operation_works_and_caching_never_changes_results(
    config: Config, llm: FakeLLM, tmp_path: Path
) -> None:
    docs, data = tmp_path / "docs", tmp_path / "data"
    _corpus(docs)
    ollama = {"llm.provider": "ollama", "llm.url": llm.url, "llm.model": "m"}
    with Keep(data, overrides=_overrides(config, **ollama)) as keep:
        assert {s.name: s.enabled for s in keep.flags()} == config
        added = keep.add([docs])
        assert added.ok and added.count(FileOutcome.ADDED) == 4, to_json(added)
        write(docs / "ups.md", "# The UPS\n\nThe UPS lasts 25 minutes since its new battery.")
        synced = keep.sync()
        assert synced.ok and synced.count(FileOutcome.UPDATED) == 1, to_json(synced)
        for mode in SearchMode:
            for query in QUERIES:
                _check_hits(keep.search(query, 5, mode), config["collapse_documents"])
        tomatoes = [h.path for h in keep.search(QUERIES[0], 5, SearchMode.HYBRID)]
        assert (len(set(tomatoes)) == len(tomatoes)) is config["collapse_documents"]
        assert "25 minutes" in keep.search("UPS battery minutes", 1, SearchMode.BM25)[0].text

        tokens: list[str] = []
        streaming = keep.flag("answer_streaming")
        answer = keep.ask(QUERIES[0], 3, tokens.append if streaming else None)
        assert answer.mode is AnswerMode.LLM and answer.text == REPLY and answer.citations
        assert ("".join(tokens).strip() == REPLY) if streaming else tokens == []
    with Keep(data, overrides=_overrides(config, **{"llm.provider": "none"})) as keep:
        passages = keep.ask(QUERIES[1], 3)
        assert passages.mode is AnswerMode.PASSAGES and passages.citations
    # Closing waited for the background ANN build the dense searches started: with the
    # flag on, the ANN index exists and both sides below answer dense searches from it.
    assert bool(list(data.rglob("ann-*.usearch"))) is config["ann_index"]
    _same_results_with_and_without_caching(data, config)


def _same_results_with_and_without_caching(data: Path, config: Config) -> None:
    with (
        Keep(data, overrides=_overrides({**config, "caching": True})) as cached,
        Keep(data, overrides=_overrides({**config, "caching": False})) as plain,
    ):
        for mode in SearchMode:
            for query in QUERIES:
                expected = plain.search(query, 5, mode)
                hits = cached.cache_stats().memory.hits
                assert cached.search(query, 5, mode) == expected, (mode, query)
                assert cached.search(query, 5, mode) == expected, (mode, query)  # from the cache
                assert cached.cache_stats().memory.hits == hits + 1
        assert plain.cache_stats().enabled is False
