"""A slow LLM, as a user meets it in `ragkeep ask` (issue 13, item 7): each retry is said as it
begins, the final notice gives the real total, and llm.deadline_s bounds the whole wait.

The CLI runs in a real process; the LLM is tests/fake_llm.py, a real HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import CliResult, run_cli, write
from fake_llm import FakeLLM

pytestmark = pytest.mark.timeout(90)

QUESTION = "How long does the UPS keep the server running?"
REPLY = " ".join(["The UPS keeps the server running for forty minutes [1]."] * 4)
TOTAL = re.compile(r"(\d+) attempts? in ([\d.]+) s")
# Small numbers for a test; the shape is a user's 60 s timeout, 2 retries, one deadline.
RETRYING = {"llm.timeout_s": "0.5", "llm.max_retries": "2", "llm.backoff_s": "0.1"}


@dataclass(frozen=True)
class Indexed:
    data_dir: Path
    doc: Path


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> Indexed:
    root = tmp_path_factory.mktemp("slow-llm")
    doc = write(
        root / "docs" / "ups.md",
        "# The UPS\n\nThe UPS keeps the home server running for 40 minutes in a power cut.\n",
    )
    added = run_cli("add", str(doc.parent), "--json", data_dir=root / "data")
    assert added.code == 0, added.stderr
    return Indexed(root / "data", doc)


@pytest.fixture
def hanging_llm() -> Iterator[FakeLLM]:
    with FakeLLM(REPLY, hang_s=60) as server:  # sends nothing, not even headers
        yield server


def ask(indexed: Indexed, url: str, settings: dict[str, str], *extra: str) -> CliResult:
    # The breaker would stop asking the LLM after a few failures: not what these tests watch.
    options = {"llm.provider": "ollama", "llm.url": url, "llm.breaker_failures": "100"}
    args = [f"--set={k}={v}" for k, v in {**options, **settings}.items()]
    # A generous bound: with the deadline removed these runs would hang for a minute.
    return run_cli(*args, "ask", QUESTION, *extra, data_dir=indexed.data_dir, timeout=20)


def total_s(notice: str, attempts: int) -> float:
    match = TOTAL.search(notice)
    assert match, notice
    assert int(match.group(1)) == attempts, notice
    return float(match.group(2))


def posts(server: FakeLLM) -> int:
    return sum(1 for r in server.requests if r.method == "POST")


def test_each_retry_is_a_line_and_the_failure_gives_the_real_total(
    indexed: Indexed, hanging_llm: FakeLLM
) -> None:
    started = time.monotonic()
    result = ask(indexed, hanging_llm.url, {**RETRYING, "llm.deadline_s": "5"})
    wall = time.monotonic() - started
    assert result.code == 0, result.stderr
    waited = f"timed out after 0.5 s waiting for {hanging_llm.url}/api/chat"
    lines = result.stderr.splitlines()
    retries = [line for line in lines if "retrying" in line]
    assert [line.split(" in ")[0] for line in retries] == [
        f"LLM: {waited}; retrying (2/3)",
        f"LLM: {waited}; retrying (3/3)",
    ], result.stderr
    [notice] = [line for line in lines if line.startswith("LLM unavailable")]
    assert lines.index(retries[-1]) < lines.index(notice)  # said while waiting, not after
    assert f"; last: {waited})" in notice
    # The real total: three timeouts of 0.5 s at least, and no more than the run took.
    assert 1.5 <= total_s(notice, 3) <= wall
    assert result.stdout.startswith(f"[1] {indexed.doc}")  # the passages answer
    assert "retrying" not in result.stdout
    assert posts(hanging_llm) == 3


def test_with_json_the_retries_are_in_the_result(indexed: Indexed, hanging_llm: FakeLLM) -> None:
    result = ask(indexed, hanging_llm.url, {**RETRYING, "llm.deadline_s": "5"}, "--json")
    assert result.code == 0, result.stderr
    answer: dict[str, Any] = json.loads(result.stdout)  # stdout is one JSON document
    assert answer["mode"] == "passages"
    assert [r["attempt"] for r in answer["retries"]] == [2, 3]
    assert {r["attempts"] for r in answer["retries"]} == {3}
    assert answer["retries"][0]["reason"].startswith("timed out after 0.5 s")
    assert total_s(answer["notice"], 3) >= 1.5
    assert answer["degraded"][-1]["reason"].startswith("3 attempts in ")


@pytest.mark.parametrize(
    ("slowness", "what"),
    [
        ({"hang_s": 60}, "LLM unavailable"),  # nothing at all, not even headers
        ({"delta_delay_s": 0.4}, "LLM answer interrupted"),  # every read is quick; not the whole
    ],
    ids=["hang", "trickle"],
)
def test_the_deadline_ends_the_ask_with_passages(
    indexed: Indexed, slowness: dict[str, Any], what: str
) -> None:
    # 3 attempts of 60 s each could take 3 minutes; llm.deadline_s says 1.5 s in all.
    settings = {"llm.timeout_s": "60", "llm.max_retries": "2", "llm.deadline_s": "1.5"}
    with FakeLLM(REPLY, **slowness) as server:
        started = time.monotonic()
        result = ask(indexed, server.url, settings)
        wall = time.monotonic() - started
    assert result.code == 0, result.stderr
    [notice] = [line for line in result.stderr.splitlines() if line.startswith(what)]
    assert "no complete answer within llm.deadline_s (1.5 s)" in notice
    assert total_s(notice, 1) <= 1.5 + 0.5
    assert wall < 1.5 + 8, f"the ask took {wall:.1f} s with a 1.5 s deadline"  # startup incl.
    assert f"[1] {indexed.doc}" in result.stdout.splitlines()
