"""`ragkeep mcp`, driven as a client would drive it: a real `ragkeep ... mcp` subprocess and
the MCP SDK's own stdio client, over a small real index. The LLM, where there is one, is
`FakeLLM` on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import anyio
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.types import CallToolResult, TextContent, Tool

from ragkeep import Keep
from ragkeep.mcp_server.server import ModeName
from ragkeep.models import SearchMode, to_json

from conftest import write
from fake_llm import FakeLLM

pytestmark = pytest.mark.timeout(240)

CALL_TIMEOUT_S = 90  # the first search loads the embedding model in the server
TOOLS = {"search", "ask", "get_document", "list_sources", "status"}

BEES = "\n\n".join(
    f"## {month}\n\n"
    + " ".join(
        f"In {month} the hive is inspected every {days} days for queen cells, stores and brood."
        for days in range(7, 17)
    )
    for month in ("April", "May", "June", "July")
)
DOCS = {
    "tomatoes.md": "# Tomatoes\n\nWater tomatoes twice a week in summer; pots need water every "
    "day. Feed them with a high-potassium feed once the first truss has set.",
    "ups.md": "# UPS\n\nAt about 140 W the UPS keeps the server running for 18 minutes on a full "
    "battery. After five minutes on battery NUT shuts the NAS down.",
    "bees.md": "# Beekeeping diary\n\n" + BEES,
}


@dataclass(frozen=True)
class Index:
    docs: Path
    data: Path
    home: Path


@dataclass(frozen=True)
class Session:
    """A connected client; tests call it synchronously through the portal's event loop."""

    portal: BlockingPortal
    client: Client

    def tools(self) -> dict[str, Tool]:
        listing = self.portal.call(self._list_tools)
        return {tool.name: tool for tool in listing}

    def call(self, tool: str, arguments: dict[str, Any] | None = None) -> CallToolResult:
        return self.portal.call(self._call, tool, arguments or {})

    def ok(self, tool: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        result = self.call(tool, arguments)
        assert not result.is_error, _text(result)
        assert result.structured_content is not None
        # The text block is the same JSON, for clients that read only text.
        assert json.loads(_text(result)) == result.structured_content
        return result.structured_content

    async def _list_tools(self) -> list[Tool]:
        with anyio.fail_after(CALL_TIMEOUT_S):
            return (await self.client.list_tools()).tools

    async def _call(self, tool: str, arguments: dict[str, Any]) -> CallToolResult:
        with anyio.fail_after(CALL_TIMEOUT_S):
            return await self.client.call_tool(tool, arguments)


def _text(result: CallToolResult) -> str:
    assert len(result.content) == 1
    block = result.content[0]
    assert isinstance(block, TextContent)
    return block.text


@contextmanager
def serve(index: Index, env: dict[str, str] | None = None) -> Iterator[Session]:
    """`ragkeep --data-dir DATA mcp` as a subprocess; its stderr must hold no traceback."""
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "ragkeep", "--data-dir", str(index.data), "mcp"],
        env={"HOME": str(index.home), **(env or {})},  # no RAGKEEP_* of the developer's
    )
    log = index.home / f"mcp-stderr-{os.getpid()}-{id(params)}.log"
    with log.open("w+", encoding="utf-8") as errlog, start_blocking_portal() as portal:
        client = Client(stdio_client(params, errlog=errlog), read_timeout_seconds=CALL_TIMEOUT_S)
        with portal.wrap_async_context_manager(client) as connected:
            yield Session(portal, connected)
        errlog.seek(0)
        stderr = errlog.read()
    assert "Traceback" not in stderr, stderr


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Index]:
    root = tmp_path_factory.mktemp("mcp")
    docs, data, home = root / "docs", root / "data", root / "home"
    home.mkdir()
    for name, text in DOCS.items():
        write(docs / name, text)
    with pytest.MonkeyPatch.context() as mp:
        for name in [n for n in os.environ if n.startswith("RAGKEEP_")]:
            mp.delenv(name)
        mp.setenv("HOME", str(home))
        with Keep(data) as keep:
            assert keep.add([docs]).ok
    yield Index(docs, data, home)


