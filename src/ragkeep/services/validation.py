"""Is a re-embedded index still good? doctor's checks, self-retrieval, and a fixed query set.

doctor proves the index is consistent, not that its vectors mean anything: a model that
returns garbage fills every row and passes. Two checks look at meaning:

- **Self-retrieval**: for a sample of chunk texts (the first by hash, an arbitrary but fixed
  spread), the first words of the text are a query whose dense top results must include that
  text. A working model finds most of them; vectors that mean nothing find about k/N.
- **The query set** (`backup.validation_queries`, optional): each query's dense top 10 after
  the re-embed must share `backup.min_overlap` of the chunks before it, on average. Only
  when the model is the same: another model's query vectors cannot be compared.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ragkeep.models import Check
from ragkeep.models.backups import ValidationReport
from ragkeep.store.base import EmbedTexts, Store

SAMPLE = 50  # chunk texts probed for self-retrieval
MIN_CHUNKS = 20  # below this many texts, random vectors find a text by chance too often
PREFIX_WORDS = 12
SELF_K = 5
QUERY_K = 10


@dataclass(frozen=True, slots=True)
class Baseline:
    """The query set's results before the re-embed (chunk ids, per query)."""

    results: list[list[int]]


class ReembedValidator:
    def __init__(
        self,
        store: Store,
        embed: EmbedTexts,
        queries: Sequence[str],
        min_overlap: float,
        min_self_recall: float,
    ) -> None:
        self._store = store
        self._embed = embed
        self._queries = list(queries)
        self._min_overlap = min_overlap
        self._min_self_recall = min_self_recall

    def baseline(self) -> Baseline:
        return Baseline(self._dense_ids(self._queries, QUERY_K))

    def validate(self, baseline: Baseline | None) -> ValidationReport:
        checks = self._store.check(False, self._embed)
        checks.append(self._self_retrieval())
        if self._queries:
            checks.append(self._overlap(baseline))
        return ValidationReport(checks)

    def _self_retrieval(self) -> Check:
        name = "dense search finds chunks by their first words"
        sample = self._store.chunk_texts("", SAMPLE)
        if len(sample) < MIN_CHUNKS:
            return Check(name, True, f"not judged: {len(sample)} distinct chunk texts")
        texts = [t for _, t in sample]
        queries = [" ".join(t.split()[:PREFIX_WORDS]) for t in texts]
        found = 0
        with self._store.snapshot() as snap:
            for text, ids in zip(texts, self._dense_ids(queries, SELF_K), strict=True):
                rows = snap.chunk_rows(ids)
                found += any(r.text == text for r in rows.values())
        recall = found / len(texts)
        ok = recall >= self._min_self_recall
        detail = (
            f"{found} of {len(texts)} found in the top {SELF_K} ({recall:.0%}; "
            f"backup.min_self_recall {self._min_self_recall:.0%})"
        )
        return Check(name, ok, detail)

    def _overlap(self, baseline: Baseline | None) -> Check:
        name = "the validation queries keep their results"
        if baseline is None:
            return Check(name, True, "not judged: the model changed, results are not comparable")
        after = self._dense_ids(self._queries, QUERY_K)
        shares = [
            len(set(a) & set(b)) / len(b) if b else 1.0
            for a, b in zip(after, baseline.results, strict=True)
        ]
        mean = sum(shares) / len(shares)
        ok = mean >= self._min_overlap
        detail = (
            f"{mean:.0%} of the top {QUERY_K} kept over {len(shares)} queries "
            f"(backup.min_overlap {self._min_overlap:.0%})"
        )
        return Check(name, ok, detail)

    def _dense_ids(self, queries: Sequence[str], k: int) -> list[list[int]]:
        if not queries:
            return []
        vectors = self._embed(queries)
        with self._store.snapshot() as snap:
            return [[cid for cid, _ in snap.dense.search(v, k).ranking[:k]] for v in vectors]


def read_queries(path: str) -> list[str]:
    """One query per line; blank lines and lines starting with # are skipped."""
    if not path:
        return []
    lines = Path(path).expanduser().read_text(encoding="utf-8").splitlines()
    return [s for s in (line.strip() for line in lines) if s and not s.startswith("#")]
