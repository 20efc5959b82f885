"""The lexical and dense indexes every backend provides, seen through a read snapshot."""

from __future__ import annotations

import pytest

from ragkeep.models import LexicalQuery
from ragkeep.store import ReadSnapshot, Store
from ragkeep.store.base import Ranking

from contract_helpers import put, query, vec


def test_lexical_ranks_higher_is_better(store: Store) -> None:
    put(store, "/a", {"otters otters otters swim": vec(1), "owls hunt": vec(0, 1)})
    put(store, "/b", {"one otters mention among many other words here": vec(0, 0, 1)})
    with store.snapshot() as snap:
        ranking = snap.lexical.search(LexicalQuery.words("otters"), 10)
        rows = snap.chunk_rows([cid for cid, _ in ranking])
    assert len(ranking) == 2 and ranking[0][1] > ranking[1][1] > 0
    assert rows[ranking[0][0]].path == "/a"


def test_lexical_returns_every_chunk_tying_at_the_cut(store: Store) -> None:
    for i in range(5):
        put(store, f"/copy{i}", {"identical words": vec(1)})
    put(store, "/other", {"identical words and more words besides": vec(0, 1)})
    with store.snapshot() as snap:
        ranking = snap.lexical.search(LexicalQuery.words("identical"), 2)
    assert len(ranking) == 5 and len({s for _, s in ranking}) == 1


def test_lexical_matches_any_term_and_never_parses_user_syntax(store: Store) -> None:
    put(store, "/a", {"barn owls eat voles": vec(1)})
    with store.snapshot() as snap:
        assert len(snap.lexical.search(LexicalQuery.words("giraffes", "voles"), 5)) == 1
        assert snap.lexical.search(LexicalQuery.words(), 5) == []
        for hostile in ['"', "NEAR(", "*", "col:owls", "AND"]:
            snap.lexical.search(LexicalQuery.words(hostile), 5)


def _paths(snap: ReadSnapshot, ranking: Ranking) -> list[str]:
    rows = snap.chunk_rows([cid for cid, _ in ranking])
    return [rows[cid].path for cid, _ in ranking]


def test_a_scored_phrase_ranks_the_whole_term_above_its_parts(store: Store) -> None:
    put(store, "/parts", {"rebase often, and merges of merges keep the rebase tidy": vec(1)})
    put(store, "/whole", {"git rebase --rebase-merges keeps the shape": vec(2)})
    phrase = LexicalQuery(scored=(("rebase", "merges"), ("rebase",), ("merges",)))
    words = LexicalQuery.words("rebase", "merges")
    with store.snapshot() as snap:
        assert _paths(snap, snap.lexical.search(phrase, 5)) == ["/whole", "/parts"]
        # Without the phrase, the chunk repeating both words ranks first.
        assert _paths(snap, snap.lexical.search(words, 5)) == ["/parts", "/whole"]


def test_required_phrases_bind_every_hit(store: Store) -> None:
    put(store, "/a", {"the exact phrase is here": vec(1)})
    put(store, "/b", {"phrase exact, reversed, with more exact words": vec(2)})
    required = LexicalQuery(
        scored=(("exact", "phrase"), ("words",)), required=(("exact", "phrase"),)
    )
    with store.snapshot() as snap:
        ids = [cid for cid, _ in snap.lexical.search(required, 5)]
        assert [r.path for r in snap.chunk_rows(ids).values()] == ["/a"]
        every = [cid for cid, _ in snap.lexical.search(LexicalQuery.words("exact"), 5)]
        held = snap.lexical.holding((("exact", "phrase"),), every)
        assert [r.path for r in snap.chunk_rows(sorted(held)).values()] == ["/a"]
        assert snap.lexical.holding((), every) == set(every)
        assert snap.lexical.holding((("exact", "phrase"),), []) == set()


def test_term_counts_stop_at_the_limit(store: Store) -> None:
    for i in range(6):
        put(store, f"/d{i}", {f"common word number{i}": vec(1)})
    with store.snapshot() as snap:
        assert snap.lexical.term_chunks("common", at_most=100) == 6
        assert snap.lexical.term_chunks("common", at_most=3) == 3
        assert snap.lexical.term_chunks("number2", at_most=100) == 1
        assert snap.lexical.term_chunks("absent", at_most=100) == 0


def test_dense_is_exact_inner_product(store: Store) -> None:
    put(store, "/x", {"east": vec(1, 0)})
    put(store, "/y", {"north": vec(0, 1)})
    put(store, "/xy", {"northeast": vec(1, 1)})
    with store.snapshot() as snap:
        result = snap.dense.search(query(1, 0.2), 2)
        rows = snap.chunk_rows([cid for cid, _ in result.ranking])
    assert result.final
    assert [rows[cid].path for cid, _ in result.ranking] == ["/x", "/xy"]
    assert result.ranking[0][1] == pytest.approx(float(query(1, 0.2) @ query(1, 0)), abs=1e-6)


def test_dense_equal_texts_score_exactly_alike_and_all_ties_are_returned(store: Store) -> None:
    put(store, "/near", {"close": vec(1, 0.1)})
    for i in range(4):
        put(store, f"/copy{i}", {"same": vec(1, 0.5)})
    with store.snapshot() as snap:
        ranking = snap.dense.search(query(1, 0.5), 2).ranking
    assert len(ranking) == 4 and len({s for _, s in ranking}) == 1


def test_dense_follows_commits_and_handles_an_empty_store(store: Store) -> None:
    with store.snapshot() as snap:
        assert snap.dense.search(query(1), 3).ranking == []
    put(store, "/a", {"a": vec(1)})
    with store.snapshot() as snap:
        assert len(snap.dense.search(query(1), 3).ranking) == 1
    put(store, "/b", {"b": vec(0, 1)})
    with store.snapshot() as snap:
        assert len(snap.dense.search(query(1), 3).ranking) == 2


def test_chunk_rows_and_order_keys(store: Store) -> None:
    put(store, "/p", {"first part": vec(1), "second part": vec(0, 1)})
    with store.snapshot() as snap:
        ids = [cid for cid, _ in snap.lexical.search(LexicalQuery.words("part"), 5)]
        keys = snap.order_keys(ids)
        rows = snap.chunk_rows([*ids, 10**9])  # unknown ids are left out
    assert sorted(keys.values()) == [("/p", 0), ("/p", 1)]
    assert set(rows) == set(ids)
    assert {r.text for r in rows.values()} == {"first part", "second part"}


def test_a_documents_chunks_in_order(store: Store) -> None:
    put(store, "/doc", {"zeta first": vec(1), "alpha second": vec(0, 1), "mid third": vec(1, 1)})
    with store.snapshot() as snap:
        chunks = snap.document_chunks("/doc")
        assert snap.document_chunks("/unknown") == []
    assert [c.text for c in chunks] == ["zeta first", "alpha second", "mid third"]
    assert {c.path for c in chunks} == {"/doc"}
