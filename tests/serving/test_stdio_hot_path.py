"""The hot path over stdio (stdio.StdioHotPath) answers line for line what the SDK's session answers.

In process: the stdio transport's session streams (`stdio._session_streams`, the code `serve` runs
between the pipes and the SDK) fed one line at a time, each answer awaited, on two servers built
from one config and one recording upstream: one with the hot path, one without. In both eras the
answers must be the same lines, the upstream must have seen the same requests, and the SDK's
request runner must not have run for what the hot path answers. Then a real `serve` process with
the SDK client in both eras.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from support import (
    ERAS,
    LOG_FILTER,
    MODERN_ENVELOPE,
    RAW_INITIALIZE,
    RAW_INITIALIZED,
    SPOKEN_MESSAGES,
    hamsa_tool,
    mcp_client,
    text_of,
    write_tools,
)

from mcp_webtools.serving.runtime import open_webtools
from mcp_webtools.serving.server import WebTools
from mcp_webtools.serving.stdio import StdioHotPath, _session_streams

BOUND = 60


class Lines:
    """One stdio connection: a line in, the lines out until the answer to it."""

    def __init__(self, into: MemoryObjectSendStream[str], out: MemoryObjectReceiveStream[bytes]) -> None:
        self.into, self.out = into, out

    async def ask(self, message: dict[str, Any]) -> list[dict[str, Any]]:
        await self.into.send(json.dumps(message) + "\n")
        if "id" not in message:
            return []
        seen = []
        with anyio.fail_after(BOUND):
            while True:
                line = json.loads(re.sub(rb'"elapsedMs":[0-9.]+', b'"elapsedMs":0', await self.out.receive()))
                seen.append(line)
                if line.get("id") == message["id"] and "method" not in line:
                    return seen


@asynccontextmanager
async def stdio_server(webtools: WebTools, hot: bool) -> AsyncIterator[Lines]:
    into, lines_in = anyio.create_memory_object_stream[str](100)
    lines_out, out = anyio.create_memory_object_stream[bytes](100)

    async def lines() -> AsyncIterator[str]:
        async with lines_in:
            async for line in lines_in:
                yield line

    async def write_line(data: bytes) -> None:
        await lines_out.send(data)

    hot_path = StdioHotPath(webtools) if hot else None
    if hot_path is not None:
        webtools.server.middleware.append(hot_path.remember_connection)
    async with (
        webtools.executor.client,
        _session_streams(lines(), write_line, hot_path) as (read, write),
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(webtools.server.run, read, write, webtools.server.create_initialization_options())
        async with into:
            yield Lines(into, out)


def config_for(directory: Path, upstream: str) -> Path:
    item = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    return write_tools(
        directory,
        [
            hamsa_tool("get_item", f"{upstream}/item", params=item),
            hamsa_tool("broken", f"{upstream}/broken"),
            hamsa_tool("spoken", f"{upstream}/item", params=item, messages=SPOKEN_MESSAGES),
        ],
    )


def request(request_id: Any, method: str, params: dict[str, Any] | None = None, *, era: str) -> dict[str, Any]:
    params = dict(params or {})
    if era == "modern":
        params["_meta"] = {**MODERN_ENVELOPE, **params.get("_meta", {})}
    return {"jsonrpc": "2.0", "id": request_id, "method": method, **({"params": params} if params else {})}


async def opened(lines: Lines, era: str) -> None:
    """The era's opening, which the SDK serves (and which shows the hot path the connection)."""
    if era == "legacy":
        await lines.ask(RAW_INITIALIZE)
        await lines.ask(RAW_INITIALIZED)
    else:
        await lines.ask(request(1, "server/discover", era=era))
    await lines.ask(request(2, "tools/list", era=era))


CASES = [
    ("a call", "tools/call", {"name": "get_item", "arguments": {"n": 7}}, 3),
    ("a string id", "tools/call", {"name": "get_item", "arguments": {"n": 8}}, "c-4"),
    ("invalid arguments", "tools/call", {"name": "get_item", "arguments": {"n": "seven"}}, 5),
    ("an upstream 500", "tools/call", {"name": "broken", "arguments": {}}, 6),
    ("an unknown tool", "tools/call", {"name": "nope", "arguments": {}}, 7),
    ("a progress token", "tools/call", {"name": "spoken", "arguments": {"n": 3}, "_meta": {"progressToken": 0}}, 8),
    ("tools/list", "tools/list", {}, 9),
    ("ping", "ping", {}, 10),  # the handshake era's; 2026-07-28 has no ping, and the SDK says so
]


