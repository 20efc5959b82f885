"""The HTTP API against a real `ragkeep serve` process: search, ask (JSON and streamed),
documents, sources, uploads, jobs and admin, and the one JSON error shape."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ragkeep import Keep

from fake_llm import FakeLLM
from server_harness import RunningServer, running_server, sse_events

DOCS = {
    "tomatoes.md": "# Tomatoes\n\nWater tomatoes deeply twice a week; in a heatwave every day.",
    "ups.md": "# The UPS\n\nThe UPS keeps the home server running for 40 minutes in a power cut.",
    "compost.txt": "Compost bays need greens and browns in equal measure, turned monthly.",
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("api")
    docs = root / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text)
    with Keep(root / "data") as keep:
        assert keep.add([docs]).ok
    return root


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    with FakeLLM(reply="Water them twice a week [1].") as fake:
        yield fake


@pytest.fixture(scope="module")
def server(corpus: Path, llm: FakeLLM) -> Iterator[RunningServer]:
    settings = {
        "llm.provider": "ollama",
        "llm.url": llm.url,
        "llm.model": "m",
        "server.allowed_roots": json.dumps([str(corpus / "docs")]),
    }
    with running_server(corpus / "data", settings) as srv:
        yield srv


@pytest.fixture
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, str]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code
    assert "Traceback" not in response.text
    error: dict[str, str] = body["error"]
    return error


def wait_job(client: httpx.Client, job_id: str, timeout: float = 60.0) -> dict[str, object]:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, object] = client.get(f"/api/jobs/{job_id}").json()
        if job["state"] in ("done", "failed", "cancelled"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")


def test_search_returns_hits_with_their_source(client: httpx.Client) -> None:
    r = client.get("/api/search", params={"q": "how often to water tomatoes", "k": 2})
    assert r.status_code == 200
    hits = r.json()["hits"]
    assert hits[0]["path"].endswith("tomatoes.md")
    assert {"rank", "score", "doc_id", "path", "title", "chunk_id", "text", "page"} <= set(hits[0])
    for mode in ("bm25", "dense", "hybrid"):
        assert client.get("/api/search", params={"q": "UPS", "mode": mode}).status_code == 200


def test_bad_requests_get_the_json_error_shape(client: httpx.Client) -> None:
    assert_error(client.get("/api/search", params={"q": "x", "k": 0}), 422, "invalid_request")
    bad_mode = client.get("/api/search", params={"q": "x", "mode": "nope"})
    assert_error(bad_mode, 422, "invalid_request")
    assert_error(client.get("/api/search"), 422, "invalid_request")
    assert_error(client.get("/api/nowhere"), 404, "not_found")
    assert_error(client.get("/api/documents/999999"), 404, "not_found")
    assert_error(client.post("/api/ask", content=b"{not json"), 422, "invalid_request")
    assert_error(client.delete("/api/search"), 405, "method_not_allowed")


def test_ask_answers_with_citations_from_the_llm(client: httpx.Client) -> None:
    r = client.post("/api/ask", json={"question": "How often should tomatoes be watered?"})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["mode"] == "llm" and "twice a week" in answer["answer"]
    assert answer["citations"][0]["path"].endswith("tomatoes.md")


def test_ask_stream_sends_passages_then_tokens_then_citations(client: httpx.Client) -> None:
    body = {"question": "How often should tomatoes be watered?"}
    with client.stream("POST", "/api/ask/stream", json=body) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = list(sse_events(r.iter_lines()))
    names = [name for name, _ in events]
    assert names[0] == "passages" and names[-2:] == ["citations", "done"]
    tokens = [json.loads(data)["text"] for name, data in events if name == "token"]
    assert "".join(tokens) == "Water them twice a week [1]."
    done = json.loads(events[-1][1])
    assert done["citations"][0]["path"].endswith("tomatoes.md")


def test_ask_stream_says_when_the_llm_is_retried(client: httpx.Client, llm: FakeLLM) -> None:
    body = {"question": "How often should tomatoes be watered?"}
    llm.fail_first = 1
    try:
        with client.stream("POST", "/api/ask/stream", json=body) as r:
            events = list(sse_events(r.iter_lines()))
    finally:
        llm.fail_first = 0
    names = [name for name, _ in events]
    # A new event name: older pages skip names they do not know.
    assert names[:3] == ["passages", "retry", "token"] and names[-1] == "done"
    retry = json.loads(events[1][1])
    assert (retry["attempt"], retry["attempts"]) == (2, 3)
    assert retry["reason"].startswith("HTTP 500 from ")
    assert "retrying (2/3)" in retry["message"]
    done = json.loads(events[-1][1])
    assert done["mode"] == "llm" and [r["attempt"] for r in done["retries"]] == [2]


def test_documents_list_detail_and_original_file(client: httpx.Client) -> None:
    docs = client.get("/api/documents").json()["documents"]
    by_name = {Path(d["path"]).name: d for d in docs}
    assert set(DOCS) <= set(by_name)
    ups = by_name["ups.md"]
    detail = client.get(f"/api/documents/{ups['doc_id']}").json()
    assert detail["path"] == ups["path"] and detail["chunks"][0]["text"].startswith("# The UPS")
    original = client.get(f"/api/documents/{ups['doc_id']}/file")
    assert original.status_code == 200 and original.text == DOCS["ups.md"]


def test_status_flags_cache_and_doctor(client: httpx.Client) -> None:
    status = client.get("/api/status").json()
    assert status["documents"] >= 3 and status["server"]["model_ready"] is True
    assert {f["name"] for f in client.get("/api/flags").json()["flags"]} >= {"caching"}
    flag = client.put("/api/flags/collapse_documents", json={"enabled": True}).json()
    assert flag["enabled"] is True and flag["applies"] == "now"
    assert client.put("/api/flags/collapse_documents", json={"enabled": None}).status_code == 200
    assert_error(client.put("/api/flags/nope", json={"enabled": True}), 400, "bad_flag")
    assert "enabled" in client.get("/api/cache").json()
    assert client.delete("/api/cache").status_code == 200
    doctor = client.get("/api/doctor").json()
    assert doctor["ok"] is True


def test_sync_job_reports_progress_as_events(client: httpx.Client, corpus: Path) -> None:
    (corpus / "docs" / "new.md").write_text("# Bees\n\nThe hive is inspected weekly in May.")
    job = client.post("/api/sync").json()
    assert job["kind"] == "sync"
    with client.stream("GET", f"/api/jobs/{job['id']}/events") as r:
        events = list(sse_events(r.iter_lines()))
    assert events[-1][0] == "end"
    end = json.loads(events[-1][1])
    assert end["state"] == "done" and end["result"]["added"] == 1
    hits = client.get("/api/search", params={"q": "hive inspected", "k": 1}).json()["hits"]
    assert hits[0]["path"].endswith("new.md")


def test_upload_indexes_the_file_and_sanitises_its_name(
    client: httpx.Client, server: RunningServer
) -> None:
    content = b"# Plan\n\nThe orchard gets pruned in March."
    r = client.post("/api/uploads", files={"files": ("../../secret plan.md", content)})
    assert r.status_code == 202, r.text
    assert r.json()["files"] == [{"name": "secret plan.md", "bytes": len(content)}]
    assert wait_job(client, r.json()["job"]["id"])["state"] == "done"
    stored = server.data_dir / "uploads" / "secret plan.md"
    assert stored.is_file()
    hits = client.get("/api/search", params={"q": "orchard pruned", "k": 1}).json()["hits"]
    assert hits[0]["path"] == str(stored)


def test_upload_rules(client: httpx.Client) -> None:
    assert_error(
        client.post("/api/uploads", files={"files": ("run.sh", b"rm -rf /")}),
        415,
        "unsupported_type",
    )
    assert_error(client.post("/api/uploads", files={"other": ("a.md", b"x")}), 400, "no_files")
    assert_error(client.post("/api/uploads", files={"files": ("e.md", b"")}), 400, "empty_file")
