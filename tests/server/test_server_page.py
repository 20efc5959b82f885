"""The web page in a real headless Chromium, against a real `ragkeep serve` and a fake LLM:
search with marked snippets, a streamed answer with clickable citations that open the cited
passage, uploads, sync, the status panel, the keyboard, themes, narrow screens and the token
prompt. Each test leaves a screenshot in test-artifacts/screenshots/.

Needs /usr/bin/chromium and /usr/bin/chromedriver (Debian: `scripts/ensure_chromium.sh`).
Without them the tests skip, unless TESTS_REQUIRE_BROWSER=1 (as in `make test`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

from ragkeep import Keep

from conftest import REQUIRE_BROWSER
from docfactory import make_pdf
from fake_llm import FakeLLM
from server_harness import RunningServer, running_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
WAIT_S = 30.0
TOKEN = "page-test-token"

DOCS = {
    "tomatoes.md": "# Tomatoes\n\nWater tomatoes deeply twice a week; in a heatwave every day.",
    "ups.md": "# The UPS\n\nThe UPS keeps the home server running for 40 minutes in a power cut.",
    "markup.md": "# Markup sample\n\nThe snippet shows <img src=x onerror=alert(1)> and "
    "<b>bold</b> tags as plain text: zanzibarquux.",
}
PDF_PAGES = [
    "Boiler manual. Page one covers fixing the wall bracket and the flue to the outside wall.",
    "Servicing: the boiler pressure gauge should read 1.5 bar when the heating is cold. "
    "Bleed every radiator once a year.",
]
QUESTION = "What should the boiler pressure gauge read when the heating is cold?"
REPLY = (
    "When the heating is cold the pressure gauge should read 1.5 bar [1]. Bleed every "
    "radiator once a year, as the manual says [1]."
)
# What would load from elsewhere (a CDN, web fonts), and what would turn strings into HTML.
REMOTE = re.compile(
    r"(src|href)\s*=\s*[\"']?(https?:)?//"
    r"|url\(\s*[\"']?(https?:)?//"
    r"|@import"
    r"|(import|from)\s*\(?\s*[\"'](https?:)?//"
    r"|fonts\.googleapis"
)
HTML_FROM_STRINGS = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Belt and braces: no name resolves but the test server's address.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    "--window-size=1280,900",
]


def browser_missing() -> str | None:
    missing = [
        str(p) for p in (CHROMIUM, CHROMEDRIVER) if not (p.is_file() and os.access(p, os.X_OK))
    ]
    if not missing:
        return None
    return f"{' and '.join(missing)} not installed (run scripts/ensure_chromium.sh)"


# -- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chrome() -> Iterator[WebDriver]:
    reason = browser_missing()
    if reason is not None:
        if REQUIRE_BROWSER:
            pytest.fail(f"TESTS_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    profile = tempfile.mkdtemp(prefix="ragkeep-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in [*CHROMIUM_ARGS, f"--user-data-dir={profile}"]:
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # for page_errors()
    # An explicit driver path: Selenium Manager (which downloads drivers) never runs.
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def browser(chrome: WebDriver, request: pytest.FixtureRequest) -> Iterator[WebDriver]:
    """The module's browser, with a screenshot of the page saved after the test, which must
    not have left a script error or a Content-Security-Policy violation in the console."""
    chrome.set_window_size(1280, 900)
    page_errors(chrome)  # what an earlier test left behind is not this test's
    yield chrome
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    chrome.save_screenshot(str(SCREENSHOTS / f"{request.node.name}.png"))
    errors = page_errors(chrome)
    assert not errors, errors


def page_errors(driver: WebDriver) -> list[str]:
    """Uncaught exceptions and CSP violations logged since the last call. (Failed requests,
    such as the 401s and 429s the tests provoke, are logged too, and are not errors here.)"""
    signs = ("Uncaught", "Content Security Policy", "SyntaxError", "TypeError")
    messages = [str(entry["message"]) for entry in driver.get_log("browser")]
    return [m for m in messages if any(sign in m for sign in signs)]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("page")
    docs = root / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text)
    (docs / "boiler.pdf").write_bytes(make_pdf(PDF_PAGES, title="Boiler manual"))
    with Keep(root / "data") as keep:
        assert keep.add([docs]).ok
    return root


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    # ~20 deltas 50 ms apart: a second of streaming, long enough to see the answer grow.
    with FakeLLM(reply=REPLY, delta_delay_s=0.05) as fake:
        yield fake


@pytest.fixture(scope="module")
def server(corpus: Path, llm: FakeLLM) -> Iterator[RunningServer]:
    settings = {
        "llm.provider": "ollama",
        "llm.url": llm.url,
        "llm.model": "m",
        "server.max_asks": "1",  # lets a test provoke a 429 with one ask in flight
    }
    with running_server(corpus / "data", settings) as srv:
        yield srv


@pytest.fixture(scope="module")
def token_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """No LLM (the default), and a token."""
    root = tmp_path_factory.mktemp("page-token")
    docs = root / "docs"
    docs.mkdir()
    (docs / "ups.md").write_text(DOCS["ups.md"])
    with Keep(root / "data") as keep:
        assert keep.add([docs]).ok
    with running_server(root / "data", token=TOKEN) as srv:
        yield srv


# -- helpers -------------------------------------------------------------------------------


def wait(
    driver: WebDriver, timeout: float = WAIT_S, poll: float = 0.05
) -> WebDriverWait[WebDriver]:
    return WebDriverWait(driver, timeout, poll_frequency=poll)


def find(root: WebDriver | WebElement, css: str) -> WebElement:
    return root.find_element(By.CSS_SELECTOR, css)


def visible(driver: WebDriver, css: str) -> WebElement:
    element: WebElement = wait(driver).until(
        EC.visibility_of_element_located((By.CSS_SELECTOR, css))
    )
    return element


def text_in(driver: WebDriver, css: str, text: str) -> None:
    wait(driver).until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, css), text))


def open_page(driver: WebDriver, server: RunningServer, token: str | None = None) -> None:
    """The page with empty storage (and `token` already stored), its first loads finished."""
    driver.get(server.url + "/healthz")  # an open page of the same origin, to reset storage
    driver.execute_script("localStorage.clear(); sessionStorage.clear();")
    if token:
        driver.execute_script("sessionStorage.setItem('ragkeep.token', arguments[0]);", token)
    driver.get(server.url + "/")
    if token or not server.token:
        visible(driver, "#status-list dd[data-key=documents]")


def doc_id_of(server: RunningServer, name: str) -> int:
    with server.client() as client:
        docs = client.get("/api/documents").json()["documents"]
    return next(int(d["doc_id"]) for d in docs if Path(d["path"]).name == name)


def search(driver: WebDriver, query: str, mode: str = "hybrid") -> list[WebElement]:
    Select(find(driver, "#search-mode")).select_by_value(mode)
    box = find(driver, "#search-q")
    box.clear()
    box.send_keys(query, Keys.ENTER)
    wait(driver).until(lambda d: find(d, "#search-panel").get_attribute("aria-busy") == "false")
    hits: list[WebElement] = driver.find_elements(By.CSS_SELECTOR, "#search-results li.hit")
    return hits


def ask(driver: WebDriver, question: str) -> None:
    box = find(driver, "#ask-q")
    box.clear()
    box.send_keys(question)
    find(driver, "#ask-submit").click()


def in_view(driver: WebDriver, element: WebElement) -> bool:
    inside: bool = driver.execute_script(
        "const r = arguments[0].getBoundingClientRect();"
        "return r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight;",
        element,
    )
    return inside


# -- the files themselves (no browser needed) -------------------------------------------------


def test_page_files_are_local_and_free_of_inline_code() -> None:
    """No CDN or other remote resource, no inline script, style or event handler (the page
    declares a strict Content-Security-Policy), and no HTML built from strings in the JS."""
    static = Path(str(resources.files("ragkeep.server") / "static"))
    files = {
        p.name: p.read_text() for p in static.iterdir() if p.suffix in (".html", ".css", ".js")
    }
    assert {"index.html", "app.js", "app.css", "sse.js"} <= set(files)
    for name, text in files.items():
        assert not REMOTE.search(text), f"{name} loads something from elsewhere"
    page = files["index.html"]
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page), "inline script"
    assert not re.search(r"\s(on[a-z]+|style)\s*=", page), "inline handler or style"
    for name, text in files.items():
        if name.endswith(".js"):
            assert not HTML_FROM_STRINGS.search(text), name


# -- search ----------------------------------------------------------------------------------


def test_search_shows_ranked_results_with_marked_snippets(
    browser: WebDriver, server: RunningServer
) -> None:
    open_page(browser, server)
    hits = search(browser, "how often are tomatoes watered")
    assert hits, find(browser, "#search-panel").text
    first = hits[0]
    assert find(first, ".hit-title").text == "Tomatoes"
    assert find(first, ".path").text.endswith("tomatoes.md")
    float(find(first, ".score").text)  # the score, as a number
    marked = {m.text.lower() for m in first.find_elements(By.TAG_NAME, "mark")}
    assert {"tomatoes", "water"} <= marked, marked
    assert "Water tomatoes deeply twice a week" in find(first, ".snippet").text

    # The PDF's hit names its page; the mode selector changes the search (and the address).
    hits = search(browser, "boiler pressure gauge", mode="bm25")
    assert find(hits[0], ".path").text.endswith("boiler.pdf")
    assert "page 2" in find(hits[0], ".hit-source").text
    assert "mode=bm25" in browser.current_url

    # A result opens its document with the passage highlighted.
    find(hits[0], ".hit-title").click()
    cited = visible(browser, "#reader mark.cited")
    assert "1.5 bar" in cited.text


def test_document_text_is_shown_as_text_never_as_markup(
    browser: WebDriver, server: RunningServer
) -> None:
    open_page(browser, server)
    hits = search(browser, "zanzibarquux", mode="bm25")
    assert find(hits[0], ".path").text.endswith("markup.md")
    assert "<img src=x onerror=alert(1)> and <b>bold</b>" in find(hits[0], ".snippet").text
    assert not browser.find_elements(By.CSS_SELECTOR, "#search-results img, #search-results b")
    find(hits[0], ".hit-title").click()
    text_in(browser, "#reader-body", "<b>bold</b>")
    assert not browser.find_elements(By.CSS_SELECTOR, "#reader-body img, #reader-body b")
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.accept()


# -- ask -------------------------------------------------------------------------------------


def test_ask_streams_the_answer_and_its_citations_open_the_cited_page(
    browser: WebDriver, server: RunningServer
) -> None:
    open_page(browser, server)
    ask(browser, QUESTION)
    answer = find(browser, "#answer")
    seen: list[str] = []

    def finished(_: WebDriver) -> bool:
        text = answer.text
        if text and (not seen or seen[-1] != text):
            seen.append(text)
        return answer.get_attribute("data-state") == "done"

    wait(browser, poll=0.02).until(finished)
    final = answer.text
    assert final == REPLY
    partial = [t for t in seen if t != final]
    assert partial, "the answer appeared all at once, not token by token"
    assert all(final.startswith(t.strip()) for t in partial), partial
    assert answer.get_attribute("data-mode") == "llm"
    assert find(browser, "#ask-notice").is_displayed() is False
    assert "Answered by m" in find(browser, "#answer-meta").text

    # [1] is a citation: the boiler manual, page 2.
    markers = answer.find_elements(By.CSS_SELECTOR, "button.cite")
    assert [m.text for m in markers] == ["[1]", "[1]"]
    source = find(browser, "#citations li[data-n='1']")
    assert source.get_attribute("data-path").endswith("boiler.pdf") and "page 2" in source.text
    markers[0].click()

    passage = visible(browser, "#passage")
    assert "Cited passage [1]" in passage.text and "1.5 bar" in passage.text
    cited = visible(browser, "#reader mark.cited")
    assert "pressure gauge should read 1.5 bar" in cited.text
    assert "wall bracket" not in cited.text  # page 1 is shown, but not highlighted
    assert "wall bracket" in find(browser, "#reader-body").text
    wait(browser).until(lambda d: in_view(d, cited))
    assert browser.switch_to.active_element == cited
    assert find(browser, "#reader-title").text == "Boiler manual"
    doc_id = doc_id_of(server, "boiler.pdf")
    href = find(browser, "#reader-file").get_attribute("href")
    assert href == f"{server.url}/api/documents/{doc_id}/file#page=2"
    assert httpx.get(href.split("#")[0]).content.startswith(b"%PDF")

    # Escape closes the view and gives focus back to the citation.
    ActionChains(browser).send_keys(Keys.ESCAPE).perform()
    wait(browser).until(lambda d: not find(d, "#reader").is_displayed())
    assert browser.switch_to.active_element == markers[0]


def test_a_retried_llm_is_shown_as_retrying(
    browser: WebDriver, server: RunningServer, llm: FakeLLM
) -> None:
    open_page(browser, server)
    llm.fail_first = 2  # two HTTP 500s: the page waits ~1.5 s of backoff before the answer
    try:
        ask(browser, QUESTION)
        progress, answer = find(browser, "#ask-progress"), find(browser, "#answer")
        seen: list[str] = []

        def finished(_: WebDriver) -> bool:
            # The state first: once it reads done, the line read after it must be empty.
            done = answer.get_attribute("data-state") == "done"
            text = progress.text
            if not seen or seen[-1] != text:
                seen.append(text)
            return done

        wait(browser, poll=0.02).until(finished)
    finally:
        llm.fail_first = 0
    retrying = [t for t in seen if "retrying" in t]
    assert retrying and retrying[-1].startswith("LLM: HTTP 500 from "), seen
    assert retrying[-1].endswith("retrying (3/3)…"), seen
    assert answer.text == REPLY and answer.get_attribute("data-mode") == "llm"
    assert seen[-1] == ""  # the line goes once the answer is done


def test_stop_ends_the_answer_and_the_request_to_the_llm(
    browser: WebDriver, server: RunningServer, llm: FakeLLM
) -> None:
    open_page(browser, server)
    before = len(llm.disconnects)
    ask(browser, QUESTION)
    answer = find(browser, "#answer")
    wait(browser, poll=0.02).until(lambda _: answer.get_attribute("data-state") == "streaming")
    find(browser, "#ask-stop").click()
    wait(browser).until(lambda _: answer.get_attribute("data-state") == "stopped")
    assert find(browser, "#answer-meta").text == "Stopped."
    assert answer.text and answer.text != REPLY
    assert find(browser, "#ask-submit").is_enabled()
    assert not find(browser, "#ask-stop").is_displayed()
    # The server noticed the page leave and hung up on the LLM, which stopped mid-answer.
    wait(browser).until(lambda _: len(llm.disconnects) > before)


def test_a_busy_server_is_reported_as_busy(
    browser: WebDriver, server: RunningServer, llm: FakeLLM
) -> None:
    open_page(browser, server)
    started = threading.Event()

    def hold_the_only_ask_slot() -> None:
        with server.client() as client:
            body = {"question": QUESTION}
            with client.stream("POST", "/api/ask/stream", json=body) as response:
                for _ in response.iter_lines():
                    started.set()

    # The LLM stalls after two words: the ask keeps its slot (server.max_asks=1) meanwhile.
    llm.stall_after, llm.stall_s = 2, 3.0
    holder = threading.Thread(target=hold_the_only_ask_slot)
    holder.start()
    try:
        assert started.wait(WAIT_S)
        ask(browser, "How long does the UPS last?")
        error = visible(browser, "#ask-panel .error")
        assert error.text == "Busy, retry shortly (in about 1 s)."
        assert find(browser, "#ask-submit").is_enabled()  # ready for the retry
    finally:
        holder.join(WAIT_S)
        llm.stall_after = None


# -- uploads and sync --------------------------------------------------------------------------


def test_upload_reports_each_file_and_the_new_document_is_searchable(
    browser: WebDriver, server: RunningServer, tmp_path: Path
) -> None:
    open_page(browser, server)
    before = int(find(browser, "#status-list dd[data-key=documents]").text)
    good = tmp_path / "orchard.md"
    good.write_text("# Orchard\n\nThe quincewood orchard is pruned in late February.")
    empty = tmp_path / "empty.md"
    empty.write_text("")
    wrong = tmp_path / "tool.exe"
    wrong.write_bytes(b"MZ")
    # WebDriver cannot drag files in from the desktop; the file input takes the same path.
    find(browser, "#upload-input").send_keys("\n".join(str(p) for p in (good, empty, wrong)))

    row = "#upload-list li[data-name='{}']"
    wait(browser).until(
        lambda d: find(d, row.format("orchard.md")).get_attribute("data-state") == "added"
    )
    assert find(browser, row.format("orchard.md")).text.endswith("added (1 chunk)")
    wait(browser).until(
        lambda d: find(d, row.format("empty.md")).get_attribute("data-state") == "failed"
    )
    assert "empty.md is empty." in find(browser, row.format("empty.md")).text
    assert "not uploaded" in find(browser, row.format("tool.exe")).text

    text_in(browser, "#status-list dd[data-key=documents]", str(before + 1))
    hits = search(browser, "quincewood orchard", mode="bm25")
    assert find(hits[0], ".path").text.endswith("uploads/orchard.md")


def test_files_dropped_on_the_page_are_uploaded(browser: WebDriver, server: RunningServer) -> None:
    """WebDriver cannot drag a file in from the desktop: the test dispatches the drop event
    a browser would, with a real DataTransfer holding a File."""
    open_page(browser, server)
    browser.execute_script(
        """
        const transfer = new DataTransfer();
        transfer.items.add(new File(['# Dropped\\n\\nThe marrowfat peas were dropped in.'],
                                    'dropped.md', { type: 'text/markdown' }));
        const zone = document.getElementById('drop-zone');
        for (const type of ['dragenter', 'dragover', 'drop']) {
          zone.dispatchEvent(new DragEvent(type, { dataTransfer: transfer, bubbles: true,
                                                   cancelable: true }));
        }
        """
    )
    row = "#upload-list li[data-name='dropped.md']"
    wait(browser).until(lambda d: find(d, row).get_attribute("data-state") == "added")
    assert "dragging" not in (find(browser, "#drop-zone").get_attribute("class") or "")
    hits = search(browser, "marrowfat peas", mode="bm25")
    assert find(hits[0], ".path").text.endswith("uploads/dropped.md")


def test_sync_shows_progress_to_the_end_and_refreshes_the_status(
    browser: WebDriver, server: RunningServer, corpus: Path
) -> None:
    open_page(browser, server)
    assert str(corpus / "docs") in find(browser, "#sources-list").text
    for n in range(3):
        (corpus / "docs" / f"bees-{n}.md").write_text(
            f"# Bees {n}\n\nHive {n} is inspected weekly."
        )
    before = int(find(browser, "#status-list dd[data-key=documents]").text)
    find(browser, "#sync-button").click()
    text_in(browser, "#sync-status", "Sync done: 3 added.")
    assert find(browser, "#sync-button").is_enabled()
    assert not find(browser, "#sync-progress").is_displayed()
    text_in(browser, "#status-list dd[data-key=documents]", str(before + 3))
    hits = search(browser, "hive inspected weekly", mode="bm25")
    assert find(hits[0], ".hit-title").text.startswith("Bees")


def test_the_event_stream_parser_survives_any_split_of_the_bytes(
    browser: WebDriver, server: RunningServer
) -> None:
    """The page's own SSE parser (sse.js), fed a stream cut at awkward places."""
    open_page(browser, server)
    stream = (
        'event: token\r\ndata: {"text": "a"}\r\n\r\n'
        ": keep-alive comment\n\n"
        'event: notice\ndata: {"message": "two",\ndata: "x": 1}\n\n'
        'data: {"plain": true}\r\rdata: "last, without its blank line"'
    )
    expected = [
        ["token", '{"text": "a"}'],
        ["notice", '{"message": "two",\n"x": 1}'],
        ["message", '{"plain": true}'],
        ["message", '"last, without its blank line"'],
    ]
    script = """
        const [stream, done] = [arguments[0], arguments[arguments.length - 1]];
        import('/static/sse.js').then(({ createParser }) => {
          const results = [];
          for (const size of [1, 2, 3, 7, stream.length]) {
            const events = [];
            const parser = createParser((name, data) => events.push([name, data]));
            for (let i = 0; i < stream.length; i += size) parser.push(stream.slice(i, i + size));
            parser.end();
            results.push(events);
          }
          done(results);
        });
    """
    results = browser.execute_async_script(script, stream)
    assert results == [expected] * 5


