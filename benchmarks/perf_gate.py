"""`make perf-check`: an A/B performance regression gate against a baseline commit.

    python benchmarks/perf_gate.py [--preset full|ci|tiny] [--rounds N] [--baseline REV]
        [--workloads a,b,...] [--json PATH] [--same] [--inject-slowdown search=0.2,ingest=0.2]
    python benchmarks/perf_gate.py --set-baseline [REV]      # write REV (HEAD) to baseline.toml

Figures from different runs on a shared VM differ by up to several times, so the gate never
compares with stored numbers. It builds the baseline commit (benchmarks/baseline.toml) and
the working tree into two venvs the same way (a plain, non-editable `pip install .`), then
runs every workload on both sides in interleaved rounds (A B, B A, ...) and judges the
per-round ratios new ÷ baseline (benchmarks/perf_stats.py). Exit code 1 if any metric FAILs,
2 if the gate itself could not run. docs/benchmarks.md, "The performance gate", explains how
to read it.

`--inject-slowdown` and `--same` exist only for calibration: the first makes the candidate
side deliberately slower (proof that the gate can fail), the second runs the baseline on both
sides (A/A, the false-failure rate).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from common import ROOT, SCIFACT, WORK, cpu_probe_ms, write_result
from perf_stats import (
    FAIL_ABOVE,
    INJECT_ENV,
    STATS_METHOD,
    WARN_ABOVE,
    compare,
    dependency_differences,
    format_slowdown,
    format_table,
    parse_slowdown,
    render_baseline_toml,
    resolve_baseline,
)
from perf_workload import WORKLOADS

HERE = Path(__file__).resolve().parent
DRIVER = HERE / "perf_workload.py"
BASELINE_TOML = HERE / "baseline.toml"
VENVS = WORK / "perf-venvs"
GATE_WORK = WORK / "perf-gate"
DEFAULT_JSON = ROOT / "benchmarks" / "results" / "perf-gate.json"
STAMP = ".installed"
# What the candidate venv is keyed on and installed from (besides src/).
TREE_FILES = ("pyproject.toml",)
INSTALL_EXTRAS = ("README.md", "LICENSE", "MANIFEST.in", "setup.py", "setup.cfg")
IGNORED = ("__pycache__", "*.pyc", "*.egg-info", "build")


@dataclass(frozen=True)
class Sizes:
    rounds: int
    ingest_docs: int  # ingest: the first N SciFact documents, into a fresh data dir
    query_docs: int | None  # the query index (built once per side): None = whole corpus
    sync_files: int  # of which this many are files (the no-op sync's folder)
    queries: int  # warm queries per mode (hybrid, bm25, dense)
    cold_runs: int  # cold_search: new `ragkeep search` processes
    sync_repeats: int  # no-op syncs per run (median)
    cached_queries: int  # cached_query: distinct queries ...
    cached_repeats: int  # ... each repeated this many times (median)


PRESETS = {
    "full": Sizes(5, 500, None, 2000, 300, 15, 5, 20, 100),
    "ci": Sizes(4, 60, 300, 300, 100, 5, 5, 10, 50),
    "tiny": Sizes(2, 16, 60, 60, 20, 2, 2, 5, 10),  # development only: checks the plumbing
}


@dataclass(frozen=True)
class Metric:
    workload: str
    key: str  # the driver's figure
    label: str
    unit: str


METRICS = (
    Metric("ingest", "s_per_doc", "ingest (s/doc = 1/throughput)", "s/doc"),
    Metric("ingest", "peak_rss_mb", "ingest peak RSS", "MB"),
    Metric("hybrid", "p95_ms", "hybrid warm p95", "ms"),
    Metric("hybrid", "p50_ms", "hybrid warm p50", "ms"),
    Metric("bm25", "p95_ms", "bm25 warm p95", "ms"),
    Metric("bm25", "p50_ms", "bm25 warm p50", "ms"),
    Metric("dense", "p95_ms", "dense warm p95", "ms"),
    Metric("dense", "p50_ms", "dense warm p50", "ms"),
    Metric("cold_search", "median_s", "cold `ragkeep search` (median)", "s"),
    Metric("noop_sync", "median_s", "no-op sync (median)", "s"),
    Metric("cached_query", "median_us", "cached query (median)", "µs"),
)
NEEDS_INDEX = {"hybrid", "bm25", "dense", "cold_search", "noop_sync", "cached_query"}


class GateError(Exception):
    pass


# -- git -----------------------------------------------------------------------------------


def git(*args: str) -> str:
    out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        raise GateError(f"git {' '.join(args)}: {out.stderr.strip()}")
    return out.stdout.strip()


def full_commit(rev: str) -> str:
    try:
        return git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    except GateError:
        raise GateError(f"no such commit: {rev!r} (a shallow clone may lack it)") from None


def baseline_rev(override: str | None) -> tuple[str, str]:
    if override:
        return override, "--baseline"
    text = BASELINE_TOML.read_text() if BASELINE_TOML.is_file() else None
    rel = str(BASELINE_TOML.relative_to(ROOT))
    return resolve_baseline(text, lambda: git("log", "-1", "--format=%H", "--", rel))


def set_baseline(rev: str) -> None:
    commit = full_commit(rev)
    subject = git("log", "-1", "--format=%s", commit)
    BASELINE_TOML.write_text(render_baseline_toml(commit, f"{commit[:9]}: {subject[:70]}"))
    print(f"{BASELINE_TOML.relative_to(ROOT)}: baseline is now {commit[:12]} ({subject})")
    print("commit that file to make it the baseline for everyone")


# -- the two venvs -------------------------------------------------------------------------


def clean_env() -> dict[str, str]:
    """The caller's environment without anything that could point Python or ragkeep elsewhere."""
    drop = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", INJECT_ENV}
    return {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("RAGKEEP_")}


