"""Token-aware chunking with the embedder's own tokenizer, so every chunk fits the model window."""

from __future__ import annotations

from ragkeep.embed.base import Tokenizer
from ragkeep.models import ChunkDraft, LoadedDocument

_SENTENCE_END = frozenset(".!?;:")
# A cut is moved back to a sentence end only if the chunk keeps at least this share of its size.
_MIN_FILL = 0.6


def chunk_document(
    doc: LoadedDocument, tokenizer: Tokenizer, size_tokens: int, overlap_tokens: int
) -> list[ChunkDraft]:
    """Split `doc.text` into windows of at most `size_tokens` model tokens.

    Cuts fall only where a new word starts (so a chunk re-tokenizes to the same tokens), and
    preferably right after a sentence end; consecutive chunks share `overlap_tokens` tokens.
    Paged documents are chunked page by page, so every citation names exactly one page.
    """
    segments: list[tuple[int, int, int | None]] = [(p.start, p.end, p.page) for p in doc.pages] or [
        (0, len(doc.text), None)
    ]
    drafts: list[ChunkDraft] = []
    for seg_start, seg_end, page in segments:
        for start, end, tokens in _windows(
            doc.text[seg_start:seg_end], tokenizer, size_tokens, overlap_tokens
        ):
            drafts.append(
                ChunkDraft(
                    ordinal=len(drafts),
                    text=doc.text[seg_start + start : seg_start + end],
                    start=seg_start + start,
                    end=seg_start + end,
                    page=page,
                    token_count=tokens,
                )
            )
    return drafts


def _windows(
    text: str, tokenizer: Tokenizer, size_tokens: int, overlap_tokens: int
) -> list[tuple[int, int, int]]:
    """(start, end, token count) of each chunk of `text`."""
    spans = tokenizer.offsets(text)
    n = len(spans)
    word_start = [i == 0 or spans[i][0] > spans[i - 1][1] for i in range(n)]
    windows: list[tuple[int, int, int]] = []
    i = 0
    while i < n:
        j = min(i + size_tokens, n)
        if j < n:
            j = _best_cut(text, spans, word_start, i, j, size_tokens)
        windows.append((spans[i][0], spans[j - 1][1], j - i))
        if j >= n:
            break
        i = _next_start(text, spans, word_start, i, j, overlap_tokens)
    return windows


def _best_cut(
    text: str,
    spans: list[tuple[int, int]],
    word_start: list[bool],
    i: int,
    j: int,
    size_tokens: int,
) -> int:
    """Largest cut k in (i, j] at a word start, preferring one right after a sentence end."""
    floor = i + max(1, int(size_tokens * _MIN_FILL))
    fallback = None
    for k in range(j, i, -1):
        if not word_start[k]:
            continue
        if fallback is None:
            fallback = k
        if k <= floor:
            break
        if _ends_sentence(text, spans, k):
            return k
    # A single "word" longer than the window (e.g. a base64 blob) is cut mid-word.
    return fallback if fallback is not None else j


def _next_start(
    text: str, spans: list[tuple[int, int]], word_start: list[bool], i: int, j: int, overlap: int
) -> int:
    """Where the next chunk starts: within the overlap, at a sentence start if there is one."""
    lo = max(i + 1, j - overlap)
    first_word = None
    for k in range(lo, j):
        if not word_start[k]:
            continue
        if first_word is None:
            first_word = k
        if _ends_sentence(text, spans, k):
            return k
    return first_word if first_word is not None else j


def _ends_sentence(text: str, spans: list[tuple[int, int]], k: int) -> bool:
    """Does a sentence end right before token k?"""
    prev_end = spans[k - 1][1]
    return text[prev_end - 1] in _SENTENCE_END or text.count("\n", prev_end, spans[k][0]) >= 2
