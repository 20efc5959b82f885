"""The writer lock: one add/sync/remove at a time per index, across processes, with a deadline
and a record of who holds it.

The lock itself is an advisory `flock` on `writer.lock` (through filelock), which the
operating system releases when the holder dies, even with `kill -9`. Who holds it is written
to a separate *owner file* beside it (`writer.lock.owner`: PID, host, command line, since
when), atomically after acquiring and removed before releasing. It cannot live in the lock
file: filelock opens that with O_TRUNC on every attempt, so each waiter would erase it.

A holder killed with `kill -9` leaves its owner file behind while the lock itself is free.
Such a stale file is recognised (its PID is gone, or now belongs to a process started at
another time) and never named as the holder.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from ragkeep.resources.slow import warn_if_slow
from ragkeep.store.base import StoreBusyError, StoreReadOnlyError
from ragkeep.store.lock_owner import LockOwner, command_line

log = logging.getLogger(__name__)

OWNER_SUFFIX = ".owner"


class WriterLock:
    def __init__(self, path: Path, timeout_s: float, slow_s: float) -> None:
        self.path = path
        self.owner_path = path.with_name(path.name + OWNER_SUFFIX)
        self.timeout_s = timeout_s
        self.slow_s = slow_s

    @contextmanager
    def hold(self, on_wait: Callable[[], None] | None) -> Iterator[None]:
        from filelock import FileLock, Timeout

        # A new FileLock per use: flock locks belong to an open file, so two threads of
        # one process exclude each other just like two processes.
        lock = FileLock(self.path, thread_local=False)
        try:
            try:
                lock.acquire(timeout=0)
            except Timeout:
                if on_wait is not None:
                    on_wait()
                with warn_if_slow(log, "waiting for the writer lock", self.slow_s):
                    try:
                        lock.acquire(timeout=self.timeout_s)
                    except Timeout:
                        raise StoreBusyError(self._busy_message()) from None
        except OSError as exc:  # a read-only data dir or disk
            if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise
            raise StoreReadOnlyError(
                f"{self.path} cannot be written ({exc.strerror}): add, sync and remove need "
                "to; make the data dir writable for this user"
            ) from exc
        try:
            self._write_owner()
            yield
        finally:
            # Before releasing: once released, the file may already be the next holder's.
            self._remove_owner()
            lock.release()

    def owner(self) -> LockOwner | None:
        """The recorded holder, or None when there is none or the record is stale."""
        try:
            owner = LockOwner(**json.loads(self.owner_path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return None
        if owner.host == socket.gethostname() and not _alive(owner.pid, owner.started):
            return None  # left behind by a process that died holding the lock
        return owner

    def _busy_message(self) -> str:
        owner = self.owner()
        who = owner.describe() if owner else "another process (it has not said which)"
        return (
            f"{self.path.parent} is busy: {who} holds the writer lock and did not finish within "
            f"{self.timeout_s:g} s (setting store.writer_timeout_s); wait for it to finish, "
            "stop it, or raise the setting"
        )

    def _write_owner(self) -> None:
        owner = LockOwner(
            pid=os.getpid(),
            host=socket.gethostname(),
            command=command_line(),
            since=time.time(),
            started=_start_time(os.getpid()),
        )
        tmp = self.owner_path.with_name(f"{self.owner_path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(asdict(owner)), encoding="utf-8")
            os.replace(tmp, self.owner_path)  # atomic: a reader sees a whole record or none
        except OSError as exc:  # only the message to a waiter suffers
            log.debug("could not record the writer lock's owner: %s", exc)
            with contextlib.suppress(OSError):
                tmp.unlink()

    def _remove_owner(self) -> None:
        with contextlib.suppress(OSError):
            self.owner_path.unlink()


def _alive(pid: int, started: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    now = _start_time(pid)
    return started is None or now is None or now == started


def _start_time(pid: int) -> str | None:
    """When the process started (clock ticks since boot, Linux), or None elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22; the command name (field 2) may hold spaces, so count after its ")".
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None