# -- status, keyboard, themes, narrow screens ----------------------------------------------------


def test_status_panel_shows_the_index_the_model_and_the_llm(
    browser: WebDriver, server: RunningServer
) -> None:
    open_page(browser, server)
    status = json.loads(httpx.get(server.url + "/api/status").text)

    def value(key: str) -> str:
        return find(browser, f"#status-list dd[data-key={key}]").text

    assert value("documents") == str(status["documents"])
    assert value("chunks") == str(status["chunks"])
    assert value("generation") == str(status["generation"])
    assert value("model").startswith(status["model_id"])
    assert value("llm") == "ollama · m"
    assert value("database").endswith("KB") or value("database").endswith("MB")
    assert value("cache")
    flags = browser.find_elements(By.CSS_SELECTOR, "#flags-list li")
    assert {f.get_attribute("data-flag") for f in flags} >= {"caching"}


def test_slash_focuses_search_and_every_control_is_reachable_by_tab(
    browser: WebDriver, server: RunningServer
) -> None:
    open_page(browser, server)  # focus starts at the top of a freshly loaded page
    reached: list[str] = []
    for _ in range(30):
        ActionChains(browser).send_keys(Keys.TAB).perform()
        active = browser.switch_to.active_element
        if active.tag_name in ("body", "html"):
            break  # past the last control
        reached.append(active.get_attribute("id") or active.tag_name)
        outline = browser.execute_script(
            "return getComputedStyle(document.activeElement).outlineStyle"
        )
        assert outline != "none", f"no visible focus on {reached[-1]}"
    wanted = {
        "theme-toggle",
        "search-q",
        "search-mode",
        "search-submit",
        "ask-q",
        "ask-submit",
        "upload-input",
        "sync-button",
        "status-refresh",
    }
    assert wanted <= set(reached), reached

    keys = ActionChains(browser)
    keys.send_keys("/").perform()
    box = find(browser, "#search-q")
    assert browser.switch_to.active_element == box
    assert box.get_attribute("value") == ""  # the "/" was not typed into it

    # In a text field "/" is just a character.
    question = find(browser, "#ask-q")
    question.send_keys("either/or")
    assert question.get_attribute("value") == "either/or"
    assert browser.switch_to.active_element == question


