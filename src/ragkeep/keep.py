"""`Keep`: the library API, a façade over the services. It wires settings, the store, the
embedder, flags and caches together; what it does is in `ragkeep.services`."""

from __future__ import annotations

import functools
from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ragkeep.cache.results import Caches, make_caches, settings_fingerprint
from ragkeep.config.settings import LoadedSettings, Settings, load_settings
from ragkeep.embed.base import Embedder
from ragkeep.embed.registry import default_model_spec, embedder_config, get_embedder
from ragkeep.models.degradation import Part
from ragkeep.observability.observer import Observer
from ragkeep.resilience import BreakerConfig, CircuitBreaker
from ragkeep.resources import MemoryBudget
from ragkeep.search.engine import Searcher
from ragkeep.search.query_vector import QueryEmbedder
from ragkeep.services import (
    AdminService,
    FlagService,
    IndexingService,
    QueryService,
    RecoveryService,
)
from ragkeep.services.recovery import backups_dir
from ragkeep.store import DenseOptions, Store, open_store
from ragkeep.store.backups import BackupShelf

if TYPE_CHECKING:
    from ragkeep.ingest.pipeline import ProgressFn, TextDocument
    from ragkeep.models import (
        Answer,
        AskEvent,
        CacheReport,
        DoctorReport,
        DocumentContent,
        DocumentInfo,
        FlagState,
        IndexReport,
        RetryEvent,
        SearchMode,
        SearchResults,
        StoreStatus,
        UnusedVectors,
    )
    from ragkeep.models.health import HealthReport
    from ragkeep.observability.collector import KeepCollector
    from ragkeep.services.migration import MigrationService

__all__ = ["Keep"]

LLM_BREAKER_FILE = "llm-breaker.json"  # in the data dir: shared by every process on it


