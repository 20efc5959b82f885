"""ragkeep: local, privacy-first retrieval-augmented generation over your own documents."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from ragkeep.keep import Keep
    from ragkeep.models import (
        Answer,
        Citation,
        FlagState,
        IndexReport,
        SearchHit,
        SearchMode,
        StoreStatus,
    )

_EXPORTS = {
    "Keep": "ragkeep.keep",
    "FlagState": "ragkeep.models",
    "Answer": "ragkeep.models",
    "Citation": "ragkeep.models",
    "IndexReport": "ragkeep.models",
    "SearchHit": "ragkeep.models",
    "SearchMode": "ragkeep.models",
    "StoreStatus": "ragkeep.models",
}

__all__ = [
    "Answer",
    "Citation",
    "FlagState",
    "IndexReport",
    "Keep",
    "SearchHit",
    "SearchMode",
    "StoreStatus",
    "__version__",
]


def __getattr__(name: str) -> Any:
    # Lazy: `import ragkeep.answer` (or the CLI) must not pay for pydantic-settings and numpy.
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ragkeep' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
