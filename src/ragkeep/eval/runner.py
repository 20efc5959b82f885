"""`ragkeep eval`: index a BEIR corpus, run its queries in each mode, score the rankings."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ragkeep.eval.beir import Dataset
from ragkeep.eval.metrics import evaluate
from ragkeep.ingest.pipeline import ProgressFn, TextDocument
from ragkeep.keep import Keep
from ragkeep.models import FileOutcome, SearchMode, to_json

PATH_PREFIX = "beir:"
TOP_K = 100  # Recall@100 needs 100 documents per query
CANDIDATES = 300  # chunks per retriever, so that 100 distinct documents survive collapsing


@dataclass(frozen=True, slots=True)
class ModeResult:
    mode: SearchMode
    ndcg_at_10: float
    recall_at_100: float
    mrr_at_10: float
    query_p50_ms: float
    query_p95_ms: float
    queries: int


@dataclass
class EvalReport:
    dataset: str
    split: str
    documents: int
    chunks: int
    indexed_now: int
    ingest_seconds: float
    ingest_docs_per_s: float | None
    modes: list[ModeResult] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = to_json(self)
        return out


def run_eval(
    keep: Keep,
    dataset: Dataset,
    modes: Sequence[SearchMode],
    progress: ProgressFn | None = None,
    query_progress: Callable[[str, int, int], None] | None = None,
) -> EvalReport:
    docs = [
        TextDocument(f"{PATH_PREFIX}{d.doc_id}", d.title, d.full_text) for d in dataset.corpus()
    ]
    report = keep.indexing.index_texts(docs, progress)
    indexed = report.count(FileOutcome.ADDED) + report.count(FileOutcome.UPDATED)
    status = keep.admin.status()
    result = EvalReport(
        dataset=str(dataset.root),
        split=dataset.split,
        documents=status.documents,
        chunks=status.chunks,
        indexed_now=indexed,
        ingest_seconds=round(report.seconds, 3),
        ingest_docs_per_s=round(indexed / report.seconds, 2) if indexed else None,
    )
    for mode in modes:
        result.modes.append(_run_mode(keep, dataset, mode, query_progress))
    return result


def _run_mode(
    keep: Keep,
    dataset: Dataset,
    mode: SearchMode,
    progress: Callable[[str, int, int], None] | None,
) -> ModeResult:
    keep.querying.search(
        "warm-up", 1, mode
    )  # load the model and the vector matrix outside the timing
    run: dict[str, list[tuple[str, float]]] = {}
    latencies: list[float] = []
    total = len(dataset.queries)
    for i, (qid, text) in enumerate(dataset.queries.items(), start=1):
        started = time.perf_counter()
        hits = keep.querying.search(text, TOP_K, mode, collapse=True, candidates=CANDIDATES)
        latencies.append((time.perf_counter() - started) * 1000)
        run[qid] = [(h.path.removeprefix(PATH_PREFIX), h.score) for h in hits]
        if progress:
            progress(mode.value, i, total)
    scores = evaluate(run, dataset.qrels)
    return ModeResult(
        mode=mode,
        ndcg_at_10=round(scores["ndcg@10"], 4),
        recall_at_100=round(scores["recall@100"], 4),
        mrr_at_10=round(scores["mrr@10"], 4),
        query_p50_ms=round(percentile(latencies, 50), 2),
        query_p95_ms=round(percentile(latencies, 95), 2),
        queries=total,
    )


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation): a value that was actually observed."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]