@pytest.fixture(scope="module")
def session(index: Index) -> Iterator[Session]:
    with serve(index) as connected:
        yield connected


# -- the tools and their schemas -----------------------------------------------------------------


def test_lists_the_five_tools_with_typed_parameters(session: Session) -> None:
    tools = session.tools()
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool.description and len(tool.description) > 40
        assert "\n    " not in tool.description  # no docstring indent
        assert tool.title
        assert tool.annotations is not None and tool.annotations.read_only_hint is True
        assert tool.output_schema is not None and tool.output_schema["type"] == "object"

    search = tools["search"].input_schema
    assert search["required"] == ["query"]
    assert search["properties"]["query"]["type"] == "string"
    assert search["properties"]["k"] | {"description": ""} == {
        "type": "integer",
        "minimum": 1,
        "maximum": 1000,
        "default": 10,
        "title": "K",
        "description": "",
    }
    assert search["properties"]["mode"]["enum"] == ["hybrid", "bm25", "dense"]
    assert search["properties"]["mode"]["default"] == "hybrid"

    ask = tools["ask"].input_schema
    assert ask["required"] == ["question"]
    assert ask["properties"]["k"]["default"] == 5  # llm.ask_k
    assert (ask["properties"]["k"]["minimum"], ask["properties"]["k"]["maximum"]) == (1, 50)

    assert tools["get_document"].input_schema["required"] == ["path"]
    for name in ("list_sources", "status"):
        assert tools[name].input_schema["properties"] == {}


def test_the_mode_names_are_the_search_modes() -> None:
    assert set(get_args(ModeName)) == {m.value for m in SearchMode}


# -- search ----------------------------------------------------------------------------------------


def test_search_returns_the_hits_search_json_prints(session: Session, index: Index) -> None:
    query = "how often should tomatoes be watered"
    got = session.ok("search", {"query": query, "k": 3})["hits"]
    with Keep(index.data) as keep:
        want = to_json(keep.search(query, 3, "hybrid"))["hits"]  # as `search --json` prints
    assert [h["chunk_id"] for h in got] == [h["chunk_id"] for h in want]
    assert [h["score"] for h in got] == pytest.approx([h["score"] for h in want])
    assert [{**h, "score": 0} for h in got] == [{**h, "score": 0} for h in want]
    assert got[0]["path"] == str(index.docs / "tomatoes.md")
    assert got[0]["title"] == "Tomatoes"
    assert got[0]["rank"] == 1 and got[0]["page"] is None
    assert "twice a week" in got[0]["text"]


def test_search_modes(session: Session, index: Index) -> None:
    hits = session.ok("search", {"query": "NUT", "mode": "bm25", "k": 5})["hits"]
    assert [h["path"] for h in hits] == [str(index.docs / "ups.md")]  # only keyword matches
    dense = session.ok("search", {"query": "battery runtime during a power cut", "mode": "dense"})
    assert dense["hits"][0]["path"] == str(index.docs / "ups.md")


@pytest.mark.parametrize(
    ("arguments", "argument"),
    [
        ({"query": "tomatoes", "k": 0}, "k"),
        ({"query": "tomatoes", "k": 1001}, "k"),
        ({"query": "tomatoes", "k": "lots"}, "k"),
        ({"query": "tomatoes", "mode": "fuzzy"}, "mode"),
        ({"query": ""}, "query"),
        ({"query": "   "}, "query"),
        ({}, "query"),
    ],
)
def test_bad_search_arguments_are_one_line_tool_errors(
    session: Session, arguments: dict[str, Any], argument: str
) -> None:
    result = session.call("search", arguments)
    assert result.is_error
    message = _text(result)
    assert "\n" not in message and "Traceback" not in message
    assert message.startswith(f"Error executing tool search: invalid argument {argument}: ")