def tree_files() -> list[Path]:
    """The working tree's files the candidate is installed from and keyed on."""
    out = [ROOT / name for name in TREE_FILES if (ROOT / name).is_file()]
    for path in sorted((ROOT / "src").rglob("*")):
        rel = path.relative_to(ROOT / "src")
        skip = any(p == "__pycache__" or p.endswith(".egg-info") for p in rel.parts)
        if path.is_file() and not skip and path.suffix != ".pyc":
            out.append(path)
    return out


def tree_digest() -> str:
    h = hashlib.sha256()
    for path in tree_files():
        h.update(str(path.relative_to(ROOT)).encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()


def run_quiet(cmd: list[str], cwd: Path | None = None) -> None:
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=clean_env())
    if out.returncode != 0:
        raise GateError(f"{' '.join(cmd)} failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")


def build_venv(dest: Path, source: Path) -> dict[str, Any]:
    """A fresh venv at `dest` with a plain (non-editable) install of the tree at `source`.

    `--no-compile` as in scripts/smoke_plain_install.sh, then the whole site-packages is
    byte-compiled explicitly: this environment sets PYTHONDONTWRITEBYTECODE, so without it
    every cold `ragkeep search` would recompile every module it imports.
    """
    shutil.rmtree(dest, ignore_errors=True)
    started = time.perf_counter()
    run_quiet([sys.executable, "-m", "venv", str(dest)])
    py = str(dest / "bin" / "python")
    run_quiet([py, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
               "--no-compile", "."], cwd=source)  # fmt: skip
    purelib = subprocess.run(
        [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True, env=clean_env(),
    ).stdout.strip()  # fmt: skip
    subprocess.run([py, "-m", "compileall", "-q", purelib], capture_output=True, env=clean_env())
    freeze = subprocess.run(
        [py, "-m", "pip", "freeze", "--disable-pip-version-check"],
        capture_output=True, text=True, check=True, env=clean_env(),
    ).stdout.splitlines()  # fmt: skip
    info = {"build_s": round(time.perf_counter() - started, 1), "freeze": freeze}
    (dest / STAMP).write_text(json.dumps(info, indent=1) + "\n")
    return info


def ensure_baseline_venv(commit: str) -> dict[str, Any]:
    dest = VENVS / commit
    if (dest / STAMP).is_file():
        return {"path": str(dest), "built_now": False, **json.loads((dest / STAMP).read_text())}
    print(f"building the baseline venv for {commit[:12]} (once per commit) ...", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="ragkeep-perf-"))
    tree = tmp / "baseline"
    try:
        git("worktree", "add", "--detach", str(tree), commit)
        info = build_venv(dest, tree)
    finally:
        if tree.exists():
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT,
                           capture_output=True)  # fmt: skip
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"  built in {info['build_s']} s", flush=True)
    return {"path": str(dest), "built_now": True, **info}


