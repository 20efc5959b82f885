"""Answer layer against a real HTTP server (tests/fake_llm.py); nothing of ours is mocked."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ragkeep.answer import (
    ChatMessage,
    LLMClient,
    LLMError,
    answer_question,
    build_messages,
    citations_for,
    cited_numbers,
    make_client,
    used_citations,
)
from ragkeep.models import RetryEvent, SearchHit

from fake_llm import FakeLLM, split_words

pytestmark = pytest.mark.timeout(10)

FAST = {"backoff_s": 0.01, "connect_timeout_s": 1.0, "timeout_s": 2.0}
QUESTION = "What is the capital of France?"


def hit(rank: int, path: str, text: str, page: int | None = None) -> SearchHit:
    return SearchHit(
        rank=rank,
        score=1.0 / rank,
        doc_id=rank,
        path=path,
        title=Path(path).stem,
        chunk_id=100 + rank,
        text=text,
        start=0,
        end=len(text),
        page=page,
    )


HITS = [
    hit(1, "notes/france.md", "Paris is the capital of France."),
    hit(2, "books/atlas.pdf", "France borders Spain and Italy.", page=12),
]
MESSAGES = [ChatMessage("user", "hi")]


@pytest.fixture
def fake() -> Iterator[FakeLLM]:
    with FakeLLM("Paris is the capital [1].") as server:
        yield server


def client_for(provider: str, url: str, **kwargs: object) -> LLMClient:
    options: dict[str, object] = {**FAST, **kwargs}
    return make_client(provider, url, "test-model", **options)  # type: ignore[arg-type]


def collect(client: LLMClient) -> list[str]:
    try:
        return list(client.stream_chat(MESSAGES))
    finally:
        client.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- clients: wire formats -------------------------------------------------------------------


def test_ollama_stream_reassembled(fake: FakeLLM) -> None:
    deltas = collect(client_for("ollama", fake.url, temperature=0.3))
    assert len(deltas) > 1
    assert "".join(deltas) == "Paris is the capital [1]."
    [request] = fake.requests
    assert request.path == "/api/chat"
    assert request.body["model"] == "test-model"
    assert request.body["stream"] is True
    assert request.body["options"] == {"temperature": 0.3}
    assert request.body["messages"] == [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize("suffix", ["", "/", "/v1", "/v1/"])
def test_openai_stream_reassembled_with_or_without_v1(fake: FakeLLM, suffix: str) -> None:
    deltas = collect(client_for("openai", fake.url + suffix, temperature=0.0))
    assert len(deltas) > 1
    assert "".join(deltas) == "Paris is the capital [1]."
    [request] = fake.requests
    assert request.path == "/v1/chat/completions"
    assert request.body["stream"] is True
    assert request.body["temperature"] == 0.0
    assert "authorization" not in request.headers


def test_openai_api_key_sent_as_bearer_and_never_shown(fake: FakeLLM) -> None:
    client = client_for("openai", fake.url, api_key="sk-secret-123")
    assert "sk-secret-123" not in repr(client)
    assert collect(client)
    assert fake.requests[0].headers["authorization"] == "Bearer sk-secret-123"

    fake.error, fake.error_status = "invalid api key", 401
    with pytest.raises(LLMError) as info:
        collect(client_for("openai", fake.url, api_key="sk-secret-123"))
    assert "HTTP 401" in info.value.reason
    assert "sk-secret-123" not in info.value.reason


def test_openai_server_ignoring_stream_flag(fake: FakeLLM) -> None:
    fake.ignore_stream = True
    assert "".join(collect(client_for("openai", fake.url))) == "Paris is the capital [1]."


def test_client_reuses_connection(fake: FakeLLM) -> None:
    client = client_for("ollama", fake.url)
    try:
        for _ in range(3):
            assert list(client.stream_chat(MESSAGES))
    finally:
        client.close()
    assert len({r.client_port for r in fake.requests}) == 1


def test_consumer_stopping_early_leaves_client_usable(fake: FakeLLM) -> None:
    client = client_for("openai", fake.url)
    try:
        stream = client.stream_chat(MESSAGES)
        assert next(stream) == "Paris "
        stream.close()  # type: ignore[attr-defined]
        assert "".join(client.stream_chat(MESSAGES)) == "Paris is the capital [1]."
    finally:
        client.close()
    assert len(fake.requests) == 2


def test_make_client_rejects_bad_config() -> None:
    with pytest.raises(ValueError, match="provider"):
        make_client("anthropic", "http://127.0.0.1:1", "m")
    with pytest.raises(ValueError, match="base URL"):
        make_client("ollama", "localhost:11434", "m")


# -- clients: retries --------------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["ollama", "openai"])
def test_retries_after_500s_then_succeeds(fake: FakeLLM, provider: str) -> None:
    fake.fail_first = 2
    deltas = collect(client_for(provider, fake.url, max_retries=2))
    assert "".join(deltas) == "Paris is the capital [1]."
    assert len(fake.requests) == 3


def test_gives_up_after_max_retries(fake: FakeLLM) -> None:
    fake.fail_first = 10
    with pytest.raises(LLMError) as info:
        collect(client_for("ollama", fake.url, max_retries=2))
    assert info.value.reason.startswith("HTTP 500 from http://127.0.0.1:")
    assert "internal error" in info.value.reason
    assert len(fake.requests) == 3


def test_each_retry_is_an_event_before_its_backoff(fake: FakeLLM) -> None:
    fake.fail_first = 2
    client = client_for("ollama", fake.url, max_retries=2)
    try:
        items = list(client.stream_events(MESSAGES))
    finally:
        client.close()
    retries = [i for i in items if isinstance(i, RetryEvent)]
    assert [(r.attempt, r.attempts) for r in retries] == [(2, 3), (3, 3)]
    assert retries[0].reason.startswith("HTTP 500 from http://127.0.0.1:")
    assert retries[0].elapsed_s < retries[1].elapsed_s
    assert "retrying (2/3) in " in retries[0].message()
    assert items[:2] == retries  # before any text
    assert "".join(i for i in items if isinstance(i, str)) == "Paris is the capital [1]."


def test_giving_up_says_how_many_attempts_took_how_long(fake: FakeLLM) -> None:
    fake.fail_first = 10
    started = time.monotonic()
    with pytest.raises(LLMError) as info:
        collect(client_for("ollama", fake.url, max_retries=2, backoff_s=0.1))
    wall = time.monotonic() - started
    error = info.value
    assert (error.attempts, error.deadline_s) == (3, None)
    assert 0.3 <= error.elapsed_s <= wall  # two backoffs of >= 0.1 and 0.2 s
    assert error.summary() == f"3 attempts in {error.elapsed_s:.1f} s; last: {error.reason}"


def test_a_backoff_that_would_cross_the_deadline_is_not_slept(fake: FakeLLM) -> None:
    fake.fail_first = 10
    started = time.monotonic()
    with pytest.raises(LLMError) as info:
        # The 1st backoff (1-1.25 s) fits in 2 s, with 0.75 s to spare for the two requests
        # on a slow machine; the 2nd (2-2.5 s) never does: stop there, without sleeping it.
        collect(client_for("ollama", fake.url, max_retries=5, backoff_s=1.0, deadline_s=2.0))
    assert time.monotonic() - started < 2.0
    assert info.value.attempts == 2
    assert info.value.summary().startswith("no complete answer within llm.deadline_s (2 s)")
    assert len(fake.requests) == 2


def test_headers_trickling_in_end_at_the_deadline(fake: FakeLLM) -> None:
    fake.trickle_headers_s = 0.05  # every read gets a byte: a 30 s read timeout never fires
    started = time.monotonic()
    with pytest.raises(LLMError) as info:
        collect(client_for("ollama", fake.url, timeout_s=30, max_retries=2, deadline_s=1.0))
    assert time.monotonic() - started < 2.0
    assert info.value.deadline_s == 1.0 and info.value.attempts == 1
    assert "still waiting for" in info.value.summary()


def test_429_is_retried_honouring_retry_after(fake: FakeLLM) -> None:
    fake.fail_first, fake.fail_status, fake.retry_after = 1, 429, 0.2
    started = time.monotonic()
    deltas = collect(client_for("openai", fake.url, max_retries=1))
    assert "".join(deltas) == "Paris is the capital [1]."
    assert len(fake.requests) == 2
    assert time.monotonic() - started >= 0.2


@pytest.mark.parametrize("provider", ["ollama", "openai"])
def test_model_not_found_http_404_is_not_retried(fake: FakeLLM, provider: str) -> None:
    fake.error, fake.error_status = "model not found", 404
    with pytest.raises(LLMError, match=r"HTTP 404 .*model not found"):
        collect(client_for(provider, fake.url, max_retries=3))
    assert len(fake.requests) == 1


@pytest.mark.parametrize("provider", ["ollama", "openai"])
def test_error_inside_stream_is_not_retried(fake: FakeLLM, provider: str) -> None:
    fake.error = "model not found"
    with pytest.raises(LLMError, match="reported an error: model not found"):
        collect(client_for(provider, fake.url, max_retries=3))
    assert len(fake.requests) == 1


@pytest.mark.parametrize("provider", ["ollama", "openai"])
def test_drop_mid_stream_is_not_retried(fake: FakeLLM, provider: str) -> None:
    fake.drop_after = 2
    received: list[str] = []
    client = client_for(provider, fake.url, max_retries=3)
    with pytest.raises(LLMError) as info:
        for delta in client.stream_chat(MESSAGES):
            received.append(delta)
    client.close()
    assert received == split_words("Paris is the capital [1].")[:2]
    assert info.value.partial
    assert "closed unexpectedly" in info.value.reason
    assert len(fake.requests) == 1


def test_drop_before_first_token_is_retried(fake: FakeLLM) -> None:
    fake.drop_after = 0
    with pytest.raises(LLMError) as info:
        collect(client_for("openai", fake.url, max_retries=2))
    assert not info.value.partial
    assert len(fake.requests) == 3


def test_timeout_raises_within_bounded_time(fake: FakeLLM) -> None:
    fake.hang_s = 5
    started = time.monotonic()
    with pytest.raises(LLMError, match=r"timed out after 0\.2 s"):
        collect(client_for("ollama", fake.url, timeout_s=0.2, max_retries=1))
    assert time.monotonic() - started < 1.5
    assert len(fake.requests) == 2


def test_stall_after_first_token_times_out_without_retry(fake: FakeLLM) -> None:
    fake.stall_after = 1
    client = client_for("openai", fake.url, timeout_s=0.2, max_retries=2)
    received: list[str] = []
    with pytest.raises(LLMError, match="timed out") as info:
        for delta in client.stream_chat(MESSAGES):
            received.append(delta)
    client.close()
    assert received == ["Paris "]
    assert info.value.partial
    assert len(fake.requests) == 1


def test_connection_refused_reason() -> None:
    port = closed_port()
    with pytest.raises(LLMError) as info:
        collect(client_for("ollama", f"http://127.0.0.1:{port}", max_retries=1))
    assert info.value.reason == f"connection refused at http://127.0.0.1:{port}/api/chat"


# -- answer service ------------------------------------------------------------------------------


def test_answer_streams_tokens_and_numbers_citations(fake: FakeLLM) -> None:
    tokens: list[str] = []
    client = client_for("ollama", fake.url)
    answer = answer_question(QUESTION, HITS, client, on_token=tokens.append)
    client.close()
    assert answer.mode == "llm"
    assert answer.model == "test-model"
    assert answer.notice is None
    assert answer.text == "Paris is the capital [1]." == "".join(tokens)
    assert [(c.number, c.path, c.page) for c in answer.citations] == [
        (1, "notes/france.md", None),
        (2, "books/atlas.pdf", 12),
    ]
    user = fake.requests[0].messages[-1]["content"]
    assert "[1] notes/france.md\nParis is the capital of France." in user
    assert "[2] books/atlas.pdf (p. 12)\nFrance borders" in user


def test_answer_only_cited_filters_citations(fake: FakeLLM) -> None:
    client = client_for("openai", fake.url)
    answer = answer_question(QUESTION, HITS, client, only_cited=True)
    client.close()
    assert [c.number for c in answer.citations] == [1]


def test_no_hits_means_no_request(fake: FakeLLM) -> None:
    client = client_for("ollama", fake.url)
    answer = answer_question(QUESTION, [], client)
    client.close()
    assert answer.mode == "passages"
    assert answer.text == "No indexed passages match the question."
    assert answer.citations == ()
    assert fake.requests == []


def test_no_client_shows_passages() -> None:
    answer = answer_question(QUESTION, HITS, None)
    assert answer.mode == "passages"
    assert answer.notice == "No LLM is configured; showing the most relevant passages."
    assert answer.text == (
        "[1] notes/france.md\nParis is the capital of France.\n\n"
        "[2] books/atlas.pdf (p. 12)\nFrance borders Spain and Italy."
    )
    assert len(answer.citations) == 2
    assert answer.to_dict()["mode"] == "passages"


def test_passages_are_excerpted() -> None:
    long_hit = hit(1, "long.txt", "word " * 400)
    answer = answer_question(QUESTION, [long_hit], None, max_passages=1)
    assert answer.text.endswith("…")
    assert len(answer.text) < 700


def test_connection_refused_falls_back_with_reason() -> None:
    port = closed_port()
    client = client_for("openai", f"http://127.0.0.1:{port}", max_retries=0)
    answer = answer_question(QUESTION, HITS, client)
    client.close()
    assert answer.mode == "passages"
    assert answer.notice == (
        f"LLM unavailable (connection refused at http://127.0.0.1:{port}/v1/chat/completions); "
        "showing the most relevant passages."
    )
    assert answer.text.startswith("[1] notes/france.md\n")
    assert len(answer.citations) == 2


def test_interrupted_answer_falls_back_after_partial_tokens(fake: FakeLLM) -> None:
    fake.drop_after = 2
    tokens: list[str] = []
    client = client_for("ollama", fake.url, max_retries=3)
    answer = answer_question(QUESTION, HITS, client, on_token=tokens.append)
    client.close()
    assert tokens == ["Paris ", "is "]
    assert answer.mode == "passages"
    assert answer.notice is not None
    assert answer.notice.startswith("LLM answer interrupted (connection to ")
    assert len(fake.requests) == 1


def test_empty_llm_reply_falls_back(fake: FakeLLM) -> None:
    fake.deltas = []
    client = client_for("ollama", fake.url)
    answer = answer_question(QUESTION, HITS, client)
    client.close()
    assert answer.mode == "passages"
    assert answer.notice is not None and "empty" in answer.notice


def test_reply_can_depend_on_prompt(fake: FakeLLM) -> None:
    fake.reply = lambda messages: f"{len(messages)} messages [2]"
    client = client_for("openai", fake.url)
    answer = answer_question(QUESTION, HITS, client)
    client.close()
    assert answer.text == "2 messages [2]"


# -- prompt and citations ------------------------------------------------------------------------


def test_prompt_contains_numbered_sources_and_question() -> None:
    system, user = build_messages(QUESTION, HITS)
    assert system.role == "system"
    assert "only" in system.content and "[1]" in system.content
    assert "do not contain the answer" in system.content
    assert user.role == "user"
    assert user.content.index("[1] notes/france.md") < user.content.index("[2] books/atlas.pdf")
    assert "[2] books/atlas.pdf (p. 12)" in user.content
    assert f"Question: {QUESTION}" in user.content


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Paris [1].", [1]),
        ("See [2, 1] and [3,4].", [2, 1, 3, 4]),
        ("Both [1][3] agree [1].", [1, 3]),
        ("Range [2-4]; dash [6–7]; semicolon [1; 5]", [2, 3, 4, 6, 7, 1, 5]),
        ("No citations, [a], [], [0], list[int]", []),
        ("[ 3 ]", [3]),
        ("silly range [1-9999]", [1]),
    ],
)
def test_cited_numbers(text: str, expected: list[int]) -> None:
    assert cited_numbers(text) == expected


def test_citations_numbering_and_filter() -> None:
    citations = citations_for(HITS)
    assert [c.number for c in citations] == [1, 2]
    assert citations[1].label() == "books/atlas.pdf (p. 12)"
    assert citations[0].chunk_id == 101
    assert used_citations(citations, "only [2] here, not [7]") == (citations[1],)


# -- the fake server itself, and import cost ----------------------------------------------------


def test_fake_server_non_streaming_modes(fake: FakeLLM) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": False}
    ollama = httpx.post(f"{fake.url}/api/chat", json=body, timeout=2).json()
    assert ollama["message"]["content"] == "Paris is the capital [1]." and ollama["done"]
    openai = httpx.post(f"{fake.url}/v1/chat/completions", json=body, timeout=2).json()
    assert openai["choices"][0]["message"]["content"] == "Paris is the capital [1]."
    assert httpx.get(f"{fake.url}/api/tags", timeout=2).json()["models"][0]["name"]


def test_importing_service_does_not_import_httpx() -> None:
    code = "import sys, ragkeep.answer.service; print(json.dumps('httpx' in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", "import json; " + code],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    assert json.loads(out.stdout) is False
