"""`ragkeep migrate --to URL`: copy the index to another store (SQLite file or PostgreSQL,
either way round) without re-embedding, then prove the copy answers as the original does.

The copy runs under both stores' writer locks, so no add/sync/remove can slip in between
the snapshot copied and the verification. Verification: equal document and chunk counts,
equal documents (paths and content hashes), doctor's checks on the copy, and a fixed query
set whose BM25 and dense top 10 must agree between the two (by document path and chunk
position: chunk ids differ between stores). The queries are `backup.validation_queries`
plus the first words of a fixed sample of chunk texts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ragkeep.models import Check
from ragkeep.models.backups import ValidationReport
from ragkeep.models.migration import MigrationReport
from ragkeep.search.terms import lexical_query
from ragkeep.services.validation import read_queries
from ragkeep.store.base import Store
from ragkeep.store.transfer import Progress, copy_index
from ragkeep.store.url import without_password

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from ragkeep.embed.base import Embedder

QUERY_K = 10
SAMPLED_QUERIES = 30  # chunk texts whose first words become queries
PREFIX_WORDS = 8
# Equal contents rank alike on every backend; float sums in another order can still swap
# two results that tie to the last bits at the cut-off, so the bar is just under 1.
MIN_AGREEMENT = 0.95

WaitFn = Callable[[], None]
OrderKeys = list[list[tuple[str, int]]]


class MigrationService:
    def __init__(
        self,
        store: Store,
        embedder: Callable[[], Embedder],
        open_target: Callable[[str], Store],
        queries_file: str,
    ) -> None:
        """`open_target` opens (creating) the store a URL names, for this index's model;
        `queries_file` is backup.validation_queries (empty: none)."""
        self._store = store
        self._embedder = embedder
        self._open_target = open_target
        self._queries_file = queries_file

    def _embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        return self._embedder().embed(texts)

    def migrate_to(
        self, url: str, progress: Progress | None = None, on_wait: WaitFn | None = None
    ) -> MigrationReport:
        started = time.monotonic()
        target = self._open_target(url)
        try:
            with self._store.writer_lock(on_wait), target.writer_lock(on_wait):
                copied = copy_index(self._store, target, progress)
                checks = self._verify(target)
            return MigrationReport(
                source=self._store.location,
                target=target.location,
                target_url=without_password(url),
                documents=copied.documents,
                chunks=copied.chunks,
                generation=copied.generation,
                seconds=time.monotonic() - started,
                verification=ValidationReport(checks),
            )
        finally:
            target.close()

    def _verify(self, target: Store) -> list[Check]:
        source = self._store
        ours, theirs = source.counts(), target.counts()
        checks = [
            Check(
                "the copy holds as many documents and chunks",
                (ours.documents, ours.chunks) == (theirs.documents, theirs.chunks),
                f"{theirs.documents} documents, {theirs.chunks} chunks "
                f"(the original: {ours.documents}, {ours.chunks})",
            ),
            _same_documents(source, target),
        ]
        checks += [c for c in target.check(False, self._embed) if not c.ok]
        queries = read_queries(self._queries_file) + _sampled_queries(source)
        if queries:
            vectors = self._embed(queries)
            for mode in ("bm25", "dense"):
                before = _top_keys(source, mode, queries, vectors)
                after = _top_keys(target, mode, queries, vectors)
                checks.append(_agreement(mode, before, after))
        return checks


def _same_documents(source: Store, target: Store) -> Check:
    ours = {(d.path, d.content_hash, d.chunk_count) for d in source.documents()}
    theirs = {(d.path, d.content_hash, d.chunk_count) for d in target.documents()}
    differ = sorted(p for p, _, _ in ours ^ theirs)
    detail = "ok" if not differ else f"{len(differ)} differ: {', '.join(differ[:5])}"
    return Check("the copy holds the same documents", not differ, detail)


def _sampled_queries(store: Store) -> list[str]:
    texts = [t for _, t in store.chunk_texts("", SAMPLED_QUERIES)]
    return [q for q in (" ".join(t.split()[:PREFIX_WORDS]) for t in texts) if q]


def _top_keys(
    store: Store, mode: str, queries: Sequence[str], vectors: npt.NDArray[np.float32]
) -> OrderKeys:
    """Each query's top QUERY_K as (path, ordinal), ties cut by location as searches do."""
    out: OrderKeys = []
    with store.snapshot() as snap:
        for i, text in enumerate(queries):
            if mode == "bm25":
                ranking = snap.lexical.search(lexical_query(text), QUERY_K)
            else:
                ranking = snap.dense.search(vectors[i], QUERY_K).ranking
            keys = snap.order_keys([cid for cid, _ in ranking])
            ordered = sorted((-score, keys[cid]) for cid, score in ranking)
            out.append([key for _, key in ordered[:QUERY_K]])
    return out


def _agreement(mode: str, before: OrderKeys, after: OrderKeys) -> Check:
    shares = [
        len(set(a) & set(b)) / len(b) if b else float(not a)
        for a, b in zip(after, before, strict=True)
    ]
    mean = sum(shares) / len(shares)
    detail = (
        f"{mean:.1%} of the top {QUERY_K} agree over {len(shares)} queries "
        f"(at least {MIN_AGREEMENT:.0%} needed)"
    )
    return Check(f"{mode} results agree", mean >= MIN_AGREEMENT, detail)
