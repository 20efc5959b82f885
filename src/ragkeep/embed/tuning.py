"""How many tokens go into one embedding batch.

Tuned (the default): start at 512 padded tokens, double while throughput (tokens/s) improves,
never past the memory budget's share for one batch, and halve when ONNX Runtime fails to
allocate. Fixed (the user set `embed.batch_tokens`): that many tokens, no adapting.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from ragkeep.models.embedding import EmbeddingStats

START_TOKENS = 512
MAX_TOKENS = 65536  # embed.batch_tokens' own upper bound
MIN_TOKENS = 256  # one full-length text: a batch never gets smaller than one text anyway
_SAMPLES = 3  # token-bound batches measured at a size before deciding to grow
_GAIN = 1.05  # a bigger batch must be at least this much faster to be kept
# A batch cannot be interrupted while ONNX Runtime runs it: growing stops once a batch takes
# this long, so Ctrl-C acts within about a second.
_MAX_BATCH_S = 0.5
_ALLOCATION_FAILURE = (
    "failed to allocate",
    "bad_alloc",
    "bad allocation",
    "smaller than requested bytes",  # ORT's arena when it may not grow any more
    "out of memory",
)


@dataclass(frozen=True, slots=True)
class ActivationModel:
    """Peak activation memory of one batch: texts x width x (per_token + per_width x width).

    Measured for the shipped int8 MiniLM on ONNX Runtime 1.32 with
    benchmarks/bench_embed_memory.py: about 40 KB per token at width 32, 59 KB at 128 and
    98 KB at 256 (attention scores grow with width squared). The constants lie at or above
    every measured point.
    """

    per_token: float = 33_000.0
    per_width: float = 270.0

    def batch_bytes(self, texts: int, width: int) -> int:
        return int(texts * width * (self.per_token + self.per_width * width))


def is_allocation_failure(exc: BaseException | None) -> bool:
    """Did running a batch fail for lack of memory (and may a smaller batch succeed)?"""
    if exc is None:
        return False
    if isinstance(exc, MemoryError):
        return True
    text = str(exc).lower()
    return any(marker in text for marker in _ALLOCATION_FAILURE)


class BatchTuner:
    """Cuts length-sorted texts into batches and learns the batch size from each run.

    Thread-safe: one embedder (and so one tuner) serves every thread of a process.
    """

    def __init__(
        self,
        *,
        max_texts: int,
        budget_bytes: int | None,
        fixed_tokens: int | None = None,
        start_tokens: int = START_TOKENS,
        model: ActivationModel | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self.max_texts = max(1, max_texts)
        self.tuned = fixed_tokens is None
        self._budget = budget_bytes if self.tuned else None
        self._model = model or ActivationModel()
        self._limit = max(MIN_TOKENS, fixed_tokens if fixed_tokens is not None else start_tokens)
        self._growing = self.tuned
        self._level_tokens = 0  # real tokens and seconds of token-bound batches at _limit
        self._level_seconds = 0.0
        self._level_samples = 0
        self._previous: tuple[int, float] | None = None  # (limit, tokens/s) one size down
        self._batches = 0
        self._oom_events = 0
        self._largest = 0

    @property
    def limit(self) -> int:
        """Most padded tokens in one batch right now."""
        return self._limit

    def take(self, lengths: Sequence[int], start: int) -> tuple[int, bool]:
        """How many texts from `lengths[start:]` form the next batch (at least one), and
        whether the token limit (rather than the text count, the memory budget or the end)
        cut it. Padding makes a batch as wide as its longest text."""
        with self._lock:
            limit = self._limit
        n, widest = 0, 0
        for length in itertools.islice(lengths, start, None):
            width, texts = max(widest, length), n + 1
            if n and texts > self.max_texts:
                return n, False
            if n and texts * width > limit:
                return n, True
            if n and self._over_budget(texts, width):
                return n, False
            n, widest = texts, width
        return n, False

    def _over_budget(self, texts: int, width: int) -> bool:
        return self._budget is not None and self._model.batch_bytes(texts, width) > self._budget

    def record(self, padded: int, tokens: int, seconds: float, token_bound: bool) -> None:
        """One batch ran: `padded` tokens with padding, `tokens` without, in `seconds`."""
        with self._lock:
            self._batches += 1
            self._largest = max(self._largest, padded)
            if not (self._growing and token_bound):
                return
            self._level_tokens += tokens
            self._level_seconds += seconds
            self._level_samples += 1
            if self._level_samples >= _SAMPLES:
                self._decide(seconds)

    def _decide(self, last_seconds: float) -> None:
        rate = self._level_tokens / max(self._level_seconds, 1e-9)
        previous = self._previous
        if previous is not None and rate < previous[1] * _GAIN:
            # Not faster than half the size: settle on the better of the two.
            if rate < previous[1]:
                self._limit = previous[0]
            self._growing = False
        elif last_seconds > _MAX_BATCH_S or self._limit * 2 > MAX_TOKENS:
            self._growing = False
        else:
            self._previous = (self._limit, rate)
            self._limit *= 2
        self._level_tokens, self._level_seconds, self._level_samples = 0, 0.0, 0

    def allocation_failed(self, padded: int, texts: int) -> bool:
        """A batch of `texts` texts, `padded` tokens, failed to allocate. Returns whether a
        smaller batch may be tried: the limit becomes half of that batch, and stops growing."""
        with self._lock:
            if not self.tuned or texts <= 1:
                return False
            self._oom_events += 1
            self._limit = max(MIN_TOKENS, padded // 2)
            self._growing = False
            return True

    def stats(self) -> EmbeddingStats:
        with self._lock:
            return EmbeddingStats(
                batches=self._batches,
                batch_tokens=self._limit,
                max_batch_tokens=self._largest,
                oom_events=self._oom_events,
                tuned=self.tuned,
            )


def stats_of(embedder: object) -> EmbeddingStats | None:
    """The batching statistics of `embedder`, if it keeps any (fakes in tests do not)."""
    stats = getattr(embedder, "stats", None)
    if not callable(stats):
        return None
    result = stats()
    return result if isinstance(result, EmbeddingStats) else None


def run_stats(before: EmbeddingStats, after: EmbeddingStats) -> EmbeddingStats:
    """What happened between two snapshots: batches and allocation failures counted over
    the span; the batch size now and the largest so far as they are after it."""
    return EmbeddingStats(
        batches=after.batches - before.batches,
        batch_tokens=after.batch_tokens,
        max_batch_tokens=after.max_batch_tokens,
        oom_events=after.oom_events - before.oom_events,
        tuned=after.tuned,
    )
