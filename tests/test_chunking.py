"""Chunks must fit the model window, map back to the text, and carry pages for citations."""

from __future__ import annotations

import itertools

import pytest

from ragkeep.embed.base import Tokenizer
from ragkeep.embed.registry import EmbedderConfig, get_embedder
from ragkeep.ingest.chunking import chunk_document
from ragkeep.models import LoadedDocument, PageSpan


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return get_embedder(EmbedderConfig()).tokenizer


LONG = " ".join(
    f"Sentence number {i} talks about topic {i % 7} and the embedding window. " for i in range(300)
)


@pytest.mark.parametrize(("size", "overlap"), [(254, 32), (200, 32), (64, 8), (16, 0)])
def test_every_chunk_fits_the_window_and_maps_to_the_text(
    tokenizer: Tokenizer, size: int, overlap: int
) -> None:
    doc = LoadedDocument(text=LONG, title="t")
    chunks = chunk_document(doc, tokenizer, size, overlap)
    assert len(chunks) > 1
    for c in chunks:
        assert c.text == LONG[c.start : c.end]
        # Re-tokenizing the chunk alone gives the counted tokens: it truly fits the model.
        assert tokenizer.count(c.text) == c.token_count <= size
    assert chunks[0].start == 0 and chunks[-1].end == len(LONG.rstrip())
    # Nothing but whitespace is ever left between consecutive chunks.
    for a, b in itertools.pairwise(chunks):
        assert b.start <= a.end or LONG[a.end : b.start].strip() == ""
        if overlap:
            assert b.start < a.end
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))


def test_cuts_prefer_sentence_ends(tokenizer: Tokenizer) -> None:
    chunks = chunk_document(LoadedDocument(text=LONG, title="t"), tokenizer, 100, 16)
    for c in chunks[:-1]:
        assert c.text.endswith("."), c.text[-30:]


def test_short_text_is_one_chunk(tokenizer: Tokenizer) -> None:
    chunks = chunk_document(LoadedDocument(text="Hello world.", title="t"), tokenizer, 200, 32)
    assert [(c.text, c.start, c.end) for c in chunks] == [("Hello world.", 0, 12)]


def test_blank_text_gives_no_chunks(tokenizer: Tokenizer) -> None:
    assert chunk_document(LoadedDocument(text=" \n\t ", title="t"), tokenizer, 200, 32) == []


def test_a_word_longer_than_the_window_is_still_split(tokenizer: Tokenizer) -> None:
    blob = "ab-" * 2000  # no whitespace at all: thousands of tokens, not one word start
    chunks = chunk_document(LoadedDocument(text=blob, title="t"), tokenizer, 100, 10)
    assert len(chunks) > 1
    assert all(c.token_count <= 100 for c in chunks)
    assert chunks[-1].end == len(blob)


def test_pages_follow_the_chunk_start(tokenizer: Tokenizer) -> None:
    page1 = "First page. " * 60
    page2 = "Second page text. " * 60
    text = page1 + "\n\n" + page2
    pages = (
        PageSpan(1, 0, len(page1)),
        PageSpan(2, len(page1) + 2, len(text)),
    )
    chunks = chunk_document(LoadedDocument(text=text, title="t", pages=pages), tokenizer, 64, 8)
    for c in chunks:
        expected = 1 if c.start < len(page1) else 2
        assert c.page == expected
    assert {c.page for c in chunks} == {1, 2}
    assert all(c.end <= len(page1) or c.start >= len(page1) for c in chunks)
