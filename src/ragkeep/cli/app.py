"""The `ragkeep` command: a thin typer layer over the services (`ragkeep.services`).

Exit codes: 0 success; 1 some files failed (the rest were indexed) or a check failed;
2 usage or configuration error.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from ragkeep.cli import (
    health_command,
    log_level_command,
    mcp_command,
    migrate_command,
    monitor_command,
    output,
    recovery_command,
    serve_command,
)
from ragkeep.cli.help import PlainHelpCommand
from ragkeep.models import SearchMode, to_json

if TYPE_CHECKING:
    from ragkeep.keep import Keep
    from ragkeep.models import DoctorReport, IndexReport

app = typer.Typer(
    name="ragkeep",
    help="Keep a hybrid (BM25 + vector) index of your folders in sync and ask it questions, "
    "fully offline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
flags_app = typer.Typer(
    no_args_is_help=True, help="List and switch feature flags (persisted in the data dir)."
)
config_app = typer.Typer(no_args_is_help=True, help="Inspect the effective settings.")
app.add_typer(flags_app, name="flags")
cache_app = typer.Typer(no_args_is_help=True, help="Inspect or empty the search-result cache.")
app.add_typer(config_app, name="config")
app.add_typer(cache_app, name="cache")
serve_command.register(app)
mcp_command.register(app)
health_command.register(app)
monitor_command.register(app)
log_level_command.register(app)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
# Also after the command (`ragkeep sync -q`, as in a crontab), not only before it.
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress or summaries; only errors.")
]


class _State:
    data_dir: Path | None = None
    config_file: Path | None = None
    overrides: dict[str, Any] = {}  # noqa: RUF012 - one instance per process
    quiet: bool = False
    log_level: int | None = None  # -v/-vv/-q: wins over the logging.level setting
    verbose: int = 0
    interrupt_reported: bool = False  # a command said what an interruption kept


state = _State()


def _fail(message: str, code: int = 2) -> NoReturn:
    output.error(message)
    raise typer.Exit(code)


def _quiet(quiet: bool) -> None:
    """`-q` given after the command: the same as before it."""
    if quiet:
        state.quiet = True
        state.log_level = _cli_log_level(state.verbose, True)


def _parse_set(items: list[str]) -> dict[str, Any]:
    parsed: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            _fail(f"--set expects KEY=VALUE (e.g. llm.provider=ollama), got {item!r}")
        parsed[key.strip()] = _set_value(value)
    return parsed


def _set_value(raw: str) -> Any:
    """`--set ingest.ignore=[".git","build"]`: JSON lists and tables, everything else a string
    (pydantic converts "true", "3" and the like for typed settings)."""
    if raw.startswith(("[", "{")):
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            _fail(f"--set value {raw!r} is not valid JSON: {exc.msg}")
    return raw


def open_keep(
    data_dir: Path | None = None, *, corrupt_ok: bool = False, reembedding: bool = False
) -> Keep:
    """Open the index, turning configuration problems into exit code 2 with a clear message.
    With `corrupt_ok`, a damaged index raises StoreCorruptError for the caller to report;
    `reembedding` opens one built with another model (see Keep)."""
    from ragkeep.config.settings import ConfigError
    from ragkeep.keep import Keep
    from ragkeep.store.base import StoreCorruptError, StoreError

    try:
        keep = Keep(
            data_dir or state.data_dir,
            config_file=state.config_file,
            overrides=state.overrides,
            reembedding=reembedding,
        )
    except (ConfigError, StoreError) as exc:
        if corrupt_ok and isinstance(exc, StoreCorruptError):
            raise
        _fail(str(exc))
    _apply_logging(keep)
    return keep


def _apply_logging(keep: Keep) -> None:
    """The settings' logging (level, format, file), now that the settings are loaded."""
    from ragkeep.observability.logs import configure_logging

    try:
        configure_logging(keep.settings.logging, state.log_level)
    except OSError as exc:
        keep.close()
        _fail(f"cannot open the log file (logging.file): {exc}")


def _version(value: bool) -> None:
    if value:
        from ragkeep import __version__

        typer.echo(f"ragkeep {__version__}")
        raise typer.Exit()


def _cli_log_level(verbose: int, quiet: bool) -> int | None:
    """-q: ERROR; -v: INFO; -vv: DEBUG; neither: None (the logging.level setting)."""
    if quiet:
        return logging.ERROR
    return max(logging.WARNING - 10 * verbose, logging.DEBUG) if verbose else None


