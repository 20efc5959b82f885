"""`ragkeep monitor`: the live dashboard, run as a user would (a new process), against a real
`ragkeep serve` after real searches, against the statistics CLI processes recorded in the
index, against a server that is not there or goes away, and on a real pseudo-terminal."""

from __future__ import annotations

import os
import pty
import queue
import re
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from ragkeep import Keep
from ragkeep.cli.monitor_command import SPARKS, series, sparkline
from ragkeep.models.health import HealthPoint, HealthReport, HealthRow, Level, Metric
from ragkeep.observability.health import LABELS, format_value, threshold_text

from conftest import CliResult, run_cli
from server_harness import RunningServer, free_port, running_server

TOKEN = "monitor-test-token"
DOCS = {
    "tomatoes.md": "# Tomatoes\n\nWater tomatoes deeply twice a week; in a heatwave every day.",
    "ups.md": "# The UPS\n\nThe UPS keeps the home server running for 40 minutes in a power cut.",
    "bread.md": "# Bread\n\nKnead the dough for ten minutes, then let it rise for an hour.",
}
QUERIES = ["water tomatoes", "power cut", "knead dough", "rise for an hour"]
# Small enough that a test's few searches are judged, and a history point every half second.
FAST_HEALTH = {"health.sample_s": "0.5", "health.min_requests": "5"}
LEVELS = {level.value for level in Level}
WAIT_S = 60.0
WIDE = {"COLUMNS": "200"}  # no line of a frame wraps, whatever the length of a tmp path


def monitor(*args: str, data_dir: Path | None = None) -> CliResult:
    return run_cli(*args, data_dir=data_dir, env=WIDE, timeout=120)


def frames(stdout: str) -> list[str]:
    """The plain frames a monitor printed, one per refresh."""
    return ["ragkeep monitor" + f for f in stdout.split("ragkeep monitor")[1:]]


def metric_line(frame: str, metric_label: str) -> str:
    return next(line for line in frame.splitlines() if line.startswith(metric_label))


