"""The metrics read at scrape time from an open index: nothing here runs between scrapes.
Imported on the first render only (prometheus_client is slow to import)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from ragkeep import __version__
from ragkeep.models.degradation import BreakerState
from ragkeep.observability.logs import dropped_records
from ragkeep.resources import MemoryBudget

if TYPE_CHECKING:
    from ragkeep.keep import Keep

_TIER_STATS = ("hits", "misses", "evictions", "expirations")


class KeepCollector:
    def __init__(self, keep: Keep) -> None:
        self._keep = keep

    def collect(self) -> Iterator[Metric]:
        keep = self._keep
        yield gauge(
            "ragkeep_info", "The running version and model.", 1.0,
            version=__version__, model=keep.store.model_id,
        )  # fmt: skip
        yield from self._index()
        yield from self._cache()
        yield from self._resilience()
        yield from self._memory()
        yield from self._embedder()
        yield labelled(
            GaugeMetricFamily,
            "ragkeep_feature_flag",
            "1 when the feature flag is on, 0 when off.",
            ["flag", "stage"],
            (([f.name, f.stage.value], float(f.enabled)) for f in keep.feature_flags.states()),
        )
        yield counter(
            "ragkeep_log_records_dropped",
            "Log records dropped because the log writer fell behind (never blocking).",
            dropped_records(),
        )

    def _index(self) -> Iterator[Metric]:
        counts = self._keep.store.counts()
        yield gauge("ragkeep_documents", "Documents in the index.", counts.documents)
        yield gauge("ragkeep_chunks", "Chunks (passages) in the index.", counts.chunks)
        yield gauge(
            "ragkeep_generation", "The index generation: every commit adds one.", counts.generation
        )
        yield gauge(
            "ragkeep_index_bytes", "Size of the index on disk.", self._keep.store.size_bytes()
        )

    def _cache(self) -> Iterator[Metric]:
        caches = self._keep.caches
        results = caches.results
        tiers = {**results.lifetime(), "embeddings": caches.embeddings.lru.stats.frozen()}
        for stat in _TIER_STATS:
            yield labelled(
                CounterMetricFamily,
                f"ragkeep_cache_{stat}",
                f"Cache {stat} in this process, per tier (memory and persistent: search "
                "results; embeddings: query vectors).",
                ["tier"],
                (([tier], float(getattr(s, stat))) for tier, s in tiers.items()),
            )
        yield counter(
            "ragkeep_cache_generation_purges",
            "Times a commit made the in-memory result cache drop older generations' entries.",
            results.purges,
        )
        yield counter(
            "ragkeep_cache_purged_entries",
            "In-memory result-cache entries dropped because a commit made them unreachable.",
            results.purged_entries,
        )
        yield counter(
            "ragkeep_cache_write_errors",
            "Result-cache writes to the index that failed (busy or read-only store).",
            results.persistent.write_errors,
        )

    def _resilience(self) -> Iterator[Metric]:
        report = self._keep.querying.resilience()
        yield labelled(
            CounterMetricFamily,
            "ragkeep_fallbacks",
            "Answers given by a fallback because a part failed, per failed part.",
            ["part"],
            (([part], float(n)) for part, n in report.fallbacks),
        )
        yield labelled(
            GaugeMetricFamily,
            "ragkeep_breaker_state",
            "1 for each circuit breaker's current state (closed, open, half_open).",
            ["part", "state"],
            (
                ([b.part.value, state.value], float(b.state is state))
                for b in report.breakers
                for state in BreakerState
            ),
        )

    def _memory(self) -> Iterator[Metric]:
        budget = MemoryBudget.from_settings(self._keep.settings)
        yield gauge(
            "ragkeep_memory_limit_bytes",
            "resources.memory_limit_mb: the memory this process aims to stay within.",
            budget.limit_bytes,
        )
        shares = {
            "result_cache": budget.result_cache_bytes,
            "embedding_cache": budget.embedding_cache_bytes,
            "ingest_queue": budget.ingest_queue_bytes,
            "embed_batch": budget.embed_batch_bytes,
        }
        yield labelled(
            GaugeMetricFamily,
            "ragkeep_memory_budget_bytes",
            "The share of the memory limit each bounded structure sizes itself from.",
            ["share"],
            (([name], float(size)) for name, size in shares.items()),
        )
        yield gauge(
            "ragkeep_result_cache_memory_bytes",
            "Bytes held by the in-memory result cache.",
            self._keep.caches.results.memory.bytes_used,
        )

    def _embedder(self) -> Iterator[Metric]:
        from ragkeep.embed.registry import embedding_stats

        stats = embedding_stats()
        if stats is None:
            return
        yield gauge(
            "ragkeep_embed_batch_tokens",
            "Padded tokens the embedder puts in one batch now (tuned to the memory budget).",
            stats.batch_tokens,
        )
        yield gauge(
            "ragkeep_embed_max_batch_tokens",
            "The largest embedding batch run so far, in padded tokens.",
            stats.max_batch_tokens,
        )
        yield counter("ragkeep_embed_batches", "Embedding batches run.", stats.batches)
        yield counter(
            "ragkeep_embed_oom",
            "Embedding batches that failed to allocate memory and were retried halved.",
            stats.oom_events,
        )


def gauge(name: str, doc: str, value: float, **labels: str) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=list(labels))
    family.add_metric(list(labels.values()), value)
    return family


def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def labelled(
    kind: type[GaugeMetricFamily] | type[CounterMetricFamily],
    name: str,
    doc: str,
    label_names: list[str],
    rows: Iterator[tuple[list[str], float]],
) -> Metric:
    family = kind(name, doc, labels=label_names)
    for labels, value in rows:
        family.add_metric(labels, value)
    return family
