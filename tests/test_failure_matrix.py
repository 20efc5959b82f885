"""The failure matrix of docs/degradation.md, as a user meets it: the real `ragkeep` command in
a new process, each part broken for real (a damaged model file, an LLM that is down or sends
garbage), alone and in pairs. Each case gives a labelled answer or one clear line: never a
traceback, never a lost document, and `doctor` passes afterwards."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from conftest import CliResult, damaged_model_env, run_cli, write
from fake_llm import FakeLLM

DOCS = {
    "tomatoes.md": "# Tomatoes\n\nWater tomatoes deeply twice a week in summer.",
    "ups.md": "# UPS\n\nThe UPS keeps the server running for twenty minutes in a power cut.",
    "kiln.md": "# Kiln\n\nFire the kiln slowly to avoid cracking the glaze.",
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    for name, text in DOCS.items():
        write(root / name, text)
    return root


@pytest.fixture
def data(tmp_path: Path, corpus: Path) -> Path:
    data = tmp_path / "data"
    assert run_cli("add", str(corpus), data_dir=data).code == 0
    return data


@pytest.fixture
def broken_model(tmp_path: Path) -> dict[str, str]:
    return damaged_model_env(tmp_path)


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _llm(url: str) -> tuple[str, ...]:
    return ("--set", "llm.provider=ollama", "--set", f"llm.url={url}")


def _clean(result: CliResult) -> CliResult:
    assert "Traceback" not in result.stderr, result.stderr
    return result


def _one_line_error(result: CliResult, *needles: str) -> None:
    _clean(result)
    assert result.code == 2, (result.code, result.stderr)
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def _healthy(data: Path, documents: int = len(DOCS)) -> None:
    assert _clean(run_cli("doctor", data_dir=data)).code == 0
    assert run_cli("status", "--json", data_dir=data).json()["documents"] == documents


# -- the embedder ------------------------------------------------------------------------------


def test_damaged_model_hybrid_search_answers_from_bm25(
    data: Path, broken_model: dict[str, str]
) -> None:
    result = _clean(run_cli("search", "kiln glaze", "--json", data_dir=data, env=broken_model))
    assert result.code == 0
    out = result.json()
    assert Path(out["hits"][0]["path"]).name == "kiln.md"
    assert out["degraded"][0]["part"] == "embedder"
    assert out["degraded"][0]["fallback"] == "bm25"
    text = _clean(run_cli("search", "kiln glaze", data_dir=data, env=broken_model))
    assert "degraded: embedder unavailable" in text.stderr
    assert "kiln.md" in text.stdout
    _healthy(data)


def test_damaged_model_dense_search_is_one_line_exit_2(
    data: Path, broken_model: dict[str, str]
) -> None:
    result = run_cli("search", "kiln", "--mode", "dense", data_dir=data, env=broken_model)
    _one_line_error(result, "model did not load")


def test_damaged_model_ask_answers_from_bm25_passages(
    data: Path, broken_model: dict[str, str]
) -> None:
    result = _clean(run_cli("ask", "UPS power cut", "--json", data_dir=data, env=broken_model))
    assert result.code == 0
    answer = result.json()
    assert answer["mode"] == "passages"
    assert [d["part"] for d in answer["degraded"]] == ["embedder"]
    assert Path(answer["citations"][0]["path"]).name == "ups.md"


def test_damaged_model_add_fails_in_one_line_and_loses_nothing(
    data: Path, broken_model: dict[str, str], tmp_path: Path
) -> None:
    write(tmp_path / "more" / "new.md", "# New\n\nA brand new document about sourdough.")
    result = run_cli("add", str(tmp_path / "more"), data_dir=data, env=broken_model)
    _one_line_error(result, "model")
    _healthy(data)  # the three documents indexed before; the new one not half-indexed
    assert _clean(run_cli("add", str(tmp_path / "more"), data_dir=data)).code == 0
    _healthy(data, len(DOCS) + 1)


# -- the LLM -----------------------------------------------------------------------------------


def test_llm_down_answers_from_passages_then_its_breaker_opens(data: Path) -> None:
    llm = _llm(f"http://127.0.0.1:{_dead_port()}")
    quick = ("--set", "llm.max_retries=0")
    for _ in range(3):
        result = _clean(run_cli(*llm, *quick, "ask", "UPS", "--json", data_dir=data))
        assert result.code == 0
        answer = result.json()
        assert answer["mode"] == "passages"
        assert answer["degraded"][-1]["part"] == "llm"
        assert "connection refused" in answer["notice"]
    # The next process knows: it answers from passages without trying.
    skipped = _clean(run_cli(*llm, *quick, "ask", "UPS", data_dir=data))
    assert skipped.code == 0
    assert "LLM skipped" in skipped.stderr
    status = run_cli(*llm, "status", "--json", data_dir=data).json()
    breaker = {b["part"]: b for b in status["resilience"]["breakers"]}["llm"]
    assert breaker["state"] == "open"
    assert "connection refused" in breaker["last_error"]
    human = _clean(run_cli(*llm, "status", data_dir=data))
    assert "circuit open" in human.stdout


def test_llm_garbage_answers_from_passages(data: Path) -> None:
    with FakeLLM(garbage=True) as server:
        result = _clean(run_cli(*_llm(server.url), "ask", "UPS", "--json", data_dir=data))
    assert result.code == 0
    assert result.json()["mode"] == "passages"
    assert "malformed response" in result.json()["notice"]


# -- pairs -------------------------------------------------------------------------------------


def test_embedder_and_llm_down_together(data: Path, broken_model: dict[str, str]) -> None:
    llm = _llm(f"http://127.0.0.1:{_dead_port()}")
    ask = ("ask", "UPS power cut")
    result = _clean(run_cli(*llm, *ask, "--json", data_dir=data, env=broken_model))
    assert result.code == 0
    answer = result.json()
    assert answer["mode"] == "passages"
    assert [d["part"] for d in answer["degraded"]] == ["embedder", "llm"]
    assert Path(answer["citations"][0]["path"]).name == "ups.md"
    human = _clean(run_cli(*llm, *ask, data_dir=data, env=broken_model))
    assert "degraded: embedder unavailable" in human.stderr
    assert "LLM" in human.stderr
    _healthy(data)