def index_docs(data_dir: Path, docs_dir: Path) -> None:
    docs_dir.mkdir(parents=True)
    for name, text in DOCS.items():
        (docs_dir / name).write_text(text)
    with Keep(data_dir) as keep:
        assert keep.add([docs_dir]).ok


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A token-protected server that has answered 24 searches over 4 queries (20 hits)."""
    root = tmp_path_factory.mktemp("monitor")
    index_docs(root / "data", root / "docs")
    with running_server(root / "data", FAST_HEALTH, token=TOKEN) as srv, srv.client() as client:
        for i in range(24):
            r = client.get("/api/search", params={"q": QUERIES[i % len(QUERIES)], "k": 2})
            assert r.status_code == 200, r.text
            time.sleep(0.05)  # spread over several history points
        yield srv


# -- against a server ------------------------------------------------------------------------


def test_monitor_shows_the_live_window_of_a_server(server: RunningServer) -> None:
    r = monitor(
        "monitor", "--url", server.url, "--token", TOKEN, "--count", "2", "--interval", "0.2"
    )
    assert r.code == 0, r.stderr
    with server.client() as client:
        report = HealthReport.from_json(client.get("/api/health").json())
    shown = frames(r.stdout)
    assert len(shown) == 2, r.stdout
    assert "\x1b[" not in r.stdout  # not a terminal: plain frames, no cursor control
    for frame in shown:
        assert f"live window of {server.url}" in frame
        assert f"24 requests in the last {report.window_s:g} s" in frame
        for row in report.rows:
            line = metric_line(frame, LABELS[row.metric]).rstrip()
            limits = re.escape(threshold_text(row))
            if row.metric is Metric.MEMORY:  # the process's size moves between two requests
                assert re.search(rf"\d%\s.*\s({'|'.join(LEVELS)})\s+{limits}$", line), line
                continue
            value, level = re.escape(format_value(row)), re.escape(row.level.value)
            assert re.search(rf"^{LABELS[row.metric]}\s+{value}\s.*\s{level}\s+{limits}$", line)
        # The searches show in the history: latency and hit-rate sparklines are not blank.
        for label in ("search p95", "cache hit rate"):
            assert set(metric_line(frame, label)) & set(SPARKS), frame
    assert report.row(Metric.CACHE_HIT_RATE).value == pytest.approx(20 / 24)


def test_a_refused_token_exits_2_instead_of_retrying(server: RunningServer) -> None:
    r = monitor("monitor", "--url", server.url, "--count", "50", "--interval", "0.2")
    assert r.code == 2, (r.stdout, r.stderr)
    assert "401" in r.stderr and "--token" in r.stderr
    assert r.stdout == ""


def test_an_unreachable_server_is_retried_with_one_line_on_stderr() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    r = monitor("monitor", "--url", url, "--count", "3", "--interval", "0.2")
    assert r.code == 0, r.stderr
    shown = frames(r.stdout)
    assert len(shown) == 3, r.stdout
    assert all("unreachable: cannot reach" in f and "no report yet" in f for f in shown)
    assert "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, r.stderr  # once when the trouble starts, not once per refresh
    assert "retrying every 0.2 s" in errors[0]


def test_a_server_that_goes_away_keeps_its_last_report_and_ctrl_c_exits_0(
    tmp_path: Path,
) -> None:
    with running_server(tmp_path / "data") as srv:
        monitor = subprocess.Popen(
            [sys.executable, "-m", "ragkeep", "monitor", "--url", srv.url, "--interval", "0.2"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **WIDE},
        )
        out = Lines(monitor.stdout)
        try:
            out.wait_for("updated ")
            assert srv.terminate() == 0
            out.wait_for("last good report at")
            monitor.send_signal(signal.SIGINT)  # what Ctrl-C sends
            code = monitor.wait(30)
        finally:
            if monitor.poll() is None:
                monitor.kill()
    stderr = monitor.stderr.read() if monitor.stderr else ""
    assert code == 0, stderr
    assert "Traceback" not in stderr and "interrupted" not in stderr
    last = frames(out.text())[-1]
    assert "unreachable: cannot reach" in last
    assert "search p95" in last and "memory" in last  # the last good figures stay on screen


# -- against the local index -----------------------------------------------------------------


def test_monitor_reads_the_statistics_cli_processes_recorded(tmp_path: Path) -> None:
    data = tmp_path / "data"
    index_docs(data, tmp_path / "docs")
    for query in ("water tomatoes", "water tomatoes", "power cut"):
        assert run_cli("search", query, "-k", "1", data_dir=data).code == 0
    r = monitor(
        "--set", "health.min_requests=2", "monitor", "--count", "2", "--interval", "0.2",
        data_dir=data,
    )  # fmt: skip
    assert r.code == 0, r.stderr
    shown = frames(r.stdout)
    assert len(shown) == 2
    for frame in shown:
        assert f"statistics recorded in {data}" in frame
        assert "3 requests in the last 300 s" in frame
        assert "history, 1/minute" in frame
        assert re.search(r"error rate\s+0%\s+\S+\s+ok", frame), frame
        # A CLI process's first search loads the model: its p95 may well alert.
        levels = "|".join(LEVELS - {"no data"})
        assert re.search(rf"search p95\s+[\d.]+ m?s\s+\S+\s+({levels})\s", frame), frame
        hit_rate = metric_line(frame, "cache hit rate")
        assert "no data" not in hit_rate and set(hit_rate) & set(SPARKS), hit_rate


# -- on a terminal ---------------------------------------------------------------------------


def test_on_a_terminal_it_redraws_in_place_and_ctrl_c_exits_0() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": "100", "LINES": "30", "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ragkeep", "monitor", "--url", url, "--interval", "0.2"],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
    )
    os.close(follower)
    seen = b""
    try:
        deadline = time.monotonic() + WAIT_S
        while seen.count(b"unreachable") < 3 and time.monotonic() < deadline:
            seen += _read(leader)
        proc.send_signal(signal.SIGINT)
        code = proc.wait(30)
        seen += _read(leader, timeout=0.5)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(leader)
    text = seen.decode(errors="replace")
    assert code == 0, text
    assert "\x1b[1A" in text  # the frame is redrawn in place (cursor up), not appended
    assert "Traceback" not in text


def _read(fd: int, timeout: float = 0.1) -> bytes:
    chunks = b""
    while select.select([fd], [], [], timeout)[0]:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the other side closed
            break
        if not chunk:
            break
        chunks += chunk
        timeout = 0.05
    return chunks


class Lines:
    """A subprocess's output, read on a thread so that a test can wait for a line."""

    def __init__(self, stream: IO[str] | None) -> None:
        self._lines: queue.Queue[str] = queue.Queue()
        self._seen: list[str] = []
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[str] | None) -> None:
        for line in stream or ():
            self._lines.put(line)

    def wait_for(self, text: str, timeout: float = WAIT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._lines.get(timeout=0.1)
            except queue.Empty:
                continue
            self._seen.append(line)
            if text in line:
                return
        raise AssertionError(f"{text!r} not seen in:\n{self.text()}")

    def text(self) -> str:
        while not self._lines.empty():
            self._seen.append(self._lines.get())
        return "".join(self._seen)


# -- the sparkline -------------------------------------------------------------------------


def test_sparkline_scales_to_its_top_and_shows_gaps_as_spaces() -> None:
    assert sparkline([None, 0.0, 0.5, 1.0, 2.0], top=1.0) == " ▁▅██"
    assert sparkline([], top=1.0) == ""
    assert sparkline([0.3], top=0.0) == "▃"  # no division by zero


def test_idle_minutes_of_the_index_are_gaps_in_the_history() -> None:
    """The index records only the minutes in which something happened."""
    row = HealthRow.from_json(
        {"metric": "query_p95", "value": 0.1, "unit": "seconds", "level": "ok", "target": 0.5,
         "alert": 1.0, "critical": 2.0, "higher_is_worse": True, "samples": 3}
    )  # fmt: skip

    def point(minute: int, p95: float) -> HealthPoint:
        return HealthPoint(minute * 60.0, 1, 0.0, 0.1, 1.0, p95)

    history = (point(10, 0.1), point(13, 0.2), point(14, 0.3))
    local = HealthReport("local", 300.0, (row,), history)
    assert series(local, row.metric) == [0.1, None, None, 0.2, 0.3]
    server = HealthReport("server", 300.0, (row,), history)  # a server samples every interval
    assert series(server, row.metric) == [0.1, 0.2, 0.3]
    assert series(local, row.metric, width=2) == [0.2, 0.3]
