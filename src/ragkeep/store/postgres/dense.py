"""Dense retrieval with pgvector, inside the caller's snapshot.

Exact search (a scan computing every chunk's inner product) below `ann_min_vectors` chunks or
with the ann_index flag off; past it, pgvector's HNSW index over the current model's vectors,
with `hnsw.ef_search` from the settings (docs/scale-out.md measures its recall).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ragkeep.store.base import DenseOptions, DenseResult, Ranking

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import psycopg

# Each vector's text can stand in several chunks, and an HNSW scan stops at ef_search
# candidates: ask for this many more vectors than chunks wanted.
_ANN_OVERFETCH = 2


def hnsw_index_name(model_id: str, dimension: int) -> str:
    import hashlib

    digest = hashlib.sha256(f"{model_id}/{dimension}".encode()).hexdigest()[:12]
    return f"vectors_hnsw_{digest}"


class PgDense:
    def __init__(
        self,
        conn: psycopg.Connection[Any],
        model_id: str,
        dimension: int,
        options: DenseOptions,
        ef_search: int,
    ) -> None:
        self._conn = conn
        self._model_id = model_id
        self._dimension = dimension
        self._options = options
        self._ef_search = ef_search

    def search(self, query: npt.NDArray[np.float32], n: int) -> DenseResult:
        if n <= 0:
            return DenseResult([], True)
        if self._options.ann and self._ann_ready():
            return DenseResult(self._approximate(query, n), True)
        return DenseResult(self._exact(query, n), True)

    def _exact(self, query: npt.NDArray[np.float32], n: int) -> Ranking:
        base = (
            "SELECT ch.id, (v.embedding <#> %b) * -1 AS score FROM chunks ch "
            "JOIN vectors v ON v.model_id = %s AND v.text_hash = ch.text_hash"
        )
        params: list[Any] = [query, self._model_id]
        ranking = self._run(f"{base} ORDER BY score DESC LIMIT %s", [*params, n + 1])
        if len(ranking) > n and ranking[n][1] == ranking[n - 1][1]:
            # Chunks tie at the cut-off: every one of them, so the cut is by location.
            return self._run(
                f"SELECT * FROM ({base}) s WHERE score >= %s ORDER BY score DESC",
                [*params, ranking[n][1]],
            )
        return ranking[:n]

    def _ann_ready(self) -> bool:
        row = self._conn.execute(
            "SELECT (SELECT chunks FROM lexical_totals) >= %s AND EXISTS "
            "(SELECT 1 FROM pg_indexes WHERE schemaname = current_schema() AND indexname = %s)",
            (self._options.ann_min_vectors, hnsw_index_name(self._model_id, self._dimension)),
        ).fetchone()
        return bool(row and row[0])

    def _approximate(self, query: npt.NDArray[np.float32], n: int) -> Ranking:
        # The index is on the expression with the model's dimension and only this model's
        # rows: the query must spell both the same way for the planner to use it.
        self._conn.execute(f"SET LOCAL hnsw.ef_search = {int(self._ef_search)}")
        dim = int(self._dimension)
        rows = self._run(
            "WITH near AS MATERIALIZED (SELECT text_hash, "
            f"(embedding::vector({dim}) <#> %b::vector({dim})) * -1 AS score FROM vectors "
            f"WHERE model_id = %s ORDER BY embedding::vector({dim}) <#> %b::vector({dim}) "
            "LIMIT %s) "
            "SELECT ch.id, near.score FROM near JOIN chunks ch ON ch.text_hash = near.text_hash "
            "ORDER BY near.score DESC",
            [query, self._model_id, query, max(n * _ANN_OVERFETCH, self._ef_search)],
        )
        if len(rows) <= n:
            return rows
        nth = rows[n - 1][1]
        return [r for r in rows if r[1] >= nth]

    def _run(self, sql: str, params: list[Any]) -> Ranking:
        return [(int(r[0]), float(r[1])) for r in self._conn.execute(sql, params)]
