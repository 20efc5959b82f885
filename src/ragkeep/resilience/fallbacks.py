"""How often each fallback ran in this process (`status`, and later the metrics)."""

from __future__ import annotations

import threading
from collections import Counter

from ragkeep.models.degradation import Part


class FallbackCounter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def record(self, part: Part) -> None:
        with self._lock:
            self._counts[part.value] += 1

    def counts(self) -> tuple[tuple[str, int], ...]:
        with self._lock:
            return tuple(sorted(self._counts.items()))


# One per process, like a metrics registry: every Keep in the process adds to it.
FALLBACKS = FallbackCounter()
