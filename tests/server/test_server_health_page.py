"""The status panel's health figures and charts in a real headless Chromium, against a real
`ragkeep serve` that has answered real searches: the four figures with their levels in
words, the same as GET /api/health and `ragkeep health` print them, and the p95 latency and
hit-rate charts as inline SVG with the alert threshold drawn. Screenshots go to
test-artifacts/screenshots/, as for the other page tests (whose browser fixtures these are).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from ragkeep import Keep
from ragkeep.models.health import HealthReport, HealthRow, Level, Metric, Thresholds
from ragkeep.observability.health import format_value

import test_server_page as page
from server_harness import RunningServer, running_server
from test_server_page import find, open_page, wait

# The page tests' browser: one headless Chromium for the module, a screenshot per test, and
# no script error or CSP violation left in the console.
chrome = page.chrome
browser = page.browser

DOCS = {
    "tomatoes.md": "# Tomatoes\n\nWater tomatoes deeply twice a week; in a heatwave every day.",
    "ups.md": "# The UPS\n\nThe UPS keeps the home server running for 40 minutes in a power cut.",
}
QUERIES = ["water tomatoes", "power cut", "heatwave", "forty minutes"]
LEVELS = {level.value for level in Level}
POINT = re.compile(r"[ML]\s*-?[\d.]+,-?[\d.]+")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("health-page")
    docs = root / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text)
    with Keep(root / "data") as keep:
        assert keep.add([docs]).ok
    # A history point every half second, and a handful of searches is enough to judge.
    settings = {"health.sample_s": "0.5", "health.min_requests": "5"}
    with running_server(root / "data", settings) as srv:
        yield srv


def shown(driver: WebDriver) -> dict[str, Any]:
    """What the health block shows, read in one go (it is redrawn every refresh)."""
    script = """
        const box = document.querySelector('#health');
        const figures = {};
        for (const dd of box.querySelectorAll('#health-list dd')) {
          figures[dd.dataset.metric] = [
            dd.querySelector('.figure').textContent, dd.querySelector('.level').textContent,
            dd.title];
        }
        const charts = {};
        for (const fig of box.querySelectorAll('#health-charts figure')) {
          charts[fig.dataset.metric] = {
            lines: [...fig.querySelectorAll('svg path.chart-line')].map((p) => p.getAttribute('d')),
            alert: fig.querySelectorAll('svg line.chart-alert').length,
            label: fig.querySelector('svg').getAttribute('aria-label'),
            width: fig.querySelector('svg').getBoundingClientRect().width,
          };
        }
        return {
          summary: box.querySelector('#health-summary').textContent,
          text: box.textContent,
          figures,
          charts,
        };
    """
    result: dict[str, Any] = driver.execute_script(script)
    return result


def points(d: str) -> int:
    return len(POINT.findall(d))


def test_health_figures_and_charts_follow_real_searches(
    browser: WebDriver, server: RunningServer
) -> None:
    # Before any search: "no data", said in words, and no line drawn.
    open_page(browser, server)
    wait(browser).until(lambda d: len(shown(d)["figures"]) == 4)
    before = shown(browser)
    assert before["figures"]["query_p95"][:2] == ["no data", "no data"]
    assert before["figures"]["cache_hit_rate"][:2] == ["no data", "no data"]
    assert before["charts"]["query_p95"]["lines"] == []
    assert "No data in the window yet" in before["text"]

    with server.client() as client:
        for i in range(32):  # over ~2 s: several consecutive history points have searches
            assert client.get("/api/search", params={"q": QUERIES[i % 4], "k": 2}).is_success
            time.sleep(0.06)
        time.sleep(0.6)  # the last interval is sampled
        find(browser, "#status-refresh").click()
        wait(browser).until(lambda d: shown(d)["figures"]["query_p95"][0] != "no data")
        report = HealthReport.from_json(client.get("/api/health").json())
    after = shown(browser)
    browser.execute_script("document.querySelector('#health').scrollIntoView()")  # screenshot

    # The figures are the API's, formatted as `ragkeep health` prints them, with their level.
    for row in report.rows:
        value, level, _ = after["figures"][row.metric.value]
        assert level in LEVELS
        if row.metric is not Metric.MEMORY:  # the process's size moves between two requests
            assert (value, level) == (format_value(row), row.level.value), row
    assert report.row(Metric.CACHE_HIT_RATE).value == pytest.approx(28 / 32)
    assert after["summary"].startswith(report.level.value), after["summary"]
    assert "32 requests in the last 5 min" in after["summary"]
    assert after["figures"]["error_rate"][2] == "target < 2%, alert > 5%, critical > 10%"

    # Two charts, each a line of at least two points and the alert threshold as a line.
    for metric in ("query_p95", "cache_hit_rate"):
        chart = after["charts"][metric]
        assert max(map(points, chart["lines"]), default=0) >= 2, chart
        assert chart["alert"] == 1 and chart["width"] > 100, chart
        assert "latest" in chart["label"] and "alert" in chart["label"], chart


def test_a_sampling_interval_without_searches_is_a_gap_not_a_zero(
    browser: WebDriver, server: RunningServer
) -> None:
    """health.js's chart, fed a history with a hole: two lines, nothing drawn at zero."""
    open_page(browser, server)
    row = {
        "metric": "query_p95", "value": 0.2, "unit": "seconds", "level": "ok", "target": 0.5,
        "alert": 1.0, "critical": 2.0, "higher_is_worse": True, "samples": 9, "detail": "",
    }  # fmt: skip
    p95s = [0.1, 0.2, None, 0.3, 0.4, None]
    history = [_point(t, v) for t, v in enumerate(p95s)]
    report = {"level": "ok", "source": "server", "window_s": 300, "rows": [row], "history": history}
    script = """
        const [report, done] = [arguments[0], arguments[arguments.length - 1]];
        import('/static/health.js').then(({ chart }) => {
          const box = chart(report, { metric: 'query_p95', title: 'Search p95 latency' });
          done({
            lines: [...box.querySelectorAll('path.chart-line')].map((p) => p.getAttribute('d')),
            alert: box.querySelector('line.chart-alert').getAttribute('y1'),
            caption: box.querySelector('figcaption').textContent,
          });
        });
    """
    drawn: dict[str, Any] = browser.execute_async_script(script, report)
    assert [points(d) for d in drawn["lines"]] == [2, 2], drawn
    bottom = "61.0"  # the chart's zero line (CHART_H - PAD)
    assert all(f",{bottom}" not in d for d in drawn["lines"]), drawn
    assert float(drawn["alert"]) < float(bottom)
    assert "latest 400 ms" in drawn["caption"] and "alert above 1 s" in drawn["caption"]


