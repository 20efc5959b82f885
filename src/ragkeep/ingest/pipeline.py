"""The write path: discover → load → chunk → embed → commit.

Reading and parsing run in a producer thread feeding a bounded queue; the calling thread embeds
and commits. Each document is committed in its own transaction, so an interruption at any
point leaves every file fully indexed in its new version or untouched in its old one.
"""

from __future__ import annotations

import functools
import hashlib
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, runtime_checkable

from ragkeep.config.settings import Settings
from ragkeep.embed.base import Embedder, Tokenizer
from ragkeep.embed.tuning import run_stats, stats_of
from ragkeep.ingest.chunking import chunk_document
from ragkeep.ingest.discover import Candidate, Unusable, WalkRules, dir_key, walk_source
from ragkeep.ingest.feed import Done, Feed, TimedOut
from ragkeep.ingest.loaders import EmptyDocumentError, LoaderError, load_document
from ragkeep.ingest.paths import is_under
from ragkeep.models import FileOutcome, FileResult, IndexReport, LoadedDocument, SkipReason
from ragkeep.models.embedding import EmbeddingStats
from ragkeep.resources import MemoryBudget
from ragkeep.store.base import Store
from ragkeep.store.records import DocumentRow, FileStamp, NewChunk, NewDocument

if TYPE_CHECKING:
    from ragkeep.embed.base import Vectors
    from ragkeep.observability.metrics import Metrics, OperationMetrics

# Called as each document is settled (committed, or found to need no commit): `done` counts
# documents of this run that are in the index as they will stay, never files merely read.
ProgressFn = Callable[[int, int, str], None]
Stage = Literal["chunking", "embedding"]


@runtime_checkable
class DetailedProgress(Protocol):
    """A ProgressFn that also hears of the work within files (the CLI's bar): without it, a
    big single file shows nothing for minutes."""

    def __call__(self, done: int, total: int, path: str) -> None: ...

    def chunks(self, n: int) -> None:
        """`n` more chunks are committed."""

    def step(self, path: str, stage: Stage, done: int, total: int) -> None:
        """Within a file: characters chunked, or chunks embedded, of `total`."""


class _HasPath(Protocol):
    @property
    def path(self) -> str: ...


_T = TypeVar("_T", bound=_HasPath)
_R = TypeVar("_R")

_QUEUE_DEPTH = 64  # prepared documents waiting for the embedder, at most
_GROUP_CHUNKS = 128  # chunks embedded together across documents, for full batches
# Texts per embed() call: the call tokenizes them all before its first batch, so a
# document of 50,000 chunks must not be one call (memory, and Ctrl-C waits for a call's
# tokenizing); 256 still lets length batching group texts of similar length.
EMBED_UNIT = 256
# What one queued chunk costs besides its text: its vector to come, the hash, the record.
_CHUNK_OVERHEAD = 400


@dataclass(frozen=True, slots=True)
class TextDocument:
    """A document given as text rather than as a file (e.g. a BEIR corpus entry)."""

    path: str
    title: str
    text: str


@dataclass(frozen=True, slots=True)
class Moved:
    old_path: str
    doc: NewDocument


@dataclass(frozen=True, slots=True)
class Touched:
    """Same bytes, new metadata (e.g. after `touch`): only the stamp is recorded, by the
    consumer: producers never write to the store."""

    path: str
    stamp: FileStamp


@dataclass(frozen=True, slots=True)
class Prepared:
    doc: NewDocument
    chunks: list[NewChunk]
    existed: bool
    warnings: tuple[str, ...]


_Item = Prepared | Moved | Touched | FileResult


