"""doctor on a healthy index; gc; moved and copied files (any backend)."""

from __future__ import annotations

import os
from pathlib import Path

from ragkeep import Keep
from ragkeep.models import FileOutcome

from conftest import write


def _indexed(keep: Keep, docs: Path) -> None:
    write(docs / "a.md", "Avocets sweep their curved bills through shallow water.")
    write(docs / "b.md", "Godwits probe deep into the mud with long straight bills.")
    keep.add([docs])


def test_doctor_passes_on_a_healthy_index(keep: Keep, docs_dir: Path) -> None:
    _indexed(keep, docs_dir)
    report = keep.doctor()
    assert report.ok, report.to_dict()
    assert all(c.ok for c in report.checks)


def test_gc_collects_vectors_no_chunk_uses(keep: Keep, docs_dir: Path) -> None:
    f = write(docs_dir / "a.md", "First version about dunlins.")
    keep.add([docs_dir])
    write(f, "Second version about sanderlings.")
    report = keep.sync()
    kept = keep.store.unreferenced_vectors()
    assert kept.count == 1 and kept.bytes > 384 * 4  # float32 vector, plus its key
    assert report.unreferenced_vectors == kept  # below store.keep_unreferenced_mb: kept
    assert keep.doctor().ok  # harmless, only reported
    assert keep.gc() == kept and keep.store.unreferenced_vectors().count == 0
    assert keep.search("sanderlings", 1, "dense")


def test_automatic_gc_past_the_size_threshold(data_dir: Path, docs_dir: Path) -> None:
    files = [write(docs_dir / f"{i}.md", f"Note {i} about knots.") for i in range(4)]
    # Vectors of ~1.6 kB each (384 float32 and their key): one stays under 5.5 kB, four do not.
    with Keep(data_dir, overrides={"store.keep_unreferenced_mb": 5500 / 2**20}) as keep:
        keep.add([docs_dir])
        files[0].unlink()
        assert keep.sync().unreferenced_vectors.count == 1  # under the threshold: kept
        for f in files[1:]:
            f.unlink()
        report = keep.sync()
    assert report.collected_vectors.count == 4 and report.unreferenced_vectors.count == 0
    with Keep(data_dir) as keep:
        assert keep.store.unreferenced_vectors().count == 0


def test_a_moved_file_is_relinked_without_embedding(keep: Keep, docs_dir: Path) -> None:
    f = write(docs_dir / "old" / "note.md", "Turnstones flip pebbles to find food. " * 20)
    keep.add([docs_dir])
    with keep.store.snapshot() as snap:
        before = [(c.id, c.text) for c in snap.document_chunks(str(f))]
    target = docs_dir / "new" / "renamed.md"
    target.parent.mkdir()
    os.rename(f, target)
    report = keep.sync()
    outcomes = {Path(r.path).name: (r.outcome, r.moved_from) for r in report.results}
    assert outcomes == {"renamed.md": (FileOutcome.RENAMED, str(f))}
    with keep.store.snapshot() as snap:
        after = [(c.id, c.text) for c in snap.document_chunks(str(target))]
    assert after == before  # the same chunk rows: nothing re-chunked or re-embedded
    assert keep.search("turnstones", 1, "bm25")[0].path == str(target)
    assert keep.doctor().ok


def test_a_copied_file_shares_vectors_and_keeps_the_original(keep: Keep, docs_dir: Path) -> None:
    text = "Ringed plovers run and stop, run and stop."
    write(docs_dir / "a.md", text)
    keep.add([docs_dir])
    write(docs_dir / "copy.md", text)
    report = keep.sync()
    assert [r.outcome for r in report.results if r.outcome is not FileOutcome.UNCHANGED] == [
        FileOutcome.ADDED
    ]
    assert keep.status().documents == 2 and keep.store.vector_count() == 1
