"""The data passed between layers: frozen dataclasses and enums, one JSON mapping for all."""

from ragkeep.models.answers import (
    Answer,
    AnswerMode,
    AskEvent,
    Citation,
    CitationsEvent,
    DoneEvent,
    NoticeEvent,
    PassagesEvent,
    TokenEvent,
)
from ragkeep.models.documents import ChunkDraft, DocumentInfo, LoadedDocument, PageSpan
from ragkeep.models.json import to_json
from ragkeep.models.reports import (
    CacheReport,
    Check,
    DerivedState,
    DoctorReport,
    FileOutcome,
    FileResult,
    FlagSource,
    FlagState,
    IndexReport,
    SkipReason,
    Stage,
    StoreStatus,
    TierStats,
)
from ragkeep.models.search import SearchHit, SearchMode

__all__ = [
    "Answer",
    "AnswerMode",
    "AskEvent",
    "CacheReport",
    "Check",
    "ChunkDraft",
    "Citation",
    "CitationsEvent",
    "DerivedState",
    "DoctorReport",
    "DocumentInfo",
    "DoneEvent",
    "FileOutcome",
    "FileResult",
    "FlagSource",
    "FlagState",
    "IndexReport",
    "LoadedDocument",
    "NoticeEvent",
    "PageSpan",
    "PassagesEvent",
    "SearchHit",
    "SearchMode",
    "SkipReason",
    "Stage",
    "StoreStatus",
    "TierStats",
    "TokenEvent",
    "to_json",
]