def test_bad_ask_k_is_a_tool_error(session: Session) -> None:
    result = session.call("ask", {"question": "when is the hive inspected?", "k": 51})
    assert result.is_error
    assert _text(result) == (
        "Error executing tool ask: invalid argument k: Input should be less than or equal to 50"
    )


# -- documents, sources, status --------------------------------------------------------------------


def test_get_document_returns_its_chunks_in_order(session: Session, index: Index) -> None:
    path = str(index.docs / "bees.md")
    doc = session.ok("get_document", {"path": path})
    assert (doc["path"], doc["title"]) == (path, "Beekeeping diary")
    chunks = doc["chunks"]
    assert len(chunks) >= 3
    assert [c["start"] for c in chunks] == sorted(c["start"] for c in chunks)
    assert chunks[0]["start"] == 0 and chunks[0]["text"].startswith("# Beekeeping diary")
    assert "July" in chunks[-1]["text"]
    assert set(chunks[0]) == {"chunk_id", "page", "start", "end", "text"}
    # A hit's chunk is one of its document's chunks, and the paths agree.
    hit = session.ok("search", {"query": "July hive inspection", "k": 1})["hits"][0]
    assert hit["path"] == path and hit["doc_id"] == doc["doc_id"]
    assert hit["chunk_id"] in {c["chunk_id"] for c in chunks}
    # A path that is not written the way it was indexed still finds the document.
    assert session.ok("get_document", {"path": str(index.docs / "x" / ".." / "bees.md")}) == doc


def test_get_document_of_an_unknown_path_is_a_tool_error(session: Session, index: Index) -> None:
    missing = str(index.docs / "no-such-file.md")
    result = session.call("get_document", {"path": missing})
    assert result.is_error
    assert _text(result) == (
        f"Error executing tool get_document: no indexed document has the path {missing!r}; "
        "use a path from a search hit"
    )


def test_list_sources(session: Session, index: Index) -> None:
    assert session.ok("list_sources") == {"sources": [str(index.docs)], "documents": len(DOCS)}


def test_status_is_status_json(session: Session, index: Index) -> None:
    got = session.ok("status")
    with Keep(index.data) as keep:
        want = to_json(keep.status())  # what `ragkeep status --json` prints
    assert set(got) == set(want)
    assert set(got["cache"]) == set(want["cache"])
    for key in ("documents", "chunks", "sources", "model_id", "dimension", "generation"):
        assert got[key] == want[key], key
    assert got["database_path"] == want["database_path"]
    assert Path(got["database_path"]).parent == index.data


# -- ask -------------------------------------------------------------------------------------------

QUESTION = "How long does the UPS keep the server running?"


# The tiny index's other passages are below the relevance floor: -k alone decides here.
NO_FLOOR = {"RAGKEEP_LLM__ASK_MIN_SCORE_RATIO": "0"}


def test_ask_without_an_llm_answers_with_the_passages(index: Index) -> None:
    with serve(index, NO_FLOOR) as session:
        answer = session.ok("ask", {"question": QUESTION, "k": 2})
    assert answer["mode"] == "passages"
    assert answer["notice"] == "No LLM is configured; showing the most relevant passages."
    assert answer["model"] is None and answer["question"] == QUESTION
    citations = answer["citations"]
    assert [c["number"] for c in citations] == [1, 2]
    assert citations[0]["path"] == str(index.docs / "ups.md")
    assert set(citations[0]) == {"number", "path", "title", "page", "chunk_id", "text", "doc_id"}
    assert "18 minutes" in answer["answer"]


