"""Issue 13 items 1 and 2: exact technical terms and quoted phrases are found, in every mode
that can find them, on a fixture of real-looking technical notes (tests/data/technotes/);
the demo's own questions find their documents, and an answer is not padded with unrelated
passages."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from ragkeep import Keep

from conftest import run_cli

NOTES = Path(__file__).parent / "data" / "technotes"
DEMO = Path(__file__).parents[1] / "examples" / "docs"

# (query, the note that holds it). Every query's words also appear, apart, in other notes.
QUERIES = [
    ("--rebase-merges", "git-history.md"),
    ("--force-with-lease", "git-history.md"),
    ("--no-ff", "git-workflow.md"),
    ("os.path.join", "python-paths.md"),
    ("logging.basicConfig", "python-logging.md"),
    ("logger.exception()", "python-logging.md"),
    ("ERR_SSL_PROTOCOL_ERROR", "tls-errors.md"),
    ("SSL_ERROR_SYSCALL", "tls-errors.md"),
    ("ECONNREFUSED", "node-network.md"),
    ("E0425", "rust-build.md"),
    ("std::collections::HashMap", "rust-build.md"),
    ("0x80070005", "windows-update.md"),
    ('"database is locked"', "sqlite-locking.md"),
    ("SQLITE_BUSY", "sqlite-locking.md"),
    ('"no space left on device"', "disk-space.md"),
    ('"too many requests"', "http-retries.md"),
    ("v2.39.1", "release-notes.md"),
    ("config.toml", "config-files.md"),
    ("/var/log/journal", "disk-space.md"),
    ("--dry-run=client", "kube-notes.md"),
]


@pytest.fixture(scope="module")
def notes_keep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keep]:
    root = tmp_path_factory.mktemp("exact")
    shutil.copytree(NOTES, root / "notes")
    with Keep(root / "data") as keep:
        keep.add([root / "notes"])
        yield keep


@pytest.mark.parametrize("mode", ["bm25", "hybrid"])
@pytest.mark.parametrize(("query", "note"), QUERIES)
def test_each_exact_term_finds_its_note_first(
    notes_keep: Keep, query: str, note: str, mode: str
) -> None:
    hits = notes_keep.search(query, 3, mode)
    assert hits and Path(hits[0].path).name == note, [Path(h.path).name for h in hits]


def test_the_whole_term_ranks_above_its_parts(notes_keep: Keep) -> None:
    names = [Path(h.path).name for h in notes_keep.search("git --rebase-merges", 5, "bm25")]
    # The words alone still find the note that only discusses rebasing and merges.
    assert names[0] == "git-history.md" and "git-workflow.md" in names[1:]


@pytest.mark.parametrize("mode", ["bm25", "hybrid", "dense"])
def test_a_quoted_phrase_binds_every_hit_in_every_mode(notes_keep: Keep, mode: str) -> None:
    hits = notes_keep.search('"database is locked" writers', 10, mode)
    assert [Path(h.path).name for h in hits] == ["sqlite-locking.md"]
    # Unquoted, the same words find the PostgreSQL note too.
    loose = {Path(h.path).name for h in notes_keep.search("database is locked writers", 10, mode)}
    assert "postgres-notes.md" in loose


def test_an_option_is_searched_after_double_dash_and_the_error_says_so(tmp_path: Path) -> None:
    shutil.copytree(NOTES, tmp_path / "notes")
    data = tmp_path / "data"
    assert run_cli("add", str(tmp_path / "notes"), data_dir=data).code == 0
    found = run_cli("search", "--mode", "bm25", "-k", "1", "--", "--rebase-merges", data_dir=data)
    assert found.code == 0 and "git-history.md" in found.stdout, found
    refused = run_cli("search", "--rebase-merges", data_dir=data)
    assert refused.code == 2 and "Traceback" not in refused.stderr
    assert "ragkeep search -- --rebase-merges" in refused.stderr, refused.stderr


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("demo") / "data"
    assert run_cli("add", str(DEMO), data_dir=data).code == 0
    return data


def test_the_demo_search_finds_tomatoes_first(demo_data: Path) -> None:
    """A tiny index: 10 % of its chunks is a handful, and leaving out the words in more
    than that (bm25_max_df) dropped "tomatoes" and "watered" from the BM25 query."""
    result = run_cli(
        "search", "how often should tomatoes be watered", "-k", "3", "--json", data_dir=demo_data
    )
    hits = result.json()["hits"]
    assert Path(hits[0]["path"]).name == "tomatoes.md", [h["path"] for h in hits]


def test_the_demo_answer_has_only_relevant_passages(demo_data: Path) -> None:
    question = "How long does the UPS keep the server running during a power cut?"
    result = run_cli("ask", question, "--json", data_dir=demo_data)
    paths = [Path(c["path"]).name for c in result.json()["citations"]]
    assert paths and set(paths) == {"ups-and-power.docx"}, paths
    everything = run_cli(
        "ask",
        question,
        "--json",
        data_dir=demo_data,
        env={"RAGKEEP_LLM__ASK_MIN_SCORE_RATIO": "0"},
    )
    # Without the floor the answer is padded to ask_k with other notes.
    padded = [Path(c["path"]).name for c in everything.json()["citations"]]
    assert len(padded) == 5 and set(padded) != {"ups-and-power.docx"}, padded
