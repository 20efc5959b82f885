"""Soak: one process runs many distinct queries and add/sync cycles; does its memory stay flat?

    python benchmarks/soak.py [--queries 100000] [--cycles 100] [--docs 40] [--out PATH]

A long-running `ragkeep serve` must not grow. This drives the library the way a server does
(one `Keep`, one process), with queries that never repeat: every query holds a word made up
for it, so every query misses the result cache, adds a query embedding (hybrid, dense, ask)
and a document-frequency entry (hybrid): exactly what an unbounded structure would retain.
Between the queries the corpus changes (files modified, added, removed) and is synced.

RSS is read from /proc/self/statm. Growth is measured from the sample after the warm-up (the
first 10 % of queries: caches fill, the model's arena reaches its size) to the end.

Writes benchmarks/results/soak.json for the default sizes, soak-<queries>.json for others.
tests/test_soak.py runs this script at a CI size and checks the growth; the benchmark itself
only measures.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from common import RESULTS, cpu_probe_ms, write_result
from ragkeep import Keep

# The mix of one round of 20 queries. A hybrid or dense query embeds its text (~15 ms on
# the 2-core benchmark machine) and a BM25 one costs ~1 ms, so an all-hybrid 100k soak
# would take ~30 min; this mix exercises every path and keeps it under ~15.
MIX = ("bm25",) * 14 + ("hybrid",) * 4 + ("dense", "ask")

_CONSONANTS = "bcdfghjklmnprstvw"  # no x, no z: made-up query words start with "zx"
_VOWELS = "aeiou"


@dataclass(frozen=True, slots=True)
class SoakConfig:
    queries: int = 100_000
    cycles: int = 100  # add/sync cycles, spread evenly between the queries
    docs: int = 40  # files in the corpus (each 120 words, 2-3 chunks)
    samples: int = 200  # RSS samples over the run
    warmup: float = 0.10  # share of the queries before the reference sample
    seed: int = 7


@dataclass
class SoakResult:
    config: SoakConfig
    curve: list[tuple[int, float]]  # (queries done, RSS in MB)
    fds: list[tuple[int, int]]  # (queries done, open file descriptors)
    mix: dict[str, int]
    seconds: float
    sync_seconds: float
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def warm(self) -> tuple[int, float]:
        """The first sample at or after the warm-up."""
        start = int(self.config.queries * self.config.warmup)
        return next(p for p in self.curve if p[0] >= start)

    @property
    def growth_pct(self) -> float:
        """RSS growth from the post-warm-up sample to the last one, in %."""
        return _pct(self.curve[-1][1], self.warm[1])

    @property
    def max_growth_pct(self) -> float:
        """The highest RSS after the warm-up, as growth over the post-warm-up sample."""
        after = [rss for ops, rss in self.curve if ops >= self.warm[0]]
        return _pct(max(after), self.warm[1])

    def summary(self) -> dict[str, Any]:
        return {
            "sizes": asdict(self.config),
            "mix": self.mix,
            "seconds": round(self.seconds, 1),
            "sync_seconds": round(self.sync_seconds, 1),
            "rss_mb": {
                "after_first_add": self.curve[0][1],
                "after_warmup": self.warm[1],
                "warmup_queries": self.warm[0],
                "end": self.curve[-1][1],
                "max": max(rss for _, rss in self.curve),
            },
            "growth_pct": round(self.growth_pct, 2),
            "max_growth_pct": round(self.max_growth_pct, 2),
            "open_fds": {"start": self.fds[0][1], "end": self.fds[-1][1]},
            "caches": self.stats,
            "rss_curve": [list(p) for p in self.curve],
        }


def _pct(value: float, base: float) -> float:
    return (value - base) / base * 100


def rss_mb() -> float:
    resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    return round(resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 2)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def made_up_word(i: int) -> str:
    """A word no document and no other query contains: "zx" + i in base 26."""
    letters = []
    while True:
        i, r = divmod(i, 26)
        letters.append(chr(ord("a") + r))
        if i == 0:
            break
    return "zx" + "".join(reversed(letters))


class Corpus:
    """Text files of words from a made-up vocabulary, changed a little every cycle."""

    def __init__(self, folder: Path, docs: int, rng: random.Random) -> None:
        self.folder = folder
        self._rng = rng
        self.vocabulary = sorted({self._word() for _ in range(3000)})
        self._next = 0
        folder.mkdir(parents=True, exist_ok=True)
        self.files = [self._new_file() for _ in range(docs)]

    def change(self) -> None:
        """Modify two files, add one and remove the oldest: the corpus keeps its size."""
        for path in self._rng.sample(self.files, 2):
            path.write_text(self._text(), encoding="utf-8")
        self.files.append(self._new_file())
        self.files.pop(0).unlink()

    def words(self, n: int) -> list[str]:
        return self._rng.sample(self.vocabulary, n)

    def _new_file(self) -> Path:
        path = self.folder / f"doc-{self._next:06d}.txt"
        self._next += 1
        path.write_text(self._text(), encoding="utf-8")
        return path

    def _text(self) -> str:
        paragraphs = [" ".join(self.words(40)) + "." for _ in range(3)]
        return "\n\n".join(paragraphs) + "\n"

    def _word(self) -> str:
        syllables = self._rng.randint(2, 3)
        return "".join(
            self._rng.choice(_CONSONANTS) + self._rng.choice(_VOWELS) for _ in range(syllables)
        )


def query(keep: Keep, corpus: Corpus, i: int) -> str:
    """Run query number i (its kind from MIX); returns the kind."""
    kind = MIX[i % len(MIX)]
    text = " ".join([*corpus.words(2), made_up_word(i)])
    if kind == "ask":
        keep.ask(f"what about {text}?")
    else:
        keep.search(text, mode=kind)
    return kind


def run_soak(cfg: SoakConfig, workdir: Path) -> SoakResult:
    """The whole soak in this process; `workdir` receives the corpus and the index."""
    rng = random.Random(cfg.seed)
    corpus = Corpus(workdir / "docs", cfg.docs, rng)
    sync_every = max(1, cfg.queries // max(cfg.cycles, 1))
    sample_every = max(1, cfg.queries // cfg.samples)
    mix: Counter[str] = Counter()
    curve: list[tuple[int, float]] = []
    fds: list[tuple[int, int]] = []
    cycles = 0
    sync_s = 0.0
    started = time.perf_counter()
    with Keep(workdir / "data") as keep:
        keep.add([corpus.folder])
        curve.append((0, rss_mb()))
        fds.append((0, open_fds()))
        for i in range(cfg.queries):
            mix[query(keep, corpus, i)] += 1
            done = i + 1
            if done % sync_every == 0 and cycles < cfg.cycles:
                t = time.perf_counter()
                corpus.change()
                keep.sync()
                sync_s += time.perf_counter() - t
                cycles += 1
            if done % sample_every == 0 or done == cfg.queries:
                curve.append((done, rss_mb()))
                fds.append((done, open_fds()))
        stats = _cache_sizes(keep)
    return SoakResult(cfg, curve, fds, dict(mix), time.perf_counter() - started, sync_s, stats)


def _cache_sizes(keep: Keep) -> dict[str, Any]:
    report = keep.cache_stats()
    sizes: dict[str, Any] = {
        "result_memory_entries": report.memory_entries,
        "result_memory_bytes": report.memory_bytes,
        "result_persistent_entries": report.persistent_entries,
    }
    caches = keep._caches  # the query-embedding cache's size is in no public report
    if caches is not None:
        lru = caches.embeddings.lru
        sizes |= {
            "embedding_memory_entries": len(lru),
            "embedding_memory_bytes": lru.bytes_used,
            "embedding_memory_max_bytes": lru.max_bytes,
        }
    return sizes


def print_table(result: SoakResult) -> None:
    s = result.summary()
    rss = s["rss_mb"]
    mix = ", ".join(f"{k} {v}" for k, v in sorted(result.mix.items()))
    print(f"queries {result.config.queries} ({mix}); sync cycles {result.config.cycles}")
    print(f"seconds {s['seconds']} (syncs {s['sync_seconds']})")
    print(f"{'queries done':>12} | {'RSS MB':>8}")
    step = max(1, len(result.curve) // 10)
    for ops, mb in [*result.curve[::step], result.curve[-1]][:12]:
        print(f"{ops:>12} | {mb:>8.1f}")
    print(
        f"RSS after warm-up ({rss['warmup_queries']} queries) {rss['after_warmup']} MB, "
        f"end {rss['end']} MB, max {rss['max']} MB"
    )
    print(f"growth after warm-up {s['growth_pct']:+.2f} % (max {s['max_growth_pct']:+.2f} %)")
    print(f"open fds {s['open_fds']['start']} -> {s['open_fds']['end']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    defaults = SoakConfig()
    ap.add_argument("--queries", type=int, default=defaults.queries)
    ap.add_argument("--cycles", type=int, default=defaults.cycles)
    ap.add_argument("--docs", type=int, default=defaults.docs)
    ap.add_argument("--samples", type=int, default=defaults.samples)
    ap.add_argument("--out", type=Path, default=None, help="JSON path (default: results/)")
    ap.add_argument("--workdir", type=Path, default=None, help="default: a temporary dir")
    args = ap.parse_args()
    cfg = SoakConfig(args.queries, args.cycles, args.docs, args.samples)
    out = args.out
    if out is None:
        out = RESULTS / ("soak.json" if cfg == defaults else f"soak-{cfg.queries}.json")
    probe_before = cpu_probe_ms()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="ragkeep-soak-"))
    try:
        result = run_soak(cfg, workdir)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    data = {
        "command": " ".join(["python", "benchmarks/soak.py", *sys.argv[1:]]),
        **result.summary(),
        "cpu_probe_ms": {"before": probe_before, "after": cpu_probe_ms()},
    }
    write_result("soak", data, path=out, echo=False)
    print_table(result)
    print(f"-> {out}")


if __name__ == "__main__":
    main()