# Ties and the edges of each format: Python's own rounding sends a tie to even, the page's
# JavaScript rounds it up, and the API's figures are rounded, so ties are common.
AMOUNTS = [
    *((v, "seconds") for v in (0.0085, 0.0125, 0.0005, 0.0015, 0.2345, 0.9995, 0.9996, 0.0)),
    *((v, "seconds") for v in (1.0, 1.125, 1.5, 9.995, 12.34, 123.4, 1234.0)),
    *((v, "ratio") for v in (0.1225, 0.00125, 0.00025, 0.0045, 0.05, 0.12, 0.99995, 1.0, 0.0)),
]


def test_the_page_formats_every_figure_as_ragkeep_health_does(
    browser: WebDriver, server: RunningServer
) -> None:
    open_page(browser, server)
    script = """
        const [amounts, done] = [arguments[0], arguments[arguments.length - 1]];
        import('/static/health.js').then(({ formatAmount }) => {
          done(amounts.map(([value, unit]) => formatAmount(value, unit)));
        });
    """
    on_page: list[str] = browser.execute_async_script(script, AMOUNTS)
    rows = [_row(value, unit) for value, unit in AMOUNTS]
    assert on_page == [format_value(row) for row in rows]
    assert on_page[0] == "9 ms"  # a tie, rounded up on both sides


def _row(value: float, unit: str) -> HealthRow:
    limits = Thresholds(target=0.5, alert=1.0, critical=2.0, higher_is_worse=True)
    return HealthRow(Metric.QUERY_P95, value, unit, limits, Level.OK, samples=9, detail="")


def _point(t: int, p95: float | None) -> dict[str, Any]:
    return {
        "time": 1000.0 + t * 5,
        "requests": 0 if p95 is None else 3,
        "error_rate": None if p95 is None else 0.0,
        "memory": 0.2,
        "cache_hit_rate": None if p95 is None else 1.0,
        "query_p95": p95,
    }
