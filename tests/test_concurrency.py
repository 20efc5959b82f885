"""Many readers and writers, threads and processes: no errors, no "database is locked", and
the final index is exactly what the committed operations imply; on every backend (each data
dir names its store in its config.toml, so worker processes and the CLI use it too)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ragkeep import Keep

from conftest import BackendStores, run_cli, use_store, write

HERE = Path(__file__).resolve().parent


def _chunks_by_path(data: Path) -> dict[str, list[str]]:
    with Keep(data) as keep, keep.store.snapshot() as snap:
        return {
            d.path: [c.text for c in snap.document_chunks(d.path)] for d in keep.store.documents()
        }


def _stress(tmp_path: Path, backend: BackendStores, processes: int, threads: int, ops: int) -> None:
    docs, data = tmp_path / "docs", use_store(tmp_path / "data", backend.new_url())
    docs.mkdir()
    write(docs / "seed.txt", "The harbour wall shelters the boats from the waves.")
    with Keep(data) as keep:
        keep.add([docs])
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGKEEP_")}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(HERE / "stress_worker.py"),
                str(data),
                str(docs),
                str(p),
                str(threads),
                str(ops),
                "5",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for p in range(processes)
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    reports = []
    for (out, err), proc in zip(outputs, procs, strict=True):
        assert proc.returncode == 0, err
        reports.append(json.loads(out))
    errors = [e for r in reports for e in r["errors"]]
    assert errors == []
    assert not any("locked" in e for e in errors)
    assert sum(r["ops"] for r in reports) == processes * threads * ops

    # What the committed operations imply: each owned file's last write, or nothing.
    expected = {"seed.txt": ["The harbour wall shelters the boats from the waves."]}
    for r in reports:
        for path, content in r["final"].items():
            assert Path(path).exists() == (content is not None)
    doctor = run_cli("doctor", "--json", data_dir=data)
    assert doctor.code == 0, doctor.stdout
    clean = use_store(tmp_path / "clean", backend.new_url())  # same backend, a store of its own
    with Keep(clean) as keep:
        keep.add([docs])
    indexed = {Path(p).name: texts for p, texts in _chunks_by_path(data).items()}
    rebuilt = {Path(p).name: texts for p, texts in _chunks_by_path(clean).items()}
    assert indexed == rebuilt
    on_disk = {p.name for p in docs.iterdir()}
    assert set(indexed) == on_disk
    assert indexed["seed.txt"] == expected["seed.txt"]
    for r in reports:
        for path, content in r["final"].items():
            if content is not None:
                assert "".join(indexed[Path(path).name]).startswith(content.split(":")[0])


def test_a_thousand_mixed_operations_from_eight_threads_in_two_processes(
    tmp_path: Path, backend_stores: BackendStores
) -> None:
    _stress(tmp_path, backend_stores, processes=2, threads=4, ops=125)


@pytest.mark.slow
def test_stress_long(tmp_path: Path, backend_stores: BackendStores) -> None:
    _stress(tmp_path, backend_stores, processes=3, threads=6, ops=300)


def test_a_second_writer_waits_instead_of_failing(
    tmp_path: Path, backend_stores: BackendStores
) -> None:
    docs, data = tmp_path / "docs", use_store(tmp_path / "data", backend_stores.new_url())
    write(docs / "a.txt", "Lighthouses use Fresnel lenses.")
    with Keep(data) as first, Keep(data) as second:
        waited = threading.Event()
        with first.store.writer_lock(None):  # another add/sync holds the writer lock
            t = threading.Thread(target=lambda: second.add([docs], on_wait=waited.set))
            t.start()
            assert waited.wait(10)
            time.sleep(0.2)
            assert t.is_alive()  # still waiting, not failed
        t.join(30)
        assert not t.is_alive() and second.status().documents == 1


def test_searches_keep_answering_during_an_ingest(
    tmp_path: Path, backend_stores: BackendStores
) -> None:
    docs, data = tmp_path / "docs", use_store(tmp_path / "data", backend_stores.new_url())
    write(docs / "first.txt", "Oystercatchers probe the mud for worms.")
    with Keep(data) as keep:
        keep.add([docs])
    for i in range(40):
        write(docs / f"bulk{i:02}.txt", f"Bulk document {i} about estuaries and mudflats. " * 30)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGKEEP_")}
    ingest = subprocess.Popen(
        [sys.executable, "-m", "ragkeep", "--data-dir", str(data), "-q", "add", str(docs)],
        env=env,
    )
    answered = 0
    with Keep(data) as reader:
        while ingest.poll() is None:
            hits = reader.search("oystercatchers worms", 3, "hybrid")
            assert hits and hits[0].path.endswith("first.txt")
            answered += 1
    assert ingest.returncode == 0 and answered > 5