@app.callback()
def main_options(
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            metavar="DIR",
            help="Where the index lives. Default: $RAGKEEP_HOME, else the per-user data dir.",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            metavar="FILE",
            help="Settings file (TOML). Default: $RAGKEEP_CONFIG, else DATA_DIR/config.toml.",
        ),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            "-s",
            metavar="KEY=VALUE",
            help="Override a setting for this run, e.g. --set llm.provider=ollama (repeatable).",
        ),
    ] = None,
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="-v info, -vv debug logging.")
    ] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress or summaries.")] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    state.data_dir = data_dir
    state.config_file = config
    state.overrides = _parse_set(set_ or [])
    state.quiet = quiet
    state.log_level = _cli_log_level(verbose, quiet)
    state.verbose = verbose
    from ragkeep.config.settings import LoggingSettings
    from ragkeep.observability.logs import configure_logging

    # Defaults until a command loads the settings (open_keep applies them then).
    configure_logging(LoggingSettings(), state.log_level)


# -- indexing ------------------------------------------------------------------------------


@app.command(cls=PlainHelpCommand)
def add(
    paths: Annotated[
        list[Path], typer.Argument(metavar="PATH...", help="Files or folders to index (recursive).")
    ],
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Register files or folders as sources and index them."""
    _quiet(quiet)
    missing = [str(p) for p in paths if not p.exists() and not p.is_symlink()]
    if missing:
        _fail(f"no such file or folder: {', '.join(missing)}")
    with open_keep() as keep:
        _check_sources(keep, paths)
        with _kept_on_interrupt(keep), output.progress(enabled=not state.quiet) as progress:
            report = keep.indexing.add(paths, progress, on_wait=_waiting_for(keep))
    _finish_report(report, json_)


def _check_sources(keep: Keep, paths: Sequence[Path]) -> None:
    """One line, before any work, for a path that cannot be a source (the data dir)."""
    from ragkeep.services.indexing import SourceError

    try:
        for p in paths:
            keep.indexing.check_source(p)
    except SourceError as exc:
        _fail(str(exc))


@app.command(cls=PlainHelpCommand)
def sync(
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    snapshot: Annotated[
        bool,
        typer.Option(
            "--snapshot", help="Back the index up first (`ragkeep rollback` returns to it)."
        ),
    ] = False,
) -> None:
    """Re-scan all sources: index new and changed files, remove deleted ones."""
    _quiet(quiet)
    with (
        open_keep() as keep,
        _kept_on_interrupt(keep),
        output.progress(enabled=not state.quiet) as progress,
    ):
        report = keep.indexing.sync(progress, on_wait=_waiting_for(keep), snapshot=snapshot)
    _finish_report(report, json_)


@app.command(cls=PlainHelpCommand)
def remove(
    paths: Annotated[
        list[Path],
        typer.Argument(metavar="PATH...", help="Files or folders to drop from the index."),
    ],
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Remove files or folders from the index and stop syncing them."""
    _quiet(quiet)
    with open_keep() as keep:
        unknown = _not_indexed(keep, paths)
        if unknown:
            _fail(f"not in the index, and no such file or folder: {', '.join(unknown)}")
        report = keep.indexing.remove(paths, on_wait=_waiting_for(keep))
    _finish_report(report, json_)


@contextmanager
def _kept_on_interrupt(keep: Keep) -> Iterator[None]:
    """Ctrl-C or SIGTERM during add/sync: say how many documents this run committed (each
    commit is one generation; the writer lock keeps other writers out meanwhile), then exit
    130. Here, because typer turns KeyboardInterrupt into a silent exit 130 above us."""
    before = keep.store.generation()
    try:
        yield
    except KeyboardInterrupt:
        try:
            n = keep.store.generation() - before
            saved = f"{n} document(s) committed in this run are kept"
        except Exception:  # the store cannot say: still report the interruption
            saved = "everything committed so far is kept"
        output.error(f"interrupted; {saved}; `ragkeep sync` finishes the rest")
        state.interrupt_reported = True
        raise typer.Exit(130) from None


def _not_indexed(keep: Keep, paths: list[Path]) -> list[str]:
    """The paths `remove` would do nothing for: gone from disk (so not a folder to exclude)
    and neither a source nor holding an indexed document."""
    from ragkeep.ingest.paths import absolute, is_under

    gone = [absolute(p) for p in paths if not p.exists() and not p.is_symlink()]
    if not gone:
        return []
    known = [*keep.admin.sources(), *(d.path for d in keep.admin.documents())]
    return [g for g in gone if not any(k == g or is_under(k, g) for k in known)]


def _waiting_for(keep: Keep) -> Callable[[], None]:
    def waiting() -> None:
        holder = keep.store.writer_holder() or "another ragkeep add/sync"
        output.info(f"{holder} is writing to this index; waiting for it to finish…")

    return waiting


@app.command(cls=PlainHelpCommand)
def watch(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="PATH...",
            help="Folders to watch. They are added as sources and stay sources after "
            "watch stops (ragkeep remove forgets one). Default: every source.",
        ),
    ] = None,
    debounce: Annotated[
        float,
        typer.Option(
            "--debounce", min=0.05, metavar="SECONDS", help="Seconds of quiet before a sync."
        ),
    ] = 1.0,
    quiet: QuietOpt = False,
) -> None:
    """Keep the index in sync with file changes until interrupted (Ctrl-C).

    Folders named here become permanent sources, as with `ragkeep add`.
    """
    _quiet(quiet)
    import signal
    import threading

    from ragkeep.ingest.paths import absolute
    from ragkeep.ingest.watch import watch as run_watch

    with open_keep() as keep:
        if paths:
            missing = [str(p) for p in paths if not p.is_dir()]
            if missing:
                _fail(f"not a folder: {', '.join(missing)}")
            _check_sources(keep, paths)
            known = set(keep.store.sources())
            _finish_summary(keep.indexing.add(paths, on_wait=_waiting_for(keep)))
            new = [str(p) for p in paths if absolute(p) not in known]
            if new:  # say it: watching is not a session-only thing
                output.info(
                    f"added as source(s), kept after watch stops: {', '.join(new)} "
                    "(ragkeep remove PATH forgets one)"
                )
        sources = keep.store.sources() if not paths else [absolute(p) for p in paths]
        if not sources:
            _fail("nothing to watch: add a folder first, or name one")
        output.info(f"watching {len(sources)} folder(s); Ctrl-C to stop")
        stop = threading.Event()
        # Ctrl-C or SIGTERM ask the loop to stop after the sync in progress, instead of
        # raising KeyboardInterrupt at an arbitrary point.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        failures_shown: set[tuple[str, str]] = set()

        def changes(report: IndexReport) -> None:
            if not state.quiet:
                output.watch_changes(report, failures_shown)

        run_watch(
            keep,
            sources,
            stop,
            debounce_s=debounce,
            on_report=changes,
            ignore=[str(keep.data_dir)],
        )
        output.info("stopped")


