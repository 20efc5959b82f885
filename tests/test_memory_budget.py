"""Ingest within the memory budget: big texts are chunked a piece at a time, the producer
queue is bounded in bytes, and an `add` under a hard address-space cap finishes."""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from ragkeep import Keep
from ragkeep.embed.onnx import minilm_tokenizer
from ragkeep.ingest.chunking import PIECE_CHARS, chunk_document
from ragkeep.ingest.pipeline import TextDocument
from ragkeep.models import FileOutcome, IndexReport, LoadedDocument, PageSpan
from ragkeep.resources import MemoryBudget

from bigdoc import big_text, write_big_text
from conftest import SCIFACT, run_cli
from pipeline_fakes import HoldingTokenizer, indexer, write_texts

# -- chunking a piece at a time -----------------------------------------------------------


def _mixed_text() -> str:
    with (SCIFACT / "corpus.jsonl").open(encoding="utf-8") as fh:
        docs = [json.loads(line) for _, line in zip(range(120), fh, strict=False)]
    text = "\n\n".join(f"{d['title']}\n{d['text']}" for d in docs)
    return text + "\n\nÜnïcödé café naïve 東京タワー. " * 200 + "\n" + big_text(50_000)


def test_chunks_are_the_same_whatever_the_piece_size() -> None:
    """Tokenizing a piece at a time changes nothing: every chunk (text, offsets, tokens,
    ordinal, page) equals the one from tokenizing each page whole."""
    tok = minilm_tokenizer()
    text = _mixed_text()
    half = text.index("\n\n", len(text) // 2)
    paged = LoadedDocument(
        text=text, title="t", pages=(PageSpan(1, 0, half), PageSpan(2, half + 2, len(text)))
    )
    for doc in (LoadedDocument(text=text, title="t"), paged):
        whole = chunk_document(doc, tok, 200, 32, piece_chars=len(text) + 1)
        assert len(whole) > 100
        for piece in (1000, 4096, 65536):
            assert chunk_document(doc, tok, 200, 32, piece_chars=piece) == whole, piece


def test_a_big_text_is_never_tokenized_whole() -> None:
    """The tokenizer sees at most PIECE_CHARS characters at once, so a 48 MB file no longer
    becomes millions of Python offset tuples at once."""
    tok = HoldingTokenizer(marker="\x00never")
    text = big_text(3 * PIECE_CHARS + 12345)
    chunks = chunk_document(LoadedDocument(text=text, title="t"), tok, 200, 32)
    assert chunks[-1].end == len(text.rstrip())
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    assert all(text[c.start : c.end] == c.text for c in chunks)
    assert tok.calls >= 4
    assert tok.longest <= PIECE_CHARS < len(text) / 3


def test_a_file_over_max_file_mb_is_skipped_without_being_read(tmp_path: Path) -> None:
    """Too large is decided from the size alone: an unreadable 2 MB file with
    ingest.max_file_mb=1 is skipped as too large, not failed as unreadable."""
    docs = tmp_path / "docs"
    big = write_big_text(docs / "big.txt", 2 * 1024 * 1024)
    big.chmod(0)
    out = run_cli(
        "--set",
        "ingest.max_file_mb=1",
        "add",
        str(docs),
        "--json",
        data_dir=tmp_path / "data",
        without_root_powers=True,
    )
    files = out.json()["files"]
    assert [(f["outcome"], f["skip"]) for f in files] == [("skipped", "too_large")], out.stderr


# -- the producer queue is bounded in bytes ------------------------------------------------


class WordTokenizer:
    """One token per run of non-space characters: cheap, so big documents prepare fast."""

    def __init__(self) -> None:
        self.started: list[str] = []  # the first line of every document chunked

    def count(self, text: str) -> int:
        return len(self.offsets(text))

    def offsets(self, text: str) -> list[tuple[int, int]]:
        if text.startswith("Document "):
            self.started.append(text[: text.index("\n")])
        return [m.span() for m in re.finditer(r"\S+", text)]


def _megabyte_doc(i: int) -> TextDocument:
    word = f"w{i:03}" + "x" * 35  # 40-character words: ~26,000 tokens in 1 MB
    body = " ".join([word] * 26_000)
    return TextDocument(f"doc{i}", "t", f"Document {i}\n{body}")


def test_the_queue_holds_no_more_bytes_than_the_budget_allows(tmp_path: Path) -> None:
    """With the consumer held on the first document, the producer prepares only as many
    1 MB documents as fit in the ingest queue's share of the budget, far fewer than the
    queue's 64-document depth would let through."""
    overrides = {"resources.memory_limit_mb": 256}
    with Keep(tmp_path / "data", overrides=overrides) as keep:
        bound = MemoryBudget.from_settings(keep.settings).ingest_queue_bytes
        assert bound < 20 * 1024 * 1024
        tok = WordTokenizer()
        docs = [_megabyte_doc(i) for i in range(30)]
        settled = threading.Event()
        held: list[int] = []

        def hold_first(done: int, total: int, path: str) -> None:
            if done == 1:  # wait until the producer stops getting further
                seen = -1
                while len(tok.started) != seen:
                    seen = len(tok.started)
                    settled.wait(1.0)
                held.append(seen)

        report = indexer(keep, tokenizer=tok).index_texts(iter(docs), 30, hold_first)
    assert report.count(FileOutcome.ADDED) == 30
    # Held at the first: what fits in the queue (~1.5 MB per document), one waiting for
    # room and the one the consumer holds.
    assert held[0] <= 2 + bound // (1024 * 1024)
    assert held[0] < 20


def test_a_document_bigger_than_the_whole_queue_still_goes_through(tmp_path: Path) -> None:
    overrides = {"resources.memory_limit_mb": 256}
    with Keep(tmp_path / "data", overrides=overrides) as keep:
        bound = MemoryBudget.from_settings(keep.settings).ingest_queue_bytes
        huge = TextDocument("huge", "t", "Document huge\n" + " ".join(["h" * 39] * 500_000))
        assert len(huge.text) > bound
        docs = [_megabyte_doc(0), huge, _megabyte_doc(1)]
        result: list[IndexReport] = []
        ix = indexer(keep, tokenizer=WordTokenizer())
        worker = threading.Thread(
            target=lambda: result.append(ix.index_texts(iter(docs), 3)), daemon=True
        )
        worker.start()
        worker.join(60)
        assert result, "the pipeline is stuck on a document larger than its queue"
    assert [r.outcome for r in result[0].results] == [FileOutcome.ADDED] * 3


# -- the must-show: an add under a hard memory cap ----------------------------------------

# Runs the CLI and reports the process's peak address-space size (VmPeak) on stderr.
PEAK_MAIN = (
    "import atexit, sys\n"
    "def peak():\n"
    "    for line in open('/proc/self/status'):\n"
    "        if line.startswith('VmPeak'):\n"
    "            sys.stderr.write('\\n' + line)\n"
    "atexit.register(peak)\n"
    "from ragkeep.cli.app import main\n"
    "sys.argv = ['ragkeep', *sys.argv[1:]]\n"
    "main()\n"
)
BUDGET_MB = 1024  # resources.memory_limit_mb's default
CAP_MB = int(1.5 * BUDGET_MB)


def _capped_add(data: Path, docs: Path, *settings: str) -> tuple[int, dict[str, object], int]:
    """`ragkeep add --json` with RLIMIT_AS at CAP_MB: (exit code, report, VmPeak in MB)."""
    cap = CAP_MB * 1024 * 1024

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGKEEP_")}
    env["MALLOC_ARENA_MAX"] = "2"  # glibc's per-thread arenas reserve 64 MB of address each
    args = ["--data-dir", str(data), *(a for s in settings for a in ("--set", s))]
    proc = subprocess.run(
        [sys.executable, "-c", PEAK_MAIN, *args, "add", "--json", str(docs)],
        capture_output=True,
        text=True,
        env=env,
        preexec_fn=limit,
        timeout=1200,
    )
    peak = re.search(r"VmPeak:\s+(\d+) kB", proc.stderr)
    report = json.loads(proc.stdout) if proc.returncode == 0 else {"stderr": proc.stderr[-2000:]}
    return proc.returncode, report, int(peak.group(1)) // 1024 if peak else -1


def _memory_cap_run(tmp_path: Path, big_mb: int) -> None:
    docs = tmp_path / "docs"
    write_texts(docs, 5)
    small_code, _, baseline = _capped_add(tmp_path / "probe", docs)
    assert small_code == 0
    # The cap must leave room above what any `ragkeep add` reserves (measured ~410 MB).
    assert 0 < baseline < CAP_MB * 2 // 3, f"baseline VmPeak {baseline} MB: cap too tight"
    write_big_text(docs / "big.txt", big_mb * 1024 * 1024)

    code, report, peak = _capped_add(tmp_path / "data", docs)
    assert code == 0, report
    print(f"{big_mb} MB file under a {CAP_MB} MB cap: VmPeak {peak} MB (baseline {baseline})")
    files = {Path(str(f["path"])).name: f for f in report["files"]}  # type: ignore[attr-defined]
    assert files["big.txt"]["outcome"] == "added"
    assert len(files) == 6 and all(f["outcome"] == "added" for f in files.values())
    assert report["embedding"] is not None

    # The cap is real: a fixed batch of up to 65,536 tokens cannot fit under it.
    huge = ("embed.batch_tokens=65536", "embed.batch_size=512")
    code, report, peak = _capped_add(tmp_path / "huge", docs, *huge)
    assert code != 0, "a 65,536-token batch fit under the cap: the test cannot fail"


def test_add_with_a_10mb_file_under_a_hard_memory_cap(tmp_path: Path) -> None:
    _memory_cap_run(tmp_path, 10)


@pytest.mark.slow
def test_add_with_a_45mb_file_under_a_hard_memory_cap(tmp_path: Path) -> None:
    _memory_cap_run(tmp_path, 45)
