"""Grounded answers: prompt building, LLM clients, citations, and the answer service.

Importing this package does not import httpx; the clients load it when first constructed.
"""

from ragkeep.answer.citations import citations_for, cited_numbers, used_citations
from ragkeep.answer.llm import (
    ChatMessage,
    LLMClient,
    LLMError,
    OllamaClient,
    OpenAIClient,
    make_client,
)
from ragkeep.answer.prompt import build_messages
from ragkeep.answer.service import answer_question, format_passages

__all__ = [
    "ChatMessage",
    "LLMClient",
    "LLMError",
    "OllamaClient",
    "OpenAIClient",
    "answer_question",
    "build_messages",
    "citations_for",
    "cited_numbers",
    "format_passages",
    "make_client",
    "used_citations",
]
