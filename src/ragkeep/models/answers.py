"""Answers with citations, and the events `ask_stream()` yields while one is being made."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ragkeep.models.degradation import Degradation
from ragkeep.models.json import to_json
from ragkeep.models.search import SearchHit


class AnswerMode(StrEnum):
    LLM = "llm"  # written by the LLM from the passages
    PASSAGES = "passages"  # the passages themselves: no LLM, or it failed


@dataclass(frozen=True, slots=True)
class Citation:
    number: int  # the [n] used in the answer
    path: str
    title: str
    page: int | None
    chunk_id: int
    text: str
    doc_id: int | None = None  # lets a front-end open the cited document

    def label(self) -> str:
        return f"{self.path} (p. {self.page})" if self.page is not None else self.path

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = to_json(self)
        return out


@dataclass(frozen=True, slots=True)
class Answer:
    question: str
    text: str
    citations: tuple[Citation, ...]
    mode: AnswerMode
    notice: str | None = None  # why there is no LLM answer, when there is none
    model: str | None = None
    degraded: tuple[Degradation, ...] = ()  # fallbacks taken: a failed embedder or LLM
    retries: tuple[RetryEvent, ...] = ()  # LLM attempts that failed and were tried again

    def __json__(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.text,
            "mode": self.mode,
            "notice": self.notice,
            "model": self.model,
            "citations": self.citations,
            "degraded": self.degraded,
            "retries": self.retries,
        }

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = to_json(self)
        return out


# -- what ask_stream() yields, in this order: passages, retries, tokens, notices, citations, done


@dataclass(frozen=True, slots=True)
class PassagesEvent:
    """The passages the answer is grounded in, before any answer text."""

    hits: tuple[SearchHit, ...]


@dataclass(frozen=True, slots=True)
class TokenEvent:
    """A piece of the LLM's answer, as it arrives."""

    text: str


@dataclass(frozen=True, slots=True)
class NoticeEvent:
    """Something the reader should know: no LLM, the LLM failed or broke off mid-answer."""

    message: str
    interrupted: bool = False  # tokens were already sent: their line should be ended


@dataclass(frozen=True, slots=True)
class RetryEvent:
    """The LLM failed before its first token and is about to be tried again. Said out loud:
    without it a slow LLM is minutes of silence."""

    attempt: int  # the attempt about to start: 2, 3, ...
    attempts: int  # the most there will be: 1 + llm.max_retries
    delay_s: float  # the backoff before it
    reason: str  # why the previous attempt failed
    elapsed_s: float  # since the first attempt began

    def message(self) -> str:
        return (
            f"LLM: {self.reason}; retrying ({self.attempt}/{self.attempts}) in {self.delay_s:.1f} s"
        )

    def __json__(self) -> dict[str, Any]:
        return {
            "attempt": self.attempt,
            "attempts": self.attempts,
            "delay_s": round(self.delay_s, 3),
            "reason": self.reason,
            "elapsed_s": round(self.elapsed_s, 3),
            "message": self.message(),
        }


@dataclass(frozen=True, slots=True)
class CitationsEvent:
    citations: tuple[Citation, ...]


@dataclass(frozen=True, slots=True)
class DoneEvent:
    """The finished answer; always the last event."""

    answer: Answer


AskEvent = PassagesEvent | TokenEvent | RetryEvent | NoticeEvent | CitationsEvent | DoneEvent
