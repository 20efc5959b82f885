"""`Keep`: the library API. The CLI and the HTTP server are thin layers over it."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ragkeep.cache.results import CacheConfig, EmbeddingCache, ResultCache, fingerprint
from ragkeep.config.flags import FLAGS, Stage, check_flag_name, check_requirements
from ragkeep.config.settings import ConfigError, LoadedSettings, Settings, load_settings
from ragkeep.embed.base import Embedder
from ragkeep.embed.onnx import minilm_tokenizer
from ragkeep.embed.registry import EmbedderConfig, default_model_spec, get_embedder
from ragkeep.ingest.paths import absolute, is_under
from ragkeep.models import (
    Answer,
    DocumentInfo,
    FileOutcome,
    FileResult,
    IndexReport,
    SearchHit,
    SearchMode,
    StoreStatus,
)
from ragkeep.search.engine import Searcher, SearchRequest
from ragkeep.search.vector_file import DERIVED_DIR, VectorFile
from ragkeep.store.schema import SCHEMA_VERSION
from ragkeep.store.sqlite import DB_FILE_NAME, SqliteStore

if TYPE_CHECKING:
    from ragkeep.ingest.pipeline import Indexer, ProgressFn, TextDocument
    from ragkeep.ops.doctor import DoctorReport
    from ragkeep.search.ann import AnnIndex

WRITER_LOCK = "writer.lock"
GC_MIN_VECTORS = 1000  # below this, unreferenced vectors cost less than collecting them


@dataclass(frozen=True, slots=True)
class FlagState:
    name: str
    enabled: bool
    default: bool
    stage: Stage
    source: str  # "default", "database" (ragkeep flags enable/disable) or "settings"
    description: str


class Keep:
    """A ragkeep index in one data directory.

    >>> with Keep("~/.ragkeep") as keep:
    ...     keep.add(["~/notes"])
    ...     hits = keep.search("how often to water tomatoes")
    """

    def __init__(
        self,
        data_dir: str | Path | None = None,
        *,
        config_file: str | Path | None = None,
        overrides: dict[str, Any] | None = None,
        loaded: LoadedSettings | None = None,
    ) -> None:
        self.config = loaded or load_settings(data_dir, config_file, overrides)
        self.settings: Settings = self.config.settings
        self.data_dir = self.config.data_dir
        spec = default_model_spec()
        self.store = SqliteStore(
            self.data_dir / DB_FILE_NAME,
            model_id=spec.model_id,
            dimension=spec.dimension,
            busy_timeout_ms=self.settings.store.busy_timeout_ms,
            synchronous=self.settings.store.synchronous,
            lock_timeout_s=self.settings.store.lock_timeout_s,
        )
        self._flags = self._resolve_flags()
        results, embeddings = self._caches(spec.model_id) if self.flag("caching") else (None, None)
        self._searcher = Searcher(
            self.store,
            self.embedder,
            self.settings.search,
            results=results,
            embeddings=embeddings,
            ann=self.ann_index() if self.flag("ann_index") else None,
            vector_file=self.vector_file(),
        )

    def _caches(self, model_id: str) -> tuple[ResultCache, EmbeddingCache]:
        cfg = self.settings.cache
        mb = 1024 * 1024
        config = CacheConfig(
            memory_bytes=int(cfg.memory_mb * mb),
            persistent_bytes=int(cfg.persistent_mb * mb),
            persistent_entries=cfg.persistent_entries,
            ttl_s=cfg.ttl_s,
            embedding_bytes=int(cfg.embedding_memory_mb * mb),
        )
        # Every setting that can change a ranking is part of every result-cache key.
        settings_fp = fingerprint(
            {
                "search": self.settings.search.model_dump(mode="json"),
                "ann_index": self.flag("ann_index"),
                "model": model_id,
                "schema": SCHEMA_VERSION,
            }
        )
        return (
            ResultCache(self.store, config, settings_fp),
            EmbeddingCache(model_id, config.embedding_bytes),
        )

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        self._searcher.close()
        if self._searcher.results is not None:
            self._searcher.results.flush_stats()
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

    def embedder(self) -> Embedder:
        """The process-wide embedder for these settings, loaded on first use."""
        cfg = self.settings.embed
        return get_embedder(
            EmbedderConfig(
                cfg.threads, cfg.batch_size, cfg.batch_tokens, self.flag("length_batching")
            )
        )

    # -- writing -------------------------------------------------------------------------

    @functools.cached_property
    def _indexer(self) -> Indexer:
        # Imported on first write: a search never loads the ingest pipeline or the loaders.
        from ragkeep.ingest.pipeline import Indexer

        return Indexer(self.store, self.embedder, self.settings, minilm_tokenizer)

    @contextmanager
    def _writer(self, on_wait: Callable[[], None] | None) -> Iterator[None]:
        """One add/sync/remove at a time per data dir, across processes: a second one waits
        for the first (calling `on_wait` once) instead of failing or duplicating its work."""
        from filelock import FileLock, Timeout

        lock = FileLock(self.data_dir / WRITER_LOCK, thread_local=False)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            if on_wait is not None:
                on_wait()
            lock.acquire()
        try:
            yield
        finally:
            lock.release()

    def _after_write(self) -> None:
        """Collect unreferenced vectors once they are a noticeable share of the table."""
        unreferenced = self.store.unreferenced_vectors()
        if unreferenced >= max(GC_MIN_VECTORS, self.store.vector_count() // 10):
            self.store.collect_garbage()

    def add(
        self,
        paths: Sequence[str | Path],
        progress: ProgressFn | None = None,
        on_wait: Callable[[], None] | None = None,
    ) -> IndexReport:
        """Register files or folders as sources and bring them into the index."""
        sources: list[str] = []
        missing: list[str] = []
        for p in paths:
            path = absolute(p)
            (sources if os.path.lexists(path) else missing).append(path)
        with self._writer(on_wait):
            for source in sources:
                self.store.add_source(source)
                for path in self.store.excluded():  # adding a removed path brings it back
                    if path == source or is_under(path, source):
                        self.store.set_excluded(path, False)
            report = self._indexer.sync_sources(sources, progress)
            self._after_write()
        report.results[:0] = [
            FileResult(m, FileOutcome.FAILED, "no such file or folder") for m in missing
        ]
        return report

    def sync(
        self,
        progress: ProgressFn | None = None,
        on_wait: Callable[[], None] | None = None,
        only: Sequence[str | Path] | None = None,
    ) -> IndexReport:
        """Re-scan every registered source (or just `only`): index new and changed files,
        drop deleted ones."""
        sources = [absolute(p) for p in only] if only is not None else self.store.sources()
        with self._writer(on_wait):
            report = self._indexer.sync_sources(sources, progress)
            self._after_write()
        return report

    def remove(self, paths: Sequence[str | Path]) -> IndexReport:
        """Forget files or folders: their documents leave the index and they stop being sources."""
        targets = [absolute(p) for p in paths]
        with self._writer(None):
            report = self._indexer.remove(targets)
            sources = self.store.sources()
            for target in targets:
                for source in sources:
                    if source == target or is_under(source, target):
                        self.store.remove_source(source)
                if any(is_under(target, s) for s in sources if s != target):
                    # Inside a source that stays: remember it, or the next sync would re-add it.
                    self.store.set_excluded(target, True)
            self._after_write()
        return report

    def index_texts(
        self, docs: Sequence[TextDocument], progress: ProgressFn | None = None
    ) -> IndexReport:
        """Index documents given as text (paths are labels, not files): used by `eval`."""
        with self._writer(None):
            return self._indexer.index_texts(iter(docs), len(docs), progress)

    def ann_index(self) -> AnnIndex:
        """The derived ANN file of this data dir (whether or not the flag uses it)."""
        from ragkeep.search.ann import AnnIndex

        return AnnIndex(self.data_dir, self.store.model_id, self.store.dimension)

    def vector_file(self) -> VectorFile:
        """The derived, memory-mapped copy of the vector matrix in this data dir."""
        return VectorFile(self.data_dir / DERIVED_DIR, self.store.model_id, self.store.dimension)

    # -- maintenance ---------------------------------------------------------------------

    def doctor(self, repair: bool = False) -> DoctorReport:
        """Check that the index is consistent; with `repair`, rebuild what is derived."""
        from ragkeep.ops.doctor import run_doctor

        with self._writer(None):
            return run_doctor(
                self.store, self.embedder, repair, self.ann_index(), self.vector_file()
            )

    def gc(self) -> int:
        """Delete vectors that no chunk uses any more; returns how many."""
        with self._writer(None):
            return self.store.collect_garbage()

    # -- reading -------------------------------------------------------------------------

    def search(
        self,
        query: str,
        k: int | None = None,
        mode: SearchMode | str | None = None,
        *,
        collapse: bool | None = None,
        candidates: int | None = None,
    ) -> list[SearchHit]:
        request = SearchRequest(
            query=query,
            k=k or self.settings.search.k,
            mode=SearchMode(mode or self.settings.search.mode),
            collapse=self.flag("collapse_documents") if collapse is None else collapse,
            candidates=candidates,
        )
        return self._searcher.search(request)

    def ask(
        self,
        question: str,
        k: int | None = None,
        on_token: Callable[[str], None] | None = None,
    ) -> Answer:
        """Answer from the best passages, with the LLM when one is configured and reachable."""
        from ragkeep.answer.llm import make_client
        from ragkeep.answer.service import answer_question

        hits = self.search(question, k or self.settings.llm.ask_k)
        llm = self.settings.llm
        if llm.provider == "none":
            return answer_question(question, hits, None)
        client = make_client(
            llm.provider,
            llm.url,
            llm.model,
            api_key=llm.api_key.get_secret_value() if llm.api_key else None,
            timeout_s=llm.timeout_s,
            connect_timeout_s=llm.connect_timeout_s,
            max_retries=llm.max_retries,
            backoff_s=llm.backoff_s,
            temperature=llm.temperature,
        )
        try:
            return answer_question(question, hits, client, on_token=on_token)
        finally:
            client.close()

    # -- caching -------------------------------------------------------------------------

    def cache_stats(self) -> dict[str, Any]:
        """Hits, misses, evictions, expirations and hit rate, per tier, across processes."""
        results, embeddings = self._searcher.results, self._searcher.embeddings
        if results is None or embeddings is None:
            return {"enabled": False}
        entries, size = results.persistent.entries()
        totals = results.totals()
        mem, disk = totals["memory"], totals["persistent"]
        lookups = mem["hits"] + mem["misses"]  # every lookup tries memory first
        return {
            "enabled": True,
            "hit_rate": round((mem["hits"] + disk["hits"]) / lookups, 4) if lookups else 0.0,
            **totals,
            "persistent_entries": entries,
            "persistent_bytes": size,
            "memory_entries": len(results.memory),
            "memory_bytes": results.memory.bytes_used,
            "embeddings": embeddings.lru.stats.to_dict(),
        }

    def clear_cache(self) -> int:
        """Empty the result cache (every process's shared tier) and reset its statistics."""
        results = self._searcher.results
        if results is None:
            return 0
        removed = results.clear()
        results.reset_stats()
        if self._searcher.embeddings is not None:
            self._searcher.embeddings.lru.clear()
        return removed

    def documents(self) -> list[DocumentInfo]:
        return self.store.document_infos()

    def status(self) -> StoreStatus:
        docs, chunks, generation = self.store.counts()
        return StoreStatus(
            documents=docs,
            chunks=chunks,
            sources=self.store.sources(),
            model_id=self.store.model_id,
            dimension=self.store.dimension,
            generation=generation,
            schema_version=SCHEMA_VERSION,
            database_path=str(self.store.path),
            database_bytes=self.store.size_bytes(),
            cache=self.cache_stats(),
        )

    # -- feature flags -------------------------------------------------------------------

    def flag(self, name: str) -> bool:
        return self._flags[check_flag_name(name).name].enabled

    def flags(self) -> list[FlagState]:
        return [self._flags[name] for name in sorted(self._flags)]

    def set_flag(self, name: str, enabled: bool | None) -> FlagState:
        """Persist a flag in this data dir (None: back to the default)."""
        check_flag_name(name)
        trial = {n: s.enabled for n, s in self._flags.items()}
        trial[name] = FLAGS[name].default if enabled is None else enabled
        check_requirements(trial)
        self.store.set_flag(name, enabled)
        self._flags = self._resolve_flags()
        return self._flags[name]

    def _resolve_flags(self) -> dict[str, FlagState]:
        persisted = self.store.persisted_flags()
        forced = self.settings.flags
        states: dict[str, FlagState] = {}
        for name, spec in FLAGS.items():
            if name in forced:
                enabled, source = forced[name], "settings"
            elif name in persisted:
                enabled, source = persisted[name], "database"
            else:
                enabled, source = spec.default, "default"
            states[name] = FlagState(
                name, enabled, spec.default, spec.stage, source, spec.description
            )
        try:
            check_requirements({n: s.enabled for n, s in states.items()})
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        return states