def test_theme_follows_the_system_and_the_toggle_is_remembered(
    browser: WebDriver, server: RunningServer
) -> None:
    def background() -> str:
        colour: str = browser.execute_script(
            "return getComputedStyle(document.documentElement).backgroundColor"
        )
        return colour

    def set_scheme(scheme: str | None) -> None:
        features = [{"name": "prefers-color-scheme", "value": scheme}] if scheme else []
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": features})

    try:
        set_scheme("light")
        open_page(browser, server)
        light = background()
        set_scheme("dark")
        wait(browser).until(lambda _: background() != light)
        dark = background()
        assert find(browser, "#theme-toggle").get_attribute("aria-pressed") == "true"

        set_scheme("light")
        wait(browser).until(lambda _: background() == light)
        find(browser, "#theme-toggle").click()
        assert background() == dark
        browser.refresh()
        visible(browser, "#status-list dd[data-key=documents]")
        assert browser.execute_script("return document.documentElement.dataset.theme") == "dark"
        assert background() == dark
        assert find(browser, "#theme-toggle").text == "Light theme"
    finally:
        browser.execute_script("localStorage.clear()")
        set_scheme(None)


def test_the_page_fits_a_narrow_screen(browser: WebDriver, server: RunningServer) -> None:
    browser.set_window_size(390, 844)
    open_page(browser, server)
    search(browser, "boiler pressure gauge")
    ask(browser, QUESTION)
    wait(browser).until(lambda d: find(d, "#answer").get_attribute("data-state") == "done")
    overflow = browser.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the page is {overflow}px wider than the screen"
    find(browser, "#answer button.cite").click()
    reader = visible(browser, "#reader")
    width = browser.execute_script("return document.documentElement.clientWidth")
    assert reader.rect["width"] >= width - 1  # the document view takes the whole screen
    visible(browser, "#reader mark.cited")
    # It covers the search box, so "/" closes it on the way there.
    ActionChains(browser).send_keys("/").perform()
    wait(browser).until(lambda d: not find(d, "#reader").is_displayed())
    assert browser.switch_to.active_element == find(browser, "#search-q")


