"""nDCG@k, Recall@k and MRR@k with trec_eval semantics.

Like trec_eval: a run is ordered by score descending, ties by document id descending; gains
are the graded relevance; every query of the qrels counts (a query with no results scores 0);
documents with relevance <= 0 are not relevant.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from statistics import fmean

Run = Mapping[str, Sequence[tuple[str, float]]]  # query id -> [(doc id, score)]
Qrels = Mapping[str, Mapping[str, int]]


def trec_order(results: Sequence[tuple[str, float]]) -> list[str]:
    ordered = sorted(results, key=lambda r: r[0], reverse=True)
    ordered.sort(key=lambda r: r[1], reverse=True)  # stable: ties keep doc id descending
    return [doc for doc, _ in ordered]


def ndcg_at(ranked: Sequence[str], rels: Mapping[str, int], k: int) -> float:
    dcg = sum(
        rels.get(doc, 0) / math.log2(i + 2)
        for i, doc in enumerate(ranked[:k])
        if rels.get(doc, 0) > 0
    )
    ideal = sorted((r for r in rels.values() if r > 0), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at(ranked: Sequence[str], rels: Mapping[str, int], k: int) -> float:
    relevant = {d for d, r in rels.items() if r > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranked[:k])) / len(relevant)


def mrr_at(ranked: Sequence[str], rels: Mapping[str, int], k: int) -> float:
    for i, doc in enumerate(ranked[:k]):
        if rels.get(doc, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def evaluate(run: Run, qrels: Qrels) -> dict[str, float]:
    """Mean nDCG@10, Recall@100 and MRR@10 over the queries of `qrels` that have a relevant doc."""
    scored = [q for q, rels in qrels.items() if any(r > 0 for r in rels.values())]
    ndcg, recall, mrr = [], [], []
    for q in scored:
        ranked = trec_order(run.get(q, ()))
        ndcg.append(ndcg_at(ranked, qrels[q], 10))
        recall.append(recall_at(ranked, qrels[q], 100))
        mrr.append(mrr_at(ranked, qrels[q], 10))
    return {
        "ndcg@10": fmean(ndcg) if ndcg else 0.0,
        "recall@100": fmean(recall) if recall else 0.0,
        "mrr@10": fmean(mrr) if mrr else 0.0,
    }