class Keep:
    """A ragkeep index in one data directory.

    >>> with Keep("~/.ragkeep") as keep:
    ...     keep.add(["~/notes"])
    ...     hits = keep.search("how often to water tomatoes")

    Front-ends use the services directly: `keep.indexing`, `keep.querying`, `keep.admin`
    and `keep.feature_flags`; the methods below are shortcuts to them.
    """

    def __init__(
        self,
        data_dir: str | Path | None = None,
        *,
        config_file: str | Path | None = None,
        overrides: dict[str, Any] | None = None,
        loaded: LoadedSettings | None = None,
        embedder: Callable[[], Embedder] | None = None,
        reembedding: bool = False,
    ) -> None:
        """`embedder` replaces the shipped model (it must produce vectors of the same model
        id and dimension as the index's): a factory called on first use. `reembedding`
        opens an index built with another model, for `recovery.reembed()` only."""
        self.config = loaded or load_settings(data_dir, config_file, overrides)
        self._embedder_factory = embedder
        self.settings: Settings = self.config.settings
        self.data_dir = self.config.data_dir
        spec = default_model_spec()
        backup = self.settings.backup
        shelf = BackupShelf(backups_dir(backup, self.data_dir), backup.keep)
        self.store = open_store(
            self.settings.store,
            self.data_dir,
            model_id=spec.model_id,
            dimension=spec.dimension,
            slow_write_s=self.settings.resources.slow_write_s,
            shelf=shelf,
            accept_model_change=reembedding,
        )
        try:
            self.feature_flags = FlagService(self.store, self.settings)
            ann = self.feature_flags.enabled("ann_index")
            self.store.configure_dense(DenseOptions.from_settings(self.settings.search, ann))
            caching = functools.partial(self.feature_flags.enabled, "caching")
            self._caches = make_caches(self.store, self.settings, spec.model_id, ann, caching)
        except BaseException:
            self.store.close()
            raise
        self.observer = Observer(
            self.settings,
            self.store,
            self._caches.results.lookups,
            caching,
        )
        metrics = self.observer.metrics
        embed = self.settings.embed
        query_embedder = QueryEmbedder(
            self.embedder,
            embed.timeout_s,
            CircuitBreaker(
                Part.EMBEDDER,
                BreakerConfig(
                    embed.breaker_failures, embed.breaker_window_s, embed.breaker_cooldown_s
                ),
            ),
            metrics.embed,
        )
        llm = self.settings.llm
        llm_breaker = CircuitBreaker(
            Part.LLM,
            BreakerConfig(llm.breaker_failures, llm.breaker_window_s, llm.breaker_cooldown_s),
            state_file=self.data_dir / LLM_BREAKER_FILE,
        )
        searcher = Searcher(
            self.store,
            query_embedder,
            self.settings.search,
            results=self._caches.results,
            embeddings=self._caches.embeddings,
            caching=self._caches.enabled,
            max_terms=MemoryBudget.from_settings(self.settings).query_term_entries,
        )
        self.recovery = RecoveryService(self.store, shelf, self.embedder, self.settings.backup)
        self.indexing = IndexingService(
            self.store, self.embedder, self.settings, metrics, self.data_dir, self.recovery.snapshot
        )
        self.querying = QueryService(
            searcher, self.settings, self.feature_flags, llm_breaker, metrics
        )
        self.admin = AdminService(
            self.store,
            self._caches,
            self.embedder,
            self.querying.resilience,
            self.recovery.snapshot,
        )
        self.feature_flags.on_change(self._follow_flags)
        metrics.add_collector(self._metrics_collector)

    @property
    def caches(self) -> Caches:
        """The result and query-embedding caches (built even while the `caching` flag is
        off, so that the flag can switch in a running process)."""
        return self._caches

    def _metrics_collector(self) -> KeepCollector:
        from ragkeep.observability.collector import KeepCollector

        return KeepCollector(self)

    @functools.cached_property
    def migration(self) -> MigrationService:
        """`ragkeep migrate`: copy this index to another store (loaded on first use)."""
        from ragkeep.services.migration import MigrationService

        queries = self.settings.backup.validation_queries
        return MigrationService(self.store, self.embedder, self._open_other_store, queries)

    def _open_other_store(self, url: str) -> Store:
        """The store `url` names, for this index's model (creating it): `migrate`'s target."""
        settings = self.settings.store.model_copy(update={"url": url})
        return open_store(
            settings, self.data_dir, model_id=self.store.model_id, dimension=self.store.dimension
        )

    def embedder(self) -> Embedder:
        """The process-wide embedder for these settings, loaded on first use."""
        if self._embedder_factory is not None:
            return self._embedder_factory()
        length_batching = self.feature_flags.enabled("length_batching")
        return get_embedder(embedder_config(self.settings, length_batching))

    def _follow_flags(self, changed: Sequence[FlagState]) -> None:
        """ann_index wires this process's dense index: follow a switch made in any process.
        Searches that overlap it are not cached (ResultCache.changing_settings)."""
        for on in (state.enabled for state in changed if state.name == "ann_index"):
            fp = settings_fingerprint(self.store, self.settings, self.store.model_id, on)
            with self._caches.results.changing_settings(fp):
                self.store.configure_dense(DenseOptions.from_settings(self.settings.search, on))

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        try:
            self.observer.close()  # records this process's statistics in the index
            self.querying.close()
            self._caches.results.flush_stats()
        finally:
            self.store.close()

    def __enter__(self) -> Keep:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- shortcuts to the services ---------------------------------------------------------

    def add(
        self,
        paths: Sequence[str | Path],
        progress: ProgressFn | None = None,
        on_wait: Callable[[], None] | None = None,
    ) -> IndexReport:
        return self.indexing.add(paths, progress, on_wait)

    def sync(
        self,
        progress: ProgressFn | None = None,
        on_wait: Callable[[], None] | None = None,
        only: Sequence[str | Path] | None = None,
    ) -> IndexReport:
        return self.indexing.sync(progress, on_wait, only)

    def remove(self, paths: Sequence[str | Path]) -> IndexReport:
        return self.indexing.remove(paths)

    def index_texts(
        self, docs: Sequence[TextDocument], progress: ProgressFn | None = None
    ) -> IndexReport:
        return self.indexing.index_texts(docs, progress)

    def gc(self) -> UnusedVectors:
        return self.indexing.gc()

    def search(
        self,
        query: str,
        k: int | None = None,
        mode: SearchMode | str | None = None,
        *,
        collapse: bool | None = None,
        candidates: int | None = None,
    ) -> SearchResults:
        return self.querying.search(query, k, mode, collapse=collapse, candidates=candidates)

    def ask(
        self,
        question: str,
        k: int | None = None,
        on_token: Callable[[str], None] | None = None,
        on_retry: Callable[[RetryEvent], None] | None = None,
    ) -> Answer:
        return self.querying.ask(question, k, on_token, on_retry)

    def ask_stream(self, question: str, k: int | None = None) -> Generator[AskEvent, None, None]:
        return self.querying.ask_stream(question, k)

    def status(self) -> StoreStatus:
        return self.admin.status()

    def health(self) -> HealthReport:
        """The monitoring table over `health.window_s`, from the statistics every process
        recorded in this index (a running server's live window: GET /api/health)."""
        return self.observer.recorded_report()

    def documents(self) -> list[DocumentInfo]:
        return self.admin.documents()

    def document(self, path: str) -> DocumentContent | None:
        return self.admin.document(path)

    def doctor(self, repair: bool = False) -> DoctorReport:
        return self.admin.doctor(repair)

    def cache_stats(self) -> CacheReport:
        return self.admin.cache_stats()

    def clear_cache(self) -> int:
        return self.admin.clear_cache()

    def flag(self, name: str) -> bool:
        return self.feature_flags.enabled(name)

    def flags(self) -> list[FlagState]:
        return self.feature_flags.states()

    def set_flag(self, name: str, enabled: bool | None) -> FlagState:
        """Persist a flag in this index (None: back to the default)."""
        return self.feature_flags.set(name, enabled)
