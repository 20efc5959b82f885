"""The PostgreSQL test server (scripts/postgres_server.py) and its fixtures: pgvector works,
the server listens on 127.0.0.1 only, each test's database is its own, and the server survives
a second start and a killed postmaster."""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from conftest import (
    POSTGRES_URL_FROM_ENV,
    new_postgres_db,
    postgres_server_dir,
    postgres_server_module,
    postgres_unavailable,
)


def scalar(url: str, query: str, *params: object) -> object:
    with psycopg.connect(url) as conn:
        row = conn.execute(query, params or None).fetchone()
    assert row is not None
    return row[0]


def test_the_test_database_has_pgvector(postgres_url: str) -> None:
    assert scalar(postgres_url, "SELECT extversion FROM pg_extension WHERE extname = 'vector'")


def test_a_vector_query_works(postgres_db: str) -> None:
    assert scalar(postgres_db, "SELECT '[1,2,3]'::vector <#> '[1,0,0]'") == -1.0


@pytest.mark.skipif(bool(POSTGRES_URL_FROM_ENV), reason="a server of your own is configured")
def test_the_server_listens_on_loopback_only(postgres_url: str) -> None:
    assert urlsplit(postgres_url).hostname == "127.0.0.1"
    assert urlsplit(postgres_url).path == "/ragkeep_test"
    assert scalar(postgres_url, "SHOW listen_addresses") == "127.0.0.1"
    assert scalar(postgres_url, "SHOW unix_socket_directories") == ""


def test_each_database_is_independent(postgres_url: str, postgres_db: str) -> None:
    with psycopg.connect(postgres_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (v vector(3))")
        conn.execute("INSERT INTO t VALUES ('[1,2,3]')")
    with new_postgres_db(postgres_url) as other:
        assert other != postgres_db
        assert scalar(other, "SELECT to_regclass('t')") is None
        assert scalar(other, "SELECT count(*) FROM pg_extension WHERE extname = 'vector'") == 1
        name = urlsplit(other).path.lstrip("/")
    assert scalar(postgres_db, "SELECT count(*) FROM t") == 1
    assert scalar(postgres_url, "SELECT count(*) FROM pg_database WHERE datname = %s", name) == 0


@pytest.fixture
def server_dir() -> Iterator[Path]:
    try:
        server = postgres_server_module()
    except ImportError as exc:
        postgres_unavailable(str(exc))
    directory = postgres_server_dir()
    yield directory
    server.stop(directory)
    shutil.rmtree(directory, ignore_errors=True)


def test_a_second_start_and_a_killed_server_are_handled(server_dir: Path) -> None:
    server = postgres_server_module()
    try:
        url = server.start(server_dir)
    except server.ServerError as exc:
        postgres_unavailable(str(exc))
    assert server.start(server_dir) == url  # already running: the same server
    assert server.status(server_dir) == url
    assert (server_dir / "url").read_text().strip() == url

    pid = int((server_dir / "data" / "postmaster.pid").read_text().split()[0])
    os.kill(pid, signal.SIGKILL)  # leaves a stale postmaster.pid behind
    deadline = time.monotonic() + 10
    while server.status(server_dir) is not None and time.monotonic() < deadline:
        time.sleep(0.01)  # SIGKILL is not instant
    assert (server_dir / "data" / "postmaster.pid").exists()
    restarted = server.start(server_dir)
    assert scalar(restarted, "SELECT '[1,1]'::vector <-> '[1,1]'") == 0.0

    server.stop(server_dir)
    assert server.status(server_dir) is None
    assert not (server_dir / "url").exists()
