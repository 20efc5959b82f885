"""SIGTERM for the CLI: act like Ctrl-C.

By default SIGTERM (what `kill`, systemd and container runtimes send) ends the process on
the spot. The index stays consistent either way (one transaction per document), but the
user gets no message and the process no chance to close the store. Raised as
KeyboardInterrupt in the main thread instead, it goes through the same path as Ctrl-C:
the pipeline stops at once, everything committed is kept, and the CLI exits 130 with
"interrupted".
"""

from __future__ import annotations

import signal
import threading
from types import FrameType


def terminate_as_interrupt() -> None:
    """Make SIGTERM raise KeyboardInterrupt in the main thread. Call once, early in main();
    does nothing off the main thread (Python only delivers signals there)."""
    if threading.current_thread() is not threading.main_thread():
        return
    signal.signal(signal.SIGTERM, _raise_interrupt)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    # A second SIGTERM while shutting down ends the process the default way.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    raise KeyboardInterrupt
