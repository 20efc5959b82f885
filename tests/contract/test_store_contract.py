"""Store behaviour every backend must have: identity, atomic commits, generations and state
tokens, sources, flags, vectors, snapshots and the writer lock."""

from __future__ import annotations

import threading
import time

import pytest

from ragkeep.models import LexicalQuery, UnusedVectors
from ragkeep.store import Removal, Store, StoreError

from contract_helpers import MODEL, OpenStore, chunk, doc, put, vec


def test_a_new_store_is_empty_at_generation_zero(store: Store) -> None:
    counts = store.counts()
    assert (counts.documents, counts.chunks, counts.generation) == (0, 0, 0)
    assert store.generation() == 0 and store.schema_version() >= 1
    assert store.model_id == MODEL and store.sources() == [] and store.documents() == []
    assert store.location


def test_opening_with_another_model_fails_clearly(open_backend: OpenStore) -> None:
    open_backend().close()
    with pytest.raises(StoreError, match=f"was built with embedding model '{MODEL}'"):
        open_backend(model="other-model")
    with pytest.raises(StoreError, match="4 dims"):
        open_backend(dim=8)


def test_replace_is_atomic_and_bumps_generation(store: Store) -> None:
    gen = put(store, "/a", {"alpha one": vec(1), "alpha two": vec(0, 1)})
    assert gen == 1 == store.generation()
    # A new version whose vectors are missing must not replace the old one, even partially.
    with pytest.raises(StoreError, match="no vector"):
        store.replace_document(doc("/a", "h2"), [chunk(0, "beta")], {})
    with store.snapshot() as snap:
        found = snap.lexical.search(LexicalQuery.words("alpha"), 10)
        rows = snap.chunk_rows([cid for cid, _ in found])
        assert snap.lexical.search(LexicalQuery.words("beta"), 10) == []
    assert sorted(r.text for r in rows.values()) == ["alpha one", "alpha two"]
    assert store.generation() == 1
    assert store.document("/a").content_hash == "alpha one|alpha two"  # type: ignore[union-attr]
    assert store.counts().chunks == 2


def test_every_commit_draws_a_new_state_token(store: Store) -> None:
    tokens = {store.state_id()}
    put(store, "/a", {"one": vec(1)})
    tokens.add(store.state_id())
    store.delete_documents(["/a"])
    tokens.add(store.state_id())
    assert len(tokens) == 3 and store.generation() == 2
    # Metadata that cannot change a result moves neither.
    put(store, "/b", {"two": vec(1)})
    before = (store.generation(), store.state_id())
    store.update_stamp("/b", doc("/b").stamp)
    assert (store.generation(), store.state_id()) == before


def test_the_lexical_index_follows_replacements_and_deletions(store: Store) -> None:
    put(store, "/a", {"old words": vec(1)})
    store.replace_document(doc("/a", "h2"), [chunk(0, "new words")], {"hash-new words": vec(0, 1)})
    with store.snapshot() as snap:
        assert snap.lexical.search(LexicalQuery.words("old"), 10) == []
        assert len(snap.lexical.search(LexicalQuery.words("new"), 10)) == 1
    assert store.delete_documents(["/a"]) == 3
    with store.snapshot() as snap:
        assert snap.lexical.search(LexicalQuery.words("new"), 10) == [] and snap.chunk_count() == 0


def test_vectors_are_shared_by_content_and_collected_when_unused(store: Store) -> None:
    put(store, "/a", {"same text": vec(1)})
    assert store.missing_vectors(["hash-same text", "hash-other"]) == {"hash-other"}
    put(store, "/b", {"same text": None})  # the same chunk text needs no new vector
    assert store.vector_count() == 1 and store.unreferenced_vectors().count == 0
    store.delete_documents(["/a", "/b"])
    unused = store.unreferenced_vectors()
    assert unused.count == 1 and unused.bytes >= len(vec(1))  # at least the vector itself
    results_before = store.generation()
    assert store.collect_garbage() == unused
    assert store.vector_count() == 0 and store.generation() == results_before
    assert store.unreferenced_vectors() == store.collect_garbage() == UnusedVectors(0, 0)


def test_a_moved_document_keeps_its_chunks(store: Store) -> None:
    put(store, "/old", {"moving text": vec(1)})
    gen = store.move_document("/old", doc("/new"))
    assert gen == 2 and store.document("/old") is None
    with store.snapshot() as snap:
        rows = snap.chunk_rows(
            [cid for cid, _ in snap.lexical.search(LexicalQuery.words("moving"), 5)]
        )
    assert [r.path for r in rows.values()] == ["/new"]


