"""Connections to the database: a pool shared by the process's threads, read snapshots
(REPEATABLE READ, read only) and short write transactions, nested on one thread the way
the SQLite backend nests them."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ragkeep.store.postgres.errors import translate

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

NOTHING_LOST = "nothing was changed"


@dataclass(slots=True)
class _Open:
    conn: psycopg.Connection[Any]
    writing: bool


def describe_url(url: str) -> str:
    """The URL without its password, for messages and `ragkeep status`."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(url)
    except Exception:
        return "postgresql://?"
    user = f"{parts['user']}@" if parts.get("user") else ""
    host = parts.get("host") or "localhost"
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{host}{port}/{parts.get('dbname', '')}"


class Connections:
    def __init__(self, url: str, pool_size: int, connect_timeout_s: float) -> None:
        self.url = url
        self.location = describe_url(url)
        self._pool_size = pool_size
        self._connect_timeout_s = connect_timeout_s
        self._pool: ConnectionPool[Any] | None = None
        self._pool_lock = threading.Lock()
        self._local = threading.local()

    def direct(self) -> psycopg.Connection[Any]:
        """A connection of its own (autocommit), outside the pool: migrations, the writer lock."""
        import psycopg

        try:
            return psycopg.connect(
                self.url, autocommit=True, connect_timeout=max(1, int(self._connect_timeout_s))
            )
        except psycopg.Error as exc:
            raise translate(exc, self.location, NOTHING_LOST) from exc

    def pool(self) -> ConnectionPool[Any]:
        pool = self._pool
        if pool is not None:
            return pool
        from psycopg_pool import ConnectionPool

        with self._pool_lock:
            if self._pool is None:
                self._pool = ConnectionPool(
                    self.url,
                    min_size=1,
                    max_size=self._pool_size,
                    kwargs={"autocommit": True},
                    configure=_configure,
                    timeout=self._connect_timeout_s,
                    open=True,
                    name="ragkeep",
                )
            return self._pool

    @contextmanager
    def read(self) -> Iterator[psycopg.Connection[Any]]:
        """One snapshot: every statement inside sees the same committed state."""
        current: _Open | None = getattr(self._local, "open", None)
        if current is not None:  # nested inside a read or a write on this thread
            yield current.conn
            return
        with self._transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", False, None) as c:
            yield c

    @contextmanager
    def write(
        self, lock_wait_s: float, kept: str | None = None
    ) -> Iterator[psycopg.Connection[Any]]:
        """A write transaction; a row lock held past `lock_wait_s` raises StoreBusyError."""
        current: _Open | None = getattr(self._local, "open", None)
        if current is not None and current.writing:
            yield current.conn
            return
        ms = max(1, int(lock_wait_s * 1000))
        with self._transaction("BEGIN", True, (ms, kept)) as c:
            yield c

    @contextmanager
    def _transaction(
        self, begin: str, writing: bool, write: tuple[int, str | None] | None
    ) -> Iterator[psycopg.Connection[Any]]:
        import psycopg
        from psycopg_pool import PoolTimeout

        kept = (write[1] if write else None) or NOTHING_LOST
        outer: _Open | None = getattr(self._local, "open", None)
        try:
            with self.pool().connection() as conn:
                conn.execute(begin)
                if write is not None:
                    conn.execute(f"SET LOCAL lock_timeout = {int(write[0])}")
                self._local.open = _Open(conn, writing)
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                else:
                    conn.execute("COMMIT")
                finally:
                    self._local.open = outer
        except PoolTimeout as exc:  # before psycopg.Error, which it is a kind of
            raise pool_timeout(self.location, self._connect_timeout_s, kept) from exc
        except psycopg.Error as exc:
            raise translate(exc, self.location, kept) from exc

    def close(self) -> None:
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()


def pool_timeout(location: str, wait_s: float, kept: str) -> Exception:
    from ragkeep.store.base import StoreBusyError

    return StoreBusyError(
        f"{location}: no database connection within {wait_s:g} s (store.connect_timeout_s): "
        f"the server does not answer, or all store.pool_size connections are busy; {kept}"
    )


def _configure(conn: psycopg.Connection[Any]) -> None:
    from pgvector.psycopg import register_vector

    register_vector(conn)
