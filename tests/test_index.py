"""add / sync / remove through the library: only changed work, never stale, never half-done."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from ragkeep import Keep
from ragkeep.models import FileOutcome

from conftest import write
from docfactory import make_pdf


def _outcomes(report: object) -> dict[str, str]:
    return {Path(r.path).name: r.outcome.value for r in report.results}  # type: ignore[attr-defined]


def _search_paths(keep: Keep, query: str, mode: str = "bm25") -> set[str]:
    return {Path(h.path).name for h in keep.search(query, 10, mode)}


def test_add_indexes_every_format_and_search_finds_it(keep: Keep, docs_dir: Path) -> None:
    write(docs_dir / "a.md", "# Apples\n\nApples are harvested in September.")
    write(docs_dir / "sub" / "b.txt", "Bananas ripen faster next to apples.")
    (docs_dir / "c.pdf").write_bytes(make_pdf(["Cherries on page one.", "Damsons on page two."]))
    report = keep.add([docs_dir])
    assert report.ok and report.count(FileOutcome.ADDED) == 3
    hits = keep.search("damsons", 5, "bm25")
    assert hits[0].path.endswith("c.pdf") and hits[0].page == 2
    assert _search_paths(keep, "harvested September", "dense") >= {"a.md"}
    status = keep.status()
    assert status.documents == 3 and status.sources == [str(docs_dir)]
    assert status.generation == 3  # one commit per document


def test_second_add_and_touch_change_nothing(keep: Keep, docs_dir: Path) -> None:
    f = write(docs_dir / "a.md", "Stable content about owls.")
    keep.add([docs_dir])
    gen = keep.status().generation
    again = keep.add([docs_dir])
    assert _outcomes(again) == {"a.md": "unchanged"}
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 5_000_000_000))
    touched = keep.sync()
    assert _outcomes(touched) == {"a.md": "unchanged"}  # hash decided: same content
    assert keep.status().generation == gen


def test_unchanged_stamp_skips_reading_the_file(keep: Keep, docs_dir: Path) -> None:
    f = write(docs_dir / "a.txt", "original words here")
    keep.add([docs_dir])
    st = f.stat()
    # Same size, same mtime, same inode: sync must decide "unchanged" without opening it.
    with f.open("r+b") as fh:
        fh.write(b"ORIGINAL")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    f.chmod(0)  # (as root this does not stop reads; the content check below still proves it)
    report = keep.sync()
    f.chmod(0o644)
    assert _outcomes(report) == {"a.txt": "unchanged"}
    assert keep.search("original", 1, "bm25")[0].text == "original words here"


def test_a_changed_file_never_answers_with_its_old_text(keep: Keep, docs_dir: Path) -> None:
    f = write(docs_dir / "a.md", "The meeting is on Tuesday in the zeppelin hangar.")
    keep.add([docs_dir])
    assert _search_paths(keep, "zeppelin") == {"a.md"}
    write(f, "The meeting moved to Friday in the observatory.")
    report = keep.sync()
    assert _outcomes(report) == {"a.md": "updated"}
    assert _search_paths(keep, "zeppelin") == set()
    for mode in ("bm25", "dense", "hybrid"):
        hits = keep.search("zeppelin hangar meeting", 5, mode)
        assert all("zeppelin" not in h.text for h in hits)
    assert _search_paths(keep, "observatory") == {"a.md"}


def test_deleted_and_emptied_files_leave_the_index(keep: Keep, docs_dir: Path) -> None:
    a = write(docs_dir / "a.md", "Aardvarks dig burrows.")
    b = write(docs_dir / "b.md", "Badgers also dig burrows.")
    keep.add([docs_dir])
    a.unlink()
    b.write_text("")
    report = keep.sync()
    assert _outcomes(report) == {"a.md": "removed", "b.md": "removed"}
    assert keep.status().documents == 0
    assert not keep.search("burrows", 5, "hybrid")


def test_a_file_that_breaks_keeps_its_previous_version(keep: Keep, docs_dir: Path) -> None:
    pdf = docs_dir / "report.pdf"
    good = make_pdf(["Quarterly numbers about walruses."])
    pdf.write_bytes(good)
    keep.add([docs_dir])
    pdf.write_bytes(good[: len(good) // 2])  # truncated mid-write
    report = keep.sync()
    result = report.results[0]
    assert result.outcome is FileOutcome.FAILED
    assert "previously indexed version is kept" in (result.reason or "")
    assert _search_paths(keep, "walruses") == {"report.pdf"}


def test_remove_drops_documents_and_the_source(keep: Keep, docs_dir: Path) -> None:
    write(docs_dir / "keep" / "a.md", "Kept document about herons.")
    write(docs_dir / "drop" / "b.md", "Dropped document about egrets.")
    keep.add([docs_dir / "keep", docs_dir / "drop"])
    report = keep.remove([docs_dir / "drop"])
    assert _outcomes(report) == {"b.md": "removed"}
    keep.sync()  # the removed folder is no longer a source: nothing comes back
    assert _search_paths(keep, "egrets herons") == {"a.md"}
    assert keep.status().sources == [str(docs_dir / "keep")]


def test_identical_files_share_vectors(keep: Keep, docs_dir: Path) -> None:
    text = "Identical twins share one embedding. " * 5
    write(docs_dir / "one.txt", text)
    write(docs_dir / "two.txt", text)
    keep.add([docs_dir])
    assert keep.status().chunks == 2 and keep.store.vector_count() == 1


def test_progress_reports_every_file(keep: Keep, docs_dir: Path) -> None:
    for i in range(5):
        write(docs_dir / f"f{i}.txt", f"File number {i} about kestrels.")
    calls: list[tuple[int, int]] = []
    keep.add([docs_dir], progress=lambda done, total, path: calls.append((done, total)))
    assert calls[-1] == (5, 5) and len(calls) == 5


def _prepare_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "ragkeep-prepare" and t.is_alive()]


def test_interrupted_add_leaves_whole_documents_and_sync_finishes(
    data_dir: Path, docs_dir: Path
) -> None:
    # Many more documents than the prepare queue holds (pipeline._QUEUE_DEPTH = 64): reading
    # and chunking outpace embedding, so when the add is interrupted the producer thread is
    # blocked on a full queue, and the interrupted add must unblock it and let it end.
    # Two tiny chunks per document, the second the same everywhere (embedded once): cheap.
    tiny = {"chunking.size_tokens": 16, "chunking.overlap_tokens": 0}
    with Keep(data_dir, overrides=tiny) as keep:
        n = 100
        for i in range(n):
            write(
                docs_dir / f"f{i:03}.md",
                f"Document {i} is about starlings and their evening flights.\n\n"
                "Starlings gather in huge murmurations over the reed beds at dusk.\n",
            )
        assert not _prepare_threads()

        def interrupt(done: int, total: int, path: str) -> None:
            if keep.documents():  # once something is committed
                time.sleep(0.5)  # a slow consumer: the producer fills the queue meanwhile
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            keep.add([docs_dir], progress=interrupt)
        deadline = time.monotonic() + 2.0
        while _prepare_threads() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not _prepare_threads(), "the interrupted add left its producer thread running"

        docs = keep.documents()
        assert 0 < len(docs) < n
        assert all(d.chunks == 2 for d in docs)  # every visible document is complete ...
        assert sum(d.chunks for d in docs) == keep.status().chunks  # ... and nothing else is there
        report = keep.doctor()  # integrity, full-text index, chunk counts, orphans, vectors
        assert report.ok, report.to_dict()

        result = keep.sync()
        assert result.ok and keep.status().documents == n
        assert keep.status().chunks == 2 * n and keep.doctor().ok


def test_removing_a_folder_inside_a_source_sticks_until_added_again(
    keep: Keep, docs_dir: Path
) -> None:
    write(docs_dir / "a.md", "Top-level note about plovers.")
    write(docs_dir / "private" / "b.md", "Private note about sandpipers.")
    keep.add([docs_dir])
    keep.remove([docs_dir / "private"])
    assert keep.status().sources == [str(docs_dir)]
    keep.sync()
    assert _search_paths(keep, "sandpipers plovers") == {"a.md"}
    keep.add([docs_dir / "private"])
    assert _search_paths(keep, "sandpipers") == {"b.md"}
    keep.sync()
    assert _search_paths(keep, "sandpipers plovers") == {"a.md", "b.md"}
