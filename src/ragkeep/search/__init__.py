"""Retrieval: BM25 (FTS5), dense (numpy) and their fusion."""

from ragkeep.search.engine import Searcher, SearchRequest

__all__ = ["SearchRequest", "Searcher"]
