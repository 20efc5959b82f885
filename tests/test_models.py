"""The models package: every exported name resolves (lazily), and the one JSON mapping."""

from __future__ import annotations

import subprocess
import sys
from enum import StrEnum
from pathlib import Path

import pytest

import ragkeep.models as models
from ragkeep.models import AnswerMode, FileOutcome, FileResult, IndexReport, SearchMode, to_json


def test_every_exported_name_resolves() -> None:
    assert set(models.__all__) == set(models._WHERE)
    for name in models.__all__:
        assert getattr(models, name) is not None
    with pytest.raises(AttributeError):
        models.NoSuchModel


def test_a_cold_search_loads_only_the_models_it_builds() -> None:
    code = (
        "import sys, ragkeep.cli.app, ragkeep.keep; "
        "print(sorted(m for m in sys.modules if m.startswith('ragkeep.models.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(eval(out.stdout))
    assert "ragkeep.models.answers" not in loaded  # events and answers load on first ask
    assert "ragkeep.models.indexing" not in loaded  # file results on first write
    assert "ragkeep.models.maintenance" not in loaded  # doctor's reports on first doctor


class _Colour(StrEnum):
    RED = "red"


def test_to_json_maps_dataclasses_enums_paths_and_containers() -> None:
    report = IndexReport(
        results=[FileResult("/a", FileOutcome.RENAMED, "moved from /b", moved_from="/b")]
    )
    data = to_json(report)
    assert data["renamed"] == 1 and data["files"][0]["moved_from"] == "/b"
    assert data["files"][0]["outcome"] == "renamed"
    assert to_json({"p": Path("/x"), "m": SearchMode.BM25, "t": (1, 2.5), "c": _Colour.RED}) == {
        "p": "/x",
        "m": "bm25",
        "t": [1, 2.5],
        "c": "red",
    }
    assert to_json(AnswerMode.LLM) == "llm"
    with pytest.raises(TypeError, match="no JSON mapping for object"):
        to_json(object())
