"""Retrieval: query terms, tie order, both fusions, snapshot freshness (any backend)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragkeep import Keep
from ragkeep.models import LexicalQuery
from ragkeep.search import fusion
from ragkeep.search.ordering import untie
from ragkeep.search.terms import lexical_query

from conftest import write


def _words(text: str, drop_stopwords: bool = True) -> list[str]:
    return [p[0] for p in lexical_query(text, drop_stopwords).scored if len(p) == 1]


def test_query_words_are_plain_words_with_stop_words_dropped() -> None:
    assert _words('NEAR(a b) "x" col:y -z*') == ["near", "b", "col", "y", "z", "x"]
    assert _words("   ?!  ") == []
    assert _words("the owls of the wood") == ["owls", "wood"]
    assert _words("to be or not to be") == ["to", "be", "or", "not"]
    assert _words("Café café") == ["café"]
    assert _words("the owls", drop_stopwords=False) == ["the", "owls"]


def test_technical_terms_are_scored_as_phrases_and_quotes_are_required() -> None:
    assert lexical_query("git --rebase-merges") == LexicalQuery(
        scored=(("rebase", "merges"), ("git",), ("rebase",), ("merges",)), exact=("rebase-merges",)
    )
    for term, words in [
        ("foo.bar()", ("foo", "bar")),
        ("v2.39.1", ("v2", "39", "1")),
        ("std::io::Read", ("std", "io", "read")),
        ("/etc/fstab", ("etc", "fstab")),
        ("state-of-the-art", ("state", "of", "the", "art")),
    ]:
        assert lexical_query(term).scored[0] == words
    # Identifiers with underscores are one word here and a phrase in the index's tokenizer.
    assert lexical_query("ERR_SSL_PROTOCOL").scored == (("err_ssl_protocol",),)
    quoted = lexical_query("“to be or not to be” hamlet")
    assert quoted.required == (("to", "be", "or", "not", "to", "be"),)
    assert quoted.scored == (quoted.required[0], ("hamlet",))
    assert lexical_query('an "unbalanced quote').required == ()
    assert lexical_query('"" "_"') == LexicalQuery()


def test_untie_orders_ties_by_location_not_by_id() -> None:
    keys = {5: ("/b", 0), 9: ("/a", 1), 7: ("/a", 0)}
    looked_up: list[list[int]] = []

    def lookup(ids: list[int]) -> dict[int, tuple[str, int]]:
        looked_up.append(ids)
        return {i: keys[i] for i in ids}

    ranking = [(1, 3.0), (5, 2.0), (9, 2.0), (7, 2.0), (4, 1.0)]
    assert untie(ranking, 2, lookup) == [(1, 3.0), (7, 2.0)]
    assert looked_up == [[5, 9, 7]]
    # Ties entirely past the cut are never looked up.
    looked_up.clear()
    assert untie([(1, 3.0), (2, 2.0), (3, 1.0), (4, 1.0)], 2, lookup) == [(1, 3.0), (2, 2.0)]
    assert looked_up == []


def test_reciprocal_rank_fusion() -> None:
    fused = fusion.reciprocal_rank([[(1, 9.0), (2, 5.0)], [(2, 0.9), (3, 0.8)]], k=60)
    assert [cid for cid, _ in fused] == [2, 1, 3]
    assert fused[0][1] == pytest.approx(1 / 62 + 1 / 61)


def test_normalized_score_fusion() -> None:
    fused = fusion.normalized_score([(1, 10.0), (2, 5.0), (3, 0.0)], [(3, 0.9), (1, 0.5)], 0.5)
    scores = dict(fused)
    assert scores[1] == pytest.approx(0.5 * 1.0 + 0.5 * 0.0)
    assert scores[3] == pytest.approx(0.5 * 0.0 + 0.5 * 1.0)
    assert scores[2] == pytest.approx(0.25)


@pytest.fixture
def small_index(keep: Keep, docs_dir: Path) -> Keep:
    write(docs_dir / "owls.md", "Owls hunt at night. Barn owls eat voles and mice.")
    write(docs_dir / "bees.md", "Honey bees build wax combs. A hive holds thousands of bees.")
    write(
        docs_dir / "long.md",
        "\n\n".join(f"Paragraph {i} about river otters." * 20 for i in range(6)),
    )
    keep.add([docs_dir])
    return keep


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
def test_each_mode_ranks_the_right_document_first(small_index: Keep, mode: str) -> None:
    hits = small_index.search("what do barn owls eat", 3, mode)
    assert Path(hits[0].path).name == "owls.md"
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    assert all(hits[i].score >= hits[i + 1].score for i in range(len(hits) - 1))


def test_hostile_query_text_never_fails(small_index: Keep) -> None:
    for q in ['"', "NEAR(", "*", "owls AND", "col:owls", "'; DROP TABLE chunks; --", "\x00"]:
        small_index.search(q, 3, "hybrid")


def test_collapse_flag_returns_one_passage_per_document(small_index: Keep) -> None:
    many = small_index.search("river otters", 10, "bm25", collapse=False)
    assert len({h.doc_id for h in many}) < len(many)
    small_index.set_flag("collapse_documents", True)
    one_each = small_index.search("river otters", 10, "bm25")
    assert len({h.doc_id for h in one_each}) == len(one_each)


def test_dense_matrix_follows_new_commits(small_index: Keep, docs_dir: Path) -> None:
    before = small_index.search("giraffes on the savanna", 1, "dense")
    assert Path(before[0].path).name != "giraffes.md"
    write(docs_dir / "giraffes.md", "Giraffes browse acacia trees on the savanna.")
    small_index.sync()
    after = small_index.search("giraffes on the savanna", 1, "dense")
    assert Path(after[0].path).name == "giraffes.md"


def test_both_fusions_are_selectable(data_dir: Path, docs_dir: Path) -> None:
    write(docs_dir / "owls.md", "Owls hunt at night. Barn owls eat voles and mice.")
    write(docs_dir / "bees.md", "Honey bees build wax combs.")
    with Keep(data_dir) as k:  # default: score fusion
        k.add([docs_dir])
        hits = k.search("barn owls", 2, "hybrid")
    assert Path(hits[0].path).name == "owls.md"
    assert hits[0].score == pytest.approx(1.0)  # top of both normalised lists
    with Keep(data_dir, overrides={"search.fusion": "rrf"}) as k:
        hits = k.search("barn owls", 2, "hybrid")
    assert Path(hits[0].path).name == "owls.md"
    assert hits[0].score <= 2 / 61 + 1e-6  # RRF: at most 1/(60+1) from each list


def test_hybrid_leaves_words_found_almost_everywhere_to_dense(
    data_dir: Path, docs_dir: Path
) -> None:
    for i in range(5):
        write(docs_dir / f"{i}.md", "Wetland survey of common birds." + " More notes." * i)
    write(docs_dir / "rare.md", "Wetland survey of the rare bittern.")
    # dense_weight 0: the fused score is the normalised BM25 score alone.
    bm25_only = {
        "search.bm25_max_df": 0.5,
        "search.bm25_common_min_chunks": 0,
        "search.dense_weight": 0.0,
    }
    with Keep(data_dir, overrides=bm25_only) as k:
        k.add([docs_dir])
        # "wetland" and "survey" are in every chunk: only "bittern" is searched for, so no
        # other document gets any BM25 score.
        hits = k.search("wetland survey bittern", 10, "hybrid")
        assert Path(hits[0].path).name == "rare.md"
        assert [h.score for h in hits[1:]] == [0.0] * 5
        # Nothing would remain: all the words are searched for.
        assert max(h.score for h in k.search("wetland survey", 10, "hybrid")[1:]) > 0.0
        # Mode bm25 always searches every word.
        assert len(k.search("wetland survey bittern", 10, "bm25")) == 6
    with Keep(data_dir, overrides={**bm25_only, "search.bm25_max_df": 1.0}) as k:
        hits = k.search("wetland survey bittern", 10, "hybrid")
        assert max(h.score for h in hits[1:]) > 0.0


@pytest.mark.parametrize("fusion_method", ["score", "rrf"])
def test_results_do_not_depend_on_the_order_files_were_indexed(
    tmp_path: Path, fusion_method: str
) -> None:
    """Equal scores are cut and ordered by location, not chunk id: an index built in another
    order (as after a crash and a resumed sync) answers exactly like a clean build."""
    docs = tmp_path / "docs"
    texts = {
        **{f"copy{i}.md": "Barn owls eat voles and mice at night." for i in range(5)},
        "bees.md": "Honey bees build wax combs in the hive.",
        "otters.md": "River otters eat fish and crabs.",
        "mixed.md": "Owls and otters both hunt at night.",
    }
    for name, text in texts.items():
        write(docs / name, text)
    names = sorted(texts)
    overrides = {"search.fusion": fusion_method, "flags.caching": False}
    answers = []
    for order in (names, names[::-1]):
        with Keep(tmp_path / f"data-{order[0]}", overrides=overrides) as keep:
            for name in order:  # one commit per file: chunk ids follow this order
                keep.add([docs / name])
            answers.append(
                [
                    [(h.path, h.text, h.score) for h in keep.search(q, k, mode)]
                    for q in ("owls eat voles", "hunt at night", "fish")
                    for mode in ("bm25", "dense", "hybrid")
                    for k in (1, 2, 3, 6)
                ]
            )
    assert answers[0] == answers[1]
