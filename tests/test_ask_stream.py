"""`ask_stream()`: the typed events every front-end renders, in order, against a real HTTP
LLM server (tests/fake_llm.py); and one LLM client per service, reused across questions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ragkeep import Keep
from ragkeep.models import (
    AnswerMode,
    AskEvent,
    CitationsEvent,
    DoneEvent,
    NoticeEvent,
    PassagesEvent,
    TokenEvent,
)

from conftest import write
from fake_llm import FakeLLM

QUESTION = "What do barn owls eat?"


@pytest.fixture
def fake() -> Iterator[FakeLLM]:
    with FakeLLM("Barn owls eat voles [1].") as server:
        yield server


def _keep(data_dir: Path, docs_dir: Path, fake: FakeLLM | None) -> Keep:
    write(docs_dir / "owls.md", "Barn owls hunt at night and eat voles and mice.")
    write(docs_dir / "bees.md", "Honey bees build wax combs.")
    llm = {"llm.provider": "ollama", "llm.url": fake.url} if fake else {}
    keep = Keep(data_dir, overrides=llm)
    keep.add([docs_dir])
    return keep


def _kinds(events: list[AskEvent]) -> list[str]:
    names = [type(e).__name__.removesuffix("Event").lower() for e in events]
    # Many tokens read as one step.
    return [n for i, n in enumerate(names) if n != "token" or names[i - 1] != "token"]


def test_llm_answer_events_in_order(data_dir: Path, docs_dir: Path, fake: FakeLLM) -> None:
    with _keep(data_dir, docs_dir, fake) as keep:
        events = list(keep.querying.ask_stream(QUESTION, 2))
    assert _kinds(events) == ["passages", "token", "citations", "done"]
    passages = events[0]
    assert isinstance(passages, PassagesEvent) and passages.hits[0].path.endswith("owls.md")
    tokens = "".join(e.text for e in events if isinstance(e, TokenEvent))
    done = events[-1]
    assert isinstance(done, DoneEvent) and done.answer.mode is AnswerMode.LLM
    assert done.answer.text == tokens.strip() == "Barn owls eat voles [1]."
    citations = events[-2]
    assert isinstance(citations, CitationsEvent) and citations.citations == done.answer.citations


def test_without_an_llm_the_passages_come_with_a_notice(data_dir: Path, docs_dir: Path) -> None:
    with _keep(data_dir, docs_dir, None) as keep:
        events = list(keep.querying.ask_stream(QUESTION, 2))
    assert _kinds(events) == ["passages", "notice", "citations", "done"]
    done = events[-1]
    assert isinstance(done, DoneEvent) and done.answer.mode is AnswerMode.PASSAGES
    notice = events[1]
    assert isinstance(notice, NoticeEvent) and not notice.interrupted
    assert done.answer.notice == notice.message


def test_a_stream_that_breaks_off_says_so_after_its_tokens(
    data_dir: Path, docs_dir: Path, fake: FakeLLM
) -> None:
    fake.drop_after = 2
    with _keep(data_dir, docs_dir, fake) as keep:
        events = list(keep.querying.ask_stream(QUESTION, 2))
    assert _kinds(events) == ["passages", "token", "notice", "citations", "done"]
    notice = next(e for e in events if isinstance(e, NoticeEvent))
    assert notice.interrupted and "interrupted" in notice.message
    done = events[-1]
    assert isinstance(done, DoneEvent) and done.answer.mode is AnswerMode.PASSAGES


def test_one_llm_client_serves_every_question(
    data_dir: Path, docs_dir: Path, fake: FakeLLM
) -> None:
    with _keep(data_dir, docs_dir, fake) as keep:
        first = keep.ask(QUESTION, 2)
        second = keep.querying.ask("Who builds wax combs?", 2)
    assert first.mode is second.mode is AnswerMode.LLM
    assert len(fake.requests) == 2
    # One client with a connection pool: the second question reused the first connection.
    assert len({r.client_port for r in fake.requests}) == 1


def test_stopping_early_releases_the_answer(data_dir: Path, docs_dir: Path, fake: FakeLLM) -> None:
    fake.delta_delay_s = 0.05
    with _keep(data_dir, docs_dir, fake) as keep:
        events = keep.querying.ask_stream(QUESTION, 2)
        assert isinstance(next(events), PassagesEvent)
        assert isinstance(next(events), TokenEvent)
        events.close()  # type: ignore[attr-defined]  # a generator: the client went away
        fake.delta_delay_s = 0.0
        again = keep.ask(QUESTION, 2)
    assert again.mode is AnswerMode.LLM and len(fake.requests) == 2
