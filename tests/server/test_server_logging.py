"""Logging in a real `ragkeep serve` process (docs/logging.md): JSON lines in `logging.file`,
request ids from `X-Request-ID` into the records a search writes on its worker thread, no
query text in the access log, and `ragkeep log-level` changing the level without a restart."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ragkeep import Keep

from conftest import run_cli, write
from server_harness import running_server

pytestmark = pytest.mark.timeout(180)

DOCS = {
    "kingfisher.md": "# Kingfishers\n\nKingfishers dive from a perch into shallow clear water.",
    "compost.txt": "Compost bays need greens and browns in equal measure, turned monthly.",
}
UNSAFE_ID = "not a safe id; " + "x" * 80


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("server-logging")
    for name, text in DOCS.items():
        write(root / "docs" / name, text)
    with Keep(root / "data") as keep:
        assert keep.add([root / "docs"]).ok
    return root / "data"


def _logging_env(path: Path, **settings: str) -> dict[str, str]:
    env = {f"RAGKEEP_LOGGING__{key.upper()}": value for key, value in settings.items()}
    return {"RAGKEEP_LOGGING__FILE": str(path), **env}


def _wait_for(path: Path, found: Callable[[str], bool], timeout: float = 15.0) -> list[str]:
    """The log's lines once one of them matches (the writer thread is asynchronous)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = path.read_text().splitlines() if path.exists() else []
        if any(found(line) for line in lines):
            return lines
        time.sleep(0.05)
    raise AssertionError(f"no matching line in {path}:\n{path.read_text()}")


def test_json_lines_carry_the_request_id_into_the_search_and_never_the_query(
    corpus: Path, tmp_path: Path
) -> None:
    path = tmp_path / "server.jsonl"
    env = _logging_env(path, format="json", level="INFO", sample_rate="1.0")
    with running_server(corpus, env_extra=env) as server, server.client() as client:
        searched = client.get(
            "/api/search",
            params={"q": "where do kingfishers dive", "k": 2},
            headers={"X-Request-ID": "req-kf-1"},
        )
        assert searched.status_code == 200 and searched.headers["X-Request-ID"] == "req-kf-1"
        generated = client.get("/healthz").headers["X-Request-ID"]
        replaced = client.get("/healthz", headers={"X-Request-ID": UNSAFE_ID})
        refused = client.get("/healthz", headers={"Host": "evil.example"})
        lines = _wait_for(path, lambda line: '"req-kf-1"' in line and "uvicorn.access" in line)
    assert len(generated) == 16 and int(generated, 16) >= 0
    assert replaced.headers["X-Request-ID"] != UNSAFE_ID
    assert refused.status_code == 400 and refused.headers["X-Request-ID"]
    records: list[dict[str, Any]] = [json.loads(line) for line in lines]  # every line is JSON
    ours = [r for r in records if r.get("request_id") == "req-kf-1"]
    search = next(r for r in ours if r["logger"] == "ragkeep.search.engine")
    assert search["message"] == "search" and search["mode"] == "hybrid" and search["hits"] == 2
    access = next(r for r in ours if r["logger"] == "uvicorn.access")
    assert "/api/search" in access["message"] and "?" not in access["message"]
    text = path.read_text()
    assert "kingfishers dive" not in text and "q=" not in text  # the query stays private
    assert UNSAFE_ID not in text


def test_log_level_changes_a_running_server_without_a_restart(corpus: Path, tmp_path: Path) -> None:
    path = tmp_path / "server.log"
    token = "log-level-token"
    with running_server(corpus, token=token, env_extra=_logging_env(path)) as server:
        auth = {"RAGKEEP_SERVER__TOKEN": token}
        shown = run_cli("log-level", "--url", server.url, "--json", env=auth)
        assert shown.code == 0, shown.stderr
        assert shown.json()["level"] == "WARNING" and shown.json()["dropped_records"] == 0
        no_token = run_cli("log-level", "DEBUG", "--url", server.url)
        assert no_token.code == 1 and "401" in no_token.stderr
        with server.client() as client:
            client.get("/healthz", headers={"X-Request-ID": UNSAFE_ID})  # DEBUG: not logged yet
            changed = run_cli("log-level", "debug", "--url", server.url, env=auth)
            assert changed.code == 0, changed.stderr
            assert "log level changed to DEBUG" in changed.stderr
            assert client.get("/api/logging").json()["level"] == "DEBUG"
            client.get("/healthz", headers={"X-Request-ID": UNSAFE_ID})
        lines = _wait_for(path, lambda line: "is not a safe token" in line)
        assert server.proc.poll() is None  # the same process throughout
    # In order: the change, then the one DEBUG record (the request before it logged none).
    change = next(i for i, line in enumerate(lines) if "log level changed to DEBUG" in line)
    assert "WARNING ragkeep.observability.logs: log level changed to DEBUG" in lines[change]
    debug = [i for i, line in enumerate(lines) if "is not a safe token" in line]
    assert len(debug) == 1 and debug[0] > change
    assert " DEBUG ragkeep.server.request_ids: X-Request-ID of 95 characters" in lines[debug[0]]