@pytest.mark.anyio
@pytest.mark.parametrize("era", ["legacy", "modern"])
@pytest.mark.parametrize(("what", "method", "params", "request_id"), CASES, ids=[case[0] for case in CASES])
async def test_over_stdio_the_hot_path_answers_what_the_sdk_answers(
    tmp_path, upstream, sdk_runs, era, what, method, params, request_id
):
    upstream.reply_json("GET", "/item", {"n": 1, "name": "item"})
    upstream.reply_json("GET", "/broken", {"error": "it broke"}, status=500)
    config = config_for(tmp_path, upstream.url)
    message = request(request_id, method, params, era=era)
    answers = []
    for hot in (True, False):
        webtools = open_webtools([str(config)], log_filter=LOG_FILTER)
        async with stdio_server(webtools, hot) as lines:
            await opened(lines, era)
            sdk_runs.clear()
            upstream.requests.clear()
            answers.append((await lines.ask(message), [(r.raw_path, r.query) for r in upstream.requests]))
            assert sdk_runs == ([] if hot and (method, era) != ("ping", "modern") else [method])
    assert answers[0] == answers[1]
    if what == "a progress token":
        assert [line["params"]["message"] for line in answers[0][0][:-1]] == ["Looking that up.", "Found it."]
    if what == "an unknown tool":
        assert answers[0][0][0]["error"]["code"] == -32602
    if what == "ping":
        pong = {"jsonrpc": "2.0", "id": 10, "result": {}}
        assert answers[0][0] == [pong] if era == "legacy" else answers[0][0][0]["error"]["code"] == -32601


@pytest.mark.anyio
@pytest.mark.parametrize("era", ["legacy", "modern"])
@pytest.mark.parametrize("hot", [True, False], ids=["hot path", "sdk"])
async def test_a_cancelled_call_is_abandoned_unanswered_and_the_connection_goes_on(
    tmp_path, holding, sdk_runs, era, hot
):
    held, url = holding
    config = write_tools(tmp_path, [hamsa_tool("slow", f"{url}/slow"), hamsa_tool("other", f"{url}/other")])
    webtools = open_webtools([str(config)], log_filter=LOG_FILTER)
    async with stdio_server(webtools, hot) as lines:
        await opened(lines, era)
        sdk_runs.clear()
        await lines.into.send(json.dumps(request(3, "tools/call", {"name": "slow", "arguments": {}}, era=era)) + "\n")
        await held.arrived("/slow")
        cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 3}}
        await lines.ask(cancel)
        assert await held.finished("/slow") == "disconnected"
        held.release("/other")
        after = await lines.ask(request(4, "tools/call", {"name": "other", "arguments": {}}, era=era))
    assert [line.get("id") for line in after] == [4]  # nothing ever answered the cancelled call
    assert ("tools/call" in sdk_runs) is not hot


@pytest.mark.anyio
@pytest.mark.e2e
@pytest.mark.parametrize("era", ERAS)
async def test_a_real_client_over_stdio_gets_progress_and_results_in_both_eras(tmp_path, upstream, era):
    upstream.reply_json("GET", "/item", {"n": 1, "name": "item"})
    config = config_for(tmp_path, upstream.url)
    progress: list[str | None] = []

    async def note(value: float, total: float | None, message: str | None) -> None:
        progress.append(message)

    async with mcp_client("stdio", era, config) as client:
        first = await client.call_tool("spoken", {"n": 4}, progress_callback=note)
        second = await client.call_tool("get_item", {"n": 5})
        listed = [tool.name for tool in (await client.list_tools(cache_mode="bypass")).tools]
    assert text_of(first) == text_of(second) == '{"n":1,"name":"item"}'
    assert progress == ["Looking that up.", "Found it."]
    assert [r.query for r in upstream.requests] == ["n=4", "n=5"]
    assert listed == ["broken", "get_item", "spoken"]
