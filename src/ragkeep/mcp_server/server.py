"""The MCP server: search, answers and the index's contents as tools over an open `Keep`.

Every result is the JSON the CLI's `--json` prints (`ragkeep.models.to_json`), so scripts and
MCP clients see one shape. Mistakes a caller can fix (bad arguments, an unknown document, an
unusable LLM setting) come back as tool errors with a one-line reason; anything else is a
bug, which the SDK reports to the client without details and logs, with its traceback, on
stderr. stdout carries the protocol and nothing else.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.types import ToolAnnotations
from pydantic import Field, StringConstraints, ValidationError

from ragkeep import __version__
from ragkeep.embed.base import EmbedderError
from ragkeep.models import to_json
from ragkeep.store.base import StoreError

if TYPE_CHECKING:
    from mcp.server.mcpserver import Context
    from mcp.types import CallToolResult, InputRequiredResult

    from ragkeep.keep import Keep
    from ragkeep.models import Answer

__all__ = ["build_server"]

_T = TypeVar("_T")
JsonObject = dict[str, Any]
Tool = Callable[..., JsonObject]

# The wire names of `SearchMode`, spelled out so the schema lists them inline (an enum class
# would become a `$ref`, which some clients do not follow). The tests check they match.
ModeName = Literal["hybrid", "bm25", "dense"]

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
SearchK = Annotated[
    int, Field(ge=1, le=1000, description="How many passages to return, best first (1-1000).")
]
AskK = Annotated[int, Field(ge=1, le=50, description="How many passages to answer from (1-50).")]

INSTRUCTIONS = (
    "ragkeep is a local index of the user's own documents (notes, papers, manuals: Markdown, "
    "text, HTML, PDF, DOCX). Use `search` to find passages, `ask` for an answer with numbered "
    "citations, `get_document` to read a whole document found by a search, `list_sources` "
    "and `status` to see what is indexed. Cite documents by their `path` (and `page` for PDFs)."
)

_READS_INDEX = ToolAnnotations(read_only_hint=True, open_world_hint=False)
# `ask` may call the LLM server the user configured, which can be a remote one.
_ASKS_LLM = ToolAnnotations(read_only_hint=True)


class _Server(MCPServer[Any]):
    """An MCPServer whose argument errors are one line, like every other tool error."""

    async def call_tool(
        self,
        name: str,
        arguments: dict[str, Any],
        context: Context[Any, Any] | None = None,
    ) -> CallToolResult | InputRequiredResult:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            cause = exc.__cause__
            if isinstance(exc, UnexpectedToolError) or not isinstance(cause, ValidationError):
                raise
            # pydantic's own text spans several lines and links to its docs.
            raise ToolError(f"Error executing tool {name}: {_argument_errors(cause)}") from cause


def build_server(keep: Keep) -> MCPServer[Any]:
    """The server with ragkeep's tools; `keep` stays open (and owned by the caller)."""
    server = _Server("ragkeep", version=__version__, instructions=INSTRUCTIONS)
    _add(server, _search_tool(keep), "Search documents", _READS_INDEX)
    _add(server, _ask_tool(keep), "Answer with citations", _ASKS_LLM)
    _add(server, _get_document_tool(keep), "Read a document", _READS_INDEX)
    _add(server, _list_sources_tool(keep), "List sources", _READS_INDEX)
    _add(server, _status_tool(keep), "Index status", _READS_INDEX)
    return server


def _add(server: MCPServer[Any], tool: Tool, title: str, annotations: ToolAnnotations) -> None:
    # The docstring is the description clients show the model; the SDK would keep its indent.
    description = inspect.getdoc(tool)
    server.add_tool(tool, title=title, description=description, annotations=annotations)


# -- the tools: defaults come from the settings, so the schema shows what applies ------------


