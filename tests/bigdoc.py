"""A large, deterministic plain-text document for the memory tests and benchmarks.

The text is a short block of varied paragraphs repeated to the wanted size. Chunks are cut
at the same places in every repetition, so a 45 MB file has only a few hundred distinct
chunk texts: vectors are stored by text hash, so embedding stays short while reading,
splitting and chunking still handle the whole file.
"""

from __future__ import annotations

import random
from pathlib import Path

_SUBJECTS = ("The river", "A committee", "The old mill", "Every farmer", "The survey", "Our team")
_VERBS = ("measured", "described", "questioned", "rebuilt", "mapped", "compared", "recorded")
_OBJECTS = (
    "the flow of water in spring",
    "the price of grain after the flood",
    "seventeen kinds of moss",
    "a bridge that nobody used",
    "the height of the northern dam",
    "letters from the harbour office",
)
_TAILS = ("in 1894", "before the war", "with great care", "twice a year", "without success", "")


def block(seed: int = 7, paragraphs: int = 120) -> str:
    """Paragraphs of 4-9 sentences built from fixed word lists, separated by blank lines."""
    rng = random.Random(seed)
    out = []
    for p in range(paragraphs):
        sentences = []
        for _ in range(rng.randint(4, 9)):
            parts = [rng.choice(_SUBJECTS), rng.choice(_VERBS), rng.choice(_OBJECTS)]
            tail = rng.choice(_TAILS)
            sentences.append(" ".join([*parts, tail]).strip() + f", entry {rng.randint(1, 999)}.")
        out.append(f"Section {p + 1}. " + " ".join(sentences))
    return "\n\n".join(out) + "\n\n"


def big_text(size_bytes: int, seed: int = 7, paragraphs: int = 120) -> str:
    """ASCII text of exactly `size_bytes` characters (the block repeated, then cut). The
    default block (about 60 KB) gives about 100 distinct chunks."""
    unit = block(seed, paragraphs)
    text = unit * (size_bytes // len(unit) + 1)
    return text[:size_bytes]


def write_big_text(path: Path, size_bytes: int, seed: int = 7, paragraphs: int = 120) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(big_text(size_bytes, seed, paragraphs), encoding="ascii")
    return path
