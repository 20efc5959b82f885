"""Path helpers shared by the ingest pipeline and the API (no heavy imports here)."""

from __future__ import annotations

import os
from pathlib import Path


def absolute(path: str | Path) -> str:
    return os.path.abspath(os.path.expanduser(path))


def is_under(path: str, folder: str) -> bool:
    return path.startswith(folder.rstrip(os.sep) + os.sep)
