"""Exact dense retrieval: inner product over L2-normalised vectors held in one numpy matrix."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


def top_n(
    ids: npt.NDArray[np.int64],
    matrix: npt.NDArray[np.float32],
    query: npt.NDArray[np.float32],
    n: int,
) -> list[tuple[int, float]]:
    import numpy as np

    if len(ids) == 0:
        return []
    scores = matrix @ query
    n = min(n, len(ids))
    part = np.argpartition(-scores, n - 1)[:n]
    # Ties broken by chunk id so results are deterministic across runs.
    order = part[np.lexsort((ids[part], -scores[part]))]
    return [(int(ids[i]), float(scores[i])) for i in order]