def _finish_summary(report: IndexReport) -> None:
    from ragkeep.models import FileOutcome

    if not state.quiet and any(r.outcome is not FileOutcome.UNCHANGED for r in report.results):
        output.report_summary(report, _verbose())


def _verbose() -> bool:
    """-v or more: the summaries list what they otherwise count."""
    return state.log_level is not None and state.log_level <= logging.INFO


@app.command(cls=PlainHelpCommand)
def doctor(
    json_: JsonOpt = False,
    repair: Annotated[
        bool, typer.Option("--repair", help="Rebuild what is derived and fix what can be fixed.")
    ] = False,
) -> None:
    """Check the index: integrity, full-text index, chunks, vectors, orphans.

    Exit 0 when healthy (or fully repaired), 1 when problems remain.
    """
    report = _doctor_report(repair)
    if json_:
        output.print_json(report)
    else:
        output.doctor(report)
    raise typer.Exit(0 if report.ok else 1)


def _doctor_report(repair: bool) -> DoctorReport:
    """The checks; a file too damaged to open is itself the finding, not an error."""
    from ragkeep.models import Check, DoctorReport
    from ragkeep.store.base import StoreCorruptError

    try:
        with open_keep(corrupt_ok=True) as keep:
            return keep.admin.doctor(repair)
    except StoreCorruptError as exc:
        return DoctorReport([Check("the database opens", False, str(exc), repairable=False)])


@app.command(cls=PlainHelpCommand)
def gc(json_: JsonOpt = False) -> None:
    """Delete stored vectors that no chunk uses any more (also done automatically)."""
    with open_keep() as keep:
        removed = keep.indexing.gc()
    if json_:
        output.print_json({"removed_vectors": removed.count, "removed_bytes": removed.bytes})
    else:
        output.info(
            f"removed {removed.count} unreferenced vector(s), {output.megabytes(removed.bytes)}"
        )


def _finish_report(report: IndexReport, json_: bool) -> None:
    if json_:
        output.print_json(report)
    elif not state.quiet:
        output.report_summary(report, _verbose())
    raise typer.Exit(0 if report.ok else 1)


# -- reading -------------------------------------------------------------------------------


