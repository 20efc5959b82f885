"""Embedding models: the protocol, the ONNX backend and the per-process registry."""

from ragkeep.embed.base import Embedder, EmbedderError, Tokenizer
from ragkeep.embed.registry import EmbedderConfig, ModelSpec, default_model_spec, get_embedder

__all__ = [
    "Embedder",
    "EmbedderConfig",
    "EmbedderError",
    "ModelSpec",
    "Tokenizer",
    "default_model_spec",
    "get_embedder",
]
