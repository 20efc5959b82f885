"""Metrics with trec_eval semantics, and `ragkeep eval` on a small real BEIR subset (SciFact)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from ragkeep.eval.beir import DatasetError, load_dataset
from ragkeep.eval.metrics import evaluate, mrr_at, ndcg_at, recall_at, trec_order
from ragkeep.eval.runner import percentile

from conftest import SCIFACT, run_cli


def test_ndcg_recall_mrr_by_hand() -> None:
    rels = {"a": 1, "b": 2}
    ranked = ["x", "b", "a"]
    dcg = 2 / math.log2(3) + 1 / math.log2(4)
    idcg = 2 / math.log2(2) + 1 / math.log2(3)
    assert ndcg_at(ranked, rels, 10) == pytest.approx(dcg / idcg)
    assert ndcg_at(ranked, rels, 1) == 0.0
    assert recall_at(ranked, rels, 2) == 0.5
    assert mrr_at(ranked, rels, 10) == 0.5
    assert mrr_at(ranked, rels, 1) == 0.0


def test_trec_order_breaks_ties_by_doc_id_descending() -> None:
    assert trec_order([("a", 1.0), ("c", 1.0), ("b", 2.0)]) == ["b", "c", "a"]


def test_queries_without_results_count_as_zero() -> None:
    qrels = {"q1": {"d1": 1}, "q2": {"d2": 1}, "q3": {"d3": 0}}  # q3 has nothing relevant
    scores = evaluate({"q1": [("d1", 1.0)]}, qrels)
    assert scores["ndcg@10"] == 0.5 and scores["recall@100"] == 0.5 and scores["mrr@10"] == 0.5


def test_percentile_is_an_observed_value() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0 or percentile(values, 50) == 51.0
    assert percentile(values, 95) in values and percentile([3.0], 95) == 3.0


def test_missing_files_are_reported(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"corpus\.jsonl"):
        load_dataset(tmp_path)


@pytest.fixture(scope="module")
def scifact_subset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 test queries, their relevant abstracts and 160 distractors: a real but small BEIR set."""
    root = tmp_path_factory.mktemp("scifact-mini")
    (root / "qrels").mkdir()
    rows = (SCIFACT / "qrels" / "test.tsv").read_text().splitlines()
    header, body = rows[0], rows[1:]
    queries = list(dict.fromkeys(r.split("\t")[0] for r in body))[:40]
    kept = [r for r in body if r.split("\t")[0] in queries]
    (root / "qrels" / "test.tsv").write_text("\n".join([header, *kept]) + "\n")
    relevant = {r.split("\t")[1] for r in kept}
    with (SCIFACT / "corpus.jsonl").open() as src, (root / "corpus.jsonl").open("w") as dst:
        distractors = 0
        for line in src:
            doc_id = json.loads(line)["_id"]
            if doc_id in relevant or distractors < 160:
                distractors += doc_id not in relevant
                dst.write(line)
    with (SCIFACT / "queries.jsonl").open() as src, (root / "queries.jsonl").open("w") as dst:
        dst.writelines(line for line in src if json.loads(line)["_id"] in queries)
    return root


def test_eval_command_reports_every_mode(scifact_subset: Path, tmp_path: Path) -> None:
    data = tmp_path / "eval-index"
    res = run_cli("eval", str(scifact_subset), "--json", "--data-dir", str(data))
    assert res.code == 0, res.stderr
    report = res.json()
    assert report["split"] == "test" and report["indexed_now"] == report["documents"] > 190
    assert report["ingest_docs_per_s"] > 0
    modes = {m["mode"]: m for m in report["modes"]}
    assert set(modes) == {"bm25", "dense", "hybrid"}
    for m in modes.values():
        assert m["queries"] == 40
        assert 0.0 <= m["ndcg_at_10"] <= 1.0 and 0.0 <= m["recall_at_100"] <= 1.0
        assert 0 < m["query_p50_ms"] <= m["query_p95_ms"]
    # A sanity floor on an easy subset (200 documents): retrieval is wired up correctly.
    assert modes["hybrid"]["ndcg_at_10"] > 0.6
    # Re-running on the same data dir reuses the index.
    again = run_cli(
        "eval", str(scifact_subset), "--json", "--mode", "bm25", "--data-dir", str(data)
    )
    assert again.code == 0 and again.json()["indexed_now"] == 0
    assert [m["mode"] for m in again.json()["modes"]] == ["bm25"]


def test_eval_rejects_a_folder_that_is_not_beir(tmp_path: Path) -> None:
    res = run_cli("eval", str(tmp_path))
    assert res.code == 2 and "corpus.jsonl" in res.stderr
