"""How the embedder batches: in the ingest report and in status."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class EmbeddingStats:
    """Counts since the process loaded the embedder, or for one run."""

    batches: int = 0
    batch_tokens: int = 0  # most padded tokens per batch right now
    max_batch_tokens: int = 0  # the largest batch run so far (padded tokens)
    oom_events: int = 0  # batches that failed to allocate and were retried halved
    tuned: bool = False  # False: embed.batch_tokens was set, so the size is fixed
