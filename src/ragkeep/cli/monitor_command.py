"""`ragkeep monitor`: the monitoring table as a live terminal dashboard.

Each refresh fetches a fresh report (GET /api/health of a server, or the statistics recorded
in the local index) and shows every metric's value, a sparkline of its history, its level
and thresholds. A server that cannot be reached is retried every refresh, never fatal: the
dashboard says so and keeps the last good report on screen.
"""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Annotated

import typer

from ragkeep.cli.health_command import UrlOpt
from ragkeep.cli.remote import TokenOpt

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.text import Text

    from ragkeep.models.health import HealthPoint, HealthReport, HealthRow, Metric

SPARKS = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 30  # the latest points: 2.5 min of a server's 5 s samples, half an hour locally
GetReport = Callable[[], "HealthReport"]


@dataclass(frozen=True, slots=True)
class Frame:
    """What one refresh shows."""

    where: str  # the server's URL or the data dir
    report: HealthReport | None  # the latest good report (None: none yet)
    good_at: float | None  # when that report was fetched (Unix time)
    problem: str | None = None  # why this refresh got no report
    remote: bool = True  # a server (else the local index)


def register(app: typer.Typer) -> None:
    app.command()(monitor)


def monitor(
    url: UrlOpt = None,
    token: TokenOpt = None,
    interval: Annotated[
        float, typer.Option("--interval", min=0.1, help="Seconds between two refreshes.")
    ] = 2.0,
    count: Annotated[
        int | None,
        typer.Option("--count", min=1, help="Stop after this many refreshes. Default: never."),
    ] = None,
) -> None:
    """A live dashboard of error rate, memory, cache hit rate and search p95.

    Refreshes every --interval seconds until Ctrl-C (or --count refreshes), then exits 0.
    On a terminal it redraws in place; otherwise it prints one plain frame per refresh. A
    server that cannot be reached is retried, not fatal; a refused token exits 2.
    """
    from ragkeep.cli.app import open_keep

    if url is not None:
        run(_remote(url, token), url, interval, count, remote=True)
    else:
        with open_keep() as keep:
            run(keep.health, str(keep.data_dir), interval, count, remote=False)


def _remote(url: str, token: str | None) -> GetReport:
    from ragkeep.cli import output
    from ragkeep.cli.health_command import ReportUnavailable, request_report

    def get() -> HealthReport:
        try:
            return request_report(url, token)
        except ReportUnavailable as exc:
            # A missing or wrong token will not fix itself: retrying would only hide it.
            if exc.status in (401, 403):
                output.error(f"{exc} (pass --token or set RAGKEEP_SERVER__TOKEN)")
                raise typer.Exit(2) from None
            raise

    return get


def run(get: GetReport, where: str, interval: float, count: int | None, *, remote: bool) -> None:
    """Refresh until `count` frames were shown or Ctrl-C; a normal stop returns (exit 0)."""
    from rich.console import Console
    from rich.live import Live

    console = Console(highlight=False)
    poll = _Poller(get, where, interval, remote=remote)
    # On a terminal, redraw in place; in a pipe or a log, one plain frame after the other
    # (a Live display there would print only its last frame, when it stops).
    redraw = console.is_terminal
    live = (
        Live(console=console, auto_refresh=False, redirect_stderr=sys.stderr.isatty())
        if redraw
        else None
    )
    frames: Iterable[int] = itertools.count(1) if count is None else range(1, count + 1)
    try:
        with live or nullcontext():
            for n in frames:
                started = time.monotonic()
                view = render(poll(), console.width)
                if live is not None:
                    live.update(view, refresh=True)
                else:
                    console.print(view)
                    console.print()
                    console.file.flush()
                if n != count:
                    time.sleep(max(0.0, interval - (time.monotonic() - started)))
    except KeyboardInterrupt:
        pass  # Ctrl-C (or SIGTERM) is how a dashboard is meant to stop: exit 0, no message


class _Poller:
    """Fetches a report per call; remembers the last good one across failures."""

    def __init__(self, get: GetReport, where: str, interval: float, *, remote: bool) -> None:
        self._get = get
        self._interval = interval
        self._frame = Frame(where, None, None, remote=remote)

    def __call__(self) -> Frame:
        from ragkeep.cli import output
        from ragkeep.cli.health_command import ReportUnavailable
        from ragkeep.store.base import StoreError

        try:
            report = self._get()
        except (ReportUnavailable, StoreError) as exc:
            problem = str(exc)
            # One line when the trouble starts (or changes), not one per refresh.
            if problem != self._frame.problem:
                output.error(f"{problem}; retrying every {self._interval:g} s")
            self._frame = replace(self._frame, problem=problem)
        else:
            if self._frame.problem is not None:
                again = "reachable" if self._frame.remote else "readable"
                output.info(f"{self._frame.where} is {again} again")
            self._frame = replace(self._frame, report=report, good_at=time.time(), problem=None)
        return self._frame


# -- drawing -------------------------------------------------------------------------------


