"""The `ragkeep` command, run as a user runs it: a real process, real SQLite, the real model.

One small folder is indexed once per module (``indexed``); tests that change an index build
their own. LLM answers come from tests/fake_llm.py, a real HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import CliResult, run_cli, write
from docfactory import make_pdf
from fake_llm import FakeLLM, RecordedRequest

pytestmark = pytest.mark.timeout(120)

SEARCH_KEYS = {
    "rank",
    "score",
    "doc_id",
    "path",
    "title",
    "chunk_id",
    "text",
    "start",
    "end",
    "page",
}
REPLY = "Keep the boiler between 1 and 1.5 bar and top it up with the filling loop [1]."
BOILER_QUESTION = "What pressure should the boiler gauge show?"


def folder(root: Path) -> dict[str, Path]:
    """Three text files and a PDF on clearly different topics, so rankings are predictable."""
    return {
        "tomatoes": write(
            root / "garden" / "tomatoes.md",
            "# Growing tomatoes\n\nWater tomato plants deeply twice a week, at the base and in "
            "the morning. Pots dry out faster and need watering every day in summer.\n\n"
            "## Feeding\n\nFeed with a high-potassium tomato feed every ten days once the "
            "first truss has set fruit.\n",
        ),
        "ups": write(
            root / "homelab" / "ups.txt",
            "UPS and power cuts\n\nAt a load of 140 W the uninterruptible power supply keeps the "
            "home server running for about 18 minutes. After five minutes on battery, Network "
            "UPS Tools shuts the NAS down cleanly. Keep the UPS dry: water and batteries do not "
            "mix.\n",
        ),
        "telescope": write(
            root / "sky" / "telescope.md",
            "# The telescope\n\nThe 8-inch Dobsonian needs half an hour outside to cool down "
            "before planets look sharp. Collimate the mirrors with a laser before each session. "
            "Dew is water condensing on the mirror; a dew shield keeps it off.\n",
        ),
        "manual": _write_bytes(
            root / "boiler-manual.pdf",
            make_pdf(
                [
                    "Boiler manual\n\nPressure: the boiler gauge should show between 1 and 1.5 "
                    "bar when the heating is cold. If the pressure drops below 1 bar, top it up "
                    "with the filling loop under the boiler.",
                    "Servicing\n\nHave the boiler serviced once a year by a registered engineer.",
                ],
                title="Boiler manual",
            ),
        ),
    }


def _write_bytes(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@dataclass(frozen=True)
class Indexed:
    data_dir: Path
    docs: Path
    files: dict[str, Path]
    first_add: CliResult


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> Indexed:
    """A data dir holding the indexed `folder`; tests must not change it."""
    root = tmp_path_factory.mktemp("cli")
    docs = root / "docs"
    files = folder(docs)
    data_dir = root / "data"
    result = run_cli("add", str(docs), "--json", data_dir=data_dir)
    return Indexed(data_dir, docs, files, result)


@pytest.fixture
def fake_llm() -> Iterator[FakeLLM]:
    with FakeLLM(REPLY) as server:
        yield server


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def llm_args(provider: str, url: str) -> list[str]:
    return [
        "--set",
        f"llm.provider={provider}",
        "--set",
        f"llm.url={url}",
        "--set",
        "llm.max_retries=0",
        "--set",
        "llm.timeout_s=10",
        # The tiny fixture's second passage is below the relevance floor; these tests
        # check numbering and sources, so -k alone decides how many passages.
        "--set",
        "llm.ask_min_score_ratio=0",
    ]


def chat_requests(server: FakeLLM) -> list[RecordedRequest]:
    return [r for r in server.requests if r.method == "POST"]


# -- add / sync / remove ----------------------------------------------------------------------


def test_add_indexes_a_folder_and_reports_counts_as_json(indexed: Indexed) -> None:
    result = indexed.first_add
    assert result.code == 0, result.stderr
    summary = result.json()
    assert {k: summary[k] for k in ("added", "updated", "unchanged", "skipped", "failed")} == {
        "added": 4,
        "updated": 0,
        "unchanged": 0,
        "skipped": 0,
        "failed": 0,
    }
    assert summary["generation"] >= 1
    added = {f["path"] for f in summary["files"] if f["outcome"] == "added"}
    assert added == {str(p) for p in indexed.files.values()}
    assert all(f["chunks"] >= 1 for f in summary["files"])


def test_second_add_changes_nothing(indexed: Indexed) -> None:
    first = indexed.first_add.json()
    again = run_cli("add", str(indexed.docs), "--json", data_dir=indexed.data_dir)
    assert again.code == 0, again.stderr
    summary = again.json()
    assert summary["unchanged"] == 4
    assert summary["added"] == summary["updated"] == summary["failed"] == 0
    assert summary["generation"] == first["generation"]
    assert summary["files"] == []  # unchanged files are only counted


def test_add_without_json_prints_the_summary_on_stderr_and_quiet_silences_it(
    indexed: Indexed,
) -> None:
    loud = run_cli("add", str(indexed.docs), data_dir=indexed.data_dir)
    assert loud.code == 0
    assert loud.stdout == ""
    assert "4 unchanged" in loud.stderr
    quiet = run_cli("-q", "add", str(indexed.docs), data_dir=indexed.data_dir)
    assert (quiet.code, quiet.stdout, quiet.stderr) == (0, "", "")


def test_failed_files_give_exit_1_with_reasons_and_the_rest_is_indexed(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    good = write(docs / "notes.md", "Sourdough needs a ripe starter and a long cold proof.\n")
    broken = write(docs / "broken.pdf", "this is not really a PDF\n")
    write(docs / "photo.xyz", "unsupported type\n")
    data_dir = tmp_path / "data"

    result = run_cli("add", str(docs), "--json", data_dir=data_dir)

    assert result.code == 1, result.stderr
    summary = result.json()
    assert (summary["added"], summary["skipped"], summary["failed"]) == (1, 1, 1)
    by_path = {f["path"]: f for f in summary["files"]}
    assert by_path[str(good)]["outcome"] == "added"
    assert by_path[str(broken)]["outcome"] == "failed"
    assert by_path[str(broken)]["reason"]
    text = run_cli("add", str(docs), data_dir=data_dir)
    assert text.code == 1
    assert "failed" in text.stderr and str(broken) in text.stderr


def test_sync_picks_up_new_changed_and_deleted_files_and_remove_empties_the_index(
    tmp_path: Path,
) -> None:
    docs = tmp_path / "docs"
    keep_me = write(docs / "a.md", "Bees need water nearby, shallow with stones to land on.\n")
    change_me = write(docs / "b.txt", "The shed roof is felt, replaced in 2019.\n")
    delete_me = write(docs / "c.md", "The cat is fed at seven in the morning and six at night.\n")
    data_dir = tmp_path / "data"
    assert run_cli("add", str(docs), "--json", data_dir=data_dir).json()["added"] == 3

    write(change_me, "The shed roof is felt, replaced in 2019 and patched in 2024.\n")
    delete_me.unlink()
    new = write(docs / "sub" / "d.md", "Wood for the stove is stacked bark side up.\n")
    synced = run_cli("sync", "--json", data_dir=data_dir)

    assert synced.code == 0, synced.stderr
    summary = synced.json()
    assert (summary["added"], summary["updated"], summary["removed"]) == (1, 1, 1)
    assert summary["unchanged"] == 1
    outcomes = {f["path"]: f["outcome"] for f in summary["files"]}
    assert outcomes == {str(new): "added", str(change_me): "updated", str(delete_me): "removed"}
    listed = run_cli("list", "--json", data_dir=data_dir).json()
    assert sorted(d["path"] for d in listed) == sorted(str(p) for p in (keep_me, change_me, new))

    removed = run_cli("remove", str(docs), "--json", data_dir=data_dir)
    assert removed.code == 0, removed.stderr
    assert removed.json()["removed"] == 3
    status = run_cli("status", "--json", data_dir=data_dir).json()
    assert (status["documents"], status["chunks"], status["sources"]) == (0, 0, [])
    assert run_cli("list", "--json", data_dir=data_dir).json() == []
    resynced = run_cli("sync", "--json", data_dir=data_dir).json()
    assert resynced["added"] == 0  # the folder is no longer a source


def test_remove_one_file_keeps_the_others(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    first = write(docs / "one.md", "Hens lay fewer eggs in winter as the days get shorter.\n")
    second = write(docs / "two.md", "Rainwater from the greenhouse roof fills two butts.\n")
    data_dir = tmp_path / "data"
    assert run_cli("add", str(docs), data_dir=data_dir).code == 0

    assert run_cli("remove", str(first), data_dir=data_dir).code == 0

    assert [d["path"] for d in run_cli("list", "--json", data_dir=data_dir).json()] == [str(second)]


def test_add_a_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    result = run_cli("add", str(missing), data_dir=tmp_path / "data")
    assert result.code == 2
    assert str(missing) in result.stderr
    assert result.stdout == ""


# -- search -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["hybrid", "bm25", "dense"])
def test_search_json_has_exactly_the_contracted_fields(indexed: Indexed, mode: str) -> None:
    result = run_cli(
        "search",
        "how often to water tomatoes",
        "-k",
        "2",
        "--mode",
        mode,
        "--json",
        data_dir=indexed.data_dir,
    )
    assert result.code == 0, result.stderr
    out = result.json()
    assert set(out) == {"query", "hits", "degraded"}
    assert out["query"] == "how often to water tomatoes"
    assert out["degraded"] == []
    hits: list[dict[str, Any]] = out["hits"]
    assert len(hits) == 2
    assert all(set(h) == SEARCH_KEYS for h in hits)
    assert [h["rank"] for h in hits] == [1, 2]
    assert hits[0]["path"] == str(indexed.files["tomatoes"])
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True)
    top = hits[0]
    source = indexed.files["tomatoes"].read_text(encoding="utf-8")
    assert "twice a week" in top["text"]
    assert 0 <= top["start"] < top["end"] <= len(source) + 1
    assert top["page"] is None


def test_search_k_limits_the_results_and_reports_pdf_pages(indexed: Indexed) -> None:
    one = run_cli("search", BOILER_QUESTION, "-k", "1", "--json", data_dir=indexed.data_dir)
    assert one.code == 0, one.stderr
    (hit,) = one.json()["hits"]
    assert hit["path"] == str(indexed.files["manual"])
    assert hit["page"] == 1
    assert hit["title"] == "Boiler manual"


def test_search_default_k_returns_every_chunk_of_a_small_index(indexed: Indexed) -> None:
    chunks = run_cli("status", "--json", data_dir=indexed.data_dir).json()["chunks"]
    result = run_cli("search", "water", "--mode", "dense", "--json", data_dir=indexed.data_dir)
    assert result.code == 0, result.stderr
    assert len(result.json()["hits"]) == min(chunks, 10)


def test_search_text_output_shows_ranked_paths(indexed: Indexed) -> None:
    result = run_cli("search", "telescope mirrors", "-k", "2", data_dir=indexed.data_dir)
    assert result.code == 0, result.stderr
    first_line = result.stdout.splitlines()[0]
    assert first_line.startswith("1. ")
    assert str(indexed.files["telescope"]) in first_line
    assert "2. " in result.stdout


def test_collapse_documents_flag_from_set_gives_one_hit_per_document(indexed: Indexed) -> None:
    result = run_cli(
        "--set",
        "flags.collapse_documents=true",
        "search",
        "water",
        "-k",
        "10",
        "--json",
        data_dir=indexed.data_dir,
    )
    assert result.code == 0, result.stderr
    paths = [h["path"] for h in result.json()["hits"]]
    assert len(paths) == len(set(paths))


def test_search_rejects_an_unknown_mode(indexed: Indexed) -> None:
    result = run_cli("search", "x", "--mode", "fuzzy", data_dir=indexed.data_dir)
    assert result.code == 2
    assert "hybrid" in result.stderr and "bm25" in result.stderr


# -- ask --------------------------------------------------------------------------------------


def test_ask_without_an_llm_shows_cited_passages_and_says_so(indexed: Indexed) -> None:
    no_floor = {"RAGKEEP_LLM__ASK_MIN_SCORE_RATIO": "0"}  # -k alone decides how many
    result = run_cli("ask", BOILER_QUESTION, "-k", "2", data_dir=indexed.data_dir, env=no_floor)
    assert result.code == 0, result.stderr
    assert "No LLM is configured" in result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"[1] {indexed.files['manual']} (p. 1)"
    assert any(line.startswith("[2] ") for line in lines)
    assert not any(line.startswith("[3] ") for line in lines)
    assert "1.5" in result.stdout


def test_ask_json_without_an_llm(indexed: Indexed) -> None:
    result = run_cli("ask", BOILER_QUESTION, "--json", data_dir=indexed.data_dir)
    assert result.code == 0, result.stderr
    answer = result.json()
    assert answer["mode"] == "passages"
    assert "No LLM is configured" in answer["notice"]
    assert answer["citations"][0]["number"] == 1
    assert answer["citations"][0]["path"] == str(indexed.files["manual"])


@pytest.mark.parametrize(
    ("provider", "endpoint"), [("ollama", "/api/chat"), ("openai", "/v1/chat/completions")]
)
def test_ask_json_with_an_llm_returns_its_answer_and_citations(
    indexed: Indexed, fake_llm: FakeLLM, provider: str, endpoint: str
) -> None:
    result = run_cli(
        *llm_args(provider, fake_llm.url),
        "--set",
        "llm.model=tiny",
        "ask",
        BOILER_QUESTION,
        "-k",
        "3",
        "--json",
        data_dir=indexed.data_dir,
        env={"RAGKEEP_LLM__API_KEY": "sk-test-123"},
    )
    assert result.code == 0, result.stderr
    answer = result.json()
    assert answer["mode"] == "llm"
    assert answer["answer"] == REPLY
    assert answer["notice"] is None
    assert answer["model"] == "tiny"
    citations = answer["citations"]
    assert [c["number"] for c in citations] == [1, 2, 3]
    assert citations[0]["path"] == str(indexed.files["manual"])
    assert citations[0]["page"] == 1
    assert {c["path"] for c in citations} <= {str(p) for p in indexed.files.values()}
    (request,) = chat_requests(fake_llm)
    assert request.path == endpoint
    assert request.body["model"] == "tiny"
    prompt = "\n".join(str(m.get("content")) for m in request.messages)
    assert BOILER_QUESTION in prompt and "filling loop" in prompt
    if provider == "openai":
        assert request.headers["authorization"] == "Bearer sk-test-123"
    assert "sk-test-123" not in result.stdout + result.stderr


@pytest.mark.parametrize("extra", [[], ["--no-stream"]], ids=["stream", "no-stream"])
def test_ask_prints_the_llm_reply_and_its_sources(
    indexed: Indexed, fake_llm: FakeLLM, extra: list[str]
) -> None:
    result = run_cli(
        *llm_args("ollama", fake_llm.url),
        "ask",
        BOILER_QUESTION,
        "-k",
        "2",
        *extra,
        data_dir=indexed.data_dir,
    )
    assert result.code == 0, result.stderr
    assert result.stdout.startswith(REPLY)
    assert "Sources" in result.stdout
    assert f"[1] {indexed.files['manual']} (p. 1)" in result.stdout
    assert "[2] " in result.stdout
    (request,) = chat_requests(fake_llm)
    assert request.body["stream"] is True  # the client always streams; --no-stream buffers


def test_ask_with_the_llm_down_falls_back_to_passages(indexed: Indexed) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    result = run_cli(
        *llm_args("ollama", url),
        "--set",
        "llm.connect_timeout_s=1",
        "ask",
        BOILER_QUESTION,
        "-k",
        "2",
        data_dir=indexed.data_dir,
    )
    assert result.code == 0, result.stderr
    assert "unavailable" in result.stderr.lower()
    assert result.stdout.startswith(f"[1] {indexed.files['manual']}")
    as_json = run_cli(
        *llm_args("openai", url), "ask", BOILER_QUESTION, "--json", data_dir=indexed.data_dir
    ).json()
    assert as_json["mode"] == "passages"
    assert "unavailable" in as_json["notice"].lower()
    assert as_json["citations"]


def test_an_interrupted_stream_ends_its_line_before_the_passages(indexed: Indexed) -> None:
    with FakeLLM(REPLY, drop_after=3) as server:
        result = run_cli(
            *llm_args("ollama", server.url), "ask", BOILER_QUESTION, "-k", "1",
            data_dir=indexed.data_dir,
        )  # fmt: skip
    assert result.code == 0, result.stderr
    assert "interrupted" in result.stderr
    lines = result.stdout.splitlines()
    assert REPLY.startswith(lines[0].strip())  # the partial answer stays on its own line
    assert f"[1] {indexed.files['manual']} (p. 1)" in lines


# -- list / status ----------------------------------------------------------------------------


def test_list_json(indexed: Indexed) -> None:
    result = run_cli("list", "--json", data_dir=indexed.data_dir)
    assert result.code == 0, result.stderr
    docs: list[dict[str, Any]] = result.json()
    assert {d["path"] for d in docs} == {str(p) for p in indexed.files.values()}
    for d in docs:
        assert set(d) == {"doc_id", "path", "title", "size", "chunks", "indexed_at"}
        assert d["chunks"] >= 1 and d["size"] > 0
    titles = {d["path"]: d["title"] for d in docs}
    assert titles[str(indexed.files["tomatoes"])] == "Growing tomatoes"


def test_status_json(indexed: Indexed) -> None:
    result = run_cli("status", "--json", data_dir=indexed.data_dir)
    assert result.code == 0, result.stderr
    status = result.json()
    assert status["documents"] == 4
    assert status["chunks"] >= 4
    assert status["sources"] == [str(indexed.docs)]
    assert status["model_id"] and status["dimension"] == 384
    assert status["generation"] == indexed.first_add.json()["generation"]
    assert status["database_bytes"] > 0
    assert Path(status["database_path"]).parent == indexed.data_dir
    text = run_cli("status", data_dir=indexed.data_dir)
    assert text.code == 0
    for label in ("documents", "chunks", "sources", "model", "generation", "database"):
        assert label in text.stdout


# -- settings errors, help, version -----------------------------------------------------------


def test_a_bad_set_value_is_a_configuration_error_naming_the_choices(tmp_path: Path) -> None:
    result = run_cli("--set", "llm.provider=gpt", "status", data_dir=tmp_path / "data")
    assert result.code == 2
    for choice in ("'none'", "'ollama'", "'openai'"):
        assert choice in result.stderr
    assert "llm.provider" in result.stderr
    assert result.stdout == ""


def test_an_unknown_set_key_names_the_valid_keys(tmp_path: Path) -> None:
    result = run_cli("--set", "search.top=3", "status", data_dir=tmp_path / "data")
    assert result.code == 2
    assert "search.top" in result.stderr
    assert "candidates" in result.stderr and "mode" in result.stderr


@pytest.mark.parametrize("setting", ["llm.url=localhost-11434", "llm.model="])
def test_a_bad_llm_endpoint_setting_is_a_configuration_error(
    indexed: Indexed, setting: str
) -> None:
    result = run_cli(
        "--set", "llm.provider=ollama", "--set", setting, "ask", BOILER_QUESTION,
        data_dir=indexed.data_dir,
    )  # fmt: skip
    assert result.code == 2
    assert setting.split("=")[0] in result.stderr
    assert "Traceback" not in result.stderr


def test_set_without_equals_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli("--set", "llm.provider", "status", data_dir=tmp_path / "data")
    assert result.code == 2
    assert "KEY=VALUE" in result.stderr


COMMANDS = [
    [],
    ["add"],
    ["sync"],
    ["remove"],
    ["search"],
    ["ask"],
    ["list"],
    ["status"],
    ["eval"],
    ["flags"],
    ["flags", "list"],
    ["flags", "enable"],
    ["flags", "disable"],
    ["flags", "reset"],
    ["config"],
    ["config", "show"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "ragkeep")
def test_help(command: list[str]) -> None:
    result = run_cli(*command, "--help", env={"COLUMNS": "100"})
    assert result.code == 0, result.stderr
    assert re.search(r"Usage: .*ragkeep " + " ".join(command), result.stdout)
    assert "--help" in result.stdout


def test_version() -> None:
    from ragkeep import __version__

    result = run_cli("--version")
    assert result.code == 0
    assert result.stdout.strip() == f"ragkeep {__version__}"
