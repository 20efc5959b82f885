"""Safe to expose: the bind rule, the Host check (DNS rebinding), bearer-token auth, CORS off
by default, the path rules for sources, and request body limits."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ragkeep.server.security import host_name, is_loopback

from conftest import run_cli
from server_harness import RunningServer, free_port, running_server, server_command

TOKEN = "s3cret-token-for-tests"


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("sec")
    allowed = base / "allowed"
    (allowed / "notes").mkdir(parents=True)
    (allowed / "notes" / "a.md").write_text("# A\n\nAllowed notes about beekeeping.")
    outside = base / "outside"
    outside.mkdir()
    (outside / "secret.md").write_text("# Secret\n\nNot for the server.")
    os.symlink(outside, allowed / "escape")  # a symlink inside the root that leads out
    return base


@pytest.fixture(scope="module")
def server(roots: Path) -> Iterator[RunningServer]:
    settings = {
        "server.allowed_roots": json.dumps([str(roots / "allowed")]),
        "server.body_max_kb": "4",
        "server.upload_max_mb": "1",
    }
    with running_server(roots / "data", settings, token=TOKEN) as srv:
        yield srv


def test_every_api_request_needs_the_bearer_token(server: RunningServer) -> None:
    with httpx.Client(base_url=server.url) as anonymous:
        for path in ("/api/status", "/api/search?q=x", "/api/documents"):
            r = anonymous.get(path)
            assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
            assert r.headers["www-authenticate"] == "Bearer"
        wrong = anonymous.get("/api/status", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        basic = anonymous.get("/api/status", headers={"Authorization": f"Basic {TOKEN}"})
        assert basic.status_code == 401
        # The probes, the page and the API description stay reachable without it.
        for path in ("/healthz", "/readyz", "/", "/openapi.json", "/docs"):
            assert anonymous.get(path).status_code == 200, path
    with server.client() as authorised:
        assert authorised.get("/api/status").status_code == 200


def test_a_foreign_host_header_is_refused(server: RunningServer) -> None:
    """DNS rebinding: evil.example resolving to 127.0.0.1 still sends its own Host name."""
    with server.client() as c:
        for host in ("evil.example", "evil.example:8765", "127.0.0.1.evil.example", ""):
            r = c.get("/api/status", headers={"Host": host})
            assert r.status_code == 400 and r.json()["error"]["code"] == "bad_host", host
        port = server.url.rsplit(":", 1)[1]
        for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", "localhost"):
            assert c.get("/api/status", headers={"Host": host}).status_code == 200, host


def test_cors_is_off_by_default(server: RunningServer) -> None:
    with server.client() as c:
        origin = {"Origin": "https://evil.example"}
        r = c.get("/api/status", headers=origin)
        assert "access-control-allow-origin" not in r.headers
        pre = c.options("/api/status", headers={**origin, "Access-Control-Request-Method": "GET"})
        assert "access-control-allow-origin" not in pre.headers


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("{allowed}/../outside", 403, "path_not_allowed"),  # .. leaves the root
        ("{allowed}/escape", 403, "path_not_allowed"),  # a symlink out of the root
        ("{allowed}/escape/secret.md", 403, "path_not_allowed"),
        ("{outside}", 403, "path_not_allowed"),  # an absolute path elsewhere
        ("/etc/passwd", 403, "path_not_allowed"),
        ("notes/../../outside", 403, "path_not_allowed"),  # relative, climbing out
        ("{allowed}/missing", 404, "not_found"),
    ],
)
def test_sources_outside_the_allowed_roots_are_refused(
    server: RunningServer, roots: Path, path: str, status: int, code: str
) -> None:
    raw = path.format(allowed=roots / "allowed", outside=roots / "outside")
    with server.client() as c:
        r = c.post("/api/sources", json={"path": raw})
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code


def test_sources_inside_the_allowed_roots_are_added(server: RunningServer, roots: Path) -> None:
    with server.client() as c:
        for raw in ("notes", str(roots / "allowed" / "notes" / "a.md")):
            r = c.post("/api/sources", json={"path": raw})
            assert r.status_code == 202, r.text
        job = r.json()
        import time

        for _ in range(300):
            job = c.get(f"/api/jobs/{job['id']}").json()
            if job["state"] != "queued" and job["state"] != "running":
                break
            time.sleep(0.1)
        assert job["state"] == "done"
        sources = c.get("/api/sources").json()["sources"]
    assert str(roots / "allowed" / "notes") in sources


def test_request_bodies_over_the_limit_are_refused_before_reading(
    server: RunningServer,
) -> None:
    with server.client() as c:
        big = {"question": "x" * 3000, "k": 1, "pad": "y" * 5000}
        r = c.post("/api/ask", json=big)
        assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"

        def chunked() -> Iterator[bytes]:  # no Content-Length: counted while read
            yield b'{"question": "'
            for _ in range(10):
                yield b"z" * 1024
            yield b'"}'

        r = c.post("/api/ask", content=chunked(), headers={"Content-Type": "application/json"})
        assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"
        upload = {"files": ("big.txt", b"word " * 300_000)}  # 1.5 MB > 1 MB
        r = c.post("/api/uploads", files=upload)
        assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"
    assert not list((server.data_dir / "uploads").glob("big*"))


def test_a_non_loopback_bind_needs_a_token(tmp_path: Path) -> None:
    result = run_cli("serve", "--host", "0.0.0.0", "--port", "1", data_dir=tmp_path / "d")
    assert result.code == 2
    assert "needs a token" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_with_a_token_a_non_loopback_bind_starts(tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    port = free_port()
    env = {**os.environ, "RAGKEEP_SERVER__TOKEN": TOKEN}
    cmd = server_command(tmp_path / "d", port, {}, "--host", "0.0.0.0")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        for _ in range(200):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise AssertionError("no server")
    finally:
        proc.terminate()
        proc.wait(30)
    assert sys.executable  # the server ran under this interpreter


def test_host_and_loopback_helpers() -> None:
    assert host_name("[::1]:8765") == "::1" and host_name("Example.org:80") == "example.org"
    assert host_name("localhost") == "localhost" and host_name("::1") == "::1"
    assert is_loopback("127.0.0.5") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2")
