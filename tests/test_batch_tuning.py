"""Embedding batch sizes: tuned within the memory budget, halved when ONNX Runtime cannot
allocate, fixed when the user set embed.batch_tokens; the same vectors whatever the batch."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from ragkeep import Keep
from ragkeep.config.settings import load_settings
from ragkeep.embed.base import EmbedderError
from ragkeep.embed.onnx import OnnxMiniLM
from ragkeep.embed.registry import embedder_config
from ragkeep.embed.tuning import (
    MAX_TOKENS,
    START_TOKENS,
    ActivationModel,
    BatchTuner,
    is_allocation_failure,
)

from conftest import SCIFACT, run_cli, write

ARENA_MB = 96  # ONNX Runtime's arena for the allocation-failure tests: ~2 long texts fit


def _abstracts(n: int) -> list[str]:
    with (SCIFACT / "corpus.jsonl").open(encoding="utf-8") as fh:
        return [d["title"] + ". " + d["text"] for d in map(json.loads, itertools.islice(fh, n))]


def _texts() -> list[str]:
    """16 abstracts cut to lengths from a few words to past the model window."""
    return [a[: 40 + (i * 263) % 1400] for i, a in enumerate(_abstracts(16))]


def _long_texts() -> list[str]:
    """12 texts past the model window: 256 tokens each."""
    return [a[:1400] for a in _abstracts(60) if len(a) >= 1400][:12]


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return OnnxMiniLM(batch_size=1, batch_tokens=256).embed(_texts())


def test_vectors_are_identical_whatever_the_batch(reference: np.ndarray) -> None:
    """One text at a time, fixed budgets of 1,024 and 16,384 tokens, and tuned: bit-for-bit
    the same vectors (padding is masked out and the model's integer arithmetic does not
    depend on the other rows of a batch)."""
    texts = _texts()
    for embedder in (
        OnnxMiniLM(batch_tokens=1024),
        OnnxMiniLM(batch_size=512, batch_tokens=16384),
        OnnxMiniLM(tune=True, budget_bytes=256 * 1024 * 1024),
    ):
        assert np.array_equal(embedder.embed(texts), reference)


# -- the tuner's decisions, from given measurements -----------------------------------------


def _feed(tuner: BatchTuner, tokens_per_s: float, samples: int = 3) -> None:
    """Batches filling the current limit, run at `tokens_per_s`."""
    for _ in range(samples):
        tuner.record(tuner.limit, tuner.limit, tuner.limit / tokens_per_s, True)


def test_batches_grow_while_throughput_improves_then_settle() -> None:
    tuner = BatchTuner(max_texts=512, budget_bytes=None)
    assert tuner.limit == START_TOKENS
    for rate in (20_000, 30_000, 40_000):  # 512 -> 1024 -> 2048 -> 4096
        _feed(tuner, rate)
    assert tuner.limit == 8 * START_TOKENS
    _feed(tuner, 39_000)  # 4096 is no faster than 2048: back to 2048, and stay
    assert tuner.limit == 4 * START_TOKENS
    _feed(tuner, 90_000)
    assert tuner.limit == 4 * START_TOKENS
    stats = tuner.stats()
    assert (stats.batches, stats.batch_tokens, stats.tuned) == (15, 2048, True)
    assert stats.max_batch_tokens == 4096


def test_growth_stops_once_a_batch_takes_too_long_to_interrupt() -> None:
    tuner = BatchTuner(max_texts=512, budget_bytes=None)
    for _ in range(3):
        tuner.record(tuner.limit, tuner.limit, 0.8, True)  # 0.8 s for one batch
    assert tuner.limit == START_TOKENS
    _feed(tuner, 1e9)
    assert tuner.limit == START_TOKENS


def test_only_token_bound_batches_teach_the_tuner() -> None:
    """Batches cut short by the text count, the budget or the end say nothing about a
    bigger token limit."""
    tuner = BatchTuner(max_texts=512, budget_bytes=None)
    for _ in range(10):
        tuner.record(100, 100, 0.001, False)
    assert tuner.limit == START_TOKENS


def test_a_batch_stays_within_the_memory_budget() -> None:
    """However high the token limit, a batch's estimated activation memory fits the budget:
    long texts make smaller batches (attention grows with length squared)."""
    model = ActivationModel()
    budget = 64 * 1024 * 1024
    tuner = BatchTuner(max_texts=512, budget_bytes=budget, start_tokens=MAX_TOKENS)
    for width in (16, 64, 128, 256):
        n, token_bound = tuner.take([width] * 1000, 0)
        assert model.batch_bytes(n, width) <= budget < model.batch_bytes(n + 1, width)
        assert not token_bound
    fixed = BatchTuner(max_texts=512, budget_bytes=budget, fixed_tokens=MAX_TOKENS)
    assert fixed.take([256] * 1000, 0) == (256, True)  # the user's own choice applies


def test_an_allocation_failure_halves_the_batch_and_stops_growth() -> None:
    tuner = BatchTuner(max_texts=512, budget_bytes=None, start_tokens=8192)
    assert tuner.allocation_failed(padded=8000, texts=40)
    assert tuner.limit == 4000
    _feed(tuner, 1e6, samples=6)
    assert tuner.limit == 4000
    assert not tuner.allocation_failed(padded=256, texts=1)  # nothing smaller to try
    assert tuner.stats().oom_events == 1
    fixed = BatchTuner(max_texts=512, budget_bytes=None, fixed_tokens=8192)
    assert not fixed.allocation_failed(padded=8000, texts=40)
    assert fixed.limit == 8192


def test_which_errors_are_allocation_failures() -> None:
    assert is_allocation_failure(MemoryError())
    assert is_allocation_failure(RuntimeError("... Failed to allocate memory for requested"))
    assert is_allocation_failure(RuntimeError("std::bad_alloc"))
    assert not is_allocation_failure(RuntimeError("Invalid rank for input: input_ids"))
    assert not is_allocation_failure(None)


# -- real allocation failures: ONNX Runtime with a small arena -------------------------------


@pytest.fixture(scope="module")
def small_arena() -> dict[str, str]:
    """Register a 96 MB arena with ONNX Runtime; sessions opting in allocate from it, and
    get ORT's own allocation failure past it. Others in this process are unaffected."""
    import onnxruntime as ort

    info = ort.OrtMemoryInfo(
        "Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT
    )
    cfg = ort.OrtArenaCfg({"max_mem": ARENA_MB * 1024 * 1024, "arena_extend_strategy": 1})
    ort.create_and_register_allocator(info, cfg)
    return {"session.use_env_allocators": "1"}


