"""The words of a query that BM25 looks for: the same on every backend."""

from __future__ import annotations

import re

_WORD = re.compile(r"\w+", re.UNICODE)

# Lucene's English stop set. These words match nearly every chunk, so each one makes FTS5 score
# the whole index for almost no ranking signal (their IDF is close to zero).
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "if",
        "in",
        "into",
        "is",
        "it",
        "no",
        "not",
        "of",
        "on",
        "or",
        "such",
        "that",
        "the",
        "their",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "will",
        "with",
    ]
)


def query_terms(text: str, drop_stopwords: bool = True) -> list[str]:
    """The distinct lower-cased words of `text`, stop words dropped unless nothing is left
    (a query made only of stop words, "to be or not to be", still searches for them)."""
    terms = list(dict.fromkeys(t.lower() for t in _WORD.findall(text)))
    if drop_stopwords:
        terms = [t for t in terms if t not in STOPWORDS] or terms
    return terms
