"""Feature flags: every flag is declared here with its default, stage and what it needs.

A flag that is not declared cannot be set, and a flag whose requirements are off cannot be
switched on: both stop start-up with a message that names the valid choices. Every flag
applies live: a running process follows a switch made by any other (services/flags.py).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass

from ragkeep.models.flags import Stage


@dataclass(frozen=True, slots=True)
class FlagSpec:
    name: str
    default: bool
    stage: Stage
    description: str
    requires: tuple[str, ...] = ()
    module: str | None = None  # a Python package the feature needs (an optional extra)
    extra: str | None = None
    module_backends: tuple[str, ...] = ("sqlite", "postgresql")  # stores that need `module`


def declare(*specs: FlagSpec) -> dict[str, FlagSpec]:
    """The flags by name. An alpha feature is unfinished: it must be off unless a user
    opts in, so an alpha flag that defaults to on is a programming error, caught at import."""
    for spec in specs:
        if spec.stage is Stage.ALPHA and spec.default:
            raise ValueError(f"alpha feature flag {spec.name!r} must default to off (opt-in)")
    return {spec.name: spec for spec in specs}


FLAGS: dict[str, FlagSpec] = declare(
    FlagSpec(
        "length_batching",
        True,
        Stage.STABLE,
        "Group texts of similar token length into one embedding batch (less padding, "
        "faster ingest). Vectors are identical either way.",
    ),
    FlagSpec(
        "answer_streaming",
        True,
        Stage.STABLE,
        "Print LLM answers token by token as they arrive instead of all at the end.",
    ),
    FlagSpec(
        "caching",
        True,
        Stage.STABLE,
        "Cache query embeddings and search results (in memory and in the index database). "
        "Keys include the index generation, so a commit can never be answered from an "
        "older cache entry.",
    ),
    FlagSpec(
        "ann_index",
        False,
        Stage.BETA,
        "Answer dense searches from an approximate (HNSW) index once the corpus has "
        "search.ann_min_vectors chunks. On SQLite a usearch derived file, rebuilt in the "
        "background when stale or damaged (exact search answers meanwhile); on PostgreSQL "
        "pgvector's HNSW index.",
        module="usearch",
        extra="ann",
        module_backends=("sqlite",),  # PostgreSQL's HNSW is pgvector's: no package
    ),
    FlagSpec(
        "collapse_documents",
        False,
        Stage.BETA,
        "Return at most one passage (the best) per document in search results.",
    ),
)


class FlagError(ValueError):
    """An unknown flag name or an inconsistent combination of flags."""


def unknown_flag_message(name: str) -> str:
    return f"unknown feature flag {name!r}; valid flags: {', '.join(sorted(FLAGS))}"


def check_flag_name(name: str) -> FlagSpec:
    try:
        return FLAGS[name]
    except KeyError:
        raise FlagError(unknown_flag_message(name)) from None


def check_requirements(values: Mapping[str, bool], backend: str = "sqlite") -> None:
    """Refuse a flag that is on while what it needs is not: better no start than half a feature.
    `backend`: the store's ("sqlite" or "postgresql"); a flag may need a package on one only."""
    for name, enabled in values.items():
        spec = check_flag_name(name)
        if not enabled:
            continue
        missing = [req for req in spec.requires if not values.get(req, FLAGS[req].default)]
        if missing:
            raise FlagError(f"feature flag {name!r} needs {', '.join(missing)} enabled")
        needs_module = spec.module and backend in spec.module_backends
        if needs_module and importlib.util.find_spec(spec.module or "") is None:
            raise FlagError(
                f"feature flag {name!r} needs the {spec.module!r} package: "
                f"pip install 'ragkeep[{spec.extra}]'"
            )
