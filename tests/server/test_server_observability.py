"""Real traffic with injected failures, then what /metrics, `ragkeep health` and /readyz say.

The failure is real: the server runs with a damaged model file, so dense searches fail (503,
counted as errors), hybrid searches fall back to BM25 (counted as fallbacks), and the
embedder's circuit breaker opens.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ragkeep import Keep

from conftest import damaged_model_env, write
from server_harness import RunningServer, running_server


def metric(body: str, name: str, **labels: str) -> float:
    """One sample's value from the text exposition format."""
    for line in body.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        sample, _, label_text = head.partition("{")
        if sample != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', label_text))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(value)
    raise AssertionError(f"no sample {name}{labels}")


def health_cli(*args: str) -> tuple[int, dict[str, object], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGKEEP_")}
    proc = subprocess.run(
        [sys.executable, "-m", "ragkeep", *args, "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    body = json.loads(proc.stdout) if proc.stdout.strip() else {}
    return proc.returncode, body, proc.stderr


def rows(report: dict[str, object]) -> dict[str, dict[str, object]]:
    return {r["metric"]: r for r in report["rows"]}  # type: ignore[index,union-attr]


def searches(client: httpx.Client, mode: str, n: int, query: str = "kiln") -> list[int]:
    return [
        client.get("/api/search", params={"q": query, "mode": mode}).status_code for _ in range(n)
    ]


@pytest.fixture
def degraded_server(tmp_path: Path) -> RunningServer:
    write(tmp_path / "docs" / "kiln.md", "# Kiln\n\nFire the kiln slowly to avoid cracking.")
    write(tmp_path / "docs" / "glaze.md", "# Glaze\n\nApply glaze thinly; wipe the foot clean.")
    data = tmp_path / "data"
    with Keep(data) as keep:
        keep.add([tmp_path / "docs"])
    settings = {"health.min_requests": "20"}
    with running_server(
        data, settings, wait_ready=False, env_extra=damaged_model_env(tmp_path)
    ) as srv:
        with httpx.Client(base_url=srv.url, timeout=30) as client:
            # The model load fails in the background; searches before that would wait for it.
            deadline = time.monotonic() + 60
            while (status := client.get("/readyz").json()["status"]) == "not ready":
                assert time.monotonic() < deadline, "the failed model load was never reported"
                time.sleep(0.05)
        assert status == "degraded", status
        yield srv


def test_metrics_and_health_follow_real_traffic_and_failures(
    degraded_server: RunningServer,
) -> None:
    srv = degraded_server
    client = srv.client()
    # 100 searches: 91 BM25 (the first a cache miss, then hits), 3 hybrid that fall back to
    # BM25 (never cached), 6 dense that fail: an error rate of 6%, past the 5% alert.
    assert set(searches(client, "bm25", 91)) == {200}
    assert set(searches(client, "hybrid", 3)) == {200}
    assert set(searches(client, "dense", 6)) == {503}

    body = client.get("/metrics").text
    assert metric(body, "ragkeep_operation_seconds_count", operation="search") == 100
    assert metric(body, "ragkeep_operation_errors_total", operation="search") == 6
    # The p95 bucket: every search answered within 0.5 s.
    assert metric(body, "ragkeep_operation_seconds_bucket", operation="search", le="0.5") == 100
    assert metric(body, "ragkeep_cache_hits_total", tier="memory") == 90
    assert metric(body, "ragkeep_fallbacks_total", part="embedder") == 3
    assert metric(body, "ragkeep_breaker_state", part="embedder", state="open") == 1
    assert metric(body, "ragkeep_breaker_state", part="embedder", state="closed") == 0
    assert metric(body, "ragkeep_documents") == 2
    assert metric(body, "ragkeep_feature_flag", flag="caching", stage="stable") == 1
    assert metric(body, "process_resident_memory_bytes") > 0
    assert "kiln" not in body  # no query text in any label

    code, report, _ = health_cli("health", "--url", srv.url)
    assert code == 1, report
    by_metric = rows(report)
    assert by_metric["error_rate"]["level"] == "alert"
    assert by_metric["error_rate"]["value"] == pytest.approx(0.06)
    assert by_metric["error_rate"]["samples"] == 100
    assert by_metric["cache_hit_rate"]["value"] == pytest.approx(90 / 100)
    assert by_metric["cache_hit_rate"]["level"] == "ok"
    assert by_metric["query_p95"]["level"] == "ok"
    assert by_metric["query_p95"]["value"] < 0.5
    assert by_metric["memory"]["level"] == "ok"
    assert client.get("/readyz").status_code == 200  # an alert does not take it out

    # 10 more failures: 16 of 110, past the 10% critical threshold.
    assert set(searches(client, "dense", 10)) == {503}
    code, report, _ = health_cli("health", "--url", srv.url)
    assert code == 2, report
    assert rows(report)["error_rate"]["level"] == "critical"
    assert rows(report)["error_rate"]["value"] == pytest.approx(16 / 110, abs=1e-5)
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert any("error_rate is critical" in p for p in ready.json()["problems"])

    # On stop the server records what it did in the index: `health` without --url judges it.
    assert srv.terminate() == 0
    code, report, _ = health_cli("--data-dir", str(srv.data_dir), "health")
    assert code == 2, report
    assert report["source"] == "local"
    assert rows(report)["error_rate"]["samples"] == 110
    assert rows(report)["error_rate"]["value"] == pytest.approx(16 / 110, abs=1e-5)


def test_health_is_quiet_about_a_handful_of_requests(tmp_path: Path) -> None:
    write(tmp_path / "docs" / "kiln.md", "# Kiln\n\nFire the kiln slowly.")
    data = tmp_path / "data"
    with Keep(data) as keep:
        keep.add([tmp_path / "docs"])
    with running_server(data, wait_ready=False, env_extra=damaged_model_env(tmp_path)) as srv:
        client = srv.client()
        searches(client, "dense", 3)  # 100% errors, but only 3 requests
        code, report, _ = health_cli("health", "--url", srv.url)
        assert code == 0, report
        assert rows(report)["error_rate"]["level"] == "no data"


def test_health_of_an_unreachable_server_is_critical(tmp_path: Path) -> None:
    code, _, err = health_cli("health", "--url", "http://127.0.0.1:9")
    assert code == 2
    assert "cannot reach" in err
    assert "Traceback" not in err
