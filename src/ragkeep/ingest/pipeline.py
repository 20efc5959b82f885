"""The write path: discover → load → chunk → embed → commit.

Reading and parsing run in a producer thread feeding a bounded queue; the calling thread embeds
and commits. Each document is committed in its own transaction, so an interruption at any
point leaves every file fully indexed in its new version or untouched in its old one.
"""

from __future__ import annotations

import functools
import hashlib
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

from ragkeep.config.settings import Settings
from ragkeep.embed.base import Embedder, Tokenizer
from ragkeep.ingest.chunking import chunk_document
from ragkeep.ingest.discover import Candidate, Unusable, WalkRules, walk_source
from ragkeep.ingest.loaders import EmptyDocumentError, LoaderError, load_document
from ragkeep.ingest.paths import is_under
from ragkeep.models import FileOutcome, FileResult, IndexReport, LoadedDocument, SkipReason
from ragkeep.store.base import Store
from ragkeep.store.records import DocumentRow, FileStamp, NewChunk, NewDocument

ProgressFn = Callable[[int, int, str], None]
_T = TypeVar("_T")

_QUEUE_DEPTH = 64  # prepared documents waiting for the embedder: bounds memory
_GROUP_CHUNKS = 128  # chunks embedded together across documents, for full batches


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
class Prepared:
    doc: NewDocument
    chunks: list[NewChunk]
    existed: bool
    warnings: tuple[str, ...]


class Indexer:
    def __init__(
        self,
        store: Store,
        embedder: Callable[[], Embedder],
        settings: Settings,
        tokenizer: Callable[[], Tokenizer],
    ) -> None:
        self._store = store
        self._embedder = embedder
        self._tokenizer = tokenizer
        self._settings = settings
        self._rules = WalkRules(
            ignore=frozenset(settings.ingest.ignore), include_hidden=settings.ingest.include_hidden
        )

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
        rules = replace(self._rules, excluded=frozenset(self._store.excluded()))
        for source in sources:
            for item in walk_source(source, rules):
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
        if any(
            existing.get(c.path) is None or existing[c.path].stamp != c.stamp for c in candidates
        ):
            # Load on this thread: native modules imported for the first time inside the
            # producer thread have crashed the process (seen with onnxruntime).
            self._tokenizer()
        items = ((c, existing.get(c.path)) for c in candidates)
        prepare = functools.partial(self._prepare_file, moved_from=moved_from)
        self._run(items, len(candidates), prepare, report, progress)
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
        self._run(items, total, self._prepare_text, report, progress)
        report.seconds = time.perf_counter() - started
        report.generation = self._store.generation()
        return report

    # -- the pipeline --------------------------------------------------------------------

    def _run(
        self,
        items: Iterator[tuple[_T, DocumentRow | None]],
        total: int,
        prepare: Callable[[_T, DocumentRow | None], Prepared | Moved | FileResult],
        report: IndexReport,
        progress: ProgressFn | None,
    ) -> None:
        q: queue.Queue[Prepared | Moved | FileResult | BaseException | None] = queue.Queue(
            _QUEUE_DEPTH
        )
        stop = threading.Event()

        def produce() -> None:
            try:
                for item, row in items:
                    if stop.is_set():
                        return
                    q.put(prepare(item, row))
            except BaseException as exc:  # handed to the consumer, which re-raises it
                q.put(exc)
            finally:
                q.put(None)

        producer = threading.Thread(target=produce, name="ragkeep-prepare", daemon=True)
        producer.start()
        done = 0
        group: list[Prepared] = []
        try:
            while True:
                item = q.get()
                if isinstance(item, BaseException):
                    raise item
                if item is None:
                    break
                done += 1
                if isinstance(item, Moved):
                    self._store.move_document(item.old_path, item.doc)
                    item = FileResult(
                        item.doc.path,
                        FileOutcome.RENAMED,
                        f"moved from {item.old_path}",
                        moved_from=item.old_path,
                    )
                    report.results.append(item)
                elif isinstance(item, FileResult):
                    if item.outcome is FileOutcome.REMOVED:
                        self._store.delete_documents([item.path])
                    report.results.append(item)
                else:
                    group.append(item)
                    if sum(len(p.chunks) for p in group) >= _GROUP_CHUNKS or q.empty():
                        report.results.extend(self._commit_group(group))
                        group = []
                if progress:
                    progress(
                        done, total, item.doc.path if isinstance(item, Prepared) else item.path
                    )
            report.results.extend(self._commit_group(group))
        finally:
            stop.set()
            while producer.is_alive():  # unblock a producer waiting on a full queue
                try:
                    q.get_nowait()
                except queue.Empty:
                    producer.join(0.05)

    def _commit_group(self, group: list[Prepared]) -> list[FileResult]:
        if not group:
            return []
        wanted = {c.text_hash: c.text for p in group for c in p.chunks}
        missing = self._store.missing_vectors(wanted)
        vectors: dict[str, bytes] = {}
        if missing:
            order = sorted(missing)
            matrix = self._embedder().embed([wanted[h] for h in order])
            vectors = {h: matrix[i].tobytes() for i, h in enumerate(order)}
        results = []
        for p in group:
            mine = {c.text_hash: vectors[c.text_hash] for c in p.chunks if c.text_hash in vectors}
            self._store.replace_document(p.doc, p.chunks, mine)
            outcome = FileOutcome.UPDATED if p.existed else FileOutcome.ADDED
            results.append(
                FileResult(p.doc.path, outcome, chunks=len(p.chunks), warnings=p.warnings)
            )
        return results

    # -- preparing one item --------------------------------------------------------------

    def _prepare_file(
        self, cand: Candidate, row: DocumentRow | None, moved_from: dict[str, DocumentRow]
    ) -> Prepared | Moved | FileResult:
        path, stamp = cand.path, cand.stamp
        if row is not None and row.stamp == stamp:
            return FileResult(path, FileOutcome.UNCHANGED)
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
            self._store.update_stamp(path, stamp)
            return FileResult(path, FileOutcome.UNCHANGED)
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
        doc = NewDocument(path, loaded.title, stamp, content_hash, cand.source)
        return self._chunked(doc, loaded, row)

    def _prepare_text(self, item: TextDocument, row: DocumentRow | None) -> Prepared | FileResult:
        content_hash = hashlib.sha256(item.text.encode()).hexdigest()
        if row is not None and row.content_hash == content_hash:
            return FileResult(item.path, FileOutcome.UNCHANGED)
        stamp = FileStamp(size=len(item.text), mtime_ns=0, inode=0)
        doc = NewDocument(item.path, item.title, stamp, content_hash, None)
        return self._chunked(doc, LoadedDocument(text=item.text, title=item.title), row)

    def _chunked(
        self, doc: NewDocument, loaded: LoadedDocument, row: DocumentRow | None
    ) -> Prepared | FileResult:
        cfg = self._settings.chunking
        drafts = chunk_document(loaded, self._tokenizer(), cfg.size_tokens, cfg.overlap_tokens)
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
