"""Token-aware chunking with the embedder's own tokenizer, so every chunk fits the model window."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

from ragkeep.embed.base import Tokenizer
from ragkeep.models import ChunkDraft, LoadedDocument

_SENTENCE_END = frozenset(".!?;:")
# A cut is moved back to a sentence end only if the chunk keeps at least this share of its size.
_MIN_FILL = 0.6
# Text is tokenized this many characters at a time (cut after a whitespace), so a big
# document never has all its token offsets in memory at once: a whole 48 MB text as Python
# tuples took gigabytes. Chunks come out the same as if it had been tokenized whole.
PIECE_CHARS = 1 << 17
# Consumed token spans are dropped in steps of this many, not one by one.
_DROP_EVERY = 4096


class ChunkingCancelled(Exception):
    """The `cancel` event was set while a document was being chunked."""


def chunk_document(
    doc: LoadedDocument,
    tokenizer: Tokenizer,
    size_tokens: int,
    overlap_tokens: int,
    *,
    piece_chars: int = PIECE_CHARS,
    cancel: threading.Event | None = None,
    on_chars: Callable[[int, int], None] | None = None,
) -> list[ChunkDraft]:
    """Split `doc.text` into windows of at most `size_tokens` model tokens.

    Cuts fall only where a new word starts (so a chunk re-tokenizes to the same tokens), and
    preferably right after a sentence end; consecutive chunks share `overlap_tokens` tokens.
    Paged documents are chunked page by page, so every citation names exactly one page.
    Raises ChunkingCancelled soon after `cancel` is set. `on_chars(done, total)` hears of
    each piece tokenized: progress within a big file.
    """
    segments: list[tuple[int, int, int | None]] = [(p.start, p.end, p.page) for p in doc.pages] or [
        (0, len(doc.text), None)
    ]
    drafts: list[ChunkDraft] = []
    for seg_start, seg_end, page in segments:
        tokens = _Tokens(doc.text, seg_start, seg_end, tokenizer, piece_chars, cancel, on_chars)
        for start, end, count in _windows(doc.text, tokens, size_tokens, overlap_tokens):
            drafts.append(
                ChunkDraft(
                    ordinal=len(drafts),
                    text=doc.text[start:end],
                    start=start,
                    end=end,
                    page=page,
                    token_count=count,
                )
            )
    return drafts


class _Tokens:
    """The token spans of text[start:end] (offsets into `text`), tokenized a piece at a time
    as they are asked for; spans before the current chunk are dropped."""

    def __init__(
        self,
        text: str,
        start: int,
        end: int,
        tokenizer: Tokenizer,
        piece_chars: int,
        cancel: threading.Event | None,
        on_chars: Callable[[int, int], None] | None = None,
    ) -> None:
        self._text, self._end, self._on_chars = text, end, on_chars
        self._tokenizer, self._piece, self._cancel = tokenizer, max(1, piece_chars), cancel
        self._pos = start  # first character not tokenized yet
        self._spans: list[tuple[int, int]] = []
        self._base = 0  # token index of _spans[0]

    def __getitem__(self, k: int) -> tuple[int, int]:
        return self._spans[k - self._base]

    def has(self, k: int) -> bool:
        """Is there a token k? Tokenizes further as needed."""
        while k - self._base >= len(self._spans) and self._pos < self._end:
            self._tokenize_piece()
        return k - self._base < len(self._spans)

    def count(self) -> int:
        """How many tokens there are in all (tokenizes to the end)."""
        while self._pos < self._end:
            self._tokenize_piece()
        return self._base + len(self._spans)

    def word_start(self, k: int) -> bool:
        return k == 0 or self[k][0] > self[k - 1][1]

    def drop_before(self, k: int) -> None:
        if k - self._base >= _DROP_EVERY:
            del self._spans[: k - self._base]
            self._base = k

    def _tokenize_piece(self) -> None:
        if self._cancel is not None and self._cancel.is_set():
            raise ChunkingCancelled
        start, end = self._pos, min(self._pos + self._piece, self._end)
        if end < self._end:
            end = _after_last_space(self._text, start, end)
        offsets = self._tokenizer.offsets(self._text[start:end])
        self._spans.extend((start + a, start + b) for a, b in offsets)
        self._pos = end
        if self._on_chars is not None:
            self._on_chars(end, len(self._text))


def _after_last_space(text: str, start: int, end: int) -> int:
    """Where to end the piece text[start:end]: right after a line break in its second half,
    else after its last space, so that no word is split and the tokens are those of the
    whole text. A piece without whitespace (a huge blob) is cut where it is."""
    cut = text.rfind("\n", (start + end) // 2, end)
    if cut < 0:
        cut = max(text.rfind(sep, start, end) for sep in ("\n", " ", "\t"))
    return cut + 1 if cut > start else end


def _windows(
    text: str, tokens: _Tokens, size_tokens: int, overlap_tokens: int
) -> Iterator[tuple[int, int, int]]:
    """(start, end, token count) of each chunk of the tokens' text."""
    if not tokens.has(0):
        return
    i = 0
    while True:
        # More tokens after this window: choose where to cut; else it takes the rest.
        j = i + size_tokens
        j = _best_cut(text, tokens, i, j, size_tokens) if tokens.has(j) else tokens.count()
        yield tokens[i][0], tokens[j - 1][1], j - i
        if not tokens.has(j):
            return
        i = _next_start(text, tokens, i, j, overlap_tokens)
        tokens.drop_before(i)


def _best_cut(text: str, tokens: _Tokens, i: int, j: int, size_tokens: int) -> int:
    """Largest cut k in (i, j] at a word start, preferring one right after a sentence end."""
    floor = i + max(1, int(size_tokens * _MIN_FILL))
    fallback = None
    for k in range(j, i, -1):
        if not tokens.word_start(k):
            continue
        if fallback is None:
            fallback = k
        if k <= floor:
            break
        if _ends_sentence(text, tokens, k):
            return k
    # A single "word" longer than the window (e.g. a base64 blob) is cut mid-word.
    return fallback if fallback is not None else j


def _next_start(text: str, tokens: _Tokens, i: int, j: int, overlap: int) -> int:
    """Where the next chunk starts: within the overlap, at a sentence start if there is one."""
    lo = max(i + 1, j - overlap)
    first_word = None
    for k in range(lo, j):
        if not tokens.word_start(k):
            continue
        if first_word is None:
            first_word = k
        if _ends_sentence(text, tokens, k):
            return k
    return first_word if first_word is not None else j


def _ends_sentence(text: str, tokens: _Tokens, k: int) -> bool:
    """Does a sentence end right before token k?"""
    prev_end = tokens[k - 1][1]
    return text[prev_end - 1] in _SENTENCE_END or text.count("\n", prev_end, tokens[k][0]) >= 2
