"""Turn file bytes into text: one module per format, chosen by file suffix.

Importing this package is cheap: pypdf, python-docx and BeautifulSoup are imported
only when a file of their format is loaded.
"""

from __future__ import annotations

# Imported for their side effect: each module registers its loader.
from ragkeep.ingest.loaders import docx, html, markdown, pdf, text  # noqa: F401
from ragkeep.ingest.loaders.base import (
    EmptyDocumentError,
    LoaderError,
    load_document,
    supported_suffixes,
)

__all__ = ["EmptyDocumentError", "LoaderError", "load_document", "supported_suffixes"]