class Indexer:
    def __init__(
        self,
        store: Store,
        embedder: Callable[[], Embedder],
        settings: Settings,
        tokenizer: Callable[[], Tokenizer],
        metrics: Metrics | None = None,
        data_dir: Path | None = None,
    ) -> None:
        self._store = store
        self._embedder = embedder
        self._tokenizer = tokenizer
        self._settings = settings
        self._embed_metrics = metrics.ingest_embed if metrics is not None else None
        self._commit_metrics = metrics.commit if metrics is not None else None
        self._rules = WalkRules(
            ignore=frozenset(settings.ingest.ignore), include_hidden=settings.ingest.include_hidden
        )
        self._data_dir = data_dir

    # -- public entry points -------------------------------------------------------------

    def sync_sources(
        self, sources: Sequence[str], progress: ProgressFn | None = None
    ) -> IndexReport:
        """Bring the index in line with the files under `sources` (absolute paths)."""
        started = time.perf_counter()
        report = IndexReport()
        existing = {d.path: d for d in self._store.documents()}
        candidates: list[Candidate] = []
        seen: set[str] = set()
        data_dir = dir_key(self._data_dir) if self._data_dir is not None else None
        rules = replace(
            self._rules,
            excluded=frozenset(self._store.excluded()),
            skip_dirs=frozenset([data_dir] if data_dir else []),
        )
        for source in sources:
            for item in walk_source(source, rules):
                if item.path in seen:
                    continue  # under two nested sources (after remove + add): counted once
                seen.add(item.path)
                if isinstance(item, Candidate):
                    candidates.append(item)
                else:
                    report.results.append(_unusable_result(item, existing))
        # Known files that are no longer indexable leave the index in one transaction.
        unusable = [r.path for r in report.results if r.outcome is FileOutcome.REMOVED]
        if unusable:
            self._store.delete_documents(unusable)
        gone = {p for p in existing if p not in seen and any(is_under(p, s) for s in sources)}
        # A new path whose bytes equal a vanished document's is that document, moved.
        moved_from = {existing[p].content_hash: existing[p] for p in sorted(gone)}
        # A file whose size, mtime and inode are as indexed is unchanged without being read:
        # decided here, it costs no trip through the producer thread (most files of a sync).
        todo: list[Candidate] = []
        for c in candidates:
            row = existing.get(c.path)
            if row is not None and row.stamp == c.stamp:
                report.results.append(FileResult(c.path, FileOutcome.UNCHANGED))
            else:
                todo.append(c)
        if todo:
            # Load on this thread: native modules imported for the first time inside the
            # producer thread have crashed the process (seen with onnxruntime).
            self._tokenizer()
            items = ((c, existing.get(c.path)) for c in todo)
            prepare = functools.partial(
                self._prepare_file, moved_from=moved_from, detail=_detailed(progress)
            )
            self._run(items, len(todo), prepare, report, progress)
        gone -= {r.moved_from for r in report.results if r.moved_from is not None}
        if gone:
            self._store.delete_documents(sorted(gone))
            report.results.extend(
                FileResult(p, FileOutcome.REMOVED, "file is gone") for p in sorted(gone)
            )
        report.seconds = time.perf_counter() - started
        report.generation = self._store.generation()
        return report

    def index_texts(
        self, docs: Iterable[TextDocument], total: int, progress: ProgressFn | None = None
    ) -> IndexReport:
        started = time.perf_counter()
        report = IndexReport()
        existing = {d.path: d for d in self._store.documents()}
        self._tokenizer()  # on this thread, see sync_sources
        items = ((d, existing.get(d.path)) for d in docs)
        prepare = functools.partial(self._prepare_text, detail=_detailed(progress))
        self._run(items, total, prepare, report, progress)
        report.seconds = time.perf_counter() - started
        report.generation = self._store.generation()
        return report

    # -- the pipeline --------------------------------------------------------------------

    def _run(
        self,
        items: Iterator[tuple[_T, DocumentRow | None]],
        total: int,
        prepare: Callable[[_T, DocumentRow | None, threading.Event], _Item],
        report: IndexReport,
        progress: ProgressFn | None,
    ) -> None:
        timeout_s = self._settings.ingest.file_timeout_s
        feed: Feed[tuple[_T, DocumentRow | None], _Item] = Feed(
            items,
            lambda pair, cancel: prepare(pair[0], pair[1], cancel),
            functools.partial(_item_bytes, dimension=self._store.dimension),
            max_items=_QUEUE_DEPTH,
            max_bytes=MemoryBudget.from_settings(self._settings).ingest_queue_bytes,
            timeout_s=timeout_s,
        )
        embedding = _EmbedTally()
        detail = _detailed(progress)
        settled = 0

        def tell(results: list[FileResult]) -> None:
            nonlocal settled
            report.results.extend(results)
            for r in results:
                settled += 1
                if detail is not None and r.chunks:
                    detail.chunks(r.chunks)
                if progress:
                    progress(settled, total, r.path)

        if detail is not None:
            detail(0, total, "")  # the total from the start: "0/491", not "0/?"
        group: list[Prepared] = []
        try:
            while not isinstance(item := feed.get(), Done):
                if isinstance(item, TimedOut):
                    (stuck, row), reason = item.item, _timeout_reason(timeout_s)
                    item = _failed(stuck.path, row, reason)
                if isinstance(item, Prepared):
                    group.append(item)
                    if sum(len(p.chunks) for p in group) >= _GROUP_CHUNKS or feed.empty():
                        tell(self._commit_group(group, embedding, detail))
                        group = []
                else:
                    tell([self._apply(item)])
            tell(self._commit_group(group, embedding, detail))
        finally:
            # Never wait for the producer: it may be deep in one big file, and Ctrl-C must
            # act now. Cancelled, it stops at its next check and can queue nothing more.
            feed.close()
            report.embedding = embedding.stats()
            report.embedded_chunks += embedding.texts

    def _apply(self, item: Moved | Touched | FileResult) -> FileResult:
        """Record what needs no embedding: a move, a new stamp, a removal."""
        if isinstance(item, Moved):
            self._store.move_document(item.old_path, item.doc)
            return FileResult(
                item.doc.path,
                FileOutcome.RENAMED,
                f"moved from {item.old_path}",
                moved_from=item.old_path,
            )
        if isinstance(item, Touched):
            self._store.update_stamp(item.path, item.stamp)
            return FileResult(item.path, FileOutcome.UNCHANGED)
        if item.outcome is FileOutcome.REMOVED:
            self._store.delete_documents([item.path])
        return item

    def _commit_group(
        self, group: list[Prepared], embedding: _EmbedTally, detail: DetailedProgress | None
    ) -> list[FileResult]:
        if not group:
            return []
        wanted = {c.text_hash: c.text for p in group for c in p.chunks}
        missing = sorted(self._store.missing_vectors(wanted))
        vectors: dict[str, bytes] = {}
        label = group[0].doc.path if len(group) == 1 else f"{len(group)} files"
        for at in range(0, len(missing), EMBED_UNIT):
            unit = missing[at : at + EMBED_UNIT]
            matrix = _timed(
                self._embed_metrics, embedding.embed, self._embedder(), [wanted[h] for h in unit]
            )
            vectors.update((h, matrix[i].tobytes()) for i, h in enumerate(unit))
            if detail is not None:
                detail.step(label, "embedding", at + len(unit), len(missing))
        results = []
        for p in group:
            mine = {c.text_hash: vectors[c.text_hash] for c in p.chunks if c.text_hash in vectors}
            _timed(self._commit_metrics, self._store.replace_document, p.doc, p.chunks, mine)
            outcome = FileOutcome.UPDATED if p.existed else FileOutcome.ADDED
            results.append(
                FileResult(p.doc.path, outcome, chunks=len(p.chunks), warnings=p.warnings)
            )
        return results

    # -- preparing one item --------------------------------------------------------------

    def _prepare_file(
        self,
        cand: Candidate,
        row: DocumentRow | None,
        cancel: threading.Event,
        moved_from: dict[str, DocumentRow],
        detail: DetailedProgress | None = None,
    ) -> _Item:
        # Files with the indexed stamp never get here: sync_sources reports them unchanged.
        path, stamp = cand.path, cand.stamp
        max_bytes = int(self._settings.ingest.max_file_mb * 1024 * 1024)
        if stamp.size > max_bytes:
            return _keep_or_skip(
                path,
                row,
                f"larger than ingest.max_file_mb ({self._settings.ingest.max_file_mb:g} MB)",
                SkipReason.TOO_LARGE,
            )
        try:
            with open(path, "rb") as fh:
                data = fh.read(max_bytes + 1)
        except OSError as exc:
            return _failed(path, row, f"cannot read: {exc.strerror}")
        content_hash = hashlib.sha256(data).hexdigest()
        if row is not None and row.content_hash == content_hash:
            return Touched(path, stamp)
        old = moved_from.pop(content_hash, None) if row is None and data else None
        if old is not None:  # relink: no parsing, no chunking, no embedding
            return Moved(old.path, NewDocument(path, old.title, stamp, content_hash, cand.source))
        if not data:
            return _keep_or_skip(path, row, "empty file", SkipReason.NO_TEXT)
        try:
            loaded = load_document(data, Path(path))
        except EmptyDocumentError as exc:
            return _keep_or_skip(path, row, exc.reason, SkipReason.NO_TEXT)
        except LoaderError as exc:
            return _failed(path, row, exc.reason)
        del data  # the text is all that is needed from here on: a big file's bytes can go
        doc = NewDocument(path, loaded.title, stamp, content_hash, cand.source)
        return self._chunked(doc, loaded, row, cancel, detail)

    def _prepare_text(
        self,
        item: TextDocument,
        row: DocumentRow | None,
        cancel: threading.Event,
        detail: DetailedProgress | None = None,
    ) -> Prepared | FileResult:
        content_hash = hashlib.sha256(item.text.encode()).hexdigest()
        if row is not None and row.content_hash == content_hash:
            return FileResult(item.path, FileOutcome.UNCHANGED)
        stamp = FileStamp(size=len(item.text), mtime_ns=0, inode=0)
        doc = NewDocument(item.path, item.title, stamp, content_hash, None)
        loaded = LoadedDocument(text=item.text, title=item.title)
        return self._chunked(doc, loaded, row, cancel, detail)

    def _chunked(
        self,
        doc: NewDocument,
        loaded: LoadedDocument,
        row: DocumentRow | None,
        cancel: threading.Event,
        detail: DetailedProgress | None = None,
    ) -> Prepared | FileResult:
        cfg = self._settings.chunking
        # Called from the producer thread: the bar's update takes its own lock.
        on_chars = (
            functools.partial(detail.step, doc.path, "chunking") if detail is not None else None
        )
        drafts = chunk_document(
            loaded,
            self._tokenizer(),
            cfg.size_tokens,
            cfg.overlap_tokens,
            cancel=cancel,
            on_chars=on_chars,
        )
        if not drafts:
            return _keep_or_skip(doc.path, row, "no text", SkipReason.NO_TEXT)
        chunks = [
            NewChunk(
                ordinal=d.ordinal,
                text=d.text,
                text_hash=hashlib.sha256(d.text.encode()).hexdigest(),
                start=d.start,
                end=d.end,
                page=d.page,
                tokens=d.token_count,
            )
            for d in drafts
        ]
        return Prepared(doc, chunks, existed=row is not None, warnings=loaded.warnings)