@app.command(cls=PlainHelpCommand)
def search(
    query: Annotated[str, typer.Argument(metavar="QUERY", help="What to look for.")],
    k: Annotated[
        int | None,
        typer.Option("-k", min=1, max=1000, help="Number of results. Default: search.k (10)."),
    ] = None,
    mode: Annotated[
        SearchMode | None,
        typer.Option("--mode", help="hybrid, bm25 or dense. Default: search.mode (hybrid)."),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Search the index and print the best passages.

    When the embedding model fails, hybrid search answers from BM25 alone and says so on
    stderr (and in --json's "degraded"); --mode dense then fails with exit 2.
    """
    _require_words(query, "query")
    with open_keep() as keep:
        results = keep.querying.search(query, k, mode)
    if json_:
        output.print_json({"query": query, **to_json(results)})
    else:
        output.degraded(results.degraded)
        output.search_results(results.hits)


def _require_words(text: str, what: str) -> None:
    # An empty query matches nothing in BM25 and anything in dense: refuse it instead.
    if not text.strip():
        _fail(f"the {what} is empty: give some words to look for")


@app.command(cls=PlainHelpCommand)
def ask(
    question: Annotated[
        str, typer.Argument(metavar="QUESTION", help="A question about your documents.")
    ],
    k: Annotated[
        int | None,
        typer.Option("-k", min=1, max=50, help="Passages to use. Default: llm.ask_k (5)."),
    ] = None,
    json_: JsonOpt = False,
    no_stream: Annotated[
        bool, typer.Option("--no-stream", help="Print the answer when complete.")
    ] = False,
) -> None:
    """Answer a question from your documents, with citations.

    Uses the LLM configured in `llm.*` settings; without one (or when it is down) the answer
    is the most relevant passages, and a line says so. Each retry of the LLM is a line on
    stderr; the LLM gets at most llm.deadline_s in all, then the passages answer.
    """
    from ragkeep.answer.service import consume

    _require_words(question, "question")
    with open_keep() as keep:
        stream = not (json_ or no_stream) and keep.feature_flags.enabled("answer_streaming")
        events = keep.querying.ask_stream(question, k)
        try:
            # Retries go to stderr in every mode: stdout (and --json) stay one result.
            answer = consume(events, output.stream_token if stream else None, output.retry)
        except ValueError as exc:  # an LLM setting the client cannot use
            _fail(f"cannot use the configured LLM: {exc}")
    if json_:
        output.print_json(answer)
    else:
        output.answer(answer, streamed=stream)


@app.command("list", cls=PlainHelpCommand)
def list_(json_: JsonOpt = False) -> None:
    """List indexed documents."""
    with open_keep() as keep:
        docs = keep.admin.documents()
    if json_:
        output.print_json(docs)
    else:
        output.documents(docs)


@app.command(cls=PlainHelpCommand)
def status(json_: JsonOpt = False) -> None:
    """Show what is indexed: documents, chunks, sources, model, generation, size, and the
    feature flags not at their defaults."""
    from ragkeep.models import to_json

    with open_keep() as keep:
        st = keep.admin.status()
        flags, flags_error = keep.feature_flags.states(), keep.feature_flags.error
    if json_:
        # The same keys as GET /api/status.
        output.print_json({**to_json(st), "flags": flags, "flags_error": flags_error})
    else:
        output.status(st, flags, flags_error)


@app.command("eval", cls=PlainHelpCommand)
def eval_(
    dataset_dir: Annotated[
        Path,
        typer.Argument(
            metavar="DIR", help="A BEIR-layout folder: corpus.jsonl, queries.jsonl, qrels/."
        ),
    ],
    split: Annotated[str, typer.Option("--split", help="Which qrels/SPLIT.tsv to use.")] = "test",
    modes: Annotated[
        list[SearchMode] | None,
        typer.Option(
            "--mode", metavar="MODE", help="Modes to evaluate (repeatable). Default: all three."
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Index here and keep it (re-runs reuse it). Default: a temporary folder.",
        ),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Measure retrieval quality (nDCG@10, Recall@100, MRR@10) and speed on a BEIR dataset."""
    import tempfile

    from ragkeep.eval.beir import DatasetError, load_dataset
    from ragkeep.eval.runner import run_eval

    try:
        dataset = load_dataset(dataset_dir, split)
    except DatasetError as exc:
        _fail(str(exc))
    chosen = modes or [SearchMode.BM25, SearchMode.DENSE, SearchMode.HYBRID]
    with tempfile.TemporaryDirectory(prefix="ragkeep-eval-") as tmp:
        # Never the global --data-dir: evaluating into a real index would mix the corpora.
        target = data_dir or Path(tmp)
        with open_keep(target) as keep, output.progress(enabled=not state.quiet) as progress:
            result = run_eval(keep, dataset, chosen, progress)
    if json_:
        output.print_json(result)
    else:
        output.eval_report(result)


# -- cache ---------------------------------------------------------------------------------


@cache_app.command("stats", cls=PlainHelpCommand)
def cache_stats(json_: JsonOpt = False) -> None:
    """Show hits, misses, evictions, expirations and hit rate, across all processes."""
    with open_keep() as keep:
        stats = keep.admin.cache_stats()
    if json_:
        output.print_json(stats)
    else:
        output.cache_stats(stats)


@cache_app.command("clear", cls=PlainHelpCommand)
def cache_clear() -> None:
    """Empty the result cache shared by every process, and reset its statistics."""
    with open_keep() as keep:
        removed = keep.admin.clear_cache()
    output.info(f"removed {removed} cached result(s)")


# -- flags and config ----------------------------------------------------------------------


@flags_app.command("list", cls=PlainHelpCommand)
def flags_list(json_: JsonOpt = False) -> None:
    """List every feature flag: state, default, stage and where the state comes from."""
    with open_keep() as keep:
        flags = keep.feature_flags.states()
    if json_:
        output.print_json(flags)
    else:
        output.flags(flags)


def _set_flag(name: str, enabled: bool | None) -> None:
    from ragkeep.config.flags import FlagError
    from ragkeep.models import FlagSource

    with open_keep() as keep:
        try:
            st = keep.feature_flags.set(name, enabled, log_change=False)  # said below
        except FlagError as exc:
            _fail(str(exc))
    word = "enabled" if st.enabled else "disabled"
    note = " (overridden by settings)" if st.source is FlagSource.SETTINGS else ""
    if enabled is None:
        output.info(f"{name} reset to its default ({word}){note}")
    else:
        output.info(f"{name} is {word}{note}")


@flags_app.command("enable", cls=PlainHelpCommand)
def flags_enable(name: Annotated[str, typer.Argument(metavar="NAME", help="Flag name.")]) -> None:
    """Switch a flag on for this data dir."""
    _set_flag(name, True)


@flags_app.command("disable", cls=PlainHelpCommand)
def flags_disable(name: Annotated[str, typer.Argument(metavar="NAME", help="Flag name.")]) -> None:
    """Switch a flag off for this data dir."""
    _set_flag(name, False)


@flags_app.command("reset", cls=PlainHelpCommand)
def flags_reset(name: Annotated[str, typer.Argument(metavar="NAME", help="Flag name.")]) -> None:
    """Forget the persisted value: the flag's default applies again."""
    _set_flag(name, None)


@config_app.command("show", cls=PlainHelpCommand)
def config_show(json_: JsonOpt = False) -> None:
    """Print the effective settings and where each value came from."""
    from ragkeep.config.settings import ConfigError, iter_settings, load_settings

    try:
        loaded = load_settings(state.data_dir, state.config_file, state.overrides)
    except ConfigError as exc:
        _fail(str(exc))
    rows = [
        (key, value, loaded.sources.get(key, "default"))
        for key, value in iter_settings(loaded.settings)
    ]
    if json_:
        output.print_json(
            {
                "data_dir": str(loaded.data_dir),
                "config_file": str(loaded.config_file) if loaded.config_file else None,
                "settings": {k: {"value": v, "source": s} for k, v, s in rows},
            }
        )
    else:
        output.config(loaded.data_dir, loaded.config_file, rows)


# After the commands above, so `--help` lists them first.
recovery_command.register(app)
migrate_command.register(app)


def main() -> None:
    from ragkeep.cli.signals import terminate_as_interrupt
    from ragkeep.embed.base import EmbedderError
    from ragkeep.store.base import StoreError

    terminate_as_interrupt()  # `kill`, systemd: stop like Ctrl-C, with the same message
    try:
        app()
    except KeyboardInterrupt:  # outside typer's own handling (it exits 130 silently)
        _interrupted()
    except SystemExit as exc:
        # typer turned a KeyboardInterrupt into exit 130 without a word: say it.
        if exc.code == 130 and not state.interrupt_reported:
            _interrupted()
        raise
    except (StoreError, EmbedderError) as exc:
        # Expected failures of a part (a busy, full or damaged index; a broken model): one
        # line that says what to do, never a traceback.
        output.error(str(exc))
        sys.exit(2)


def _interrupted() -> NoReturn:
    state.interrupt_reported = True
    output.error("interrupted; everything committed so far is kept")
    sys.exit(130)
