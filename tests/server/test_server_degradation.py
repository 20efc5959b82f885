"""The server with a damaged embedding model: still ready (degraded), hybrid searches and asks
answer from BM25 and say so, a dense search is a 503 with one message."""

from __future__ import annotations

from pathlib import Path

import httpx

from ragkeep import Keep

from conftest import damaged_model_env, write
from server_harness import running_server


def test_a_damaged_model_degrades_the_server_instead_of_failing_it(tmp_path: Path) -> None:
    write(tmp_path / "docs" / "kiln.md", "# Kiln\n\nFire the kiln slowly to avoid cracking.")
    data = tmp_path / "data"
    with Keep(data) as keep:
        keep.add([tmp_path / "docs"])
    env = damaged_model_env(tmp_path)
    with running_server(data, wait_ready=False, env_extra=env) as srv:
        client = httpx.Client(base_url=srv.url, timeout=30)
        ready = client.get("/readyz")
        for _ in range(100):  # the model load fails in the background
            if ready.json()["status"] != "not ready":
                break
            ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["status"] == "degraded"
        assert "model" in ready.json()["problems"][0]

        found = client.get("/api/search", params={"q": "kiln", "mode": "hybrid"})
        assert found.status_code == 200
        body = found.json()
        assert Path(body["hits"][0]["path"]).name == "kiln.md"
        assert body["degraded"][0]["part"] == "embedder"

        dense = client.get("/api/search", params={"q": "kiln", "mode": "dense"})
        assert dense.status_code == 503
        assert dense.json()["error"]["code"] == "embedder_unavailable"

        answer = client.post("/api/ask", json={"question": "how to fire a kiln?"}).json()
        assert answer["mode"] == "passages"
        assert [d["part"] for d in answer["degraded"]] == ["embedder"]

        status = client.get("/api/status").json()
        breakers = {b["part"]: b for b in status["resilience"]["breakers"]}
        assert breakers["embedder"]["recent_failures"] >= 1
        assert status["resilience"]["fallbacks"]["embedder"] >= 2
