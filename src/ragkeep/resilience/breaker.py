"""A circuit breaker: after N failures within a window, stop calling a failing part for a
cool-down, then let one probe through (half-open) that closes or re-opens it.

The LLM's breaker is kept in a small JSON file in the data dir, so that a second `ragkeep ask`
a moment after the first found the LLM down answers from passages at once, instead of paying
for the connection attempts and retries again. Wall-clock time is used for that reason.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ragkeep.models.degradation import BreakerState, BreakerStatus, Part

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    failures: int = 3  # within window_s: opens the breaker
    window_s: float = 60.0
    cooldown_s: float = 30.0


class CircuitBreaker:
    def __init__(
        self,
        part: Part,
        config: BreakerConfig,
        *,
        state_file: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.part = part
        self._config = config
        self._file = state_file
        self._clock = clock
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._failures: list[float] = []  # times of recent failures
        self._opened_at = 0.0
        self._probing = False  # half-open: the one probe is out
        self._last_error: str | None = None
        self._load()

    def allow(self) -> bool:
        """May the part be called now? In half-open state only one caller gets True; it must
        then report `success()`, `failure()` or `abandon()`."""
        with self._lock:
            if self._state is BreakerState.CLOSED:
                return True
            if self._state is BreakerState.OPEN:
                if self._clock() - self._opened_at < self._config.cooldown_s:
                    return False
                self._state = BreakerState.HALF_OPEN
            if self._probing:
                return False
            self._probing = True
            return True

    def success(self) -> None:
        with self._lock:
            changed = self._state is not BreakerState.CLOSED or bool(self._failures)
            if self._state is not BreakerState.CLOSED:
                log.warning("%s is answering again; its circuit breaker closed", self.part)
            self._state = BreakerState.CLOSED
            self._failures = []
            self._probing = False
            self._last_error = None
            if changed:
                self._save()

    def failure(self, reason: str) -> None:
        with self._lock:
            now = self._clock()
            self._last_error = reason
            self._failures = [t for t in self._failures if now - t < self._config.window_s]
            self._failures.append(now)
            probe_failed = self._state is not BreakerState.CLOSED
            if probe_failed or len(self._failures) >= self._config.failures:
                if self._state is BreakerState.CLOSED:
                    log.warning(
                        "%s failed %d times in %g s (%s): answering without it for %g s",
                        self.part,
                        len(self._failures),
                        self._config.window_s,
                        reason,
                        self._config.cooldown_s,
                    )
                self._state = BreakerState.OPEN
                self._opened_at = now
            self._probing = False
            self._save()

    def abandon(self) -> None:
        """The probe ended without a verdict (the caller went away): let another probe."""
        with self._lock:
            self._probing = False

    def status(self) -> BreakerStatus:
        with self._lock:
            now = self._clock()
            recent = sum(1 for t in self._failures if now - t < self._config.window_s)
            retry = None
            if self._state is BreakerState.OPEN:
                retry = max(0.0, self._opened_at + self._config.cooldown_s - now)
            return BreakerStatus(self.part, self._state, recent, self._last_error, retry)

    def describe_open(self) -> str:
        """Why calls are being skipped, for the notice a user sees."""
        status = self.status()
        retry = f"; next try in {status.retry_in_s:.0f} s" if status.retry_in_s else ""
        last = f" (last: {status.last_error})" if status.last_error else ""
        return f"it failed repeatedly{last}, so it is skipped for now{retry}"

    # -- the state file ------------------------------------------------------------------

    def _load(self) -> None:
        if self._file is None:
            return
        try:
            raw = json.loads(self._file.read_text(encoding="utf-8"))
            state = BreakerState(raw["state"])
            failures = [float(t) for t in raw["failures"]]
            opened_at = float(raw["opened_at"])
            last_error = raw.get("last_error")
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError):
            log.debug("ignoring an unreadable breaker state file %s", self._file, exc_info=True)
            return
        # A probe that was out in another process is not ours to wait for.
        self._state = BreakerState.OPEN if state is not BreakerState.CLOSED else state
        self._failures = failures
        self._opened_at = opened_at
        self._last_error = last_error if isinstance(last_error, str) else None

    def _save(self) -> None:
        if self._file is None:
            return
        data = {
            "state": self._state.value,
            "failures": self._failures,
            "opened_at": self._opened_at,
            "last_error": self._last_error,
        }
        tmp: str | None = None
        try:
            self._file.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self._file.parent, prefix=".breaker-")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh)
            os.replace(tmp, self._file)
        except OSError:
            # The breaker still works in this process; only other processes miss the news.
            log.debug("could not save the breaker state to %s", self._file, exc_info=True)
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
