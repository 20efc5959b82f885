"""Exact dense retrieval: inner product over L2-normalised vectors held in one numpy matrix."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from ragkeep.store.records import VectorTable


def top_n(table: VectorTable, query: npt.NDArray[np.float32], n: int) -> list[tuple[int, float]]:
    """The n best chunks by inner product, plus any that tie with the n-th, best first."""
    import numpy as np

    if len(table.ids) == 0:
        return []
    scores = (table.matrix @ query)[table.rows]
    n = min(n, len(scores))
    nth = scores[np.argpartition(-scores, n - 1)[n - 1]]
    # Everything scoring at least the n-th: chunks tying with it are kept, so the caller
    # can break the tie by something other than the order the chunks were stored in.
    keep = np.flatnonzero(scores >= nth)
    order = keep[np.argsort(-scores[keep], kind="stable")]
    return [(int(table.ids[i]), float(scores[i])) for i in order]