def _search_tool(keep: Keep) -> Tool:
    default_k = keep.settings.search.k
    default_mode: ModeName = keep.settings.search.mode.value

    def search(
        query: Annotated[Text, Field(description="What to look for, in words or keywords.")],
        k: SearchK = default_k,
        mode: Annotated[
            ModeName,
            Field(
                description="hybrid (keywords and meaning, best in general), bm25 (exact "
                "words, names, numbers) or dense (meaning, other wording)."
            ),
        ] = default_mode,
    ) -> JsonObject:
        """Search the user's indexed documents and return the best passages, best first.

        Each hit has the passage `text`, the document's `path` and `title`, the `page` (PDFs;
        else null), its `score` and `rank`, `chunk_id`, `doc_id`, and the passage's `start`
        and `end` offsets in the document's text. Scores order one search's hits; they are
        not comparable between modes. `degraded` lists fallbacks taken (e.g. BM25 alone
        when the embedding model failed); empty normally."""
        results = _guarded(lambda: keep.querying.search(query, k, mode))
        out: JsonObject = to_json(results)
        return out

    return search


def _ask_tool(keep: Keep) -> Tool:
    default_k = keep.settings.llm.ask_k

    def ask(
        question: Annotated[Text, Field(description="A question about the user's documents.")],
        k: AskK = default_k,
    ) -> JsonObject:
        """Answer a question from the user's documents, citing passages as [1], [2], ...

        Returns `answer`, `mode`, `notice`, `model` and `citations` (one per passage: `number`
        as used in the answer, `path`, `title`, `page`, `chunk_id`, `text`). With mode "llm"
        the answer was written by the LLM configured for ragkeep; with mode "passages" (no LLM
        configured, or it is unreachable) the answer is the most relevant passages themselves
        and `notice` says why."""
        answer = _guarded(lambda: _answer(keep, question, k))
        out: JsonObject = to_json(answer)
        return out

    return ask


def _answer(keep: Keep, question: str, k: int) -> Answer:
    try:
        return keep.querying.ask(question, k)
    except ValueError as exc:  # an LLM setting the client cannot use, as in `ragkeep ask`
        raise ToolError(f"cannot use the configured LLM: {exc}") from exc


def _get_document_tool(keep: Keep) -> Tool:
    def get_document(
        path: Annotated[
            Text,
            Field(description="The document's path, as a search hit or citation gives it."),
        ],
    ) -> JsonObject:
        """Read a whole indexed document: its passages (chunks) in document order.

        Returns `doc_id`, `path`, `title` and `chunks` (each with `chunk_id`, `page`, `start`,
        `end`, `text`). Use it after `search` or `ask` to see a passage in context."""
        content = _guarded(lambda: keep.admin.document(path))
        if content is None:
            raise ToolError(
                f"no indexed document has the path {path!r}; use a path from a search hit"
            )
        out: JsonObject = to_json(content)
        return out

    return get_document


def _list_sources_tool(keep: Keep) -> Tool:
    def list_sources() -> JsonObject:
        """List the files and folders the user registered for indexing (`sources`) and how
        many documents the index holds (`documents`)."""
        status = _guarded(keep.admin.status)
        return {"sources": status.sources, "documents": status.documents}

    return list_sources


def _status_tool(keep: Keep) -> Tool:
    def status() -> JsonObject:
        """Describe the index, as `ragkeep status --json` does: `documents`, `chunks`,
        `sources`, the embedding `model_id` and `dimension`, `generation` (bumped by every
        change), `schema_version`, `database_path`, `database_bytes` and `cache` statistics."""
        out: JsonObject = to_json(_guarded(keep.admin.status))
        return out

    return status


# -- errors ------------------------------------------------------------------------------------


def _guarded(call: Callable[[], _T]) -> _T:
    """A store the caller cannot use right now (busy, unreadable), or a dense search without
    a working embedder, is a tool error, not a crash."""
    try:
        return call()
    except (StoreError, EmbedderError) as exc:
        raise ToolError(str(exc)) from exc


def _argument_errors(error: ValidationError) -> str:
    reasons = []
    for item in error.errors():
        name = ".".join(str(part) for part in item["loc"]) or "arguments"
        reasons.append(f"invalid argument {name}: {' '.join(str(item['msg']).split())}")
    return "; ".join(reasons)
