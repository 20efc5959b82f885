"""Many servers, one database (issue 15): three real `ragkeep serve` processes on one
PostgreSQL database, caching on, while a writer commits in turn through one server's upload
API and through a separate `ragkeep add`/`sync` process (and, last, removes a server's
uploads through another server).

Right after each commit, every server answers the same searches it answered before the
commit, each twice so that the second is a cache hit if anything is cached: the new word is
found, every replaced word is gone, the word all evolving documents share finds each of them
with its current text, and next commit's word finds nothing yet (so that its empty answer is
cached when that commit lands). Nothing may be stale, and no request may fail, including
those of a client that searches all three servers throughout.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import run_cli, scifact_docs, write
from server_harness import RunningServer, running_server

SERVERS = 3
COMMON = "zqshared"  # in every evolving document and nowhere else
K = 50  # more than the index's chunks: every match is in every answer
MODES = ("bm25", "hybrid")
JOB_TIMEOUT_S = 60.0
FILLER_DOCS = 3
BACKGROUND_PAUSE_S = 0.02
BACKGROUND_QUERIES = (COMMON, "cell biology", "protein expression")


@dataclass(frozen=True)
class Step:
    """One commit: an upload to `server`, a CLI add/sync, or a removal (through `server`)
    of the uploads folder of server `target`."""

    how: str  # "upload" | "cli" | "remove"
    server: int = 0
    target: int = 0

    def __str__(self) -> str:
        if self.how == "upload":
            return f"upload through server {self.server}"
        if self.how == "remove":
            return f"server {self.server} removes server {self.target}'s uploads"
        return "a separate `ragkeep add`/`sync` process"


PLAN = [
    Step("upload", 0), Step("cli"), Step("upload", 1), Step("cli"), Step("upload", 2),
    Step("cli"), Step("upload", 0), Step("cli"), Step("upload", 1), Step("cli"),
    Step("remove", 2, target=0),
]  # fmt: skip


def marker(i: int) -> str:
    """Commit i's new word: unique, letters only, unchanged by the stemmer."""
    return f"zq{chr(97 + i // 26)}{chr(97 + i % 26)}vx"


def document_text(label: str, word: str) -> str:
    return f"evolving note {label} {word} {COMMON}\n"


@dataclass
class Expected:
    markers: dict[str, str] = field(default_factory=dict)  # label -> its current word
    gone: list[str] = field(default_factory=list)  # words an edit or removal took away

    def change(self, label: str, word: str | None) -> None:
        old = self.markers.pop(label, None)
        if old is not None:
            self.gone.append(old)
        if word is not None:
            self.markers[label] = word


@dataclass
class Findings:
    lock: threading.Lock = field(default_factory=threading.Lock)
    stale: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    searches: int = 0

    def error(self, text: str) -> None:
        with self.lock:
            self.errors.append(text)


# -- the writer ------------------------------------------------------------------------------


@dataclass
class Writer:
    clients: list[httpx.Client]
    docs: Path
    cli_data: Path
    store_url: str
    cli_added: bool = False

    def commit(self, i: int, step: Step) -> tuple[str, str | None]:
        """Make commit i; return the label of the document it changed, and its new word
        (None: the document is gone)."""
        if step.how == "upload":
            label = f"srv{step.server}"
            body = document_text(label, marker(i)).encode()
            r = self.clients[step.server].post(
                "/api/uploads", files={"files": ("evolving.txt", body)}
            )
            self._finish(step.server, r)
            return label, marker(i)
        if step.how == "remove":
            uploads = self.clients[step.target].get("/api/sources").json()["uploads"]
            r = self.clients[step.server].request("DELETE", "/api/sources", json={"path": uploads})
            self._finish(step.server, r)
            return f"srv{step.target}", None
        write(self.docs / "evolving.txt", document_text("cli", marker(i)))
        args = ("sync",) if self.cli_added else ("add", str(self.docs))
        result = run_cli("--set", f"store.url={self.store_url}", *args, data_dir=self.cli_data)
        assert result.code == 0, result.stderr
        self.cli_added = True
        return "cli", marker(i)

    def _finish(self, server: int, response: httpx.Response) -> None:
        """Wait for the write job a request started; fail unless it committed."""
        assert response.status_code in (200, 202), response.text
        body = response.json()
        job_id = body.get("job", body)["id"]  # an upload answers {files, job}
        deadline = time.monotonic() + JOB_TIMEOUT_S
        while time.monotonic() < deadline:
            job = self.clients[server].get(f"/api/jobs/{job_id}").json()
            if job["state"] in ("done", "failed", "cancelled"):
                assert job["state"] == "done", job
                return
            time.sleep(0.01)
        raise AssertionError(f"job {job_id} on server {server} did not finish")


