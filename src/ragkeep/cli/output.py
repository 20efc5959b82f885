"""Everything the CLI prints: rich tables on a terminal, plain JSON for scripts.

Results go to stdout; progress, notices and errors go to stderr so pipes stay clean.
"""

from __future__ import annotations

import functools
import json
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from ragkeep.eval.runner import EvalReport
    from ragkeep.ingest.pipeline import ProgressFn
    from ragkeep.models import (
        Answer,
        BreakerStatus,
        CacheReport,
        Degradation,
        DoctorReport,
        DocumentInfo,
        FlagState,
        IndexReport,
        RetryEvent,
        SearchHit,
        StoreStatus,
        UnusedVectors,
    )
    from ragkeep.models.backups import BackupEntry, ReembedReport
    from ragkeep.models.health import HealthReport
    from ragkeep.models.migration import MigrationReport


# rich is imported on first use: `--json` output (what scripts read) never pays for it.
@functools.cache
def _out() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


@functools.cache
def _err() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def escape(text: str) -> str:
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def _table(*args: Any, **kwargs: Any) -> Table:
    from rich.table import Table

    return Table(*args, **kwargs)


def print_json(data: object) -> None:
    """Any model (or list of models) through the one JSON mapping the HTTP API uses too."""
    from ragkeep.models import to_json

    sys.stdout.write(json.dumps(to_json(data), indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def error(message: str) -> None:
    _err().print(f"[bold red]error:[/] {escape(message)}")


def info(message: str) -> None:
    _err().print(escape(message))


@contextmanager
def progress(enabled: bool = True) -> Iterator[ProgressFn | None]:
    """A progress bar on stderr when it is a terminal; nothing otherwise."""
    if not (enabled and _err().is_terminal):
        yield None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("{task.fields[what]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        TextColumn("[dim]{task.description}"),
        console=_err(),
        transient=True,
    ) as bar:
        yield _Bar(bar)


# Within-file progress is shown from this much work on: a small file's one step would
# only flash by.
_SHOW_CHARS = 1_000_000
_SHOW_CHUNKS = 512


class _Bar:
    """Two lines: documents in the index (with chunks/s and an ETA), and, while a big file
    is chunked or embedded, how far into it the work is."""

    def __init__(self, bar: Any) -> None:
        import time

        self._bar, self._clock = bar, time.monotonic
        self._started = self._clock()
        self._chunks = 0
        self._files = bar.add_task("", total=None, what="indexed", rate="")
        self._inner = bar.add_task("", total=None, what="", rate="", visible=False)
        self._inner_key: tuple[str, str] | None = None
        self._inner_started = 0.0

    def __call__(self, done: int, total: int, path: str) -> None:
        self._bar.update(self._files, completed=done, total=total, description=_name(path))

    def chunks(self, n: int) -> None:
        self._chunks += n
        rate = self._chunks / max(self._clock() - self._started, 1e-3)
        self._bar.update(self._files, rate=f"{rate:,.0f} chunks/s")

    def step(self, path: str, stage: str, done: int, total: int) -> None:
        if total < (_SHOW_CHARS if stage == "chunking" else _SHOW_CHUNKS):
            return
        if (path, stage) != self._inner_key:
            self._inner_key, self._inner_started = (path, stage), self._clock()
            self._bar.reset(self._inner, total=total, visible=True)
        unit = "chars" if stage == "chunking" else "chunks"
        rate = done / max(self._clock() - self._inner_started, 1e-3)
        self._bar.update(
            self._inner,
            completed=done,
            total=total,
            what=stage,
            rate=f"{rate:,.0f} {unit}/s",
            description=_name(path),
            visible=done < total,
        )


@contextmanager
def counter(what: str, enabled: bool = True) -> Iterator[Callable[[int, int], None] | None]:
    """A bar for one count (done of total) on stderr when it is a terminal."""
    if not (enabled and _err().is_terminal):
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        f"{what}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=_err(),
        transient=True,
    ) as bar:  # fmt: skip
        task = bar.add_task(what, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _name(path: str) -> str:
    return escape(Path(path).name[:40])


def report_summary(report: IndexReport, verbose: bool = False) -> None:
    """The counts, one line for all unsupported files, then what needs a look."""
    from ragkeep.models import FileOutcome, SkipReason

    counts = report.to_dict()
    parts = [f"{counts[o.value]} {o.value}" for o in FileOutcome if counts[o.value]]
    _err().print(
        f"{', '.join(parts) or 'nothing to do'} in {report.seconds:.1f}s "
        f"(generation {report.generation})"
    )
    # Unsupported files are common (images, archives): one line for them all, so the lines
    # that matter (failures, warnings, changes) are not buried; --verbose lists the types.
    unsupported = Counter(
        r.reason or "" for r in report.results
        if r.outcome is FileOutcome.SKIPPED and r.skip is SkipReason.UNSUPPORTED_TYPE
    )  # fmt: skip
    if unsupported:
        _unsupported_lines(unsupported, verbose)
    for r in report.results:
        name = escape(one_line(r.path))
        if r.outcome is FileOutcome.FAILED:
            _err().print(f"  [red]failed[/]  {name}: {escape(r.reason or '')}")
        elif r.outcome is FileOutcome.SKIPPED and r.skip is not SkipReason.UNSUPPORTED_TYPE:
            _err().print(f"  [yellow]skipped[/] {name}: {escape(r.reason or '')}")
        elif r.outcome in (FileOutcome.REMOVED, FileOutcome.RENAMED) and r.reason:
            _err().print(f"  [dim]{r.outcome.value}[/] {name}: {escape(r.reason)}")
        for warning in r.warnings:
            _err().print(f"  [yellow]warning[/] {name}: {escape(warning)}")
    _vectors_line(report)
    if report.snapshot:
        _err().print(f"snapshot {report.snapshot} taken first: `ragkeep rollback` undoes this")


def megabytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def _vectors_line(report: IndexReport) -> None:
    """After removals, what became of the vectors the documents used (one line); and any
    collection past store.keep_unreferenced_mb."""
    from ragkeep.models import FileOutcome

    kept, collected = report.unreferenced_vectors, report.collected_vectors
    if collected.count:
        _err().print(
            f"collected {collected.count} unreferenced vector(s), {megabytes(collected.bytes)}: "
            "more than store.keep_unreferenced_mb; re-adding their texts embeds them again"
        )
    elif kept.count and report.count(FileOutcome.REMOVED):
        _err().print(
            f"{kept.count} vector(s) kept so re-adding is fast; "
            f"`ragkeep gc` frees {megabytes(kept.bytes)}"
        )


def _unsupported_lines(by_reason: Counter[str], verbose: bool) -> None:
    files, kinds = sum(by_reason.values()), len(by_reason)
    line = (
        f"skipped {files} file{'s' * (files != 1)} of {kinds} unsupported type{'s' * (kinds != 1)}"
    )
    _err().print(f"  [dim]{line}{'' if verbose else '; --verbose lists them'}[/]")
    if verbose:  # most common first, then by name: a stable order to read and diff
        for reason, n in sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0])):
            _err().print(
                f"    [dim]{n:>6}  {escape(reason.removeprefix('unsupported file type: '))}[/]"
            )


