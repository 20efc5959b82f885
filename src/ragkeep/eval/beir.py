"""Reading a BEIR-layout folder: corpus.jsonl, queries.jsonl and qrels/SPLIT.tsv."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


class DatasetError(Exception):
    """The folder is not a usable BEIR dataset; the message names the file and the problem."""


@dataclass(frozen=True, slots=True)
class CorpusDoc:
    doc_id: str
    title: str
    text: str

    @property
    def full_text(self) -> str:
        # BEIR convention: a document is indexed as title + " " + text.
        return f"{self.title} {self.text}".strip()


Qrels = dict[str, dict[str, int]]  # query id -> doc id -> relevance


@dataclass(frozen=True)
class Dataset:
    root: Path
    split: str
    queries: dict[str, str]  # only the split's queries, in qrels order
    qrels: Qrels

    def corpus(self) -> Iterator[CorpusDoc]:
        for lineno, obj in _jsonl(self.root / "corpus.jsonl"):
            try:
                yield CorpusDoc(str(obj["_id"]), str(obj.get("title") or ""), str(obj["text"]))
            except KeyError as exc:
                raise DatasetError(f"corpus.jsonl line {lineno}: missing field {exc}") from None


def load_dataset(root: Path, split: str = "test") -> Dataset:
    for name in ("corpus.jsonl", "queries.jsonl", f"qrels/{split}.tsv"):
        if not (root / name).is_file():
            raise DatasetError(f"{root}: missing {name} (expected a BEIR-layout folder)")
    qrels = _read_qrels(root / "qrels" / f"{split}.tsv")
    all_queries = {str(o["_id"]): str(o["text"]) for _, o in _jsonl(root / "queries.jsonl")}
    missing = [q for q in qrels if q not in all_queries]
    if missing:
        raise DatasetError(
            f"{len(missing)} qrels query ids not in queries.jsonl, e.g. {missing[0]}"
        )
    return Dataset(root, split, {q: all_queries[q] for q in qrels}, qrels)


def _read_qrels(path: Path) -> Qrels:
    qrels: Qrels = {}
    with path.open(newline="", encoding="utf-8") as fh:
        rows = csv.reader(fh, delimiter="\t")
        for lineno, row in enumerate(rows, start=1):
            if lineno == 1 and row and row[0] == "query-id":
                continue
            if len(row) != 3:
                raise DatasetError(f"{path}:{lineno}: expected 3 tab-separated columns")
            try:
                qrels.setdefault(row[0], {})[row[1]] = int(row[2])
            except ValueError:
                raise DatasetError(f"{path}:{lineno}: score {row[2]!r} is not an integer") from None
    return qrels


def _jsonl(path: Path) -> Iterator[tuple[int, dict[str, object]]]:
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if line.strip():
                try:
                    yield lineno, json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DatasetError(f"{path.name} line {lineno}: {exc.msg}") from None
