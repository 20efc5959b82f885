"""The writer lock on PostgreSQL: a session-level advisory lock, held by a connection of its
own for as long as the add/sync/remove runs.

PostgreSQL releases it when that session ends, however its process died (`kill -9`, a lost
machine: the server notices the closed connection). Who holds it is recorded in the
`writer_owner` row together with the holding session's backend PID, so a record whose
session is gone is recognised as stale and never named as the holder.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ragkeep.resources.slow import warn_if_slow
from ragkeep.store.base import StoreBusyError, StoreError
from ragkeep.store.lock_owner import LockOwner, command_line

if TYPE_CHECKING:
    import psycopg

    from ragkeep.store.postgres.connections import Connections

log = logging.getLogger(__name__)

# Both halves of the two-key advisory lock: one namespace for ragkeep's writer, the other the
# schema the index lives in, so two indexes in one database do not exclude each other.
_LOCK_KEYS = "hashtext('ragkeep.writer'), hashtext(current_schema())"
_POLL_S = 0.05


class PgWriterLock:
    def __init__(self, connections: Connections, timeout_s: float, slow_s: float) -> None:
        self._connections = connections
        self.timeout_s = timeout_s
        self.slow_s = slow_s

    @contextmanager
    def hold(self, on_wait: Callable[[], None] | None) -> Iterator[None]:
        conn = self._connections.direct()
        try:
            if not _try_lock(conn):
                if on_wait is not None:
                    on_wait()
                with warn_if_slow(log, "waiting for the writer lock", self.slow_s):
                    self._wait(conn)
            try:
                _write_owner(conn)
                yield
            finally:
                with contextlib.suppress(Exception):  # the session's end releases it anyway
                    conn.execute("DELETE FROM writer_owner")
                    conn.execute(f"SELECT pg_advisory_unlock({_LOCK_KEYS})")
        finally:
            conn.close()

    def owner(self) -> LockOwner | None:
        """The recorded holder, or None when there is none or its session has ended."""
        with self._connections.read() as c:
            row = c.execute(
                "SELECT o.pid, o.host, o.command, o.since FROM writer_owner o "
                "WHERE EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = o.backend)"
            ).fetchone()
        return LockOwner(int(row[0]), str(row[1]), str(row[2]), float(row[3])) if row else None

    def _wait(self, conn: psycopg.Connection[Any]) -> None:
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            time.sleep(_POLL_S)
            if _try_lock(conn):
                return
        owner = self.owner()
        who = owner.describe() if owner else "another process (it has not said which)"
        raise StoreBusyError(
            f"{self._connections.location} is busy: {who} holds the writer lock and did not "
            f"finish within {self.timeout_s:g} s (setting store.writer_timeout_s); wait for it "
            "to finish, stop it, or raise the setting"
        )


def _try_lock(conn: psycopg.Connection[Any]) -> bool:
    import psycopg

    try:
        row = conn.execute(f"SELECT pg_try_advisory_lock({_LOCK_KEYS})").fetchone()
    except psycopg.Error as exc:
        raise StoreError(f"cannot take the writer lock: {exc}") from exc
    return bool(row and row[0])


def _write_owner(conn: psycopg.Connection[Any]) -> None:
    import psycopg

    try:
        conn.execute(
            "INSERT INTO writer_owner(id, pid, host, command, since, backend) "
            "VALUES (1, %s, %s, %s, %s, pg_backend_pid()) ON CONFLICT (id) DO UPDATE SET "
            "pid = excluded.pid, host = excluded.host, command = excluded.command, "
            "since = excluded.since, backend = excluded.backend",
            (os.getpid(), socket.gethostname(), command_line(), time.time()),
        )
    except psycopg.Error as exc:  # only the message to a waiter suffers
        log.debug("could not record the writer lock's owner: %s", exc)