def watch_changes(report: IndexReport, failures_shown: set[tuple[str, str]]) -> None:
    """One line per file that changed in a `watch` cycle; nothing when nothing changed.
    A file that keeps failing is reported once (`failures_shown` remembers), not every cycle."""
    from ragkeep.models import FileOutcome

    for r in report.results:
        if r.outcome in (FileOutcome.ADDED, FileOutcome.UPDATED):
            _err().print(f"  [green]{r.outcome.value}[/] {escape(r.path)} ({r.chunks} chunks)")
        elif r.outcome in (FileOutcome.REMOVED, FileOutcome.RENAMED):
            detail = f": {escape(r.reason)}" if r.reason else ""
            _err().print(f"  [dim]{r.outcome.value}[/] {escape(r.path)}{detail}")
        elif r.outcome is FileOutcome.FAILED and (r.path, r.reason or "") not in failures_shown:
            failures_shown.add((r.path, r.reason or ""))
            _err().print(f"  [red]failed[/]  {escape(r.path)}: {escape(r.reason or '')}")
        else:
            continue
        for warning in r.warnings:
            _err().print(f"  [yellow]warning[/] {escape(r.path)}: {escape(warning)}")


def _where(path: str, page: int | None) -> str:
    return f"{one_line(path)} (p. {page})" if page is not None else one_line(path)


