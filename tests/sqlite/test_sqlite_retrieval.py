"""The SQLite backend's retrievers: FTS5 query text, exact numpy dense ranking."""

from __future__ import annotations

import numpy as np

from ragkeep.search.terms import lexical_query
from ragkeep.store.records import VectorTable
from ragkeep.store.sqlite.dense import top_n
from ragkeep.store.sqlite.lexical import match_expression


def _match(text: str) -> str | None:
    return match_expression(lexical_query(text))


def test_match_expression_quotes_every_term() -> None:
    assert _match("NEAR(a b) col:y -z* AND") == '"col y" OR "near" OR "b" OR "col" OR "y" OR "z"'
    assert _match("   ?!  ") is None
    assert _match("the owls of the wood") == '"owls" OR "wood"'
    assert _match("Café café") == '"café"'


def test_match_expression_scores_whole_terms_and_requires_quoted_phrases() -> None:
    assert _match("--rebase-merges") == '"rebase merges" OR "rebase" OR "merges"'
    assert _match('"exact  phrase" git') == '"exact phrase" AND ("exact phrase" OR "git")'
    assert _match('"only"') == '"only" AND ("only")'
    assert _match('say "a ""b"" c') == '"a" AND "b" AND ("say" OR "c" OR "a" OR "b")'


def _table(ids: np.ndarray, m: np.ndarray, rows: np.ndarray | None = None) -> VectorTable:
    rows = np.arange(len(ids), dtype=np.int64) if rows is None else rows
    return VectorTable(ids=ids, rows=rows, matrix=m)


def test_dense_top_n_is_exact() -> None:
    rng = np.random.default_rng(0)
    m = rng.normal(size=(50, 8)).astype(np.float32)
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    ids = np.arange(100, 150, dtype=np.int64)
    q = m[7]
    got = top_n(_table(ids, m), q, 5)
    brute = sorted(((int(ids[i]), float(m[i] @ q)) for i in range(50)), key=lambda t: -t[1])[:5]
    assert [g[0] for g in got] == [b[0] for b in brute]
    assert got[0][0] == 107
    assert top_n(_table(ids[:0], m[:0]), q, 5) == []


def test_dense_top_n_keeps_every_chunk_tying_with_the_last() -> None:
    # Six chunks share one vector (same text in six files): all tie, and all are returned
    # so the caller can cut by location rather than by storage order.
    m = np.array([[1.0, 0.0], [0.6, 0.8]], dtype=np.float32)
    ids = np.arange(1, 9, dtype=np.int64)
    rows = np.array([1, 0, 0, 0, 0, 0, 0, 1], dtype=np.int64)
    got = top_n(_table(ids, m, rows), np.array([1.0, 0.0], dtype=np.float32), 3)
    assert sorted(cid for cid, _ in got) == [2, 3, 4, 5, 6, 7]
    assert len({score for _, score in got}) == 1