def ensure_candidate_venv(digest: str) -> dict[str, Any]:
    dest = VENVS / f"tree-{digest[:16]}"
    if (dest / STAMP).is_file():
        return {"path": str(dest), "built_now": False, **json.loads((dest / STAMP).read_text())}
    print("building the candidate venv from the working tree (once per src/ state) ...",
          flush=True)  # fmt: skip
    tmp = Path(tempfile.mkdtemp(prefix="ragkeep-perf-"))
    try:
        # A copy, not the tree itself: setuptools never empties ROOT/build, so a module
        # deleted from src/ could still be installed from there.
        source = tmp / "candidate"
        shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns(*IGNORED))
        for name in (*TREE_FILES, *INSTALL_EXTRAS):
            if (ROOT / name).is_file():
                shutil.copy2(ROOT / name, source / name)
        info = build_venv(dest, source)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for old in VENVS.glob("tree-*"):  # earlier states of the working tree
        if old != dest:
            shutil.rmtree(old, ignore_errors=True)
    print(f"  built in {info['build_s']} s", flush=True)
    return {"path": str(dest), "built_now": True, **info}


# -- running one side ------------------------------------------------------------------------


@dataclass
class Side:
    name: str  # "A" (baseline) or "B" (candidate)
    venv: Path
    work: Path
    inject: str  # PERF_GATE_INJECT value, "" for none

    @property
    def env(self) -> dict[str, str]:
        env = clean_env()
        # Per-venv cache dir: the optimised-model cache lives and dies with its venv.
        env["XDG_CACHE_HOME"] = str(self.venv / "xdg-cache")
        if self.inject:
            env[INJECT_ENV] = self.inject
        return env

    def drive(self, sizes: Sizes, command: str, workload: str | None = None) -> dict[str, Any]:
        size_args = [
            f"--{f.name.replace('_', '-')}={getattr(sizes, f.name)}"
            for f in fields(sizes)
            if f.name != "rounds" and getattr(sizes, f.name) is not None
        ]
        cmd = [str(self.venv / "bin" / "python"), str(DRIVER), command,
               *([workload] if workload else []), "--scifact", str(SCIFACT),
               "--dir", str(self.work), *size_args]  # fmt: skip
        started = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, env=self.env, cwd=self.work)
        wall = time.perf_counter() - started
        if out.returncode != 0:
            raise GateError(
                f"side {self.name}: {command} {workload or ''} failed "
                f"(exit {out.returncode}):\n{out.stderr[-4000:]}"
            )
        result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        where = Path(result["info"]["ragkeep_file"]).resolve()
        if not where.is_relative_to(self.venv.resolve()):
            raise GateError(f"side {self.name} imported ragkeep from {where}, not its venv")
        result["info"]["process_wall_s"] = round(wall, 3)
        return result


# -- the report ------------------------------------------------------------------------------


def fmt(x: float) -> str:
    if x != x:  # NaN
        return "-"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def figure(metric: Metric, value: float) -> str:
    text = f"{fmt(value)} {metric.unit}"
    if metric.key == "s_per_doc" and value > 0:
        text += f" ({1 / value:.1f} docs/s)"
    return text


def evaluate(rounds: list[dict[str, Any]], workloads: list[str]) -> list[dict[str, Any]]:
    out = []
    for m in METRICS:
        if m.workload not in workloads:
            continue
        a = [r["workloads"][m.workload]["A"]["figures"][m.key] for r in rounds]
        b = [r["workloads"][m.workload]["B"]["figures"][m.key] for r in rounds]
        c = compare(a, b)
        out.append(
            {
                "metric": f"{m.workload}.{m.key}",
                "label": m.label,
                "unit": m.unit,
                "baseline_median": statistics.median(a),
                "new_median": statistics.median(b),
                "baseline": a,
                "new": b,
                "ratio": c.ratio,
                "ci95": [c.low, c.high],
                "rounds": c.n,
                "verdict": c.verdict,
            }
        )
    return out