def sparkline(values: Sequence[float | None], top: float) -> str:
    """One block per value, scaled from 0 to `top`; None (nothing happened) is a space."""
    scale = len(SPARKS) - 1
    top = top if top > 0 else 1.0
    return "".join(
        " " if v is None else SPARKS[round(min(max(v / top, 0.0), 1.0) * scale)] for v in values
    )


def series(report: HealthReport, metric: Metric, width: int = SPARK_WIDTH) -> list[float | None]:
    """The metric's latest `width` history values (HealthPoint fields are named as metrics)."""
    points = _minutes_filled(report.history) if report.source == "local" else report.history
    values: list[float | None] = [getattr(p, metric.value) for p in points]
    return values[-width:]


def _minutes_filled(history: Sequence[HealthPoint]) -> list[HealthPoint]:
    from ragkeep.models.health import HealthPoint

    """The index records only the minutes in which something happened: put the idle minutes
    back as gaps, so that a sparkline's columns stay one minute each."""
    filled: list[HealthPoint] = []
    for point in history:
        if filled:
            minute = filled[-1].time + 60.0
            while minute < point.time:
                filled.append(HealthPoint(minute, 0, None, None, None, None))
                minute += 60.0
        filled.append(point)
    return filled


def _spark_top(report: HealthReport, metric: Metric, values: Sequence[float | None]) -> float:
    """Full height: the alert threshold or the largest value, whichever is higher, so that a
    harmless wiggle stays low; for a hit rate (lower is worse), 100%."""
    thresholds = report.row(metric).thresholds
    floor = thresholds.alert if thresholds.higher_is_worse else 1.0
    return max([floor, *(v for v in values if v is not None)])


def render(frame: Frame, width: int) -> RenderableType:
    from rich.console import Group

    lines: list[RenderableType] = [_title(frame), _status_line(frame)]
    if frame.report is not None:
        lines += [_table(frame.report, width), *_why_no_data(frame.report)]
    return Group(*lines)


def _title(frame: Frame) -> Text:
    from rich.text import Text

    title = Text.assemble(("ragkeep monitor", "bold"))
    if frame.report is None:
        return title.append(f" · {frame.where}")
    what = "live window of" if frame.report.source == "server" else "statistics recorded in"
    return title.append(f" · {what} {frame.where}")


def _status_line(frame: Frame) -> Text:
    """The overall level and the requests in the window; or why there is no fresh report."""
    from rich.text import Text

    from ragkeep.cli.output import _LEVEL_STYLE

    report = frame.report
    if frame.problem is not None:
        line = Text.assemble(("unreachable" if frame.remote else "unavailable", "bold red"))
        line.append(f": {frame.problem}")
        if frame.good_at is None:
            return line.append(" · no report yet")
        return line.append(f" · last good report at {_clock(frame.good_at)}", style="dim")
    assert report is not None  # a frame without a problem has a report
    from ragkeep.models.health import Metric

    requests = report.row(Metric.ERROR_RATE).samples
    line = Text.assemble((report.level.value, _LEVEL_STYLE[report.level.value]))
    line.append(f" · {requests} request{'' if requests == 1 else 's'} in the last ")
    return line.append(f"{report.window_s:g} s · updated {_clock(frame.good_at)}")


def _clock(when: float | None) -> str:
    return "-" if when is None else time.strftime("%H:%M:%S", time.localtime(when))


def _table(report: HealthReport, width: int) -> RenderableType:
    from rich.table import Table

    from ragkeep.cli.output import _LEVEL_STYLE
    from ragkeep.observability.health import LABELS, format_value, threshold_text

    per = "minute" if report.source == "local" else "sample"
    # The sparkline takes what the other columns (about 86 characters) leave of the screen.
    spark_width = max(10, min(SPARK_WIDTH, width - 86))
    table = Table(box=None, pad_edge=False, header_style="dim")
    table.add_column("metric")
    table.add_column("now", justify="right")
    table.add_column(f"history, 1/{per}", min_width=spark_width)
    table.add_column("level")
    table.add_column("thresholds")
    for row in report.rows:
        values = series(report, row.metric, spark_width)
        spark = sparkline(values, _spark_top(report, row.metric, values))
        style = _LEVEL_STYLE[row.level.value]
        table.add_row(
            LABELS[row.metric],
            f"[{style}]{format_value(row)}[/]",
            f"[cyan]{spark.rjust(spark_width)}[/]",
            f"[{style}]{row.level.value}[/]",
            threshold_text(row),
        )
    return table


def _why_no_data(report: HealthReport) -> list[Text]:
    from rich.text import Text

    from ragkeep.models.health import Level, Metric
    from ragkeep.observability.health import LABELS

    def why(row: HealthRow) -> str:
        # A memory row's detail is its limit ("of 1024 MB"), not a reason.
        return "no size recorded in the window" if row.metric is Metric.MEMORY else row.detail

    return [
        Text(f"{LABELS[row.metric]}: no data, {why(row)}", style="dim")
        for row in report.rows
        if row.level is Level.NO_DATA and row.detail
    ]
