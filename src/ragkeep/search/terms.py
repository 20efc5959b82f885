"""What BM25 looks for in a query: the same on every backend.

- Plain words are scored (any may match), stop words dropped.
- A technical term whose words are joined by `-`, `.`, `:`, `/` or `@` (`--rebase-merges`,
  `foo.bar()`, `2.39.1`, `std::io`, `/etc/fstab`) is also scored as a phrase, so a chunk
  holding the whole term ranks above one holding its parts somewhere; its parts are still
  scored, so nothing that matched before is lost.
- A quoted phrase (`"exact phrase"`) is required: every hit holds it, in every search mode.
  An unbalanced quote is an ordinary character.
"""

from __future__ import annotations

import re

from ragkeep.models.search import LexicalQuery, Phrase

_WORD = re.compile(r"\w+", re.UNICODE)
_QUOTED = re.compile(r'["\u201c\u201d]([^"\u201c\u201d]*)["\u201c\u201d]')
_COMPOUND = re.compile(r"\w+(?:[-.:/@]+\w+)+", re.UNICODE)

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


def lexical_query(text: str, drop_stopwords: bool = True) -> LexicalQuery:
    """The query BM25 runs for `text` (see the module docstring)."""
    required: list[Phrase] = []

    def take(match: re.Match[str]) -> str:
        words = _words(match.group(1))
        if words:
            required.append(words)
        return " "

    rest = _QUOTED.sub(take, text)
    found = list(_COMPOUND.finditer(rest))
    compounds = [_words(m.group()) for m in found]
    exact = tuple(dict.fromkeys(m.group().casefold() for m in found if _identifier(m, rest)))
    phrases = [p for p in [*required, *compounds] if len(p) > 1]
    words = _words(rest)
    if drop_stopwords:
        # Stop words are kept only when nothing else is left to search ("to be or not to be").
        words = tuple(w for w in words if w not in STOPWORDS) or (() if phrases else words)
    singles = [(w,) for w in words] + [p for p in required if len(p) == 1]
    scored = tuple(dict.fromkeys([*phrases, *singles]))
    return LexicalQuery(scored, tuple(dict.fromkeys(required)), exact)


def _identifier(match: re.Match[str], text: str) -> bool:
    """An option (`--rebase-merges`), a path (`/etc/fstab`, `docs/cli/search.md`) or a
    dotted, colon or @ name (`os.path.join`, `std::io`): typed to be found verbatim. Not a
    hyphenated word or an either-or slash ("IL-6", "TCR/CD8"): prose writes those in
    several ways ("IL6", "interleukin 6"), so holding one verbatim is no better a match."""
    typed = match.group()
    before = text[match.start() - 1 : match.start()]
    return before in ("-", "/") or typed.count("/") > 1 or any(c in typed for c in ".:@")


def term_words(term: str) -> Phrase:
    """The phrase an exact term is searched as."""
    return _words(term)


def _words(text: str) -> Phrase:
    """Lower-cased words; a run of underscores alone is no word (no index holds it)."""
    return tuple(w.lower() for w in _WORD.findall(text) if w.strip("_"))
