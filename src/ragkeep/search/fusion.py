"""Fusing the BM25 and dense rankings into one.

Both methods are kept: `score` (min-max normalised scores, weighted; the default, which
measured better on SciFact's train and test splits) and `rrf` (rank-based, robust to score
scales). docs/search.md has the figures.
"""

from __future__ import annotations

from collections.abc import Sequence

Ranking = Sequence[tuple[int, float]]  # (chunk id, score), best first


def reciprocal_rank(rankings: Sequence[Ranking], k: int = 60) -> list[tuple[int, float]]:
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, (cid, _) in enumerate(ranking, start=1):
            fused[cid] = fused.get(cid, 0.0) + 1.0 / (k + rank)
    return _sorted(fused)


def normalized_score(bm25: Ranking, dense: Ranking, dense_weight: float) -> list[tuple[int, float]]:
    fused: dict[int, float] = {}
    for ranking, weight in ((bm25, 1.0 - dense_weight), (dense, dense_weight)):
        for cid, score in _min_max(ranking):
            fused[cid] = fused.get(cid, 0.0) + weight * score
    return _sorted(fused)


def _min_max(ranking: Ranking) -> list[tuple[int, float]]:
    if not ranking:
        return []
    scores = [s for _, s in ranking]
    lo, hi = min(scores), max(scores)
    span = hi - lo
    return [(cid, (s - lo) / span if span > 0 else 1.0) for cid, s in ranking]


def _sorted(fused: dict[int, float]) -> list[tuple[int, float]]:
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))
