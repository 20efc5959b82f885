"""Logging that never blocks a request (docs/logging.md): one bounded queue between the threads
that log and the writer thread, drops counted, JSON lines, sampled per-search events, and a
level that changes at run time.

A real index and the real model, in this process; the sinks are real `logging.Handler`s, one
of which stalls on purpose like a full disk or a frozen terminal. The CLI runs as a process.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ragkeep import Keep
from ragkeep.config.settings import LoggingSettings
from ragkeep.observability import logs

from conftest import run_cli, write

pytestmark = pytest.mark.timeout(120)

DOCS = {
    "kiln.md": "# Kiln\n\nFire the kiln slowly to avoid cracking the glaze.",
    "ups.md": "# UPS\n\nThe UPS keeps the server running for twenty minutes in a power cut.",
    "tomatoes.md": "# Tomatoes\n\nWater tomatoes deeply twice a week in summer.",
}
QUERY = "how slowly should the kiln be fired"  # its words must never reach a log
log = logging.getLogger("ragkeep.tests.logging")


class ListSink(logging.Handler):
    """Keeps every record it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def lines(self) -> list[str]:
        formatter = logs.TextFormatter(with_time=False)
        return [formatter.format(r) for r in self.records]


class StallingSink(logging.Handler):
    """A sink that stalls like a full disk: each record holds the writer for `stall_s`,
    until the test releases it."""

    def __init__(self, stall_s: float) -> None:
        super().__init__()
        self.stall_s = stall_s
        self.unblock = threading.Event()
        self.got_one = threading.Event()
        self.written = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.got_one.set()
        self.unblock.wait(self.stall_s)
        self.written += 1


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("logging")
    for name, text in DOCS.items():
        write(root / "docs" / name, text)
    with Keep(root / "data") as keep:
        assert keep.add([root / "docs"]).ok
    return root / "data"


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    yield
    logs.shutdown_logging()
    root.setLevel(level)


def _search_events(sink: ListSink) -> list[logging.LogRecord]:
    return [
        r for r in sink.records if r.name == "ragkeep.search.engine" and r.getMessage() == "search"
    ]


def _timed_searches(keep: Keep, n: int, give_up_after_s: float) -> list[float]:
    """Seconds per search; stops early when the searches as a whole take too long (which
    they would if logging blocked them)."""
    times: list[float] = []
    started = time.perf_counter()
    for _ in range(n):
        t0 = time.perf_counter()
        keep.search(QUERY, 3, "hybrid")
        times.append(time.perf_counter() - t0)
        if time.perf_counter() - started > give_up_after_s:
            break
    return times


# -- the mitigation: a stalled sink never slows a search ---------------------------------------