def print_table(comparisons: list[dict[str, Any]]) -> None:
    rows = []
    for c, m in ((c, next(m for m in METRICS if f"{m.workload}.{m.key}" == c["metric"]))
                 for c in comparisons):  # fmt: skip
        low, high = c["ci95"]
        rows.append([
            c["label"], figure(m, c["baseline_median"]), figure(m, c["new_median"]),
            f"{c['ratio']:.3f}", f"[{low:.3f}, {high:.3f}]", c["verdict"],
        ])  # fmt: skip
    header = ["metric (higher = worse)", "baseline", "new", "new ÷ base", "95% CI", "verdict"]
    print(format_table(header, rows))
    print(
        f"baseline/new: median over rounds. FAIL: CI lower bound > {FAIL_ABOVE}; "
        f"WARN: > {WARN_ABOVE}; faster: upper bound < 1."
    )


# -- main ------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--preset", choices=sorted(PRESETS), default="full")
    p.add_argument("--rounds", type=int, help="rounds (each runs every workload on both sides)")
    p.add_argument("--baseline", metavar="REV", help="instead of benchmarks/baseline.toml")
    p.add_argument("--workloads", help="comma-separated subset of: " + ",".join(WORKLOADS))
    p.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write the results")
    p.add_argument("--same", action="store_true", help="calibration: A/A, the baseline twice")
    p.add_argument(
        "--inject-slowdown",
        metavar="search=F,ingest=F",
        default="",
        help="calibration only: make the candidate's Keep.search / Keep.index_texts slower by "
        "the fraction F of each call's own duration (busy-wait), to prove the gate can fail",
    )
    p.add_argument("--keep-data", action="store_true", help="keep benchmarks/.work/perf-gate")
    p.add_argument(
        "--set-baseline",
        nargs="?",
        const="HEAD",
        metavar="REV",
        help="write REV (default HEAD) into benchmarks/baseline.toml and exit",
    )
    for f in fields(Sizes):
        if f.name != "rounds":
            p.add_argument(f"--{f.name.replace('_', '-')}", type=int, help="override the preset")
    return p.parse_args()


