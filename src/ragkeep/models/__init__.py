"""The data passed between layers: frozen dataclasses and enums, one JSON mapping for all.

Submodules load on first use of one of their names (PEP 562): a cold `ragkeep search` must
not pay for defining every report and event class it never builds.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ragkeep.models.answers import (
        Answer,
        AnswerMode,
        AskEvent,
        Citation,
        CitationsEvent,
        DoneEvent,
        NoticeEvent,
        PassagesEvent,
        RetryEvent,
        TokenEvent,
    )
    from ragkeep.models.degradation import (
        BreakerState,
        BreakerStatus,
        Degradation,
        Part,
        ResilienceReport,
    )
    from ragkeep.models.documents import (
        ChunkDraft,
        DocumentChunk,
        DocumentContent,
        DocumentInfo,
        LoadedDocument,
        PageSpan,
    )
    from ragkeep.models.flags import FlagSource, FlagState, Stage
    from ragkeep.models.indexing import FileOutcome, FileResult, IndexReport, SkipReason
    from ragkeep.models.json import to_json
    from ragkeep.models.maintenance import Check, DerivedState, DoctorReport
    from ragkeep.models.search import LexicalQuery, SearchHit, SearchMode, SearchResults
    from ragkeep.models.status import CacheReport, StoreStatus, TierStats, UnusedVectors

_MODULES = {
    "answers": (
        "Answer AnswerMode AskEvent Citation CitationsEvent DoneEvent NoticeEvent "
        "PassagesEvent RetryEvent TokenEvent"
    ),
    "degradation": "BreakerState BreakerStatus Degradation Part ResilienceReport",
    "documents": "ChunkDraft DocumentChunk DocumentContent DocumentInfo LoadedDocument PageSpan",
    "flags": "FlagSource FlagState Stage",
    "indexing": "FileOutcome FileResult IndexReport SkipReason",
    "json": "to_json",
    "maintenance": "Check DerivedState DoctorReport",
    "search": "LexicalQuery SearchHit SearchMode SearchResults",
    "status": "CacheReport StoreStatus TierStats UnusedVectors",
}
_WHERE = {name: module for module, names in _MODULES.items() for name in names.split()}

__all__ = [
    "Answer",
    "AnswerMode",
    "AskEvent",
    "BreakerState",
    "BreakerStatus",
    "CacheReport",
    "Check",
    "ChunkDraft",
    "Citation",
    "CitationsEvent",
    "Degradation",
    "DerivedState",
    "DoctorReport",
    "DocumentChunk",
    "DocumentContent",
    "DocumentInfo",
    "DoneEvent",
    "FileOutcome",
    "FileResult",
    "FlagSource",
    "FlagState",
    "IndexReport",
    "LexicalQuery",
    "LoadedDocument",
    "NoticeEvent",
    "PageSpan",
    "Part",
    "PassagesEvent",
    "ResilienceReport",
    "RetryEvent",
    "SearchHit",
    "SearchMode",
    "SearchResults",
    "SkipReason",
    "Stage",
    "StoreStatus",
    "TierStats",
    "TokenEvent",
    "UnusedVectors",
    "to_json",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'ragkeep.models' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"ragkeep.models.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value
