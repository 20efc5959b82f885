"""One JSON mapping for every model: the CLI's `--json` output and the HTTP API use it.

A dataclass maps field by field, an enum to its value, a path to a string. A model whose
JSON shape differs from its fields (a summary, a renamed key) says so in one `__json__`
method, so each shape is written in exactly one place.
"""

from __future__ import annotations

import dataclasses
from enum import Enum
from pathlib import PurePath
from typing import Any

JsonValue = Any  # what json.dumps accepts: dict, list, str, int, float, bool, None


def to_json(value: object) -> JsonValue:
    hook = getattr(value, "__json__", None)
    if callable(hook):
        return to_json(hook())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return to_json(value.value)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_json(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"no JSON mapping for {type(value).__name__}")