# -- token and no LLM ----------------------------------------------------------------------------


def test_token_prompt_appears_once_and_the_token_is_then_sent(
    browser: WebDriver, token_server: RunningServer
) -> None:
    open_page(browser, token_server)
    dialog = visible(browser, "#token-dialog")
    assert "needs an access token" in dialog.text

    find(browser, "#token-input").send_keys("wrong-token", Keys.ENTER)
    text_in(browser, "#token-why", "not accepted")
    find(browser, "#token-input").send_keys(TOKEN, Keys.ENTER)
    wait(browser).until(lambda d: not find(d, "#token-dialog").is_displayed())

    text_in(browser, "#status-list dd[data-key=auth]", "token required")
    text_in(browser, "#uploads-dir", "Uploads are kept in")
    assert browser.execute_script("return sessionStorage.getItem('ragkeep.token')") == TOKEN
    hits = search(browser, "power cut")
    assert find(hits[0], ".path").text.endswith("ups.md")
    assert not find(browser, "#token-dialog").is_displayed()


def test_without_an_llm_the_page_says_so_and_shows_the_passages(
    browser: WebDriver, token_server: RunningServer
) -> None:
    open_page(browser, token_server, token=TOKEN)
    assert find(browser, "#status-list dd[data-key=llm]").text.startswith("not configured")
    ask(browser, "How long does the UPS keep the server running?")
    wait(browser).until(lambda d: find(d, "#answer").get_attribute("data-state") == "done")
    notice = find(browser, "#ask-notice")
    assert notice.is_displayed()
    assert notice.text == "Passages only: No LLM is configured; showing the most relevant passages."
    assert find(browser, "#answer").get_attribute("data-mode") == "passages"
    assert "40 minutes" in find(browser, "#answer").text
    find(browser, "#answer button.cite[data-n='1']").click()
    cited = visible(browser, "#reader mark.cited")
    assert "40 minutes" in cited.text
    # With a token the original file is fetched with it (a link alone cannot send the header).
    assert find(browser, "#reader-file").get_attribute("href").endswith("/file")
