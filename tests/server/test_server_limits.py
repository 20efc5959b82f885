"""Hard to overload: bounded in-flight searches and asks (429 at once, never a 500),
deadlines (504, and the LLM stream is closed), a client that disconnects cancels its ask,
a bounded write queue (503), and SIGTERM during a sync leaves a consistent index."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from ragkeep import Keep

from conftest import SCIFACT, run_cli
from fake_llm import FakeLLM
from server_harness import running_server, sse_events

QUESTION = {"question": "How often should tomatoes be watered?"}
SLOW_REPLY = " ".join(f"word{i}" for i in range(60)) + " [1]."


def scifact_files(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with (SCIFACT / "corpus.jsonl").open(encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if i >= n:
                break
            doc = json.loads(line)
            (folder / f"{doc['_id']}.txt").write_text(f"{doc['title']}\n\n{doc['text']}\n")
    return folder


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("limits")
    docs = root / "docs"
    docs.mkdir()
    (docs / "tomatoes.md").write_text("# Tomatoes\n\nWater tomatoes deeply twice a week.")
    with Keep(root / "data") as keep:
        keep.add([docs])
    return root / "data"


@pytest.fixture(scope="module")
def slow_llm() -> Iterator[FakeLLM]:
    with FakeLLM(reply=SLOW_REPLY, delta_delay_s=0.15) as fake:
        yield fake


def llm_settings(llm: FakeLLM, **server: str) -> dict[str, str]:
    base = {"llm.provider": "ollama", "llm.url": llm.url, "llm.model": "m"}
    return {**base, **{f"server.{k}": v for k, v in server.items()}}


def wait_for(condition: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.05)
    return False


def test_asks_over_the_bound_get_429_at_once(data: Path, slow_llm: FakeLLM) -> None:
    with running_server(data, llm_settings(slow_llm, max_asks="1")) as srv, srv.client() as c:
        with c.stream("POST", "/api/ask/stream", json=QUESTION) as first:
            lines = first.iter_lines()
            assert next(sse_events(lines))[0] == "passages"  # the one slot is now taken
            started = time.monotonic()
            second = c.post("/api/ask", json=QUESTION)
            assert time.monotonic() - started < 2.0  # refused at once, not queued
            assert second.status_code == 429
            assert second.json()["error"]["code"] == "too_many_requests"
            assert int(second.headers["retry-after"]) >= 1
            refused = c.post("/api/ask/stream", json=QUESTION)
            assert refused.status_code == 429  # before any stream begins
        # The slot comes back when the first stream is gone.
        assert wait_for(lambda: c.get("/api/status").json()["server"]["asks_in_flight"] == 0)


def test_a_burst_of_searches_gets_200_or_429_never_500(data: Path) -> None:
    with running_server(data, {"server.max_searches": "1"}) as srv:

        def one(i: int) -> tuple[int, str | None]:
            with httpx.Client(base_url=srv.url, timeout=30) as c:
                r = c.get("/api/search", params={"q": f"water tomatoes deeply {i}"})
                return r.status_code, r.headers.get("retry-after")

        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(one, range(96)))
    statuses = {status for status, _ in results}
    assert statuses <= {200, 429}, results
    assert 429 in statuses and 200 in statuses
    assert all(retry for status, retry in results if status == 429)


def test_an_ask_past_its_deadline_gets_504_and_the_llm_stream_is_closed(
    data: Path, slow_llm: FakeLLM
) -> None:
    settings = llm_settings(slow_llm, ask_deadline_s="1")
    with running_server(data, settings) as srv, srv.client() as c:
        before = len(slow_llm.disconnects), slow_llm.completed_streams
        started = time.monotonic()
        r = c.post("/api/ask", json=QUESTION)
        assert r.status_code == 504 and r.json()["error"]["code"] == "deadline_exceeded"
        assert time.monotonic() - started < 5.0
        # The work stopped: the LLM saw its connection closed, long before its 9 s answer.
        assert wait_for(lambda: len(slow_llm.disconnects) > before[0], timeout=5)
        assert slow_llm.completed_streams == before[1]
        with c.stream("POST", "/api/ask/stream", json=QUESTION) as s:
            events = list(sse_events(s.iter_lines()))
        assert events[-1][0] == "error"
        assert json.loads(events[-1][1])["code"] == "deadline_exceeded"


def test_a_search_past_its_deadline_gets_504(data: Path) -> None:
    settings = {"server.search_deadline_s": "0.000001"}
    with running_server(data, settings) as srv, srv.client() as c:
        r = c.get("/api/search", params={"q": "tomatoes"})
    assert r.status_code == 504 and r.json()["error"]["code"] == "deadline_exceeded"


def test_a_client_that_disconnects_cancels_its_ask(data: Path, slow_llm: FakeLLM) -> None:
    with running_server(data, llm_settings(slow_llm, max_asks="1")) as srv, srv.client() as c:
        before = len(slow_llm.disconnects), slow_llm.completed_streams
        with c.stream("POST", "/api/ask/stream", json=QUESTION) as r:
            for name, _ in sse_events(r.iter_lines()):
                if name == "token":
                    break  # the answer is being generated: now hang up
        # The server closed its LLM stream: nothing keeps generating for nobody ...
        assert wait_for(lambda: len(slow_llm.disconnects) > before[0], timeout=5)
        assert slow_llm.disconnects[-1] < 20  # of 61 deltas
        assert slow_llm.completed_streams == before[1]
        # ... and gave its slot back.
        assert wait_for(lambda: c.get("/api/status").json()["server"]["asks_in_flight"] == 0)


def test_a_full_write_queue_answers_503(tmp_path: Path) -> None:
    docs = scifact_files(tmp_path / "docs", 120)
    settings = {"server.job_queue": "1", "server.allowed_roots": json.dumps([str(docs)])}
    with running_server(tmp_path / "data", settings) as srv, srv.client() as c:
        first = c.post("/api/sources", json={"path": str(docs)}).json()
        assert wait_for(lambda: c.get(f"/api/jobs/{first['id']}").json()["state"] == "running")
        assert c.post("/api/sync").status_code == 202  # waits in the queue
        full = c.post("/api/sync")
        assert full.status_code == 503 and full.json()["error"]["code"] == "queue_full"
        assert "retry-after" in full.headers


def test_sigterm_during_a_sync_stops_cleanly_and_doctor_passes(tmp_path: Path) -> None:
    # Progress counts committed documents, and small ones are committed in groups of about
    # 128 chunks (some 50 SciFact abstracts): enough of them that the SIGTERM lands mid-way.
    docs = scifact_files(tmp_path / "docs", 150)
    settings = {"server.allowed_roots": json.dumps([str(docs)])}
    data = tmp_path / "data"
    with running_server(data, settings) as srv:
        with srv.client() as c:
            job = c.post("/api/sources", json={"path": str(docs)}).json()
            assert wait_for(
                lambda: c.get(f"/api/jobs/{job['id']}").json()["progress"]["done"] > 3, 60
            )
        srv.proc.send_signal(signal.SIGTERM)
        assert srv.proc.wait(60) == 0, srv.output()
        assert "Traceback" not in srv.output()
    assert run_cli("doctor", data_dir=data).code == 0
    indexed = run_cli("status", "--json", data_dir=data).json()["documents"]
    assert indexed < 150  # it stopped between two documents, before the end
    assert run_cli("sync", data_dir=data).code == 0  # the next sync finishes the work
    assert run_cli("status", "--json", data_dir=data).json()["documents"] == 150


def test_healthz_answers_while_the_model_loads(data: Path) -> None:
    with running_server(data, wait_ready=False) as srv:
        assert httpx.get(srv.url + "/healthz").json() == {"status": "ok"}
        assert wait_for(lambda: httpx.get(srv.url + "/readyz").status_code == 200, 60)


def test_threads_are_not_leaked_by_many_asks(data: Path, slow_llm: FakeLLM) -> None:
    fast = FakeLLM(reply="Twice a week [1].").start()
    try:
        with running_server(data, llm_settings(fast, max_asks="4")) as srv, srv.client() as c:
            for _ in range(20):
                assert c.post("/api/ask", json=QUESTION).status_code == 200
            assert c.get("/api/status").json()["server"]["asks_in_flight"] == 0
    finally:
        fast.close()
    assert threading.active_count() < 50
