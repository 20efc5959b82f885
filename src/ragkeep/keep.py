"""`Keep`: the library API. The CLI and the HTTP server are thin layers over it."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from ragkeep.config.flags import FLAGS, Stage, check_flag_name, check_requirements
from ragkeep.config.settings import ConfigError, LoadedSettings, Settings, load_settings
from ragkeep.embed.base import Embedder
from ragkeep.embed.registry import EmbedderConfig, default_model_spec, get_embedder
from ragkeep.ingest.discover import absolute
from ragkeep.ingest.pipeline import Indexer, ProgressFn, TextDocument, is_under
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
from ragkeep.store.schema import SCHEMA_VERSION
from ragkeep.store.sqlite import DB_FILE_NAME, SqliteStore


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
        )
        self._flags = self._resolve_flags()
        self._indexer = Indexer(self.store, self.embedder, self.settings)
        self._searcher = Searcher(self.store, self.embedder, self.settings.search)

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        self._searcher.close()
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

    def add(self, paths: Sequence[str | Path], progress: ProgressFn | None = None) -> IndexReport:
        """Register files or folders as sources and bring them into the index."""
        sources: list[str] = []
        missing: list[str] = []
        for p in paths:
            path = absolute(p)
            (sources if os.path.lexists(path) else missing).append(path)
        for source in sources:
            self.store.add_source(source)
            for path in self.store.excluded():  # adding a removed path brings it back
                if path == source or is_under(path, source):
                    self.store.set_excluded(path, False)
        report = self._indexer.sync_sources(sources, progress)
        report.results[:0] = [
            FileResult(m, FileOutcome.FAILED, "no such file or folder") for m in missing
        ]
        return report

    def sync(self, progress: ProgressFn | None = None) -> IndexReport:
        """Re-scan every registered source: index new and changed files, drop deleted ones."""
        return self._indexer.sync_sources(self.store.sources(), progress)

    def remove(self, paths: Sequence[str | Path]) -> IndexReport:
        """Forget files or folders: their documents leave the index and they stop being sources."""
        targets = [absolute(p) for p in paths]
        report = self._indexer.remove(targets)
        sources = self.store.sources()
        for target in targets:
            for source in sources:
                if source == target or is_under(source, target):
                    self.store.remove_source(source)
            if any(is_under(target, s) for s in sources if s != target):
                # Inside a source that stays: remember it, or the next sync would re-add it.
                self.store.set_excluded(target, True)
        return report

    def index_texts(
        self, docs: Sequence[TextDocument], progress: ProgressFn | None = None
    ) -> IndexReport:
        """Index documents given as text (paths are labels, not files): used by `eval`."""
        return self._indexer.index_texts(iter(docs), len(docs), progress)

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