def test_a_stalled_sink_does_not_slow_searches_and_the_dropped_records_are_counted(
    index_dir: Path,
) -> None:
    n, stall_s = 300, 2.0
    with Keep(index_dir) as keep:
        keep.search(QUERY, 3, "hybrid")  # from now on a cached search: ~0.1 ms
        logs.configure_logging(LoggingSettings(level="WARNING"), sink=ListSink())
        off = _timed_searches(keep, n, give_up_after_s=stall_s)
        sink = StallingSink(stall_s)
        # One event per search, a queue of 10, and a writer stuck for 2 s on each record.
        settings = LoggingSettings(level="INFO", sample_rate=1.0, events_per_s=0, queue_size=10)
        logs.configure_logging(settings, sink=sink)
        try:
            log.warning("the sink stalls on this one")
            assert sink.got_one.wait(10)  # from here on the writer is stuck in the sink
            before = logs.dropped_records()
            on = _timed_searches(keep, n, give_up_after_s=stall_s)
            dropped = logs.dropped_records() - before
        finally:
            sink.unblock.set()
    assert len(on) == n, f"only {len(on)} of {n} searches ran in {stall_s} s: logging blocked"
    # Blocking would have cost one stall per record past the queue; all 300 took less than one.
    assert sum(on) < stall_s
    p50_off, p50_on = sorted(off)[n // 2], sorted(on)[n // 2]
    assert p50_on <= 3 * p50_off + 0.0002, f"p50 {p50_on * 1e3:.3f} ms vs {p50_off * 1e3:.3f} ms"
    # All but the 10 that fit in the queue (11 if a stall ended and the writer took one more).
    assert n - 12 <= dropped <= n - 10


def test_a_full_queue_drops_new_records_and_counts_each_one() -> None:
    sink = StallingSink(stall_s=2)
    logs.configure_logging(LoggingSettings(level="INFO", queue_size=10), sink=sink)
    before = logs.dropped_records()
    log.warning("first")  # the writer takes it and stalls
    assert sink.got_one.wait(10)
    for i in range(25):
        log.warning("record %d", i)
    assert logs.dropped_records() - before == 15  # 10 wait in the queue
    assert logs.logging_status()["queued"] == 10
    sink.unblock.set()
    logs.shutdown_logging()
    assert sink.written == 11


def test_configuring_again_replaces_the_handler_and_writes_out_the_old_queue() -> None:
    first, second = ListSink(), ListSink()
    logs.configure_logging(LoggingSettings(), sink=first)
    log.warning("to the first")
    logs.configure_logging(LoggingSettings(), sink=second)
    log.warning("to the second")
    logs.shutdown_logging()
    ours = [h for h in logging.getLogger().handlers if isinstance(h, logs.DroppingQueueHandler)]
    assert ours == []
    assert [r.getMessage() for r in first.records] == ["to the first"]
    assert [r.getMessage() for r in second.records] == ["to the second"]


def test_warnings_logged_just_before_exit_are_written(tmp_path: Path) -> None:
    path = tmp_path / "exit.log"
    code = (
        "import logging\n"
        "from ragkeep.config.settings import LoggingSettings\n"
        "from ragkeep.observability.logs import configure_logging\n"
        f"configure_logging(LoggingSettings(file={str(path)!r}))\n"
        "for i in range(3000):\n"
        "    logging.getLogger('ragkeep.x').warning('line %d', i)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    lines = path.read_text().splitlines()
    assert len(lines) == 3000 and lines[-1].endswith("WARNING ragkeep.x: line 2999")


# -- formats -----------------------------------------------------------------------------------


def test_json_lines_carry_time_level_logger_message_request_id_and_extra_fields(
    tmp_path: Path,
) -> None:
    path = tmp_path / "log.jsonl"
    logs.configure_logging(LoggingSettings(format="json", file=str(path)))
    token = logs.bind_request_id("req-42")
    try:
        log.warning("disk %s is nearly full", "/srv", extra={"free_mb": 3})
        try:
            _ = 1 / 0
        except ZeroDivisionError:
            log.exception("it failed")
    finally:
        logs.reset_request_id(token)
    log.error("outside any request")
    logs.shutdown_logging()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == 3
    first, failed, outside = lines
    assert first.pop("time").endswith("Z")
    assert first == {
        "level": "WARNING",
        "logger": "ragkeep.tests.logging",
        "message": "disk /srv is nearly full",
        "request_id": "req-42",
        "free_mb": 3,
    }
    assert failed["request_id"] == "req-42" and "ZeroDivisionError" in failed["exc"]
    assert "request_id" not in outside and outside["level"] == "ERROR"


def test_text_lines_are_what_the_cli_has_always_printed() -> None:
    sink = ListSink()
    logs.configure_logging(LoggingSettings(), sink=sink)
    log.warning("the %s is %d%% full", "disk", 97, extra={"free_mb": 3})
    logs.shutdown_logging()
    assert sink.lines() == ["WARNING ragkeep.tests.logging: the disk is 97% full free_mb=3"]


# -- sampling ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("rate", "events"), [(0.0, 0), (1.0, 20)])
def test_search_events_follow_the_sample_rate_and_never_hold_the_query(
    index_dir: Path, rate: float, events: int
) -> None:
    sink = ListSink()
    logs.configure_logging(LoggingSettings(level="INFO", sample_rate=rate), sink=sink)
    with Keep(index_dir) as keep:
        keep.clear_cache()
        for _ in range(20):
            keep.search(QUERY, 3, "hybrid")
    logs.shutdown_logging()
    found = _search_events(sink)
    assert len(found) == events
    if found:
        assert [r.__dict__["cached"] for r in found[:2]] == [False, True]
        fields = {k: found[0].__dict__[k] for k in ("mode", "k", "hits", "degraded")}
        assert fields == {"mode": "hybrid", "k": 3, "hits": 3, "degraded": []}
    text = "\n".join(sink.lines())
    assert not any(word in text for word in ("kiln", "slowly", "fired"))


def test_slow_searches_are_logged_whatever_the_sample_rate(index_dir: Path) -> None:
    sink = ListSink()
    logs.configure_logging(LoggingSettings(level="INFO", sample_rate=0.0), sink=sink)
    with Keep(index_dir, overrides={"resources.slow_query_s": 1e-9}) as keep:
        for _ in range(5):
            keep.search(QUERY, 3, "hybrid")
    logs.shutdown_logging()
    slow = [line for line in sink.lines() if "slow: a hybrid search took" in line]
    assert len(slow) == 5 and not _search_events(sink)


def test_events_per_second_are_capped_whatever_the_sample_rate(index_dir: Path) -> None:
    sink = ListSink()
    settings = LoggingSettings(level="INFO", sample_rate=1.0, events_per_s=5)
    logs.configure_logging(settings, sink=sink)
    with Keep(index_dir) as keep:
        started = time.monotonic()
        for _ in range(50):
            keep.search(QUERY, 3, "hybrid")
        seconds = time.monotonic() - started
    logs.shutdown_logging()
    # 5 in each second the searches touched (almost always one second; two at most here).
    assert 5 <= len(_search_events(sink)) <= 5 * (int(seconds) + 2)


def test_sampling_costs_nothing_below_info_and_keeps_about_the_rate() -> None:
    settings = LoggingSettings(level="WARNING", sample_rate=1.0, events_per_s=0)
    logs.configure_logging(settings, sink=ListSink())
    assert not logs.sampled(log)
    logs.set_level("INFO")
    kept = sum(logs.sampled(log, 0.25) for _ in range(4000))
    assert 800 < kept < 1200
    assert all(logs.sampled(log) for _ in range(100))  # the configured rate, 1.0


# -- the level at run time -----------------------------------------------------------------------


def test_the_level_changes_at_run_time_and_the_change_is_always_logged() -> None:
    sink = ListSink()
    logs.configure_logging(LoggingSettings(level="WARNING"), sink=sink)
    log.debug("hidden")
    logs.set_level("debug")
    assert logs.current_level() == "DEBUG"
    log.debug("shown")
    logs.set_level("ERROR")  # stricter than the warning announcing it: logged first
    log.warning("hidden again")
    with pytest.raises(ValueError, match="unknown log level"):
        logs.set_level("LOUD")
    logs.shutdown_logging()
    assert [r.getMessage() for r in sink.records] == [
        "log level changed to DEBUG (was WARNING)",
        "shown",
        "log level changed to ERROR (was DEBUG)",
    ]


# -- the CLI -------------------------------------------------------------------------------------


def test_cli_warnings_keep_their_format_on_stderr_and_events_go_to_the_log_file(
    index_dir: Path, tmp_path: Path
) -> None:
    slow = ("--set", "resources.slow_query_s=0.000001")
    plain = run_cli(*slow, "search", QUERY, "-k", "1", "--json", data_dir=index_dir)
    assert plain.code == 0, plain.stderr
    assert plain.stderr.startswith("WARNING ragkeep.services.querying: slow: a hybrid search")
    assert run_cli(*slow, "-q", "search", QUERY, data_dir=index_dir).stderr == ""
    path = tmp_path / "cli.log"
    settings = [f"logging.file={path}", "logging.level=INFO", "logging.sample_rate=1"]
    to_file = run_cli(
        *(arg for s in settings for arg in ("--set", s)), "search", QUERY, data_dir=index_dir
    )
    assert to_file.code == 0 and to_file.stderr == ""
    text = path.read_text()
    assert "INFO ragkeep.search.engine: search mode=hybrid k=10" in text
    assert "kiln" not in text


def test_each_answer_is_an_event_without_the_question(index_dir: Path) -> None:
    sink = ListSink()
    logs.configure_logging(LoggingSettings(level="INFO", sample_rate=1.0), sink=sink)
    with Keep(index_dir) as keep:
        keep.ask(QUERY)
    logs.shutdown_logging()
    asks = [r for r in sink.records if r.getMessage() == "ask"]
    assert len(asks) == 1
    assert asks[0].__dict__["mode"] == "passages"
    assert asks[0].__dict__["passages"] >= 1
    assert not any(word in "\n".join(sink.lines()) for word in ("kiln", "slowly", "fired"))
