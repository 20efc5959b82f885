"""Ctrl-C and SIGTERM stop an `add` within 2 s and leave only whole documents; a file that
takes too long to read and chunk is reported and skipped, and the run goes on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ragkeep import Keep
from ragkeep.config.settings import StoreSettings
from ragkeep.embed.onnx import minilm_tokenizer
from ragkeep.embed.registry import default_model_spec
from ragkeep.ingest.chunking import chunk_document
from ragkeep.ingest.loaders import load_document
from ragkeep.ingest.pipeline import Indexer, TextDocument
from ragkeep.models import FileOutcome
from ragkeep.store import open_store

from bigdoc import big_text, write_big_text
from conftest import SCIFACT
from pipeline_fakes import FakeEmbedder, HoldingTokenizer, indexer, write_texts

STOP_WITHIN_S = 2.0


def _corpus(folder: Path) -> None:
    """2,001 files, far more than the ingest queue holds: 100 notes, a 20 MB text the
    producer is busy chunking when the signal comes, then 1,900 more notes. Every tenth note
    is a SciFact abstract (several chunks); the others are one sentence (quick to embed)."""
    folder.mkdir()
    with (SCIFACT / "corpus.jsonl").open(encoding="utf-8") as fh:
        abstracts = [json.loads(line) for _, line in zip(range(200), fh, strict=False)]
    for i in range(2000):
        name = f"a{i:04}.txt" if i < 100 else f"z{i:04}.txt"
        if i % 10 == 0:
            doc = abstracts[i // 10]
            text = f"{doc['title']}\n\n{doc['text']}\n"
        else:
            text = f"Note {i}: the heron waited by pond {i} until dusk.\n"
        (folder / name).write_text(text, encoding="utf-8")
    write_big_text(folder / "m-big.txt", 20 * 1024 * 1024)


def _default_sigint() -> None:
    # A shell may start background jobs with SIGINT ignored; Python then keeps ignoring it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _committed(data: Path) -> int:
    """Documents in the index, read without Keep (whose close writes cache statistics)."""
    spec = default_model_spec()
    store = open_store(StoreSettings(), data, model_id=spec.model_id, dimension=spec.dimension)
    try:
        return store.counts().documents
    finally:
        store.close()


def _assert_whole_documents(data: Path) -> int:
    """Every indexed document has exactly the chunks chunking its file gives; doctor passes."""
    tok = minilm_tokenizer()
    with Keep(data) as keep:
        cfg = keep.settings.chunking
        infos = keep.documents()
        for info in infos:
            content = keep.document(info.path)
            assert content is not None
            path = Path(info.path)
            loaded = load_document(path.read_bytes(), path)
            expected = chunk_document(loaded, tok, cfg.size_tokens, cfg.overlap_tokens)
            assert [c.text for c in content.chunks] == [d.text for d in expected], info.path
        assert keep.doctor().ok
        return len(infos)


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM"])
def test_a_signal_stops_add_within_two_seconds_leaving_whole_documents(
    tmp_path: Path, how: str
) -> None:
    docs, data = tmp_path / "docs", tmp_path / "data"
    _corpus(docs)
    _committed(data)  # create the index first, so it can be polled
    cli = ["-m", "ragkeep"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGKEEP_")}
    proc = subprocess.Popen(
        [sys.executable, *cli, "--data-dir", str(data), "-q", "add", str(docs)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=_default_sigint,
    )
    try:
        deadline = time.monotonic() + 240
        while _committed(data) < 40:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no documents committed"
            time.sleep(0.2)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT if how == "SIGINT" else signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr  # the CLI's own interrupt path, not a kill
    assert took < STOP_WITHIN_S, f"{how} took {took:.1f} s to act"
    indexed = _assert_whole_documents(data)
    assert 40 <= indexed < 2001


def test_interrupt_does_not_wait_for_a_producer_stuck_in_one_file(keep: Keep) -> None:
    """KeyboardInterrupt while the producer is stuck inside a file (not at a point where it
    checks for cancellation) ends the run at once; the producer, released later, writes
    nothing."""
    tok = HoldingTokenizer()
    docs = [TextDocument(f"n{i}", "t", f"Note {i} about herons.") for i in range(5)]
    docs.append(TextDocument("stuck", "t", "HOLD-HERE and more text."))
    docs += [TextDocument(f"m{i}", "t", f"More {i}.") for i in range(5)]
    ix = indexer(keep, tokenizer=tok)

    def interrupt(done: int, total: int, path: str) -> None:
        if tok.entered.wait(10) and done >= 5:
            raise KeyboardInterrupt

    outcome: list[BaseException] = []

    def run() -> None:
        try:
            ix.index_texts(iter(docs), len(docs), interrupt)
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run)
    started = time.monotonic()
    worker.start()
    worker.join(STOP_WITHIN_S + 3)
    took = time.monotonic() - started
    tok.release.set()
    worker.join(30)
    assert outcome and isinstance(outcome[0], KeyboardInterrupt)
    assert took < STOP_WITHIN_S, f"the run waited {took:.1f} s for its producer"
    before = keep.status()
    time.sleep(0.5)  # the released producer finishes its item and must then stop
    after = keep.status()
    assert (after.documents, after.generation) == (before.documents, before.generation)
    assert {d.path for d in keep.documents()} == {f"n{i}" for i in range(5)}


def _producers() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "ragkeep-prepare"}


def test_a_cancelled_producer_stops_chunking_a_big_file(keep: Keep) -> None:
    """After an interrupt the abandoned producer stops within a piece of text instead of
    chunking the rest of a big document (CPU and memory the run no longer needs)."""
    tok = HoldingTokenizer(marker="\x00never", delay_s=0.1)  # about 0.1 s per piece
    big = TextDocument("big", "t", big_text(10 * 1024 * 1024))  # ~80 pieces: ~8 s whole
    docs = [TextDocument("small", "t", "A small note."), big]
    old = _producers()

    def interrupt(done: int, total: int, path: str) -> None:
        deadline = time.monotonic() + 10
        while tok.calls < 4 and time.monotonic() < deadline:  # inside the big document
            time.sleep(0.05)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        indexer(keep, tokenizer=tok).index_texts(iter(docs), 2, interrupt)
    mine = _producers() - old
    deadline = time.monotonic() + 3
    while any(t.is_alive() for t in mine) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(t.is_alive() for t in mine), "the producer went on chunking"
    assert tok.calls < 20


def test_a_file_past_the_timeout_fails_and_the_run_goes_on(tmp_path: Path) -> None:
    """A file whose reading and chunking outlasts ingest.file_timeout_s is reported failed;
    a fresh producer indexes the files after it."""
    docs = tmp_path / "docs"
    write_texts(docs, 3, prefix="a")
    write_big_text(docs / "m-big.txt", 10 * 1024 * 1024)  # seconds to chunk
    write_texts(docs, 3, prefix="z")
    with Keep(tmp_path / "data", overrides={"ingest.file_timeout_s": 0.5}) as keep:
        report = keep.add([docs])
    by_name = {Path(r.path).name: r for r in report.results}
    big = by_name.pop("m-big.txt")
    assert big.outcome is FileOutcome.FAILED
    assert big.reason is not None and "ingest.file_timeout_s" in big.reason
    assert sorted(by_name) == [f"{p}{i:04}.txt" for p in "az" for i in range(3)]
    assert all(r.outcome is FileOutcome.ADDED for r in by_name.values())


def test_a_stuck_producer_is_abandoned_and_can_write_nothing(keep: Keep) -> None:
    """A producer stuck for good (not cooperating at all) is left behind at the timeout. When
    it comes back while the run still goes on, what it prepared is dropped, not committed
    behind the report's back."""
    tok = HoldingTokenizer(delay_s=0.05)  # the files after it take a while
    docs = [TextDocument("a", "t", "Alpha note."), TextDocument("stuck", "t", "HOLD-HERE x.")]
    docs += [TextDocument(f"z{i}", "t", f"Zulu note {i}.") for i in range(30)]
    settings = keep.settings.model_copy(
        update={"ingest": keep.settings.ingest.model_copy(update={"file_timeout_s": 0.3})}
    )

    def release_when_failed(done: int, total: int, path: str) -> None:
        if path == "stuck":  # reported failed: now let the abandoned producer finish
            tok.release.set()
            time.sleep(0.3)

    ix = indexer(keep, tokenizer=tok, settings=settings)
    report = ix.index_texts(iter(docs), len(docs), release_when_failed)
    assert [r.path for r in report.results].count("stuck") == 1
    outcomes = {r.path: r.outcome for r in report.results}
    assert outcomes == {
        "a": FileOutcome.ADDED,
        "stuck": FileOutcome.FAILED,
        **{f"z{i}": FileOutcome.ADDED for i in range(30)},
    }
    assert "stuck" not in {d.path for d in keep.documents()}