def test_ask_with_an_llm_returns_its_answer_and_citations(index: Index) -> None:
    reply = "It keeps the server running for about 18 minutes [1]."
    env = {
        "RAGKEEP_LLM__PROVIDER": "ollama",
        "RAGKEEP_LLM__MODEL": "tiny-test-model",
        "RAGKEEP_LLM__MAX_RETRIES": "0",
        **NO_FLOOR,
    }
    with FakeLLM(reply=reply) as llm, serve(index, {**env, "RAGKEEP_LLM__URL": llm.url}) as s:
        answer = s.ok("ask", {"question": QUESTION, "k": 3})
        assert (answer["mode"], answer["answer"]) == ("llm", reply)
        assert (answer["notice"], answer["model"]) == (None, "tiny-test-model")
        # The citations are the passages a search for the question finds, numbered in order.
        hits = s.ok("search", {"query": QUESTION, "k": 3})["hits"]
        assert [c["chunk_id"] for c in answer["citations"]] == [h["chunk_id"] for h in hits]
        assert [c["number"] for c in answer["citations"]] == [1, 2, 3]
        assert answer["citations"][0]["path"] == str(index.docs / "ups.md")
        # ...and they are what the LLM was given.
        (chat,) = [r for r in llm.requests if r.path == "/api/chat"]
        prompt = "\n".join(str(m.get("content")) for m in chat.messages)
        assert all(c["text"] in prompt for c in answer["citations"])
        assert chat.body["model"] == "tiny-test-model"

        llm.fail_first = 10  # the LLM is down: the passages, and a notice saying so
        down = s.ok("ask", {"question": QUESTION, "k": 1})
        assert down["mode"] == "passages"
        assert re.match(
            r"LLM unavailable \(.+\); showing the most relevant passages\.$", down["notice"]
        )
        assert down["citations"][0]["chunk_id"] == hits[0]["chunk_id"]


# -- the process -----------------------------------------------------------------------------------


def _ragkeep(
    *args: str, code: str | None = None, input_: str = ""
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGKEEP_")}
    cmd = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "ragkeep", *args]
    return subprocess.run(cmd, input=input_, capture_output=True, text=True, env=env, timeout=120)


def test_closing_stdin_stops_the_server_cleanly_with_nothing_on_stdout(index: Index) -> None:
    proc = _ragkeep("--data-dir", str(index.data), "mcp")
    assert (proc.returncode, proc.stdout) == (0, "")
    assert "Traceback" not in proc.stderr


def test_ctrl_c_ends_the_server_at_once(index: Index) -> None:
    """Not only at the next line of input, for which the SDK's stdin reader waits."""
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "test", "version": "0"},
        },
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGKEEP_")}
    cmd = [sys.executable, "-m", "ragkeep", "--data-dir", str(index.data), "mcp"]
    with subprocess.Popen(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    ) as proc:
        try:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(json.dumps(initialize).encode() + b"\n")
            proc.stdin.flush()
            reply = json.loads(proc.stdout.readline())  # the first line out is the answer
            assert reply["id"] == 1 and reply["result"]["serverInfo"]["name"] == "ragkeep"
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=10) == -signal.SIGINT
        finally:
            if proc.poll() is None:
                proc.kill()


def test_without_the_sdk_it_exits_2_with_one_line_naming_the_extra(tmp_path: Path) -> None:
    # `None` in sys.modules makes `import mcp` fail exactly as when it is not installed.
    code = (
        "import sys; sys.modules['mcp'] = None; sys.argv[0] = 'ragkeep'; "
        "from ragkeep.cli.app import main; main()"
    )
    proc = _ragkeep("--data-dir", str(tmp_path / "data"), "mcp", code=code)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr == "error: ragkeep mcp needs the \"mcp\" extra: pip install 'ragkeep[mcp]'\n"
    # Its help needs no SDK, and says how to set up a client.
    proc = _ragkeep("mcp", "--help", code=code)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"Usage: .*ragkeep mcp", proc.stdout)
    assert '"mcpServers"' in proc.stdout and "pip install 'ragkeep[mcp]'" in proc.stdout


def test_other_commands_do_not_import_the_sdk(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-m",
            "ragkeep",
            "--data-dir",
            str(tmp_path),
            "status",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    modules = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert "ragkeep.cli.mcp_command" in modules  # the check below would be vacuous otherwise
    assert not {m for m in modules if m.split(".")[0] in ("mcp", "mcp_types")}
    assert not {m for m in modules if m.startswith("ragkeep.mcp_server")}
