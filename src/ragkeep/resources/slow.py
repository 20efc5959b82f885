"""Warnings for operations that run slowly: always logged, never sampled away."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def warn_if_slow(log: logging.Logger, what: str, threshold_s: float) -> Iterator[None]:
    """Log a warning when the block takes longer than `threshold_s` (also when it raises)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        elapsed = time.perf_counter() - started
        if elapsed > threshold_s:
            log.warning("slow: %s took %.2f s (threshold %g s)", what, elapsed, threshold_s)
