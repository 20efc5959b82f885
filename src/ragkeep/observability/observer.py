"""One open index's metrics, its health window, and its statistics recorded in the index.

A server samples its counters every `health.sample_s` into a ring that spans the window, and
writes what it did to the index once a minute; any other process writes it when it closes
the index. `ragkeep health --url` judges the server's live window, plain `ragkeep health`
the minutes recorded in the index (by every process that used it).
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from ragkeep.config.settings import Settings
from ragkeep.observability.metrics import Metrics
from ragkeep.observability.process import resident_bytes
from ragkeep.observability.window import (
    RSS_MAX,
    Sample,
    WindowStats,
    from_recorded,
    to_recorded,
)
from ragkeep.store.base import Store, StoreError

if TYPE_CHECKING:
    from ragkeep.models.health import HealthReport

log = logging.getLogger(__name__)

RECORD_EVERY_S = 60.0  # a server writes its statistics to the index this often
HISTORY_MINUTES = 60  # recorded minutes a local report charts, at most

CacheCounts = Callable[[], tuple[int, int]]  # (hits, lookups) since the process opened the index


class Observer:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        cache_counts: CacheCounts,
        caching: Callable[[], bool],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.metrics = Metrics()
        self._cfg = settings.health
        self._limit = settings.resources.memory_limit_mb * 1024 * 1024
        self._store = store
        self._cache_counts = cache_counts
        self._caching = caching
        self._clock = clock
        self._lock = threading.Lock()
        ring = math.ceil(self._cfg.window_s / self._cfg.sample_s) + 1
        self._samples: deque[Sample] = deque([self.sample()], maxlen=ring)
        self._recorded = self._samples[0]
        self._stop = threading.Event()
        self._sampler: threading.Thread | None = None

    def sample(self) -> Sample:
        hits, lookups = self._cache_counts()
        return Sample(self._clock(), self.metrics.counts(), hits, lookups, resident_bytes())

    # -- the live window (a server) ------------------------------------------------------

    def start_sampling(self) -> None:
        """Sample every health.sample_s and record to the index every minute, on a daemon
        thread, until close()."""
        if self._sampler is None:
            self._sampler = threading.Thread(
                target=self._sample_loop, name="ragkeep-health-sampler", daemon=True
            )
            self._sampler.start()

    def _sample_loop(self) -> None:
        next_record = time.monotonic() + RECORD_EVERY_S
        while not self._stop.wait(self._cfg.sample_s):
            now = self.sample()
            with self._lock:
                self._samples.append(now)
            if time.monotonic() >= next_record:
                next_record = time.monotonic() + RECORD_EVERY_S
                self.record(now)

    def live_report(self) -> HealthReport:
        """The window that ends now, with one history point per sampling interval."""
        from ragkeep.observability import health

        now = self.sample()
        with self._lock:
            samples = [*self._samples, now]
        start = now.time - self._cfg.window_s
        first = next((s for s in samples if s.time >= start), samples[-1])
        history = [WindowStats.between(a, b) for a, b in itertools.pairwise(samples)]
        return health.report(
            "server",
            WindowStats.between(first, now),
            [h for h in history if h.end > start],
            self._cfg,
            self._limit,
            caching=self._caching(),
        )

    # -- recorded in the index (any process) ----------------------------------------------

    def record(self, upto: Sample | None = None) -> None:
        """Add what happened since the last record to the index's per-minute statistics.
        Nothing is written when nothing was searched or asked. Best-effort."""
        now = upto or self.sample()
        with self._lock:
            since, self._recorded = self._recorded, now
        delta = to_recorded(WindowStats.between(since, now))
        if not (delta.keys() - {RSS_MAX}):
            return
        maxima = {RSS_MAX: delta.pop(RSS_MAX)} if RSS_MAX in delta else {}
        try:
            self._store.record_op_stats(int(now.time // 60), delta, maxima)
        except StoreError as exc:
            log.debug("statistics not recorded: %s", exc)
            with self._lock:
                self._recorded = since  # try again with the next record

    def recorded_report(self) -> HealthReport:
        """The window that ends now, from the minutes every process recorded in the index."""
        from ragkeep.observability import health

        end = self._clock()
        start = end - self._cfg.window_s
        first_minute = int(start // 60)
        rows = self._store.op_stats(first_minute - HISTORY_MINUTES)
        window = from_recorded(start, end, ((n, v) for m, n, v in rows if m >= first_minute))
        by_minute: dict[int, list[tuple[str, int]]] = {}
        for minute, name, value in rows:
            by_minute.setdefault(minute, []).append((name, value))
        history = [from_recorded(m * 60.0, (m + 1) * 60.0, by_minute[m]) for m in sorted(by_minute)]
        return health.report(
            "local", window, history, self._cfg, self._limit, caching=self._caching()
        )

    def close(self) -> None:
        self._stop.set()
        if self._sampler is not None:
            self._sampler.join(timeout=5)
        self.record()