def one_line(name: str) -> str:
    """A file name on one line: a newline or other control character in it is shown
    escaped (`\\n`), so one result stays one line and `grep` sees it whole."""
    if name.isprintable():
        return name
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in name)


def search_results(hits: Sequence[SearchHit]) -> None:
    if not hits:
        _err().print("no results")
        return
    for h in hits:
        _out().print(
            f"[bold]{h.rank}.[/] [cyan]{escape(_where(h.path, h.page))}[/] [dim]{h.score:.4f}[/]"
        )
        _out().print(f"   {escape(_excerpt(h.text))}")


def _excerpt(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class _Stream:
    started = False


def stream_token(token: str) -> None:
    _Stream.started = True
    sys.stdout.write(token)
    sys.stdout.flush()


def retry(event: RetryEvent) -> None:
    """The LLM is about to be tried again: a line now, or the wait is silent."""
    _err().print(f"[yellow]{escape(event.message())}[/]")


def degraded(notes: Sequence[Degradation]) -> None:
    """Each fallback taken, on stderr: the results are real, but not what was asked for."""
    for d in notes:
        _err().print(f"[yellow]degraded: {escape(d.message())}[/]")


def answer(ans: Answer, streamed: bool) -> None:
    from ragkeep.models import AnswerMode, Part

    degraded([d for d in ans.degraded if d.part is not Part.LLM])  # the notice says the rest

    if streamed and _Stream.started and ans.mode is not AnswerMode.LLM:
        sys.stdout.write("\n\n")  # a stream broke off: end its line before the passages
    if ans.notice:
        _err().print(f"[yellow]{escape(ans.notice)}[/]")
    if ans.mode is AnswerMode.LLM:
        if streamed:
            sys.stdout.write("\n")
        else:
            _out().print(escape(ans.text))
        if ans.citations:
            _out().print("\n[bold]Sources[/]")
            for c in ans.citations:
                _out().print(f"  [{c.number}] {escape(one_line(c.label()))}")
    else:
        _out().print(escape(ans.text))


def documents(docs: Sequence[DocumentInfo]) -> None:
    if not _out().is_terminal:
        # A pipe or a file: one tab-separated line per document, never wrapped, so that
        # `ragkeep list | grep` and `cut -f1` see whole paths.
        for d in docs:
            sys.stdout.write(f"{one_line(d.path)}\t{one_line(d.title)}\t{d.chunks}\t{d.size}\n")
        sys.stdout.flush()
    else:
        table = _table(box=None, header_style="bold")
        table.add_column("path", overflow="fold")
        table.add_column("title")
        table.add_column("chunks", justify="right")
        table.add_column("bytes", justify="right")
        for d in docs:
            path, title = escape(one_line(d.path)), escape(one_line(d.title[:60]))
            table.add_row(path, title, str(d.chunks), str(d.size))
        _out().print(table)
    _err().print(f"{len(docs)} document(s)")


def status(
    st: StoreStatus, flags: Sequence[FlagState] = (), flags_error: str | None = None
) -> None:
    from ragkeep.models import BreakerState

    table = _table(box=None, show_header=False)
    for key, value in (
        ("documents", st.documents),
        ("chunks", st.chunks),
        ("sources", "\n".join(st.sources) or "(none)"),
        ("model", f"{st.model_id} ({st.dimension} dims)"),
        ("generation", st.generation),
        ("schema version", st.schema_version),
        ("database", f"{st.database_path} ({megabytes(st.database_bytes)})"),
        ("unreferenced vectors", _unreferenced_line(st.unreferenced_vectors)),
        ("cache", _cache_line(st.cache)),
        ("flags", _changed_flags(flags)),
        *([("flags error", flags_error)] if flags_error else []),
        # A part is listed only when it has failed lately: "ok" for an LLM that is not even
        # configured would mislead.
        *(
            (str(b.part), _breaker_line(b))
            for b in st.resilience.breakers
            if b.state is not BreakerState.CLOSED or b.recent_failures
        ),
        *(
            [("fallbacks", _fallbacks_line(st.resilience.fallbacks))]
            if st.resilience.fallbacks
            else []
        ),
    ):
        table.add_row(f"[bold]{key}[/]", escape(str(value)))
    _out().print(table)


def _unreferenced_line(unused: UnusedVectors) -> str:
    if not unused.count:
        return "none"
    return (
        f"{unused.count} ({megabytes(unused.bytes)}; kept for re-adding, `ragkeep gc` frees them)"
    )


_LEVEL_STYLE = {
    "ok": "green",
    "no data": "dim",
    "above target": "yellow",
    "alert": "bold yellow",
    "critical": "bold red",
}


def health(report: HealthReport, where: str) -> None:
    """One line per metric: its value, level and thresholds; the overall level first."""
    from ragkeep.observability.health import LABELS, format_value, threshold_text

    level = report.level.value
    _out().print(
        f"health of {escape(where)} over the last {report.window_s:g} s: "
        f"[{_LEVEL_STYLE[level]}]{level}[/]"
    )
    table = _table(box=None, show_header=False, pad_edge=False)
    for row in report.rows:
        detail = f"{threshold_text(row)}" + (f" ({row.detail})" if row.detail else "")
        table.add_row(
            f"  {LABELS[row.metric]}",
            format_value(row),
            f"[{_LEVEL_STYLE[row.level.value]}]{row.level.value}[/]",
            escape(detail),
        )
    _out().print(table)


def _changed_flags(flags: Sequence[FlagState]) -> str:
    """Only the flags that differ from their defaults: those are what make this index
    behave unlike a fresh one (`ragkeep flags list` shows them all)."""
    changed = [f for f in flags if f.enabled != f.default]
    lines = [f"{f.name} {'on' if f.enabled else 'off'} ({f.source.value})" for f in changed]
    return "\n".join(lines) or "all at their defaults"


def _breaker_line(b: BreakerStatus) -> str:
    from ragkeep.models import BreakerState

    if b.state is BreakerState.CLOSED:
        return f"working ({b.recent_failures} recent failure(s))"
    line = "circuit open" if b.state is BreakerState.OPEN else "circuit half-open (probing)"
    if b.last_error:
        line += f"; last error: {b.last_error}"
    if b.retry_in_s is not None:
        line += f"; next try in {b.retry_in_s:.0f} s"
    return line


def _fallbacks_line(counts: Sequence[tuple[str, int]]) -> str:
    return ", ".join(f"{part} {n}" for part, n in counts) + " (this process)"


def cache_stats(stats: CacheReport) -> None:
    if not stats.enabled:
        _out().print("caching is off (feature flag 'caching')")
        return
    table = _table(
        "tier",
        "hits",
        "misses",
        "evictions",
        "expirations",
        "hit rate",
        box=None,
        header_style="bold",
    )
    for tier, t in (
        ("memory", stats.memory),
        ("persistent", stats.persistent),
        ("embeddings", stats.embeddings),
    ):
        table.add_row(
            tier,
            str(t.hits),
            str(t.misses),
            str(t.evictions),
            str(t.expirations),
            f"{t.hit_rate:.1%}",
        )
    _out().print(table)
    _out().print(
        f"persistent: {stats.persistent_entries} entries, {stats.persistent_bytes / 1e6:.1f} MB"
    )


def doctor(report: DoctorReport) -> None:
    for check in report.checks:
        mark = (
            "[green]ok[/]"
            if check.ok and not check.repaired
            else ("[yellow]fixed[/]" if check.repaired else "[red]FAIL[/]")
        )
        _out().print(f"{mark:>16} {escape(check.name)}: {escape(check.detail)}")
    if report.snapshot:
        _out().print(f"snapshot {report.snapshot} holds the index as it was before the repair")
    if report.ok:
        _out().print("healthy")
    elif report.repairable:
        _out().print("[red]problems remain[/] (try --repair)")
    else:
        _out().print("[red]problems remain[/] that --repair cannot fix (see above)")


def backups(entries: Sequence[BackupEntry]) -> None:
    if not entries:
        info("no backups yet (`ragkeep backup` makes one)")
        return
    table = _table(box=None)
    table.add_column("id", no_wrap=True)  # copied into `ragkeep restore ID`: never cut
    table.add_column("reason", overflow="fold")
    for name in ("docs", "generation", "schema", "size"):
        table.add_column(name, justify="right", no_wrap=True)
    for entry in entries:
        m = entry.manifest
        if m is None:
            table.add_row(
                escape(entry.path.name), f"[red]incomplete[/]: {escape(entry.problem or '')}"
            )
            continue
        size = megabytes(m.size_bytes)
        table.add_row(
            m.id, escape(m.reason), str(m.documents), str(m.generation), str(m.schema_version), size
        )
    _out().print(table)


def reembed(report: ReembedReport) -> None:
    for check in report.validation.checks:
        mark = "[green]ok[/]" if check.ok else "[red]FAIL[/]"
        _out().print(f"{mark:>16} {escape(check.name)}: {escape(check.detail)}")
    snapshot = report.snapshot.id if report.snapshot else "none"
    if report.rolled_back:
        error(
            f"the re-embedded index failed validation and was rolled back to snapshot "
            f"{snapshot}: {report.validation.failures()}"
        )
        return
    info(
        f"re-embedded {report.texts} chunk text(s) with {report.model_after} (generation "
        f"{report.generation}); snapshot {snapshot} holds the index as it was "
        "(`ragkeep rollback` returns to it)"
    )


def migration(report: MigrationReport) -> None:
    for check in report.verification.checks:
        mark = "[green]ok[/]" if check.ok else "[red]FAIL[/]"
        _out().print(f"{mark:>16} {escape(check.name)}: {escape(check.detail)}")
    if not report.ok:
        error(
            f"the copy in {report.target} does not answer as the index does: "
            f"{report.verification.failures()}; the index itself is unchanged"
        )
        return
    info(
        f"copied {report.documents} document(s), {report.chunks} chunk(s) (generation "
        f"{report.generation}) from {report.source} to {report.target} in "
        f"{report.seconds:.1f}s; set store.url = {report.target_url!r} to use the copy"
    )


def _cache_line(stats: CacheReport) -> str:
    if not stats.enabled:
        return "off"
    hits = stats.memory.hits + stats.persistent.hits
    lookups = hits + stats.persistent.misses
    rate = f"{hits / lookups:.1%}" if lookups else "n/a"
    return f"{hits} hits of {lookups} lookups ({rate}); {stats.persistent_entries} stored"


def flags(states: Sequence[FlagState]) -> None:
    table = _table(
        "flag", "state", "default", "stage", "source", "description", box=None, header_style="bold"
    )
    for f in states:
        table.add_row(
            f.name,
            "on" if f.enabled else "off",
            "on" if f.default else "off",
            f.stage.value,
            f.source.value,
            escape(f.description),
        )
    _out().print(table)


def config(data_dir: Path, config_file: Path | None, rows: Sequence[tuple[str, Any, str]]) -> None:
    _err().print(f"data dir: {data_dir}\nconfig file: {config_file or '(none)'}")
    if not _out().is_terminal:  # a pipe: whole lines for grep, never wrapped
        for key, value, source in rows:
            sys.stdout.write(f"{key}\t{toml_value(value)}\t{source}\n")
        sys.stdout.flush()
        return
    table = _table("setting", "value", "source", box=None, header_style="bold")
    for key, value, source in rows:
        table.add_row(key, escape(toml_value(value)), source)
    _out().print(table)


def toml_value(value: Any) -> str:
    """A setting as it is written in config.toml (`false`, `["a", "b"]`, `"text"`), not as
    Python prints it; TOML has no null, so an unset value is `(not set)`."""
    if value is None:
        return "(not set)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple | set | frozenset):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items())
        return f"{{ {inner} }}" if inner else "{}"
    return json.dumps(str(value), ensure_ascii=False)  # a TOML basic string


def eval_report(r: EvalReport) -> None:
    _err().print(
        escape(f"{r.dataset} [{r.split}]: {r.documents} documents, {r.chunks} chunks; ")
        + (
            f"indexed {r.indexed_now} in {r.ingest_seconds:.1f}s ({r.ingest_docs_per_s} docs/s)"
            if r.indexed_now
            else "index reused"
        )
    )
    table = _table(
        "mode", "nDCG@10", "Recall@100", "MRR@10", "p50 ms", "p95 ms", box=None, header_style="bold"
    )
    for m in r.modes:
        table.add_row(
            m.mode.value,
            f"{m.ndcg_at_10:.4f}",
            f"{m.recall_at_100:.4f}",
            f"{m.mrr_at_10:.4f}",
            f"{m.query_p50_ms:.1f}",
            f"{m.query_p95_ms:.1f}",
        )
    _out().print(table)
