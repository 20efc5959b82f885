"""Degradation paths (docs/degradation.md): a failed embedder leaves BM25, a failed LLM leaves
the passages, and circuit breakers stop paying for a part that keeps failing.

The embedder faults come from a real Embedder (the shipped model) wrapped by one that fails
on demand; the LLM is a real HTTP server on 127.0.0.1 (tests/fake_llm.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ragkeep import Keep
from ragkeep.embed.base import Embedder, EmbedderError, EmbedderUnavailableError, Tokenizer
from ragkeep.embed.registry import EmbedderConfig, get_embedder
from ragkeep.models import AnswerMode, BreakerState, Part
from ragkeep.resilience import FALLBACKS

from conftest import write
from fake_llm import FakeLLM

DOCS = {
    "tomatoes.md": "# Tomatoes\n\nWater tomatoes deeply twice a week in summer.",
    "ups.md": "# UPS\n\nThe UPS keeps the server running for twenty minutes in a power cut.",
    "kiln.md": "# Kiln\n\nFire the kiln slowly to avoid cracking the glaze.",
}


class FlakyEmbedder:
    """The real model, failing (raising or hanging) while a test says so."""

    def __init__(self, real: Embedder) -> None:
        self._real = real
        self.failing = False
        self.hang_s = 0.0
        self.calls = 0
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return self._real.model_id

    @property
    def dimension(self) -> int:
        return self._real.dimension

    @property
    def max_tokens(self) -> int:
        return self._real.max_tokens

    @property
    def tokenizer(self) -> Tokenizer:
        return self._real.tokenizer

    def embed(self, texts: Sequence[str]) -> np.ndarray[Any, np.dtype[np.float32]]:
        with self._lock:
            self.calls += 1
        if self.hang_s:
            time.sleep(self.hang_s)
        if self.failing:
            raise EmbedderError("embedding failed: injected fault")
        return self._real.embed(texts)

    def close(self) -> None:
        pass


@pytest.fixture
def flaky() -> FlakyEmbedder:
    return FlakyEmbedder(get_embedder(EmbedderConfig()))


def _open(data: Path, flaky: FlakyEmbedder, **overrides: Any) -> Keep:
    settings = {"embed.breaker_cooldown_s": 0.3, **overrides}
    return Keep(data, overrides=settings, embedder=lambda: flaky)


@pytest.fixture
def indexed(tmp_path: Path, flaky: FlakyEmbedder) -> Iterator[tuple[Keep, FlakyEmbedder]]:
    for name, text in DOCS.items():
        write(tmp_path / "docs" / name, text)
    with _open(tmp_path / "data", flaky) as keep:
        keep.add([tmp_path / "docs"])
        yield keep, flaky


def _paths(hits: Sequence[Any]) -> list[str]:
    return [Path(h.path).name for h in hits]


def test_failing_embedder_hybrid_answers_from_bm25_and_says_so(
    indexed: tuple[Keep, FlakyEmbedder],
) -> None:
    keep, flaky = indexed
    bm25 = keep.search("kiln glaze", 3, "bm25")
    before = dict(FALLBACKS.counts()).get("embedder", 0)
    flaky.failing = True
    results = keep.search("kiln glaze", 3, "hybrid")
    assert _paths(results) == _paths(bm25)
    assert [d.part for d in results.degraded] == [Part.EMBEDDER]
    assert results.degraded[0].fallback == "bm25"
    assert "injected fault" in results.degraded[0].reason
    assert dict(FALLBACKS.counts())["embedder"] == before + 1


def test_failing_embedder_dense_search_raises_a_clear_error(
    indexed: tuple[Keep, FlakyEmbedder],
) -> None:
    keep, flaky = indexed
    flaky.failing = True
    with pytest.raises(EmbedderUnavailableError, match="injected fault"):
        keep.search("kiln glaze", 3, "dense")


def test_embedder_that_does_not_load_degrades_too(tmp_path: Path, flaky: FlakyEmbedder) -> None:
    write(tmp_path / "docs" / "kiln.md", DOCS["kiln.md"])
    with _open(tmp_path / "data", flaky) as keep:
        keep.add([tmp_path / "docs"])

    def broken() -> Embedder:
        raise EmbedderError("could not load model.onnx: injected")

    with Keep(tmp_path / "data", embedder=broken) as keep:
        results = keep.search("kiln", 3, "hybrid")
        assert _paths(results) == ["kiln.md"]
        assert "did not load" in results.degraded[0].reason
        answer = keep.ask("how to fire a kiln?")
        assert answer.mode is AnswerMode.PASSAGES
        assert [d.part for d in answer.degraded] == [Part.EMBEDDER]


def test_slow_embedder_is_cut_off_at_its_deadline(tmp_path: Path, flaky: FlakyEmbedder) -> None:
    write(tmp_path / "docs" / "kiln.md", DOCS["kiln.md"])
    with _open(tmp_path / "data", flaky, **{"embed.timeout_s": 0.3}) as keep:
        keep.add([tmp_path / "docs"])
        flaky.hang_s = 3.0
        started = time.monotonic()
        results = keep.search("kiln", 3, "hybrid")
        elapsed = time.monotonic() - started
        flaky.hang_s = 0.0
    assert _paths(results) == ["kiln.md"]
    assert "embed.timeout_s" in results.degraded[0].reason
    assert elapsed < 1.5, f"the search waited {elapsed:.2f} s for a hung embedder"


def test_degraded_results_are_not_cached(indexed: tuple[Keep, FlakyEmbedder]) -> None:
    """Once the embedder is back, the same query gets the hybrid answer, not the BM25
    stand-in that answered while it was down."""
    keep, flaky = indexed
    assert keep.flag("caching")
    query = "water the plants in summer"
    flaky.failing = True
    degraded = keep.search(query, 3, "hybrid")
    assert degraded.degraded
    flaky.failing = False
    time.sleep(0.35)  # the embedder's breaker may have opened: let its cool-down pass
    healthy = keep.search(query, 3, "hybrid")
    assert not healthy.degraded
    with Keep(keep.data_dir, overrides={"flags.caching": False}) as fresh:
        assert _paths(healthy) == _paths(fresh.search(query, 3, "hybrid"))


def test_embedder_breaker_stops_calling_then_probes_once(
    indexed: tuple[Keep, FlakyEmbedder],
) -> None:
    keep, flaky = indexed
    flaky.failing = True
    for i in range(3):  # embed.breaker_failures = 3 opens it
        keep.search(f"glaze {i}", 3, "hybrid")
    breaker = keep.querying.resilience().breakers[0]
    assert breaker.part is Part.EMBEDDER and breaker.state is BreakerState.OPEN
    calls = flaky.calls
    results = keep.search("glaze 4", 3, "hybrid")
    assert flaky.calls == calls, "an open breaker must not call the embedder"
    assert "skipped for now" in results.degraded[0].reason
    time.sleep(0.35)
    flaky.failing = False
    assert not keep.search("glaze 5", 3, "hybrid").degraded  # the probe, which succeeds
    assert flaky.calls == calls + 1
    assert keep.querying.resilience().breakers[0].state is BreakerState.CLOSED


def test_ask_answers_from_bm25_passages_when_the_embedder_fails(
    indexed: tuple[Keep, FlakyEmbedder],
) -> None:
    keep, flaky = indexed
    flaky.failing = True
    answer = keep.ask("how long does the UPS run in a power cut?")
    assert answer.mode is AnswerMode.PASSAGES
    assert answer.citations and Path(answer.citations[0].path).name == "ups.md"
    assert [d.part for d in answer.degraded] == [Part.EMBEDDER]


def test_ask_with_a_dense_default_falls_back_to_bm25(tmp_path: Path, flaky: FlakyEmbedder) -> None:
    write(tmp_path / "docs" / "ups.md", DOCS["ups.md"])
    with _open(tmp_path / "data", flaky, **{"search.mode": "dense"}) as keep:
        keep.add([tmp_path / "docs"])
        flaky.failing = True
        answer = keep.ask("UPS power cut")
    assert [Path(c.path).name for c in answer.citations] == ["ups.md"]
    assert answer.degraded[0].part is Part.EMBEDDER


# -- the LLM ------------------------------------------------------------------------------


def _llm_settings(url: str, **more: Any) -> dict[str, Any]:
    return {
        "llm.provider": "ollama",
        "llm.url": url,
        "llm.max_retries": 0,
        "llm.breaker_cooldown_s": 0.5,
        **more,
    }


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    for name, text in DOCS.items():
        write(tmp_path / "docs" / name, text)
    return tmp_path / "docs"


def test_llm_breaker_opens_after_failures_and_answers_at_once(
    tmp_path: Path, docs: Path, flaky: FlakyEmbedder
) -> None:
    with (
        FakeLLM("It runs for twenty minutes [1].", fail_first=100) as llm,
        _open(tmp_path / "data", flaky, **_llm_settings(llm.url)) as keep,
    ):
        keep.add([docs])
        for _ in range(3):
            answer = keep.ask("UPS power cut")
            assert answer.mode is AnswerMode.PASSAGES
            assert answer.degraded[-1].part is Part.LLM
        assert len(llm.requests) == 3
        status = keep.status().resilience.breakers[1]
        assert status.part is Part.LLM and status.state is BreakerState.OPEN
        assert status.last_error and "HTTP 500" in status.last_error
        started = time.monotonic()
        skipped = keep.ask("UPS power cut")
        assert time.monotonic() - started < 0.5
        assert len(llm.requests) == 3, "an open breaker must not call the LLM"
        assert skipped.notice and skipped.notice.startswith("LLM skipped")
        assert skipped.degraded[-1].part is Part.LLM
        # Cool-down over, LLM still down: the one probe fails and the breaker re-opens.
        time.sleep(0.55)
        keep.ask("UPS power cut")
        assert len(llm.requests) == 4
        assert keep.status().resilience.breakers[1].state is BreakerState.OPEN
        # Next cool-down, LLM back: the probe succeeds and the breaker closes.
        llm.fail_first = 0
        time.sleep(0.55)
        assert keep.ask("UPS power cut").mode is AnswerMode.LLM
        assert keep.status().resilience.breakers[1].state is BreakerState.CLOSED


def test_llm_breaker_lets_only_one_probe_through(
    tmp_path: Path, docs: Path, flaky: FlakyEmbedder
) -> None:
    with (
        FakeLLM("Twenty minutes [1].", fail_first=3) as llm,
        _open(tmp_path / "data", flaky, **_llm_settings(llm.url)) as keep,
    ):
        keep.add([docs])
        for _ in range(3):
            keep.ask("UPS")
        time.sleep(0.55)
        llm.hang_s = 0.5  # the probe takes a while; others arrive meanwhile
        answers: list[Any] = []
        threads = [
            threading.Thread(target=lambda: answers.append(keep.ask("UPS"))) for _ in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    assert len(llm.requests) == 4  # 3 failures, then exactly one probe
    assert sorted(a.mode for a in answers).count(AnswerMode.LLM) == 1


def test_llm_breaker_is_remembered_by_the_next_process(
    tmp_path: Path, docs: Path, flaky: FlakyEmbedder
) -> None:
    with FakeLLM(fail_first=100) as llm:
        settings = _llm_settings(llm.url, **{"llm.breaker_cooldown_s": 60})
        with _open(tmp_path / "data", flaky, **settings) as keep:
            keep.add([docs])
            for _ in range(3):
                keep.ask("UPS")
        with _open(tmp_path / "data", flaky, **settings) as again:  # as a new `ragkeep ask`
            assert again.status().resilience.breakers[1].state is BreakerState.OPEN
            again.ask("UPS")
        assert len(llm.requests) == 3


def test_garbage_from_the_llm_counts_as_a_failure(
    tmp_path: Path, docs: Path, flaky: FlakyEmbedder
) -> None:
    with (
        FakeLLM(garbage=True) as llm,
        _open(tmp_path / "data", flaky, **_llm_settings(llm.url)) as keep,
    ):
        keep.add([docs])
        answer = keep.ask("UPS")
        assert answer.mode is AnswerMode.PASSAGES
        assert answer.degraded[-1].part is Part.LLM
        assert keep.status().resilience.breakers[1].recent_failures == 1


@pytest.mark.parametrize(
    "slowness",
    [
        {"stall_after": 1, "stall_s": 20},  # stops mid-answer
        {"delta_delay_s": 0.25},  # trickles: every read is quick, the answer is not
        {"hang_s": 20},  # sends nothing at all, not even headers
    ],
    ids=["stall", "trickle", "hang"],
)
def test_slow_llm_is_cut_off_at_llm_deadline(
    tmp_path: Path, docs: Path, flaky: FlakyEmbedder, slowness: dict[str, Any]
) -> None:
    reply = "The UPS keeps the server running for about twenty minutes in a cut [1]."
    with FakeLLM(reply, **slowness) as llm:
        settings = _llm_settings(llm.url, **{"llm.deadline_s": 1.0, "llm.timeout_s": 30})
        with _open(tmp_path / "data", flaky, **settings) as keep:
            keep.add([docs])
            started = time.monotonic()
            answer = keep.ask("UPS")
            elapsed = time.monotonic() - started
    assert answer.mode is AnswerMode.PASSAGES
    assert "llm.deadline_s" in (answer.notice or "")
    assert elapsed < 2.0, f"the answer took {elapsed:.2f} s with a 1 s deadline"


def test_a_slow_search_is_logged_as_a_warning(
    tmp_path: Path, flaky: FlakyEmbedder, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path / "docs" / "kiln.md", DOCS["kiln.md"])
    with _open(tmp_path / "data", flaky, **{"resources.slow_query_s": 0.1}) as keep:
        keep.add([tmp_path / "docs"])
        keep.search("kiln", 3, "hybrid")
        assert "slow:" not in caplog.text
        flaky.hang_s = 0.2
        keep.search("glaze", 3, "hybrid")
    assert "slow: a hybrid search took" in caplog.text
    assert "glaze" not in caplog.text  # queries may be private: never in the log
