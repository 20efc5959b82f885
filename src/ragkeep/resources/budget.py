"""The memory budget: one setting (`resources.memory_limit_mb`) that every bounded structure
sizes itself from, so raising or lowering it moves them all together.

The shares are of the whole budget. What is left after them is for what no setting bounds:
the interpreter, ONNX Runtime and its model (about 250 MB), and the dense vector matrix,
which grows with the index (docs/degradation.md, "Memory").
"""

from __future__ import annotations

from dataclasses import dataclass

from ragkeep.config.settings import Settings

_MB = 1024 * 1024

# Shares of the budget. The embedding share bounds activation memory of one batch; the
# ingest queue holds prepared documents waiting for the embedder.
RESULT_CACHE_SHARE = 0.03
EMBEDDING_CACHE_SHARE = 0.01
INGEST_QUEUE_SHARE = 0.05
QUERY_TERMS_SHARE = 0.005
EMBED_BATCH_SHARE = 0.25

# Bytes one cached document-frequency entry costs (term string, int, dict slot): measured
# about 100 B per term, rounded up.
_DF_ENTRY_BYTES = 160


@dataclass(frozen=True, slots=True)
class MemoryBudget:
    limit_bytes: int

    @classmethod
    def from_settings(cls, settings: Settings) -> MemoryBudget:
        return cls(settings.resources.memory_limit_mb * _MB)

    def share(self, fraction: float) -> int:
        return int(self.limit_bytes * fraction)

    @property
    def result_cache_bytes(self) -> int:
        return self.share(RESULT_CACHE_SHARE)

    @property
    def embedding_cache_bytes(self) -> int:
        return self.share(EMBEDDING_CACHE_SHARE)

    @property
    def ingest_queue_bytes(self) -> int:
        return self.share(INGEST_QUEUE_SHARE)

    @property
    def embed_batch_bytes(self) -> int:
        """Activation memory one embedding batch may use."""
        return self.share(EMBED_BATCH_SHARE)

    @property
    def query_term_entries(self) -> int:
        """Document-frequency entries a searcher keeps between commits."""
        return max(1000, self.share(QUERY_TERMS_SHARE) // _DF_ENTRY_BYTES)
