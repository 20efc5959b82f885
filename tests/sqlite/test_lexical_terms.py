"""`terms()` against the token stream SQLite FTS5 itself indexes.

An FTS5 table with the SQLite backend's tokenizer and an `fts5vocab` table of type 'instance'
give FTS5's (term, doc, offset) for every token; `terms(text)` must equal it, term for term and
position for position. Terms FTS5 stores as invalid UTF-8 are decoded the way `terms()` spells
them (stray bytes as backslash escapes). Agreement is exact everywhere: on hand-picked cases,
on every Unicode code point, on SciFact and on random text.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ragkeep.models.search import LexicalQuery
from ragkeep.store.lexical_terms import phrase_terms, terms
from ragkeep.store.sqlite.lexical import match_expression

TOKENIZE = "porter unicode61 remove_diacritics 2"  # as src/ragkeep/store/sqlite/schema.py
SCIFACT = Path("/work/shared/eval/scifact/corpus.jsonl")
SCIFACT_DOCS = 2000


class Fts5:
    """An in-memory FTS5 table; `streams` returns its token stream for each text."""

    def __init__(self) -> None:
        self.conn = sqlite3.connect(":memory:")
        self.conn.text_factory = bytes  # a stem can be invalid UTF-8
        try:
            self.conn.execute(f"CREATE VIRTUAL TABLE t USING fts5(x, tokenize='{TOKENIZE}')")
        except sqlite3.OperationalError as exc:
            pytest.skip(f"this SQLite has no FTS5: {exc}")
        self.conn.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")

    def streams(self, texts: Sequence[str]) -> list[list[str]]:
        self.conn.execute("DELETE FROM t")
        self.conn.executemany(
            "INSERT INTO t(rowid, x) VALUES (?, ?)", ((i + 1, s) for i, s in enumerate(texts))
        )
        out: list[list[str]] = [[] for _ in texts]
        for term, doc, offset in self.conn.execute(
            "SELECT term, doc, offset FROM v ORDER BY doc, offset"
        ):
            stream = out[doc - 1]
            assert offset == len(stream), "FTS5 positions are consecutive"
            stream.append(term.decode("utf-8", "backslashreplace"))
        return out

    def stream(self, text: str) -> list[str]:
        return self.streams([text])[0]

    def matches(self, text: str, phrase: Sequence[str]) -> bool:
        self.streams([text])
        match = match_expression(LexicalQuery(scored=(tuple(phrase),)))
        return (
            self.conn.execute("SELECT count(*) FROM t WHERE t MATCH ?", (match,)).fetchone()[0] == 1
        )


@pytest.fixture(scope="module")
def fts5() -> Fts5:
    return Fts5()


HARD_CASES = [
    "",
    "   ",
    "Hello, World! HELLO world",
    "state-of-the-art well-known e-mail co-operate",
    "don't it's O'Neill rock'n'roll l’homme",
    "COVID-19 H1N1 IL-6 p53 3D 2nd 1990s 4x4 v2.0 10^6 1e-5 0.05 α7nAChR",
    "os.path.join snake_case __init__ CamelCaseWord x86_64 foo::bar a/b",
    "café naïve Ångström résumé Zürich São Paulo crème brûlée façade jalapeño",
    "ǖ Ǖ ǘ ḗ ố ẫ ự Ḝ ȁ Ø ø Æ æ Œ œ Ð ð Þ þ ł Ł đ ı",
    "e\u0301 a\u0300b \u0301x x\u0301\u0302y \u0340z q\u0336r",
    "Straße STRASSE ß ẞ ﬁ ﬂ ſ",
    "Σίσυφος ΣΊΣΥΦΟΣ ς σ Ω ω µ μ ΐ",
    "Москва МОСКВА ёлка Ёлка Қазақстан",
    "東京都 日本語のテキスト 中文分词 한국어 텍스트 ｆｕｌｌｗｉｄｔｈ ＡＢＣ",
    "emoji 😀 🤖 🧬 👍🏽 ❤️ ⭐ 🇫🇷 a😀b a🧬b",
    "Ⓐⓑ ① ½ ² ⁴ ₂ Ⅻ ⅻ ℃ ™ © ° ± × ÷ – — … «quoted» „low“",
    "tab\tnew\nline\rcr\x00nul\x7fdel\u00a0nbsp\u2009thin\u200bzw\ufeffbom",
    "\U000f0000 \U00100000x \U0010fffd \ue000 \uffff",
    "a I an at on be to is us ox by my sky fly dry spy shy",
    "generalization generalizations sky skies dying lying tying agreed agreement",
    "caresses ponies ties caress cats feed plastered bled motoring sing conflated troubled",
    "sized hopping tanned falling hissing fizzed failing filing happy sky relational",
    "conditional rational valenci hesitanci digitizer conformabli radicalli differentli",
    "vileli analogousli vietnamization predication operator feudalism decisiveness",
    "hopefulness callousness formaliti sensitiviti sensibiliti triplicate formative",
    "formalize electriciti electrical hopeful goodness revival allowance inference",
    "airliner gyroscopic adjustable defensible irritant replacement adjustment dependent",
    "adoption homologou communism activate angulariti homologous effective bowdlerize",
    "probate rate cease controll roll eed ied sses ies ss yy ayed yyed abyss archaeology",
    "ies sses eed ing ed ated bled ized aing yed",
    "a丸ed a丸丸ing 丸ed e丸e é丸é naïveté ñing éed ǖed aſed",
    "x" * 64 + " " + "y" * 65 + " " + "generalizations" * 5,
    "é" * 31 + "s " + "é" * 32 + "s " + "a" * 61 + "és",
    "x" * 70000,
    "é" * 20000,
    "a" + "é" * 20000,
    "a" + "丸" * 11000,
]


@pytest.mark.parametrize("text", HARD_CASES)
def test_hard_cases(fts5: Fts5, text: str) -> None:
    assert terms(text) == fts5.stream(text)


def test_every_code_point_alone_and_inside_a_token(fts5: Fts5) -> None:
    """Each code point at a token's start and inside one: SQLite's character table, case
    folding and diacritic removal (porter included) for all of Unicode but surrogates."""
    for block in _code_point_blocks(8192):
        texts = ["".join(f" {c}z z{c}z " for c in block)]
        assert terms(texts[0]) == fts5.streams(texts)[0], (hex(ord(block[0])), hex(ord(block[-1])))


def _code_point_blocks(size: int) -> Iterator[list[str]]:
    points = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    for i in range(0, len(points), size):
        yield points[i : i + size]


@pytest.mark.skipif(not SCIFACT.exists(), reason="SciFact corpus not present")
def test_scifact_agrees_exactly(fts5: Fts5) -> None:
    texts: list[str] = []
    with SCIFACT.open(encoding="utf-8") as lines:
        for _, line in zip(range(SCIFACT_DOCS), lines, strict=False):
            doc = json.loads(line)
            texts += [doc["title"], doc["text"]]
    expected = fts5.streams(texts)
    total = sum(len(s) for s in expected)
    agree = sum(
        sum(a == b for a, b in zip(terms(t), s, strict=False)) for t, s in zip(texts, expected)
    )
    differing = [t[:80] for t, s in zip(texts, expected) if terms(t) != s]
    assert agree == total and not differing, f"{agree}/{total} tokens agree; {differing[:5]}"


def test_phrase_terms_are_what_fts5_matches(fts5: Fts5) -> None:
    phrase = ("OS.path.JOIN()", "Cafés", "generalizations")
    assert phrase_terms(phrase) == ["os", "path", "join", "cafe", "gener"]
    # FTS5 tokenizes the quoted query phrase the same way: another spelling of the same
    # terms matches it, and the terms are those of the document text.
    other = "os path join CAFE generalization"
    assert terms(other) == phrase_terms(phrase)
    assert fts5.matches(other, phrase)
    assert not fts5.matches("os path join cafe", phrase)
    assert phrase_terms(()) == []


_INTERESTING = "aeiouyAEIOUYbcdglnrstwxz  -'._0123éÉßİǖ\u0300\u0301丸😀\u00a0"


@settings(max_examples=200, deadline=None)
@given(
    st.text(
        alphabet=st.one_of(
            st.sampled_from(_INTERESTING),
            st.characters(exclude_categories=("Cs",)),  # sqlite3 cannot bind lone surrogates
        ),
        max_size=80,
    )
)
def test_random_text_agrees(fts5: Fts5, text: str) -> None:
    assert terms(text) == fts5.stream(text)