class _EmbedTally:
    """Embeds for one run and reports the embedder's batching over that run."""

    def __init__(self) -> None:
        self._embedder: Embedder | None = None
        self._before: EmbeddingStats | None = None
        self.texts = 0  # embedded so far in this run

    def embed(self, embedder: Embedder, texts: list[str]) -> Vectors:
        if self._embedder is None:
            self._embedder, self._before = embedder, stats_of(embedder)
        vectors = embedder.embed(texts)
        self.texts += len(texts)
        return vectors

    def stats(self) -> EmbeddingStats | None:
        if self._embedder is None or self._before is None:
            return None
        after = stats_of(self._embedder)
        return run_stats(self._before, after) if after is not None else None


def _timed(observed: OperationMetrics | None, call: Callable[..., _R], *args: Any) -> _R:
    """Run `call`, observed in the metrics (a failure counts as an error)."""
    if observed is None:
        return call(*args)
    started = time.perf_counter()
    try:
        result = call(*args)
    except Exception:
        observed.failed(time.perf_counter() - started)
        raise
    observed.observe(time.perf_counter() - started)
    return result


def _item_bytes(item: _Item, dimension: int) -> int:
    """About what a queued item holds in memory until it is committed."""
    if not isinstance(item, Prepared):
        return _CHUNK_OVERHEAD
    per_chunk = _CHUNK_OVERHEAD + 4 * dimension
    return sum(sys.getsizeof(c.text) + per_chunk for c in item.chunks)


def _detailed(progress: ProgressFn | None) -> DetailedProgress | None:
    return progress if isinstance(progress, DetailedProgress) else None


def _timeout_reason(timeout_s: float) -> str:
    return f"took longer than ingest.file_timeout_s ({timeout_s:g} s) to read and chunk"


def _unusable_result(item: Unusable, existing: dict[str, DocumentRow]) -> FileResult:
    row = existing.get(item.path)
    if item.skip is not None:
        return _keep_or_skip(item.path, row, item.reason, item.skip)
    return _failed(item.path, row, item.reason)


def _failed(path: str, row: DocumentRow | None, reason: str) -> FileResult:
    if row is not None:
        reason += "; the previously indexed version is kept"
    return FileResult(path, FileOutcome.FAILED, reason)


def _keep_or_skip(path: str, row: DocumentRow | None, reason: str, skip: SkipReason) -> FileResult:
    # A document that now has nothing to index must not keep answering with its old text.
    if row is not None:
        return FileResult(path, FileOutcome.REMOVED, f"{reason}; removed from the index", skip=skip)
    return FileResult(path, FileOutcome.SKIPPED, reason, skip=skip)
