"""Start the real `ragkeep serve` in its own process on a free 127.0.0.1 port, for tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

READY_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class RunningServer:
    proc: subprocess.Popen[str]
    url: str
    data_dir: Path
    log: Path
    token: str | None = None

    def client(self, **kwargs: object) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30.0, **kwargs)  # type: ignore[arg-type]

    def terminate(self, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def server_command(data_dir: Path, port: int, settings: dict[str, str], *extra: str) -> list[str]:
    cmd = [sys.executable, "-m", "ragkeep", "--data-dir", str(data_dir)]
    for key, value in {"llm.provider": "none", **settings}.items():
        cmd += ["--set", f"{key}={value}"]
    return [*cmd, "serve", "--port", str(port), *extra]


@contextmanager
def running_server(
    data_dir: Path,
    settings: dict[str, str] | None = None,
    *,
    token: str | None = None,
    wait_ready: bool = True,
    env_extra: dict[str, str] | None = None,
) -> Iterator[RunningServer]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGKEEP_")}
    env["HF_HUB_OFFLINE"] = "1"
    env.update(env_extra or {})
    if token:
        env["RAGKEEP_SERVER__TOKEN"] = token
    log = data_dir.parent / f"server-{port}.log"
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        proc = subprocess.Popen(
            server_command(data_dir, port, settings or {}),
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            text=True,
        )
    server = RunningServer(proc, f"http://127.0.0.1:{port}", data_dir, log, token)
    try:
        _wait(server, "/readyz" if wait_ready else "/healthz")
        yield server
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait(server: RunningServer, path: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"the server exited early:\n{server.output()}")
        try:
            if httpx.get(server.url + path, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the server did not become ready:\n{server.output()}")


def sse_events(lines: Iterator[str]) -> Iterator[tuple[str, str]]:
    """(event, data) pairs from a text/event-stream body."""
    event, data = "message", []
    for line in lines:
        if line == "":
            if data:
                yield event, "\n".join(data)
            event, data = "message", []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())
