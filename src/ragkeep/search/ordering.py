"""A total order on ranked chunks that does not depend on how the index was built.

Equal scores are common: RRF gives equal scores to equal ranks, identical chunks in two files
have identical vectors, and BM25 scores coincide for chunks of the same length and term counts.
Breaking such ties by chunk id would make results depend on insertion history (a build
interrupted and resumed numbers its chunks differently from a clean one), so ties are broken
by where the chunk lives instead: (document path, chunk ordinal).
"""

from __future__ import annotations

from collections.abc import Callable

from ragkeep.search.fusion import Ranking
from ragkeep.store.records import OrderKey

KeyLookup = Callable[[list[int]], dict[int, OrderKey]]

_NO_KEY: OrderKey = ("", 0)


def untie(ranking: Ranking, n: int, keys: KeyLookup) -> list[tuple[int, float]]:
    """The first n of `ranking` (sorted by score, best first, holding every item that ties
    with the n-th), with ties put in (path, ordinal) order. Keys are looked up only for
    groups of equal scores that reach into the first n, which is usually none."""
    tied: list[int] = []
    for i, (cid, score) in enumerate(ranking):
        same_as_prev = i > 0 and ranking[i - 1][1] == score
        if i >= n and not same_as_prev:
            break
        if same_as_prev or (i + 1 < len(ranking) and ranking[i + 1][1] == score):
            tied.append(cid)
    if not tied:
        return list(ranking[:n])
    found = keys(tied)
    ordered = sorted(ranking, key=lambda item: (-item[1], found.get(item[0], _NO_KEY)))
    return ordered[:n]