class _WriterThreads:
    """The real store, recording which thread calls each of its writing methods."""

    WRITES = frozenset({"update_stamp", "replace_document", "move_document", "delete_documents"})

    def __init__(self, store: object) -> None:
        self._store = store
        self.threads: set[str] = set()

    def __getattr__(self, name: str) -> object:
        attr = getattr(self._store, name)
        if name not in self.WRITES:
            return attr

        def call(*args: object, **kwargs: object) -> object:
            self.threads.add(threading.current_thread().name)
            return attr(*args, **kwargs)

        return call


def test_only_the_calling_thread_writes_to_the_store(keep: Keep, tmp_path: Path) -> None:
    """Producers never write (not even a touched file's new stamp), so one abandoned after
    an interrupt or a timeout cannot write once the run has ended."""
    docs = tmp_path / "docs"
    paths = write_texts(docs, 4)
    keep.add([docs])
    os.utime(paths[0], ns=(1, 1))  # same bytes, new stamp
    paths[1].rename(docs / "moved.txt")
    paths[2].write_text("Changed text.\n")
    paths[3].unlink()
    store = _WriterThreads(keep.store)
    ix = Indexer(store, keep.embedder, keep.settings, minilm_tokenizer)  # type: ignore[arg-type]
    report = ix.sync_sources([str(docs)])
    assert report.count(FileOutcome.UNCHANGED) == 1
    assert report.count(FileOutcome.RENAMED) == 1
    assert store.threads == {threading.current_thread().name}


def test_embedding_goes_in_units_a_ctrl_c_can_land_between(keep: Keep) -> None:
    """A document of thousands of new chunks is not embedded in one call: each call
    tokenizes all its texts before its first batch, uninterruptibly."""
    emb = FakeEmbedder()
    text = " ".join(f"Sentence {i} is unique to this document." for i in range(30000))
    report = indexer(keep, embedder=emb).index_texts(iter([TextDocument("big", "t", text)]), 1)
    assert report.results[0].chunks > 3 * 256
    assert sum(emb.calls) == report.results[0].chunks
    assert max(emb.calls) <= 256  # EMBED_UNIT
