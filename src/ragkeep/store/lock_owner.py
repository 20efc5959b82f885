"""Who holds a writer lock: recorded by the holder, shown to those who wait (every backend)."""

from __future__ import annotations

import shlex
import sys
import time
from dataclasses import dataclass

_COMMAND_CHARS = 200  # a command line long enough to recognise, short enough for one line


@dataclass(frozen=True, slots=True)
class LockOwner:
    pid: int
    host: str
    command: str
    since: float  # wall-clock time the lock was taken
    started: str | None = None  # the process's start time (Linux): tells a reused PID apart

    def describe(self) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        return f"process {self.pid} on {self.host} ({self.command}), writing since {since}"


def command_line() -> str:
    # One line whatever the arguments hold (python -c code spans several).
    text = " ".join(shlex.join(getattr(sys, "orig_argv", sys.argv)).split())
    return text if len(text) <= _COMMAND_CHARS else text[: _COMMAND_CHARS - 1] + "…"
