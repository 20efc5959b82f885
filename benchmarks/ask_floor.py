"""How many of an answer's passages `llm.ask_min_score_ratio` drops, relevant and not.

    python benchmarks/ask_floor.py            # after `ragkeep eval` built the SciFact index

For each SciFact query (train split to choose, test to confirm), the `ask_k` passages an
answer would get, then each floor: a passage is kept when its score is at least the floor
times the best passage's. A passage counts as relevant when its document is in the qrels.
Writes benchmarks/results/ask-floor.json; asserts nothing.
"""

from __future__ import annotations

from typing import Any

from common import SCIFACT, WORK, write_result

FLOORS = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7)
INDEX = WORK / "scifact"


def main() -> None:
    from ragkeep import Keep
    from ragkeep.eval.beir import load_dataset
    from ragkeep.eval.runner import PATH_PREFIX

    rows: list[dict[str, Any]] = []
    with Keep(INDEX, overrides={"flags.caching": False}) as keep:
        k = keep.settings.llm.ask_k
        for split in ("train", "test"):
            data = load_dataset(SCIFACT, split)
            ranked = []
            for qid, text in data.queries.items():
                hits = keep.search(text, k, "hybrid")
                relevant = data.qrels.get(qid, {})
                ranked.append(
                    [(h.score, h.path.removeprefix(PATH_PREFIX) in relevant) for h in hits]
                )
            for floor in FLOORS:
                rows.append({"split": split, "floor": floor, **_tally(ranked, floor)})
    for r in rows:
        print(
            f"{r['split']:5} floor {r['floor']:.1f}: {r['passages_per_answer']:.2f} passages, "
            f"relevant kept {r['relevant_kept']:.3f}, "
            f"unrelated dropped {r['unrelated_dropped']:.3f}"
        )
    write_result("ask-floor", {"k": k, "index": str(INDEX), "rows": rows}, echo=False)


def _tally(ranked: list[list[tuple[float, bool]]], floor: float) -> dict[str, float]:
    kept = relevant = relevant_kept = unrelated = unrelated_dropped = 0
    for hits in ranked:
        top = hits[0][0] if hits else 0.0
        for score, is_relevant in hits:
            keep = top <= 0 or score >= floor * top
            kept += keep
            relevant += is_relevant
            relevant_kept += is_relevant and keep
            unrelated += not is_relevant
            unrelated_dropped += not is_relevant and not keep
    return {
        "passages_per_answer": kept / len(ranked),
        "relevant_kept": relevant_kept / max(relevant, 1),
        "unrelated_dropped": unrelated_dropped / max(unrelated, 1),
    }


if __name__ == "__main__":
    main()