def main() -> int:
    args = parse_args()
    if args.set_baseline:
        set_baseline(args.set_baseline)
        return 0
    overrides = {
        f.name: getattr(args, f.name) for f in fields(Sizes) if getattr(args, f.name) is not None
    }
    sizes = replace(PRESETS[args.preset], **overrides)
    if sizes.rounds < 2:
        raise GateError("need at least 2 rounds for an interval")
    workloads = args.workloads.split(",") if args.workloads else list(WORKLOADS)
    unknown = [w for w in workloads if w not in WORKLOADS]
    if unknown:
        raise GateError(f"unknown workload(s) {unknown}; known: {', '.join(WORKLOADS)}")
    inject = format_slowdown(parse_slowdown(args.inject_slowdown))
    if not (SCIFACT / "corpus.jsonl").is_file():
        raise GateError(f"SciFact not found at {SCIFACT}")

    started = time.perf_counter()
    rev, rev_source = baseline_rev(args.baseline)
    base_commit = full_commit(rev)
    head = git("rev-parse", "HEAD")
    dirty = bool(git("status", "--porcelain", "--", "src", *TREE_FILES))
    digest = tree_digest()
    print(f"baseline (A): {base_commit[:12]} from {rev_source}")
    if args.same:
        print("candidate (B): the baseline again (--same: A/A calibration)")
    else:
        print(f"candidate (B): working tree at {head[:12]}" + (" + changes" if dirty else ""))
    if inject:
        print(f"CALIBRATION: candidate slowed down on purpose ({inject}); not a real result")
    print(f"preset {args.preset}: {asdict(sizes)}; workloads: {','.join(workloads)}", flush=True)

    t0 = time.perf_counter()
    venv_a = ensure_baseline_venv(base_commit)
    venv_b = venv_a if args.same else ensure_candidate_venv(digest)
    venv_s = time.perf_counter() - t0
    deps = dependency_differences(venv_a["freeze"], venv_b["freeze"])
    if deps:
        print("note: the two venvs resolved different dependency versions:", "; ".join(deps))

    shutil.rmtree(GATE_WORK, ignore_errors=True)
    sides = {
        "A": Side("A", Path(venv_a["path"]), GATE_WORK / "A", ""),
        "B": Side("B", Path(venv_b["path"]), GATE_WORK / "B", inject),
    }
    for side in sides.values():
        side.work.mkdir(parents=True)
    probe_before = cpu_probe_ms()
    try:
        t0 = time.perf_counter()
        prepared = {}
        if NEEDS_INDEX & set(workloads):
            for name, side in sides.items():
                print(f"side {name}: building its query index (untimed) ...", flush=True)
                prepared[name] = side.drive(sizes, "prepare")["info"]
        prepare_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        rounds: list[dict[str, Any]] = []
        for i in range(sizes.rounds):
            order = ("A", "B") if i % 2 == 0 else ("B", "A")
            record: dict[str, Any] = {"round": i + 1, "order": "".join(order), "workloads": {}}
            for w in workloads:
                record["workloads"][w] = {s: sides[s].drive(sizes, "run", w) for s in order}
                figs = record["workloads"][w]
                shown = ", ".join(
                    f"{s} " + " ".join(f"{k}={fmt(v)}" for k, v in figs[s]["figures"].items())
                    for s in order
                )
                print(f"round {i + 1}/{sizes.rounds} {w}: {shown}", flush=True)
            rounds.append(record)
        rounds_s = time.perf_counter() - t0
    finally:
        if not args.keep_data:
            shutil.rmtree(GATE_WORK, ignore_errors=True)
    probe_after = cpu_probe_ms()

    comparisons = evaluate(rounds, workloads)
    print()
    print_table(comparisons)
    failed = [c["label"] for c in comparisons if c["verdict"] == "FAIL"]
    total_s = time.perf_counter() - started
    print(
        f"cpu probe {probe_before} -> {probe_after} ms; venvs {venv_s:.0f} s, "
        f"prepare {prepare_s:.0f} s, rounds {rounds_s:.0f} s, total {total_s:.0f} s"
    )
    if probe_after > 1.5 * probe_before or probe_before > 1.5 * probe_after:
        print("note: the machine's speed changed during the run (cpu probe); the paired "
              "rounds cancel slow drift, but consider re-running")  # fmt: skip

    path = write_result(
        "perf-gate",
        {
            "command": "python benchmarks/perf_gate.py " + " ".join(sys.argv[1:]),
            "preset": args.preset,
            "sizes": asdict(sizes),
            "workloads": workloads,
            "baseline": {"rev": rev, "source": rev_source, "commit": base_commit},
            "candidate": (
                {"same_as_baseline": True}
                if args.same
                else {"head": head, "uncommitted_changes": dirty, "tree_sha256": digest}
            ),
            "inject_slowdown": inject or None,
            "cpu_probe_ms": {"before": probe_before, "after": probe_after},
            "venvs": {
                s: {k: v for k, v in info.items() if k != "freeze"}
                for s, info in (("A", venv_a), ("B", venv_b))
            },
            "dependency_differences": deps,
            "statistics": STATS_METHOD,
            "thresholds": {
                "warn_lower_bound_above": WARN_ABOVE,
                "fail_lower_bound_above": FAIL_ABOVE,
            },
            "prepare": prepared,
            "rounds": rounds,
            "comparisons": comparisons,
            "failed": failed,
            "seconds": {
                "venvs": round(venv_s, 1),
                "prepare": round(prepare_s, 1),
                "rounds": round(rounds_s, 1),
                "total": round(total_s, 1),
            },
        },
        path=args.json,
        echo=False,
    )
    print(f"results: {path}")
    if failed:
        print("PERF GATE FAILED: " + "; ".join(failed))
        return 1
    print("perf gate passed")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except GateError as exc:
        print(f"perf gate error: {exc}", file=sys.stderr)
        sys.exit(2)
