"""Backup and restore on the SciFact index: how long `ragkeep backup` and `ragkeep restore`
take, how big a backup is, and what a backup running meanwhile costs searches.

    python benchmarks/bench_backup.py [--repeats 3] [--windows 5] [--source DIR]
    python benchmarks/bench_backup.py --limit 200      # a quick run on a small index

Works in benchmarks/.work/backup/ on a copy of the SciFact index: copied from `--source`
(default benchmarks/.work/scifact, made by bench_ingest.py or `ragkeep eval --data-dir`) when
that holds one, else built from ../shared/eval/scifact (~10 min); `--limit N` always builds an
index of the first N abstracts. Then:

- `ragkeep backup --json`, `--repeats` times, each a whole process (the wall time a user
  sees) and the backup's size, beside the database's size;
- searches during a backup: a reader process searches continuously (hybrid and bm25 in turn,
  a fixed set of SciFact queries, caching off); in each of `--windows` rounds it searches
  while a `ragkeep backup` process runs, then as long again with none (the baseline);
- `ragkeep restore ID --json`, `--repeats` times, then the same steps timed one by one
  through the Python API: verifying the backup, backing up the live index (a restore does
  that first, so it can be undone), writing the copy into the live index, pruning.

Prints the figures and writes benchmarks/results/backup.json; asserts nothing. The machine
may be shared: the load average at start and end, and a CPU probe, are recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import SCIFACT, WORK, cpu_probe_ms, write_result
from ragkeep import Keep
from ragkeep.eval.beir import load_dataset
from ragkeep.eval.runner import percentile
from ragkeep.models.backups import RESTORE_REASON
from ragkeep.store.backups import INDEX_FILE, read_backup

HERE = Path(__file__).resolve().parent
ROOT = WORK / "backup"
DB_NAME = "ragkeep.db"  # the SQLite backend's file in a data dir
QUERIES = 50  # SciFact test queries the reader cycles through
MODES = ("hybrid", "bm25")
# Between windows: the previous window's after-effects (a backup's page-cache writeback, the
# ends of searches that overlapped it) settle before the next one starts.
SETTLE_S = 2.0

# The reader: searches until the stop file appears, then writes (start, end, mode) per
# search. time.monotonic() is CLOCK_MONOTONIC on Linux, one clock for every process, so its
# times compare with the parent's. Run as `python -c READER DATA_DIR QUERIES_JSON OUT STOP`.
READER = """
import json, os, sys, time
from ragkeep import Keep
data, queries_file, out, stop = sys.argv[1:5]
queries = json.loads(open(queries_file).read())
modes = ("hybrid", "bm25")
rows = []
with Keep(data, overrides={"flags.caching": False}) as keep:
    for mode in modes:  # model load, vector matrix, BM25 structures: not searches
        keep.search(queries[0], 10, mode)
    print("ready", flush=True)
    i = 0
    while not os.path.exists(stop):
        query, mode = queries[(i // 2) % len(queries)], modes[i % 2]
        started = time.monotonic()
        keep.search(query, 10, mode)
        rows.append((started, time.monotonic(), mode))
        i += 1
with open(out, "w") as fh:
    json.dump(rows, fh)
"""


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("RAGKEEP_")}


def cli(data: Path, *args: str) -> tuple[float, float, Any]:
    """Run `ragkeep --data-dir DATA ARGS --json` as a user would: (start as time.time(),
    seconds, its JSON)."""
    cmd = [sys.executable, "-m", "ragkeep", "--data-dir", str(data), *args, "--json"]
    wall_start, started = time.time(), time.perf_counter()
    out = subprocess.run(cmd, check=True, env=_env(), capture_output=True, text=True).stdout
    return wall_start, time.perf_counter() - started, json.loads(out)


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def summary(values: list[float], digits: int = 2) -> dict[str, Any]:
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
        "runs": [round(v, digits) for v in values],
    }


def prepare_index(data: Path, source: Path, limit: int | None) -> dict[str, Any]:
    """The index to back up, in `data`: a compact copy of `source`'s, else a new one."""
    shutil.rmtree(ROOT, ignore_errors=True)
    data.mkdir(parents=True)
    if limit is None and (source / DB_NAME).is_file():
        # The backup API gives a consistent copy even if something writes to the source.
        # Its result cache answered the queries of the run that built it: emptied, then
        # VACUUM, so the database is the index alone, as freshly built.
        src, dst = sqlite3.connect(source / DB_NAME), sqlite3.connect(data / DB_NAME)
        src.backup(dst)
        src.close()
        cached = dst.execute("SELECT count(*), coalesce(sum(size), 0) FROM result_cache")
        entries, cached_bytes = cached.fetchone()
        copied_bytes = (data / DB_NAME).stat().st_size
        dst.execute("DELETE FROM result_cache")
        dst.execute("DELETE FROM cache_stats")
        dst.commit()
        dst.execute("VACUUM")
        dst.close()
        return {
            "how": f"copied from {source} (result cache emptied, then VACUUM)",
            "source_copy_bytes": copied_bytes,
            "source_result_cache": {"entries": entries, "bytes_by_size_column": cached_bytes},
        }
    cmd = [sys.executable, str(HERE / "ingest_worker.py"), str(SCIFACT), str(data)]
    started = time.perf_counter()
    subprocess.run([*cmd, *([str(limit)] if limit else [])], check=True, stdout=subprocess.DEVNULL)
    what = f"the first {limit} abstracts" if limit else "the whole corpus"
    return {
        "how": f"built from {what} of {SCIFACT} (benchmarks/ingest_worker.py)",
        "build_s": round(time.perf_counter() - started, 1),
    }


def index_facts(data: Path) -> dict[str, Any]:
    _, _, st = cli(data, "status")
    return {
        "documents": st["documents"],
        "chunks": st["chunks"],
        "database_bytes": st["database_bytes"],
        "database_mb": round(st["database_bytes"] / 1e6, 1),
    }


def backups(data: Path, repeats: int) -> dict[str, Any]:
    # A command that opens the index and does nothing: what of a backup's wall time is
    # process start-up.
    startup = [cli(data, "backup", "list")[1] for _ in range(3)]
    walls, sizes = [], []
    for _ in range(repeats):
        _, wall, manifest = cli(data, "backup")
        walls.append(wall)
        sizes.append(manifest["size_bytes"])
    return {
        "cli_startup_s": summary(startup),
        "backup_wall_s": summary(walls),
        "backup_bytes": sizes,
        "backup_mb": round(statistics.median(sizes) / 1e6, 1),
    }


def latency_stats(times_ms: list[float]) -> dict[str, Any]:
    if not times_ms:
        return {"searches": 0}
    return {
        "searches": len(times_ms),
        "p50_ms": round(percentile(times_ms, 50), 2),
        "p99_ms": round(percentile(times_ms, 99), 2),
        "max_ms": round(max(times_ms), 2),
    }


def searches_during_backup(data: Path, windows: int) -> dict[str, Any]:
    """A backup, then as long again without one (the baseline), `windows` times, with one
    reader searching all along. A search counts for a window when it overlaps it."""
    queries = list(load_dataset(SCIFACT).queries.values())[:QUERIES]
    queries_file, out, stop = ROOT / "queries.json", ROOT / "reader.json", ROOT / "stop"
    queries_file.write_text(json.dumps(queries))
    stop.unlink(missing_ok=True)
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(data), str(queries_file), str(out), str(stop)],
        stdout=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    assert reader.stdout is not None
    if reader.stdout.readline().strip() != "ready":
        raise SystemExit("the reader process failed to start")
    spans: list[tuple[str, float, float]] = []
    backup_walls = []
    try:
        for _ in range(windows):
            time.sleep(SETTLE_S)
            begin = time.monotonic()
            _, wall, _ = cli(data, "backup")
            end = time.monotonic()
            spans.append(("backup", begin, end))
            backup_walls.append(wall)
            time.sleep(SETTLE_S)
            begin = time.monotonic()
            time.sleep(end - spans[-1][1])  # the backup's duration: equal periods
            spans.append(("baseline", begin, time.monotonic()))
    finally:
        stop.touch()
        reader.wait()
    rows = json.loads(out.read_text())

    def pick(kind: str, mode: str | None) -> list[float]:
        return [
            (end - start) * 1000
            for start, end, m in rows
            if mode in (None, m) and any(k == kind and start < b and end > a for k, a, b in spans)
        ]

    result: dict[str, Any] = {
        "queries": len(queries),
        "windows": windows,
        "backup_wall_s": summary(backup_walls),
    }
    for kind in ("baseline", "backup"):
        result[kind] = {m or "all": latency_stats(pick(kind, m)) for m in (*MODES, None)}
        result[kind]["max_ms_per_window"] = [
            round(max(((e - s) * 1000 for s, e, _ in rows if s < b and e > a), default=0.0), 2)
            for k, a, b in spans
            if k == kind
        ]
    return result


def newest_backup(data: Path) -> str:
    """The newest complete backup's id (ids sort by time). Each restore restores the newest,
    so pruning to backup.keep never removes the one about to be restored."""
    done = [p.name for p in (data / "backups").iterdir() if (p / "manifest.json").is_file()]
    return max(done)


def restores(data: Path, repeats: int) -> dict[str, Any]:
    walls, before_copy_done = [], []
    for _ in range(repeats):
        wall_start, wall, report = cli(data, "restore", newest_backup(data))
        walls.append(wall)
        # The manifest of the live index's backup is written just after its copy is made
        # and hashed: start-up + verify + that backup before it, the write-in after.
        before_copy_done.append(report["replaced"]["created_at"] - wall_start)
    return {
        "restored_backup_bytes": report["restored"]["size_bytes"],
        "restore_wall_s": summary(walls),
        "split_from_timestamps": {
            "until_live_backup_written_s": summary(before_copy_done),
            "after_s": summary([w - b for w, b in zip(walls, before_copy_done, strict=True)]),
        },
        "steps_python_api": restore_steps(data, repeats),
    }


def restore_steps(data: Path, repeats: int) -> dict[str, Any]:
    """RecoveryService.restore's steps, each timed (keep this in step with it)."""
    steps: dict[str, list[float]] = {
        "verify_checksum_s": [],
        "backup_live_index_s": [],
        "write_into_live_s": [],
        "prune_s": [],
        "total_s": [],
    }
    with Keep(data) as keep:
        shelf, store = keep.recovery.shelf, keep.store
        for _ in range(repeats):
            t0 = time.perf_counter()
            folder = shelf.locate(newest_backup(data))
            manifest = read_backup(folder)
            t1 = time.perf_counter()
            with store.writer_lock(None):
                reason = f"{RESTORE_REASON} of {manifest.id}"
                shelf.take(store.copy_to, reason, prune=False)
                t2 = time.perf_counter()
                store.restore_from(folder / INDEX_FILE)
                t3 = time.perf_counter()
            shelf.prune(keep.settings.backup.keep)
            t4 = time.perf_counter()
            times = (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0)
            for name, value in zip(steps, times, strict=True):
                steps[name].append(value)
    return {name: summary(values, 3) for name, values in steps.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=None, help="build an index of N abstracts")
    parser.add_argument("--repeats", type=int, default=3, help="backups and restores timed")
    parser.add_argument("--windows", type=int, default=5, help="backups searched through")
    parser.add_argument(
        "--source", type=Path, default=WORK / "scifact", help="a SciFact index to copy"
    )
    args = parser.parse_args()
    command = "python benchmarks/bench_backup.py" + "".join(
        f" {flag} {value}"
        for flag, value, default in (
            ("--limit", args.limit, None),
            ("--repeats", args.repeats, 3),
            ("--windows", args.windows, 5),
            ("--source", args.source, WORK / "scifact"),
        )
        if value != default
    )
    data = ROOT / "data"
    load_start, probe_before = loadavg(), cpu_probe_ms()
    index = {**prepare_index(data, args.source, args.limit), **index_facts(data)}
    print(f"index: {index}", flush=True)
    backup = backups(data, args.repeats)
    print(f"backup: {backup}", flush=True)
    load_searches = loadavg()
    during = searches_during_backup(data, args.windows)
    print(f"searches: {json.dumps(during)}", flush=True)
    load_restore = loadavg()
    restore = restores(data, args.repeats)
    after = index_facts(data)
    shutil.rmtree(data / "backups", ignore_errors=True)  # up to backup.keep full copies
    write_result(
        "backup",
        {
            "command": command,
            "cpu_probe_ms": [probe_before, cpu_probe_ms()],
            "loadavg_1_5_15": {
                "start": load_start,
                "before_searches": load_searches,
                "before_restores": load_restore,
                "end": loadavg(),
            },
            "index": index,
            "backup": backup,
            "searches_during_backup": during,
            "restore": {**restore, "database_after_restores": after},
        },
    )


if __name__ == "__main__":
    main()
