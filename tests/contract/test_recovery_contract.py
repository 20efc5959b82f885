"""What backups, restores and re-embedding need from every backend: a consistent copy, a
restore in one step under a new generation and token, and staged vectors switched in one
transaction."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ragkeep.store import Store

from contract_helpers import MODEL, put, query, vec


def test_a_restored_copy_replaces_the_index_under_a_new_state(store: Store, tmp_path: Path) -> None:
    put(store, "/kept", {"kept text": vec(1)})
    contents = store.copy_to(tmp_path / "copy")
    assert (contents.documents, contents.chunks) == (1, 1)
    assert (contents.generation, contents.state_id) == (store.generation(), store.state_id())
    assert (contents.model_id, contents.schema_version) == (MODEL, store.copy_schema_version())
    put(store, "/later", {"later text": vec(0, 1)})
    seen = {store.state_id(), contents.state_id}
    with store.writer_lock(None):
        generation = store.restore_from(tmp_path / "copy")
    assert [d.path for d in store.documents()] == ["/kept"]
    assert generation == store.generation() > contents.generation + 1
    assert store.state_id() not in seen


def test_staged_vectors_are_invisible_until_switched_in(store: Store) -> None:
    put(store, "/a", {"alpha": vec(1), "beta": vec(0, 1)})
    texts = store.chunk_texts("", 1) + store.chunk_texts(store.chunk_texts("", 1)[0][0], 5)
    assert sorted(t for _, t in texts) == ["alpha", "beta"]
    assert [h for h, _ in texts] == sorted(h for h, _ in texts)
    assert store.indexed_model() == (MODEL, 4)
    # Re-embedded: alpha and beta swap places.
    swapped = {h: vec(0, 1) if t == "alpha" else vec(1) for h, t in texts}
    store.stage_vectors("staged", swapped)
    assert _top(store, query(1)) == "alpha"  # still the old vectors
    before = store.generation()
    assert store.switch_model("staged") == before + 1
    assert _top(store, query(1)) == "beta"
    assert store.vector_count() == 2  # the old ones are gone
    store.stage_vectors("leftover", swapped)
    store.drop_vectors("leftover")
    assert store.vector_count() == 2


def _top(store: Store, vector: np.ndarray) -> str:
    with store.snapshot() as snap:
        ranking = snap.dense.search(vector, 1).ranking
        return snap.chunk_rows([ranking[0][0]])[ranking[0][0]].text
