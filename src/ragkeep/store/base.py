"""What a storage backend implements. Everything above this line speaks only these protocols.

A backend holds the whole index: documents, chunks, vectors, sources, flags, the persistent
result cache, and a generation number plus a state token that every commit changes. It
provides the two retrievers over a read snapshot (lexical: BM25; dense: inner product), the
writer lock that serialises add/sync/remove across processes, and its own consistency
checks for `doctor`. SQL, migrations and the lock's mechanism stay inside the backend.

Ranking conventions every backend follows: scores are higher-is-better, and a retriever
asked for `n` results returns every result that ties with the n-th as well, so the caller can
order ties by location (`search/ordering.py`) and results never depend on insertion order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ragkeep.store.records import (
    ChunkRow,
    DocumentRow,
    ExportedDocument,
    FileStamp,
    NewChunk,
    NewDocument,
    OrderKey,
)

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np
    import numpy.typing as npt

    from ragkeep.config.settings import SearchSettings
    from ragkeep.models import Check, DocumentInfo, UnusedVectors
    from ragkeep.models.backups import BackupContents
    from ragkeep.models.search import LexicalQuery, Phrase

Ranking = list[tuple[int, float]]  # (chunk id, score), best first
EmbedTexts = Callable[[Sequence[str]], "npt.NDArray[np.float32]"]


class StoreError(Exception):
    """The store cannot be used as asked; the message says why and what to do."""


class StoreBusyError(StoreError):
    """Another writer held the lock for longer than the configured deadline."""


class StoreFullError(StoreError):
    """A write needed space the disk (or `store.max_size_mb`) does not have. Nothing was
    half-written: the transaction rolled back, so every document is in its old or new version."""


class StoreReadOnlyError(StoreError):
    """The index cannot be written: its file or folder is read-only, or on a read-only disk."""


class StoreCorruptError(StoreError):
    """The database file is damaged: SQLite found pages it cannot read."""


class BackupError(StoreError):
    """A backup that cannot be made, read, trusted or restored; the message says why."""


class NotAnIndexError(StoreCorruptError):
    """The file is not a ragkeep index: not SQLite at all, or a SQLite database of something
    else (which ragkeep leaves untouched)."""


@dataclass(frozen=True, slots=True)
class StoreCounts:
    documents: int
    chunks: int
    generation: int


@dataclass(frozen=True, slots=True)
class Removal:
    """Everything `remove` changes, applied in one transaction."""

    documents: Sequence[str]  # document paths that leave the index
    sources: Sequence[str]  # sources that stop being synced
    exclude: Sequence[str]  # paths inside remaining sources that sync must skip from now on


@dataclass(frozen=True, slots=True)
class DenseOptions:
    ann: bool = False  # answer from the approximate index when it matches the snapshot
    ann_min_vectors: int = 50000  # below this many chunks exact search is used regardless
    # Defaults equal the settings' (search.ann_wait_s, search.derived_wait_s).
    ann_wait_s: float = 30.0  # closing waits this long for a background ANN build
    derived_wait_s: float = 5.0  # a search waits this long for another thread's load

    @classmethod
    def from_settings(cls, search: SearchSettings, ann: bool) -> DenseOptions:
        return cls(ann, search.ann_min_vectors, search.ann_wait_s, search.derived_wait_s)


@dataclass(frozen=True, slots=True)
class DenseResult:
    ranking: Ranking
    final: bool  # False: an exact stand-in while a derived index is rebuilt (do not cache)


@dataclass(frozen=True, slots=True)
class CachedRow:
    value: str
    created_at: float
    used_at: float


@dataclass(frozen=True, slots=True)
class CacheWrite:
    """One result-cache write, plus the housekeeping that rides along with it."""

    key: str
    generation: int
    value: str
    now: float
    touched: frozenset[str]  # keys read since the last write: refresh their recency
    sweep: CacheSweep | None = None  # also expire and evict now


@dataclass(frozen=True, slots=True)
class CacheSweep:
    ttl_s: float  # 0: entries never expire
    max_entries: int
    max_bytes: int


@dataclass(frozen=True, slots=True)
class SweepResult:
    expired: int = 0
    evicted: int = 0


class LexicalIndex(Protocol):
    """BM25 over chunk texts, inside one snapshot."""

    def search(self, query: LexicalQuery, n: int) -> Ranking:
        """The best n chunks holding every required phrase and any scored one, plus every
        chunk tying with the n-th. A chunk scores for each scored phrase it holds."""
        ...

    def holding(self, phrases: Sequence[Phrase], ids: Sequence[int]) -> set[int]:
        """Those of `ids` whose chunk holds every one of `phrases` (a dense search's
        candidates, filtered by the user's quoted phrases)."""
        ...

    def term_chunks(self, term: str, at_most: int) -> int:
        """How many chunks contain `term` (after the index's stemming), counted up to
        `at_most`: the count may stop early, so a common term costs no more than a rare one."""
        ...


class DenseIndex(Protocol):
    """Inner product over L2-normalised chunk vectors, inside one snapshot."""

    def search(self, query: npt.NDArray[np.float32], n: int) -> DenseResult:
        """The best n chunks, plus every chunk tying with the n-th."""
        ...


class ReadSnapshot(Protocol):
    """One committed state: every call sees the same data while a writer commits."""

    @property
    def generation(self) -> int: ...

    @property
    def state_id(self) -> str:
        """A token no other committed state of this or any other index ever had."""
        ...

    @property
    def lexical(self) -> LexicalIndex: ...

    @property
    def dense(self) -> DenseIndex: ...

    def chunk_count(self) -> int: ...

    def chunk_rows(self, ids: Sequence[int]) -> dict[int, ChunkRow]: ...

    def document_chunks(self, path: str) -> list[ChunkRow]:
        """A document's chunks in order (empty for an unknown path)."""
        ...

    def order_keys(self, ids: Sequence[int]) -> dict[int, OrderKey]:
        """(document path, chunk ordinal) per chunk id: how ties are ordered."""
        ...

    def cached_result(self, key: str) -> CachedRow | None: ...


class CacheTable(Protocol):
    """The persistent result-cache tier and its counters, shared by every process.

    Writes are best-effort for the caller: a busy or read-only store raises StoreError."""

    def put(self, write: CacheWrite) -> SweepResult:
        """Store an entry, refresh touched keys, drop entries of older generations, and run
        the sweep if one is asked for; all in one short transaction."""
        ...

    def clear(self) -> int: ...

    def entries(self) -> tuple[int, int]:
        """(entries, bytes) stored."""
        ...

    def add_stats(self, deltas: dict[str, int]) -> None: ...

    def stats(self) -> dict[str, int]: ...

    def reset_stats(self) -> None: ...


class Store(Protocol):
    model_id: str
    dimension: int

    @property
    def location(self) -> str:
        """Where the index lives, for people (no secrets)."""
        ...

    @property
    def cache(self) -> CacheTable: ...

    def snapshot(self) -> AbstractContextManager[ReadSnapshot]: ...

    def writer_lock(self, on_wait: Callable[[], None] | None) -> AbstractContextManager[None]:
        """One add/sync/remove at a time per index, across processes: a second one waits
        (calling `on_wait` once; `writer_holder()` then says for whom) instead of failing or
        duplicating the work. Past `store.writer_timeout_s` it raises StoreBusyError naming
        the holder. Never called inside a write transaction (the lock order)."""
        ...

    def writer_holder(self) -> str | None:
        """Who holds the writer lock, for people (process, host, command, since when), or
        None when it is free or the holder is not known (yet)."""
        ...

    def configure_dense(self, options: DenseOptions) -> None: ...

    def close(self) -> None: ...

    # -- identity and counts -------------------------------------------------------------

    def schema_version(self) -> int: ...

    def generation(self) -> int: ...

    def state_id(self) -> str: ...

    def counts(self) -> StoreCounts: ...

    def size_bytes(self) -> int: ...

    # -- backups and re-embedding (docs/recovery.md) -------------------------------------

    def copy_to(self, target: Path) -> BackupContents:
        """Write a consistent copy of the committed index to the file `target` while reads
        and writes go on; the copy holds exactly the commits before it started."""
        ...

    def copy_schema_version(self) -> int:
        """The schema version of the copies `copy_to` writes: the newest `restore_from` reads.
        (Copies are SQLite index files on every backend, restorable on any of them.)"""
        ...

    def restore_from(self, source: Path, migrate: bool = True) -> int:
        """Replace the whole index by the copy at `source` in one step (readers see the old
        or the new one, never a mix), under a generation and state token no earlier state
        had; returns the generation. The caller holds the writer lock. With `migrate`, a copy
        of an older schema is upgraded first."""
        ...

    def indexed_model(self) -> tuple[str, int]:
        """The (model id, dimension) the stored vectors were made with; differs from
        `model_id` only in a store opened to re-embed."""
        ...

    def export_document(self, path: str) -> ExportedDocument | None:
        """A document with its chunks and vectors, as `replace_document` takes them (inside a
        snapshot, from that snapshot): how an index moves between stores."""
        ...

    def chunk_texts(self, after: str, n: int) -> list[tuple[str, str]]:
        """The next `n` distinct chunk texts after text hash `after`, as (hash, text), in
        hash order."""
        ...

    def stage_vectors(self, tag: str, vectors: dict[str, bytes]) -> None:
        """Store vectors by text hash under `tag`, invisible to searches."""
        ...

    def drop_vectors(self, tag: str) -> None: ...

    def switch_model(self, tag: str) -> int:
        """In one transaction: the vectors staged under `tag` become `model_id`'s, every
        other vector goes, the index records `model_id`; returns the new generation."""
        ...

    # -- sources -------------------------------------------------------------------------

    def sources(self) -> list[str]: ...

    def excluded(self) -> list[str]: ...

    def add_sources(self, sources: Sequence[str], include: Sequence[str]) -> None:
        """Register sources and stop excluding the `include` paths, in one transaction."""
        ...

    def apply_removal(self, removal: Removal) -> int:
        """Apply a removal in one transaction; returns the generation after it."""
        ...

    # -- documents and vectors -----------------------------------------------------------

    def document(self, path: str) -> DocumentRow | None: ...

    def documents(self) -> list[DocumentRow]: ...

    def document_infos(self) -> list[DocumentInfo]: ...

    def missing_vectors(self, hashes: Iterable[str]) -> set[str]: ...

    def replace_document(
        self, doc: NewDocument, chunks: Sequence[NewChunk], vectors: dict[str, bytes]
    ) -> int:
        """Store a document's new version atomically (refusing chunks without a vector);
        returns the new generation."""
        ...

    def move_document(self, old_path: str, doc: NewDocument) -> int: ...

    def update_stamp(self, path: str, stamp: FileStamp) -> None: ...

    def delete_documents(self, paths: Sequence[str]) -> int: ...

    def vector_count(self) -> int: ...

    def unreferenced_vectors(self) -> UnusedVectors:
        """The vectors no chunk refers to (any model): how many, and their bytes."""
        ...

    def collect_garbage(self) -> UnusedVectors:
        """Delete the vectors no chunk refers to, in one transaction; returns what went.
        Results do not change."""
        ...

    # -- operation statistics (`ragkeep health` without a server) --------------------------

    def record_op_stats(
        self, minute: int, sums: Mapping[str, int], maxima: Mapping[str, int]
    ) -> None:
        """Add `sums` to the minute's counters and raise its `maxima`; forget minutes older
        than a week. Best-effort for the caller: a busy store raises StoreError."""
        ...

    def op_stats(self, since_minute: int) -> list[tuple[int, str, int]]:
        """(minute, name, value) rows recorded from `since_minute` on."""
        ...

    # -- flags and maintenance -----------------------------------------------------------

    def persisted_flags(self) -> dict[str, bool]: ...

    def set_flag(self, name: str, enabled: bool | None) -> None: ...

    def check(self, repair: bool, embed: EmbedTexts) -> list[Check]:
        """Every consistency check of this backend (and its derived files), repairing what
        can be repaired when asked."""
        ...
