"""Small stand-ins implementing the public Embedder and Tokenizer protocols, for driving the
ingest pipeline (ragkeep.ingest.pipeline.Indexer) over a real store without the model's
cost, and for holding it at chosen points."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ragkeep import Keep
from ragkeep.config.settings import Settings
from ragkeep.embed.base import Tokenizer
from ragkeep.embed.onnx import minilm_tokenizer
from ragkeep.ingest.pipeline import Indexer

DIM = 384


class FakeEmbedder:
    """Deterministic unit vectors from each text's hash; records the size of every call."""

    model_id = "fake"
    dimension = DIM
    max_tokens = 256

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.tokenizer: Tokenizer = minilm_tokenizer()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(len(texts))
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for i, text in enumerate(texts):
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
            out[i] = v / np.linalg.norm(v)
        return out

    def close(self) -> None:
        pass


class HoldingTokenizer:
    """The real tokenizer, except that a text containing `marker` blocks until `release`
    is set (like a read stuck on a dead network share), after setting `entered`. With
    `delay_s`, every call also sleeps that long (a slow parser)."""

    def __init__(self, marker: str = "HOLD-HERE", delay_s: float = 0.0) -> None:
        self._real = minilm_tokenizer()
        self.marker, self.delay_s = marker, delay_s
        self.entered = threading.Event()
        self.release = threading.Event()
        self.longest = 0  # longest text ever tokenized at once
        self.calls = 0

    def count(self, text: str) -> int:
        return len(self.offsets(text))

    def offsets(self, text: str) -> list[tuple[int, int]]:
        self.calls += 1
        self.longest = max(self.longest, len(text))
        if self.marker in text:
            self.entered.set()
            self.release.wait(60)
        if self.delay_s:
            time.sleep(self.delay_s)
        return self._real.offsets(text)


def indexer(
    keep: Keep,
    tokenizer: Tokenizer | None = None,
    embedder: FakeEmbedder | None = None,
    settings: Settings | None = None,
) -> Indexer:
    """An Indexer over `keep`'s real store with the given stand-ins."""
    emb = embedder or FakeEmbedder()
    tok = tokenizer or minilm_tokenizer()
    get_tokenizer: Callable[[], Tokenizer] = lambda: tok  # noqa: E731
    return Indexer(keep.store, lambda: emb, settings or keep.settings, get_tokenizer)


def write_texts(folder: Path, count: int, prefix: str = "doc") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        p = folder / f"{prefix}{i:04}.txt"
        p.write_text(f"Note {i}. The heron waits by the pond number {i} for a fish.\n")
        paths.append(p)
    return paths
