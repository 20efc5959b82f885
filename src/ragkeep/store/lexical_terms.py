"""The terms SQLite FTS5 indexes under `tokenize='porter unicode61 remove_diacritics 2'`.

The PostgreSQL backend computes BM25 itself, so it must index and query exactly the terms the
SQLite backend's FTS5 table does. This is a port of SQLite's own code (ext/fts5/fts5_tokenize.c
and fts5_unicode2.c), not a generic Unicode tokenizer, because SQLite differs from Python's
`unicodedata` and from other Porter stemmers in ways that change terms:

- Token characters come from SQLite's fixed Unicode 6.1-era category table ("L* N* Co" token
  characters). Code points that table does not know (newer emoji, newer scripts, unassigned
  planes) are token characters, not separators.
- Folding is SQLite's: simple lowercasing from its table (no full case folding: "ß" stays,
  "ﬁ" stays), then diacritics are dropped from Latin letters, including letters with several
  (remove_diacritics 2). The 25 combining marks in U+0300..U+0331 that SQLite calls
  diacritics continue a token and are dropped; they never start one.
- The stemmer is SQLite's Porter, which works on UTF-8 bytes: tokens of 3..64 bytes are
  stemmed (digits and non-ASCII bytes count as consonants), others pass through. It has the
  Porter "logi"/"bli" rules that Snowball's porter lacks and only replaces a suffix strictly
  shorter than the word ("ies" -> "ie", "sses" -> "sse").
- FTS5 keeps at most 32768 bytes of a token.

A term SQLite would store as invalid UTF-8 (a stem cut inside a multi-byte character, or a
token cut at 32768 bytes) is returned with the stray bytes as backslash escapes; no real
token holds a backslash, so these never collide with one.

tests/test_lexical_terms.py checks every code point, hand-picked cases, SciFact and random
text against the FTS5 of the running SQLite.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import lru_cache


def terms(text: str) -> list[str]:
    """FTS5's token stream for `text`, in order: a term's positions are its list indices."""
    if text.isascii():
        tokens = _ASCII_TOKEN.findall(text.lower())
    else:
        # Folding first is safe: SQLite folds every token character to a token character,
        # and only the diacritic marks (which it drops) fold to nothing.
        tokens = _TOKEN.findall(text.translate(_FOLD))
    return list(map(_term, tokens))


def phrase_terms(words: Sequence[str]) -> list[str]:
    """The terms of a query phrase: the SQLite backend quotes the words joined by spaces and
    FTS5 tokenizes that string as it does document text."""
    return terms(" ".join(words))


_PORTER_MAX_BYTES = 64  # FTS5_PORTER_MAX_TOKEN
_MAX_TOKEN_BYTES = 32768  # FTS5_MAX_TOKEN_SIZE


@lru_cache(maxsize=1 << 17)
def _term(token: str) -> str:
    if token.isascii():
        if 3 <= len(token) <= _PORTER_MAX_BYTES:
            return _porter(token)
        return token[:_MAX_TOKEN_BYTES]
    raw = token.encode()
    if 3 <= len(raw) <= _PORTER_MAX_BYTES:
        # Latin-1 gives one character per UTF-8 byte, so the stemmer sees SQLite's bytes.
        return _utf8(_porter(raw.decode("latin-1")).encode("latin-1"))
    if len(raw) > _MAX_TOKEN_BYTES:
        return _utf8(raw[:_MAX_TOKEN_BYTES])
    return token


def _utf8(raw: bytes) -> str:
    return raw.decode("utf-8", "backslashreplace")


# --- unicode61 ------------------------------------------------------------------------------
# Derived from SQLite's tables by running every code point through FTS5 (SQLite 3.40.1);
# test_every_code_point_alone_and_inside_a_token re-checks each one against the running
# SQLite. Hex; "a..b" is a range of code points.

# Separators: every other code point is a token character. Surrogates are included only to
# keep the ranges whole; SQLite never sees them.
_SEPARATORS = """
0..2f 3a..40 5b..60 7b..a9 ab..b1 b4 b6..b8 bb bf d7 f7 2c2..2c5 2d2..2df 2e5..2eb 2ed
2ef..36f 375 37e 384..385 387 3f6 482..489 55a..55f 589..58a 58f 591..5c7 5f3..5f4
600..604 606..61b 61e..61f 64b..65f 66a..66d 670 6d4 6d6..6e4 6e7..6ed 6fd..6fe 700..70d
70f 711 730..74a 7a6..7b0 7eb..7f3 7f6..7f9 816..819 81b..823 825..827 829..82d 830..83e
859..85b 85e 8e4..8fe 900..903 93a..93c 93e..94f 951..957 962..965 970 981..983 9bc
9be..9c4 9c7..9c8 9cb..9cd 9d7 9e2..9e3 9f2..9f3 9fa..9fb a01..a03 a3c a3e..a42 a47..a48
a4b..a4d a51 a70..a71 a75 a81..a83 abc abe..ac5 ac7..ac9 acb..acd ae2..ae3 af0..af1
b01..b03 b3c b3e..b44 b47..b48 b4b..b4d b56..b57 b62..b63 b70 b82 bbe..bc2 bc6..bc8
bca..bcd bd7 bf3..bfa c01..c03 c3e..c44 c46..c48 c4a..c4d c55..c56 c62..c63 c7f c82..c83
cbc cbe..cc4 cc6..cc8 cca..ccd cd5..cd6 ce2..ce3 d02..d03 d3e..d44 d46..d48 d4a..d4d d57
d62..d63 d79 d82..d83 dca dcf..dd4 dd6 dd8..ddf df2..df4 e31 e34..e3a e3f e47..e4f
e5a..e5b eb1 eb4..eb9 ebb..ebc ec8..ecd f01..f1f f34..f3f f71..f87 f8d..f97 f99..fbc
fbe..fcc fce..fda 102b..103e 104a..104f 1056..1059 105e..1060 1062..1064 1067..106d
1071..1074 1082..108d 108f 109a..109f 10fb 135d..1368 1390..1399 1400 166d..166e 1680
169b..169c 16eb..16ed 1712..1714 1732..1736 1752..1753 1772..1773 17b4..17d6 17d8..17db
17dd 1800..180e 18a9 1920..192b 1930..193b 1940 1944..1945 19b0..19c0 19c8..19c9
19de..19ff 1a17..1a1b 1a1e..1a1f 1a55..1a5e 1a60..1a7c 1a7f 1aa0..1aa6 1aa8..1aad
1b00..1b04 1b34..1b44 1b5a..1b7c 1b80..1b82 1ba1..1bad 1be6..1bf3 1bfc..1bff 1c24..1c37
1c3b..1c3f 1c7e..1c7f 1cc0..1cc7 1cd0..1ce8 1ced 1cf2..1cf4 1dc0..1de6 1dfc..1dff 1fbd
1fbf..1fc1 1fcd..1fcf 1fdd..1fdf 1fed..1fef 1ffd..1ffe 2000..2064 206a..206f 207a..207e
208a..208e 20a0..20b9 20d0..20f0 2100..2101 2103..2106 2108..2109 2114 2116..2118
211e..2123 2125 2127 2129 212e 213a..213b 2140..2144 214a..214d 214f 2190..23f3
2400..2426 2440..244a 249c..24e9 2500..26ff 2701..2775 2794..2b4c 2b50..2b59 2ce5..2cea
2cef..2cf1 2cf9..2cfc 2cfe..2cff 2d70 2d7f 2de0..2e2e 2e30..2e3b 2e80..2e99 2e9b..2ef3
2f00..2fd5 2ff0..2ffb 3000..3004 3008..3020 302a..3030 3036..3037 303d..303f 3099..309c
30a0 30fb 3190..3191 3196..319f 31c0..31e3 3200..321e 322a..3247 3250 3260..327f
328a..32b0 32c0..32fe 3300..33ff 4dc0..4dff a490..a4c6 a4fe..a4ff a60d..a60f a66f..a67e
a69f a6f0..a6f7 a700..a716 a720..a721 a789..a78a a802 a806 a80b a823..a82b a836..a839
a874..a877 a880..a881 a8b4..a8c4 a8ce..a8cf a8e0..a8f1 a8f8..a8fa a926..a92f a947..a953
a95f a980..a983 a9b3..a9cd a9de..a9df aa29..aa36 aa43 aa4c..aa4d aa5c..aa5f aa77..aa79
aa7b aab0 aab2..aab4 aab7..aab8 aabe..aabf aac1 aade..aadf aaeb..aaf1 aaf5..aaf6
abe3..abed d800..dfff fb1e fb29 fbb2..fbc1 fd3e..fd3f fdfc..fdfd fe00..fe19 fe20..fe26
fe30..fe52 fe54..fe66 fe68..fe6b feff ff01..ff0f ff1a..ff20 ff3b..ff40 ff5b..ff65
ffe0..ffe6 ffe8..ffee fff9..ffff 10100..10102 10137..1013f 10179..10189 10190..1019b
101d0..101fd 1039f 103d0 10857 1091f 1093f 10a01..10a03 10a05..10a06 10a0c..10a0f
10a38..10a3a 10a3f 10a50..10a58 10a7f 10b39..10b3f 11000..11002 11038..1104d
11080..11082 110b0..110c1 11100..11102 11127..11134 11140..11143 11180..11182
111b3..111c0 111c5..111c8 116ab..116b7 12470..12473 16f51..16f7e 16f8f..16f92
1d000..1d0f5 1d100..1d126 1d129..1d1dd 1d200..1d245 1d300..1d356 1d6c1 1d6db 1d6fb 1d715
1d735 1d74f 1d76f 1d789 1d7a9 1d7c3 1eef0..1eef1 1f000..1f02b 1f030..1f093 1f0a0..1f0ae
1f0b1..1f0be 1f0c1..1f0cf 1f0d1..1f0df 1f110..1f12e 1f130..1f16b 1f170..1f19a
1f1e6..1f202 1f210..1f23a 1f240..1f248 1f250..1f251 1f300..1f320 1f330..1f335
1f337..1f37c 1f380..1f393 1f3a0..1f3c4 1f3c6..1f3ca 1f3e0..1f3f0 1f400..1f43e 1f440
1f442..1f4f7 1f4f9..1f4fc 1f500..1f53d 1f540..1f543 1f550..1f567 1f5fb..1f640
1f645..1f64f 1f680..1f6c5 1f700..1f773 e0001 e0020..e007f e0100..e01ef
"""

# Folds of token characters: "+d"/"-d" add or subtract d (every second code point with "/2"),
# "=c" maps to c, and "=0" drops the character.
_FOLDS = """
41..5a+20 b5=3bc c0..c5=61 c6=e6 c7=63 c8..cb=65 cc..cf=69 d0=f0 d1..d2-63 d3..d6=6f
d8=f8 d9..dc=75 dd=79 de=fe e0..e5=61 e7=63 e8..eb=65 ec..ef=69 f1..f2-83 f3..f6=6f
f9..fc=75 fd=79 ff=79 100..105=61 106..10d=63 10e..10f=64 110=111 112..11b=65
11c..123=67 124..125=68 126=127 128..130=69 132=133 134..135=6a 136..137=6b 139..13e=6c
13f..141/2+1 143..148=6e 14a=14b 14c..151=6f 152=153 154..159=72 15a..161=73 162..165=74
166=167 168..173=75 174..175=77 176..178=79 179..17e=7a 17f=73 181=253 182..184/2+1
186=254 187=188 189..18a+cd 18b=18c 18e=1dd 18f=259 190=25b 191=192 193=260 194=263
196=269 197=268 198=199 19c=26f 19d=272 19f=275 1a0..1a1=6f 1a2..1a4/2+1 1a6=280 1a7=1a8
1a9=283 1ac=1ad 1ae=288 1af..1b0=75 1b1..1b2+d9 1b3..1b5/2+1 1b7=292 1b8=1b9 1bc=1bd
1c4..1c5=1c6 1c7..1c8=1c9 1ca..1cb=1cc 1cd..1ce=61 1cf..1d0=69 1d1..1d2=6f 1d3..1dc=75
1de..1df=61 1e0..1e4/2+1 1e6..1e7=67 1e8..1e9=6b 1ea..1ed=6f 1ee=1ef 1f0=6a 1f1..1f2=1f3
1f4..1f5=67 1f6=195 1f7=1bf 1f8..1f9=6e 1fa..1fb=61 1fc..1fe/2+1 200..203=61 204..207=65
208..20b=69 20c..20f=6f 210..213=72 214..217=75 218..219=73 21a..21b=74 21c=21d
21e..21f=68 220=19e 222..224/2+1 226..227=61 228..229=65 22a..231=6f 232..233=79
23a=2c65 23b=23c 23d=19a 23e=2c66 241=242 243=180 244=289 245=28c 246..24e/2+1
300..304=0 306..30c=0 30f=0 311=0 31b=0 323..328=0 32d..32e=0 330..331=0 370..372/2+1
376=377 386=3ac 388..38a+25 38c=3cc 38e..38f+3f 391..3a1+20 3a3..3ab+20 3c2=3c3 3cf=3d7
3d0=3b2 3d1=3b8 3d5=3c6 3d6=3c0 3d8..3ee/2+1 3f0=3ba 3f1=3c1 3f4=3b8 3f5=3b5 3f7=3f8
3f9=3f2 3fa=3fb 3fd..3ff-82 400..40f+50 410..42f+20 460..480/2+1 48a..4be/2+1 4c0=4cf
4c1..4cd/2+1 4d0..526/2+1 531..556+30 10a0..10c5+1c60 10c7=2d27 10cd=2d2d 1e00..1e01=61
1e02..1e07=62 1e08..1e09=63 1e0a..1e13=64 1e14..1e1d=65 1e1e..1e1f=66 1e20..1e21=67
1e22..1e2b=68 1e2c..1e2f=69 1e30..1e35=6b 1e36..1e3d=6c 1e3e..1e43=6d 1e44..1e4b=6e
1e4c..1e53=6f 1e54..1e57=70 1e58..1e5f=72 1e60..1e69=73 1e6a..1e71=74 1e72..1e7b=75
1e7c..1e7f=76 1e80..1e89=77 1e8a..1e8d=78 1e8e..1e8f=79 1e90..1e95=7a 1e96=68 1e97=74
1e98=77 1e99=79 1e9b=73 1e9e=df 1ea0..1eb7=61 1eb8..1ec7=65 1ec8..1ecb=69 1ecc..1ee3=6f
1ee4..1ef1=75 1ef2..1ef9=79 1efa..1efe/2+1 1f08..1f0f-8 1f18..1f1d-8 1f28..1f2f-8
1f38..1f3f-8 1f48..1f4d-8 1f59..1f5f/2-8 1f68..1f6f-8 1f88..1f8f-8 1f98..1f9f-8
1fa8..1faf-8 1fb8..1fb9-8 1fba..1fbb-4a 1fbc=1fb3 1fbe=3b9 1fc8..1fcb-56 1fcc=1fc3
1fd8..1fd9-8 1fda..1fdb-64 1fe8..1fe9-8 1fea..1feb-70 1fec=1fe5 1ff8..1ff9-80
1ffa..1ffb-7e 1ffc=1ff3 2126=3c9 212a=6b 212b=61 2132=214e 2160..216f+10 2183=2184
2c00..2c2e+30 2c60=2c61 2c62=26b 2c63=1d7d 2c64=27d 2c67..2c6b/2+1 2c6d=251 2c6e=271
2c6f=250 2c70=252 2c72=2c73 2c75=2c76 2c7e..2c7f-2a3f 2c80..2ce2/2+1 2ceb..2ced/2+1
2cf2=2cf3 a640..a66c/2+1 a680..a696/2+1 a722..a72e/2+1 a732..a76e/2+1 a779..a77b/2+1
a77d=1d79 a77e..a786/2+1 a78b=a78c a78d=265 a790..a792/2+1 a7a0..a7a8/2+1 a7aa=266
ff21..ff3a+20 10400..10427+28
"""

_FOLD_RULE = re.compile(r"([0-9a-f]+)(?:\.\.([0-9a-f]+))?(/2)?([-+=])([0-9a-f]+)")


def _separator_class() -> str:
    parts = []
    for word in _SEPARATORS.split():
        first, _, last = word.partition("..")
        parts.append(rf"\U{int(first, 16):08x}")
        if last:
            parts.append(rf"-\U{int(last, 16):08x}")
    return "".join(parts)


def _fold_table() -> dict[int, int | None]:
    table: dict[int, int | None] = {}
    for word in _FOLDS.split():
        rule = _FOLD_RULE.fullmatch(word)
        if rule is None:
            raise ValueError(f"bad fold rule {word!r}")
        first_hex, last_hex, every_second, op, value_hex = rule.groups()
        first, value = int(first_hex, 16), int(value_hex, 16)
        last = int(last_hex, 16) if last_hex else first
        for code in range(first, last + 1, 2 if every_second else 1):
            if op == "=":
                table[code] = value or None
            else:
                table[code] = code + value if op == "+" else code - value
    return table


_ASCII_TOKEN = re.compile(r"[0-9a-z]+")
_TOKEN = re.compile(f"[^{_separator_class()}]+")
_FOLD = _fold_table()


# --- porter (fts5PorterCb and the steps mkportersteps.tcl generates) ------------------------
# Works on one character per UTF-8 byte; only ASCII letters take part in the rules.

_Condition = Callable[[str, int], bool]
_Rules = dict[str, tuple[tuple[str, str, _Condition], ...]]


def _porter(word: str) -> str:
    w = _step1a(word)
    w, removed = _step1b(w)
    if removed:
        w = _step1b_tidy(w)
    if w[-1] == "y" and _has_vowel(w, len(w) - 1):
        w = w[:-1] + "i"
    w = _apply(w, _STEP2)
    w = _apply(w, _STEP3)
    w = _apply(w, _STEP4)
    return _step5(w)


def _step1a(w: str) -> str:
    n = len(w)
    if w[-1] != "s":
        return w
    if w[-2] == "e":
        if (n > 4 and w[-4:-2] == "ss") or (n > 3 and w[-3] == "i"):
            return w[:-2]
        return w[:-1]
    return w if w[-2] == "s" else w[:-1]


def _step1b(w: str) -> tuple[str, bool]:
    """Strips "eed" to "ee", or "ed"/"ing"; says whether "ed"/"ing" went."""
    n = len(w)
    if n > 3 and w.endswith("eed"):
        return (w[:-1] if _m_gt0(w, n - 3) else w), False
    if n > 2 and w.endswith("ed"):
        return (w[:-2], True) if _has_vowel(w, n - 2) else (w, False)
    if n > 3 and w.endswith("ing") and _has_vowel(w, n - 3):
        return w[:-3], True
    return w, False


def _step1b_tidy(w: str) -> str:
    n = len(w)
    for suffix, replacement in (("at", "ate"), ("bl", "ble"), ("iz", "ize")):
        if n > 2 and w.endswith(suffix):
            return w[:-2] + replacement
    last = w[-1]
    if n > 1 and last not in "aeiouslz" and last == w[-2]:
        return w[:-1]
    if _m_eq1(w, n) and _ostar(w, n):
        return w + "e"
    return w


def _step5(w: str) -> str:
    if w[-1] == "e":
        n = len(w) - 1
        if _m_gt1(w, n) or (_m_eq1(w, n) and not _ostar(w, n)):
            w = w[:-1]
    if len(w) > 1 and w.endswith("ll") and _m_gt1(w, len(w) - 1):
        w = w[:-1]
    return w


def _apply(w: str, rules: _Rules) -> str:
    """The first rule whose suffix ends `w` (and is shorter than it) decides, met or not."""
    n = len(w)
    if n < 3:
        return w
    for suffix, replacement, condition in rules.get(w[-2], ()):
        if n > len(suffix) and w.endswith(suffix):
            stem = n - len(suffix)
            return w[:stem] + replacement if condition(w, stem) else w
    return w


def _is_vowel(c: str, y_is_vowel: bool) -> bool:
    return c in "aeiou" or (y_is_vowel and c == "y")


def _gobble_vc(w: str, start: int, end: int, prev_consonant: bool) -> int:
    """One vowels-then-consonant sequence in w[start:end]: the index after it, or 0."""
    consonant = prev_consonant
    i = start
    while i < end:
        consonant = not _is_vowel(w[i], consonant)
        if not consonant:
            break
        i += 1
    i += 1
    while i < end:
        consonant = not _is_vowel(w[i], consonant)
        if consonant:
            return i + 1
        i += 1
    return 0


def _m_gt0(w: str, n: int) -> bool:
    return _gobble_vc(w, 0, n, False) > 0


def _m_gt1(w: str, n: int) -> bool:
    k = _gobble_vc(w, 0, n, False)
    return k > 0 and _gobble_vc(w, k, n, True) > 0


def _m_eq1(w: str, n: int) -> bool:
    k = _gobble_vc(w, 0, n, False)
    return k > 0 and _gobble_vc(w, k, n, True) == 0


def _m_gt1_s_or_t(w: str, n: int) -> bool:
    return w[n - 1] in "st" and _m_gt1(w, n)


def _ostar(w: str, n: int) -> bool:
    """*o: w[:n] ends consonant-vowel-consonant, the last not w, x or y."""
    if n < 3 or w[n - 1] in "wxy":
        return False
    consonant = False
    flags = []
    for c in w[:n]:
        consonant = not _is_vowel(c, consonant)
        flags.append(consonant)
    return flags[-3:] == [True, False, True]


def _has_vowel(w: str, n: int) -> bool:
    """*v*, as SQLite tests it: "y" is a vowel anywhere but first."""
    return any(c in "aeiou" for c in w[:n]) or "y" in w[1:n]


def _rules(*rules: tuple[str, str, _Condition]) -> _Rules:
    """Groups rules by their suffix's next-to-last letter, in order, as SQLite's switch does."""
    grouped: dict[str, list[tuple[str, str, _Condition]]] = {}
    for rule in rules:
        grouped.setdefault(rule[0][-2], []).append(rule)
    return {key: tuple(group) for key, group in grouped.items()}


def _with(
    condition: _Condition, *pairs: tuple[str, str]
) -> tuple[tuple[str, str, _Condition], ...]:
    return tuple((suffix, replacement, condition) for suffix, replacement in pairs)


_STEP2 = _rules(
    *_with(
        _m_gt0,
        ("ational", "ate"), ("tional", "tion"), ("enci", "ence"), ("anci", "ance"),
        ("izer", "ize"), ("logi", "log"), ("bli", "ble"), ("alli", "al"), ("entli", "ent"),
        ("eli", "e"), ("ousli", "ous"), ("ization", "ize"), ("ation", "ate"), ("ator", "ate"),
        ("alism", "al"), ("iveness", "ive"), ("fulness", "ful"), ("ousness", "ous"),
        ("aliti", "al"), ("iviti", "ive"), ("biliti", "ble"),
    )
)  # fmt: skip
_STEP3 = _rules(
    *_with(
        _m_gt0,
        ("ical", "ic"), ("ness", ""), ("icate", "ic"), ("iciti", "ic"), ("ful", ""),
        ("ative", ""), ("alize", "al"),
    )
)  # fmt: skip
_STEP4 = _rules(
    *_with(
        _m_gt1,
        ("al", ""), ("ance", ""), ("ence", ""), ("er", ""), ("ic", ""), ("able", ""),
        ("ible", ""), ("ant", ""), ("ement", ""), ("ment", ""), ("ent", ""),
    ),
    ("ion", "", _m_gt1_s_or_t),
    *_with(
        _m_gt1,
        ("ou", ""), ("ism", ""), ("ate", ""), ("iti", ""), ("ous", ""), ("ive", ""), ("ize", ""),
    ),
)  # fmt: skip
