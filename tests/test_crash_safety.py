"""SIGKILL at random moments: the index stays consistent and converges to a clean build."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "kill_harness", ROOT / "scripts" / "kill_harness.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["kill_harness"] = module
    spec.loader.exec_module(module)
    return module


def test_ten_random_kills(tmp_path: Path) -> None:
    """After every kill: doctor passes, every document complete or absent; then a sync
    finishes the rest, and the fixed queries answer exactly as a clean build does."""
    result = _harness().run_harness(kills=10, docs_count=40, seed=3, workdir=tmp_path)
    assert result.ok, result.failures
    assert result.converged, result.divergence
    assert result.kills == 10
    assert result.killed_mid_ingest >= 1  # the kills really interrupted indexing


@pytest.mark.slow
def test_fifty_random_kills_converge_to_a_clean_build(tmp_path: Path) -> None:
    result = _harness().run_harness(kills=50, docs_count=60, seed=11, workdir=tmp_path)
    assert result.ok, result.failures
    assert result.converged, result.divergence
