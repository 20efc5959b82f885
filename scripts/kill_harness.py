"""Kill harness: SIGKILL `ragkeep add` at random moments and prove nothing is ever half-done.

    python scripts/kill_harness.py --kills 50 [--docs 60] [--seed 1] [--workdir DIR]
        [--store-urls KILLED CLEAN PROBE]

For each kill point: start `ragkeep add DOCS` in a new process, SIGKILL it after a random
delay, then check that `ragkeep doctor` passes (integrity, FTS, every document complete or
absent). Between kills some files are edited, so kills also land in updates. Finally a
`sync` must complete and the results for a fixed query set must equal those of a clean
build, exactly. Exit 0 when every check passed.

Every index lives in its data dir's SQLite file, unless --store-urls names three empty stores
(e.g. PostgreSQL databases with pgvector): the killed index, the clean build it is compared
with (same backend), and the probe build that times an uninterrupted run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from ragkeep.config.settings import CONFIG_FILE_NAME

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = ROOT.parent / "shared" / "eval" / "scifact" / "corpus.jsonl"
QUERIES = [
    "vitamin D deficiency and disease",
    "gene expression in cancer cells",
    "antibiotic resistance in bacteria",
    "immune response to infection",
    "protein folding",
]


@dataclass(frozen=True)
class StoreUrls:
    """store.url of each index the harness builds ("": the data dir's own SQLite file).
    Each must be an empty store of its own: a clean build starts from nothing."""

    killed: str = ""
    clean: str = ""
    probe: str = ""


@dataclass
class HarnessResult:
    kills: int = 0
    killed_mid_ingest: int = 0  # kills after which some, but not all, documents were in
    failures: list[str] = field(default_factory=list)  # consistency: doctor, counts, sync
    divergence: str | None = None  # final results unlike a clean build's (see docs)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def converged(self) -> bool:
        return self.ok and self.divergence is None


def cli(data: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGKEEP_")}
    proc = subprocess.run(
        [sys.executable, "-m", "ragkeep", "--data-dir", str(data), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    if check and proc.returncode != 0:
        raise RuntimeError(f"ragkeep {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
    return proc


def use_store(data: Path, url: str) -> None:
    """Make every `ragkeep --data-dir DATA` keep its index at `url`: the data dir's config."""
    if url:
        data.mkdir(parents=True, exist_ok=True)
        (data / CONFIG_FILE_NAME).write_text(tomli_w.dumps({"store": {"url": url}}))


def write_corpus(docs: Path, count: int) -> None:
    docs.mkdir(parents=True)
    with SCIFACT.open(encoding="utf-8") as fh:
        for i, line in zip(range(count), fh, strict=False):
            doc = json.loads(line)
            (docs / f"doc{i:04}.txt").write_text(f"{doc['title']}\n\n{doc['text']}\n")


def edit_some(docs: Path, rng: random.Random, n: int) -> None:
    for path in rng.sample(sorted(docs.iterdir()), n):
        tmp = path.with_suffix(".tmp")
        tmp.write_text(path.read_text() + f"\nRevision note {rng.randrange(10**6)}.\n")
        os.replace(tmp, path)  # atomic, like an editor's save


# Vectors embedded in different batches differ in the last float bits (padding width
# changes the summation order), so a resumed build's scores can differ from a clean build's
# by ~1e-6. Results are equal when they hold the same passages with scores within this.
SCORE_TOLERANCE = 1e-4


def results(data: Path) -> list[list[tuple[str, str, float]]]:
    """What the fixed queries return, without ids that differ between builds."""
    out = []
    for q in QUERIES:
        for mode in ("bm25", "dense", "hybrid"):
            found = cli(data, "search", q, "--mode", mode, "-k", "5", "--json").stdout
            hits = json.loads(found)["hits"]
            out.append([(h["path"], h["text"], h["score"]) for h in hits])
    return out


def same_results(a: list[Any], b: list[Any]) -> str | None:
    """None when equal (same passages, in the same order except among scores that tie
    within SCORE_TOLERANCE); otherwise the first difference."""
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        if {(p, t) for p, t, _ in x} != {(p, t) for p, t, _ in y}:
            return f"query/mode #{i}: different passages: {x} vs {y}"
        scores = {(p, t): s for p, t, s in y}
        for rank, (p, t, s) in enumerate(x):
            if abs(scores[(p, t)] - s) > SCORE_TOLERANCE:
                return f"query/mode #{i}: score of {p} differs: {s} vs {scores[(p, t)]}"
            if abs(y[rank][2] - s) > SCORE_TOLERANCE:
                return f"query/mode #{i}: order differs at rank {rank + 1}: {x} vs {y}"
    return None


def document_count(data: Path) -> int:
    return int(json.loads(cli(data, "status", "--json").stdout)["documents"])


def run_harness(
    kills: int, docs_count: int, seed: int, workdir: Path, stores: StoreUrls = StoreUrls()
) -> HarnessResult:
    rng = random.Random(seed)
    docs, data = workdir / "docs", workdir / "data"
    probe, clean = workdir / "probe", workdir / "clean"
    for directory, url in ((data, stores.killed), (clean, stores.clean), (probe, stores.probe)):
        use_store(directory, url)
    write_corpus(docs, docs_count)
    result = HarnessResult()
    # Measure how long an uninterrupted build takes, to spread kills over its whole length.
    started = time.monotonic()
    cli(probe, "add", str(docs))
    full = time.monotonic() - started
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGKEEP_")}
    for i in range(kills):
        if i % 3 == 2:
            edit_some(docs, rng, max(1, docs_count // 10))
        before = document_count(data) if data.exists() else 0
        proc = subprocess.Popen(
            [sys.executable, "-m", "ragkeep", "--data-dir", str(data), "-q", "add", str(docs)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        time.sleep(rng.uniform(0.05, full))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        result.kills += 1
        doctor = cli(data, "doctor", "--json", check=False)
        if doctor.returncode != 0:
            result.failures.append(f"kill {i}: doctor failed: {doctor.stdout}{doctor.stderr}")
            break
        after = document_count(data)
        if before < after < docs_count:
            result.killed_mid_ingest += 1
    final = cli(data, "sync", "--json", check=False)
    if final.returncode != 0:
        result.failures.append(f"final sync exited {final.returncode}: {final.stderr}")
        return result
    cli(clean, "add", str(docs))
    if document_count(data) != docs_count:
        result.failures.append(f"{document_count(data)} documents after sync, not {docs_count}")
    result.divergence = same_results(results(data), results(clean))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--docs", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument(
        "--store-urls",
        nargs=3,
        metavar=("KILLED", "CLEAN", "PROBE"),
        default=["", "", ""],
        help="three empty stores (store.url), e.g. PostgreSQL databases with pgvector",
    )
    args = parser.parse_args()
    stores = StoreUrls(*args.store_urls)
    with tempfile.TemporaryDirectory(prefix="ragkeep-kill-") as tmp:
        workdir = args.workdir or Path(tmp)
        result = run_harness(args.kills, args.docs, args.seed, workdir, stores)
    print(json.dumps({"kills": result.kills, "killed_mid_ingest": result.killed_mid_ingest,
                      "failures": result.failures, "consistent": result.ok,
                      "divergence": result.divergence, "converged": result.converged},
                     indent=2))  # fmt: skip
    sys.exit(0 if result.converged else 1)


if __name__ == "__main__":
    main()