def test_a_batch_that_cannot_allocate_is_retried_halved(small_arena: dict[str, str]) -> None:
    texts = _long_texts()
    assert len(texts) == 12
    expected = OnnxMiniLM(batch_size=1, batch_tokens=256).embed(texts)
    tuner = BatchTuner(max_texts=32, budget_bytes=None, start_tokens=4096)  # 16 texts
    emb = OnnxMiniLM(tuner=tuner, session_config=small_arena)
    vectors = emb.embed(texts)
    stats = emb.stats()
    assert stats.oom_events >= 1
    assert stats.batch_tokens < 4096
    assert np.array_equal(vectors, expected)  # the same texts, all embedded, as ever


def test_a_fixed_batch_that_cannot_allocate_fails(small_arena: dict[str, str]) -> None:
    """embed.batch_tokens set by the user: no adapting, the error says what happened."""
    emb = OnnxMiniLM(batch_tokens=4096, session_config=small_arena)
    with pytest.raises(EmbedderError, match=r"allocate|smaller than requested"):
        emb.embed(_long_texts())
    assert emb.stats().oom_events == 0


# -- settings and reports -------------------------------------------------------------------


def test_tuning_is_on_unless_the_user_set_batch_tokens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    default = embedder_config(load_settings(tmp_path).settings, True)
    assert default.tune
    assert default.budget_bytes == 1024 * 1024 * 1024 // 4  # 25% of memory_limit_mb
    small = load_settings(tmp_path, overrides={"resources.memory_limit_mb": 512})
    assert embedder_config(small.settings, True).budget_bytes == 128 * 1024 * 1024
    cli = load_settings(tmp_path, overrides={"embed.batch_tokens": 2048})
    assert not embedder_config(cli.settings, True).tune  # even when set to the default
    config = write(tmp_path / "config.toml", "[embed]\nbatch_tokens = 4096\n")
    assert not embedder_config(load_settings(tmp_path, config).settings, True).tune
    monkeypatch.setenv("RAGKEEP_EMBED__BATCH_TOKENS", "1024")
    assert not embedder_config(load_settings(tmp_path).settings, True).tune


def test_batching_shows_in_the_add_report_and_status(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    write(docs / "a.txt", "Kingfishers dive for small fish.")
    write(docs / "b.txt", "Herons wait by the pond.")
    with Keep(tmp_path / "data") as keep:
        report = keep.add([docs])
        assert report.embedding is not None
        assert report.embedding.batches >= 1
        assert report.embedding.oom_events == 0
        assert report.embedding.max_batch_tokens > 0
        status = keep.status().to_dict()
    assert status["embedding"]["batches"] >= report.embedding.batches
    assert set(status["embedding"]) == {
        "batches",
        "batch_tokens",
        "max_batch_tokens",
        "oom_events",
        "tuned",
    }
    write(docs / "c.txt", "Owls hunt at night.")
    out = run_cli("add", str(docs), "--json", data_dir=tmp_path / "data")
    assert out.json()["embedding"]["batches"] == 1
    # A fresh process that embedded nothing has no embedder statistics to show.
    assert run_cli("status", "--json", data_dir=tmp_path / "data").json()["embedding"] is None