# -- the readers -----------------------------------------------------------------------------


def search(client: httpx.Client, q: str, mode: str, findings: Findings) -> list[dict[str, Any]]:
    r = client.get("/api/search", params={"q": q, "mode": mode, "k": K})
    if r.status_code != 200:
        findings.error(f"search {q!r} {mode}: {r.status_code} {r.text[:200]}")
        return []
    hits: list[dict[str, Any]] = r.json()["hits"]
    return hits


def evolving(hits: list[dict[str, Any]]) -> dict[str, set[str]]:
    """label -> the words the hits of evolving documents carry."""
    seen: dict[str, set[str]] = {}
    for hit in hits:
        words = hit["text"].split()
        if COMMON in words:
            seen.setdefault(words[2], set()).add(words[3])
    return seen


def check_all(
    clients: list[httpx.Client], expected: Expected, next_word: str, when: str, f: Findings
) -> None:
    """Every server, every query twice (the second may come from a cache): no stale answer."""
    want_common = {label: {word} for label, word in expected.markers.items()}
    for n, client in enumerate(clients):
        for _ in range(2):
            where = f"{when}, server {n}"
            for mode in MODES:
                got = evolving(search(client, COMMON, mode, f))
                if got != want_common:
                    f.stale.append(f"{where}: {COMMON!r} {mode} saw {got}, not {want_common}")
            for label, word in expected.markers.items():
                got, want = evolving(search(client, word, "bm25", f)), {label: {word}}
                if got != want:
                    f.stale.append(f"{where}: {word!r} found {got}, not {want}")
            for word in [*expected.gone, next_word]:
                hits = search(client, word, "bm25", f)
                if hits:
                    f.stale.append(f"{where}: {word!r} (in no document) found {evolving(hits)}")


def cache_hits(client: httpx.Client) -> int:
    """Result-cache hits, both tiers: proof that the checks' repeats were cache hits."""
    r = client.get("/api/cache")
    assert r.status_code == 200, r.text
    body = r.json()
    return int(body["memory"]["hits"]) + int(body["persistent"]["hits"])


def background_searches(clients: list[httpx.Client], stop: threading.Event, f: Findings) -> None:
    """Searches on every server throughout: each writer commits while they are answered."""
    i = 0
    while not stop.is_set():
        client = clients[i % len(clients)]
        try:
            search(client, BACKGROUND_QUERIES[i % len(BACKGROUND_QUERIES)], "hybrid", f)
        except httpx.HTTPError as exc:
            f.error(f"background search: {exc!r}")
        with f.lock:
            f.searches += 1
        i += 1
        stop.wait(BACKGROUND_PAUSE_S)


# -- the test --------------------------------------------------------------------------------


@pytest.fixture
def servers(postgres_db: str, tmp_path: Path) -> Iterator[list[RunningServer]]:
    # One after another: the first one creates the schema in the empty database.
    settings = {"store.url": postgres_db, "flags.caching": "true"}
    with ExitStack() as stack:
        yield [
            stack.enter_context(running_server(tmp_path / f"server{n}" / "data", settings))
            for n in range(SERVERS)
        ]


@pytest.mark.timeout(180)
def test_a_commit_through_any_process_is_seen_by_every_server_at_once(
    servers: list[RunningServer], postgres_db: str, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    for doc in scifact_docs(FILLER_DOCS):  # unrelated documents, so searches rank something
        write(docs / f"{doc['_id']}.txt", f"{doc['title']}\n\n{doc['text']}\n")
    findings = Findings()
    expected = Expected()
    stop = threading.Event()
    with ExitStack() as stack:
        clients = [stack.enter_context(s.client()) for s in servers]
        others = [stack.enter_context(s.client()) for s in servers]
        writer = Writer(clients, docs, tmp_path / "writer" / "data", postgres_db)
        background = threading.Thread(target=background_searches, args=(others, stop, findings))
        background.start()
        try:
            check_all(clients, expected, marker(0), "before the first commit", findings)
            for i, step in enumerate(PLAN):
                label, word = writer.commit(i, step)
                expected.change(label, word)
                check_all(clients, expected, marker(i + 1), f"after commit {i} ({step})", findings)
            hits = [cache_hits(c) for c in clients]
        finally:
            stop.set()
            background.join(30)
    assert not findings.errors, "\n".join(findings.errors[:20])
    assert not findings.stale, f"{len(findings.stale)} stale answers:\n" + "\n".join(
        findings.stale[:20]
    )
    assert findings.searches > 0
    assert all(h > 0 for h in hits), f"some server's cache never answered: {hits}"
    assert expected.gone and "srv0" not in expected.markers  # edits and the removal happened