def test_sources_and_removals_are_single_transactions(store: Store) -> None:
    store.add_sources(["/src", "/other"], include=[])
    put(store, "/src/a", {"kept": vec(1)})
    put(store, "/src/sub/b", {"dropped": vec(0, 1)})
    gen = store.apply_removal(
        Removal(documents=["/src/sub/b"], sources=["/other"], exclude=["/src/sub"])
    )
    assert gen == 3 and store.generation() == 3
    assert store.sources() == ["/src"] and store.excluded() == ["/src/sub"]
    assert [d.path for d in store.documents()] == ["/src/a"]
    # Adding the path back lifts the exclusion in the same transaction.
    store.add_sources(["/src/sub"], include=["/src/sub"])
    assert store.excluded() == [] and store.sources() == ["/src", "/src/sub"]
    # A removal of nothing indexed changes no generation.
    assert store.apply_removal(Removal(documents=[], sources=["/src/sub"], exclude=[])) == 3


def test_flags_persist_and_reset(open_backend: OpenStore) -> None:
    store = open_backend()
    store.set_flag("caching", False)
    store.set_flag("ann_index", True)
    store.set_flag("ann_index", None)
    store.close()
    assert open_backend().persisted_flags() == {"caching": False}


def test_document_listings(store: Store) -> None:
    put(store, "/b", {"two": vec(1), "three": vec(0, 1)})
    put(store, "/a", {"one": vec(1)})
    assert [d.path for d in store.documents()] == ["/a", "/b"]
    infos = {i.path: i for i in store.document_infos()}
    assert infos["/b"].chunks == 2 and infos["/a"].title == "title"
    assert store.size_bytes() > 0


def test_a_snapshot_does_not_see_later_commits(store: Store) -> None:
    put(store, "/a", {"first": vec(1)})
    with store.snapshot() as snap:
        assert snap.generation == 1 and snap.chunk_count() == 1
        writer = threading.Thread(target=put, args=(store, "/b", {"second": vec(0, 1)}))
        writer.start()
        writer.join(30)
        seen: list[int] = []
        reader = threading.Thread(target=lambda: seen.append(store.generation()))
        reader.start()
        reader.join(30)
        assert seen == [2]  # committed, seen by a new snapshot …
        assert snap.chunk_count() == 1  # … but not by this one
        assert snap.lexical.search(LexicalQuery.words("second"), 5) == []
    with store.snapshot() as snap:
        assert snap.chunk_count() == 2


def test_the_writer_lock_makes_a_second_writer_wait(store: Store) -> None:
    order: list[str] = []
    waited = threading.Event()
    holding = threading.Event()

    def second() -> None:
        holding.wait(10)
        with store.writer_lock(on_wait=waited.set):
            order.append("second")

    thread = threading.Thread(target=second)
    thread.start()
    with store.writer_lock(on_wait=None):
        holding.set()
        assert waited.wait(10)  # told it must wait …
        time.sleep(0.1)
        order.append("first")  # … and it did not get in before the first one left
    thread.join(10)
    assert order == ["first", "second"]


def test_check_finds_a_healthy_store_healthy(store: Store) -> None:
    put(store, "/a", {"healthy text": vec(1)})

    def embed(texts: object) -> object:
        raise AssertionError("nothing needs embedding in a healthy store")

    checks = store.check(repair=False, embed=embed)  # type: ignore[arg-type]
    assert checks and all(c.ok and not c.repaired for c in checks)


def test_operation_statistics_add_up_per_minute_and_keep_maxima(store: Store) -> None:
    store.record_op_stats(100, {"search.requests": 3, "search.errors": 1}, {"rss.max": 500})
    store.record_op_stats(100, {"search.requests": 2}, {"rss.max": 400})
    store.record_op_stats(101, {"search.requests": 1}, {"rss.max": 900})
    assert store.op_stats(100) == [
        (100, "rss.max", 500),
        (100, "search.errors", 1),
        (100, "search.requests", 5),
        (101, "rss.max", 900),
        (101, "search.requests", 1),
    ]
    assert store.op_stats(101) == [(101, "rss.max", 900), (101, "search.requests", 1)]
    # A week later the old minutes are forgotten.
    store.record_op_stats(101 + 7 * 24 * 60 + 1, {"search.requests": 1}, {})
    assert [m for m, _, _ in store.op_stats(0)] == [101 + 7 * 24 * 60 + 1]
