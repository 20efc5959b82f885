"""SIGKILL at random moments: the index stays consistent and converges to a clean build, on
every backend (the clean build is of the same backend, in a store of its own)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from conftest import BackendStores

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


def _stores(harness: ModuleType, backend: BackendStores) -> Any:
    """The killed index, its clean build and the timing probe: three new stores."""
    return harness.StoreUrls(backend.new_url(), backend.new_url(), backend.new_url())


def test_ten_random_kills(tmp_path: Path, backend_stores: BackendStores) -> None:
    """After every kill: doctor passes, every document complete or absent; then a sync
    finishes the rest, and the fixed queries answer exactly as a clean build does."""
    harness = _harness()
    result = harness.run_harness(
        kills=10, docs_count=40, seed=3, workdir=tmp_path, stores=_stores(harness, backend_stores)
    )
    assert result.ok, result.failures
    assert result.converged, result.divergence
    assert result.kills == 10
    assert result.killed_mid_ingest >= 1  # the kills really interrupted indexing


@pytest.mark.slow
def test_fifty_random_kills_converge_to_a_clean_build(
    tmp_path: Path, backend_stores: BackendStores
) -> None:
    harness = _harness()
    result = harness.run_harness(
        kills=50, docs_count=60, seed=11, workdir=tmp_path, stores=_stores(harness, backend_stores)
    )
    assert result.ok, result.failures
    assert result.converged, result.divergence
