"""The 2026-07-28 hot path (hot_path.py) answers byte for byte what the SDK answers, without the SDK.

Each request is sent raw, as a client puts it on the wire, to two servers built from one config
and one recording upstream: one with the hot path (the default) and one without
(`HttpSettings(hot_path=False)`: the SDK answers everything). Status, content type and body must be
the same, and the upstream must have seen the same requests. The SDK's request runner is counted,
so a request the hot path claims to answer shows that the SDK did not run, and a request it leaves
to the SDK shows that the SDK did. Then the real SDK client, in both eras, against the default
server: progress and a hang-up cancelling the call.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from support import (
    ERAS,
    LOG_FILTER,
    MODERN_ENVELOPE,
    POST_HEADERS,
    RAW_INITIALIZE,
    RAW_INITIALIZED,
    SPOKEN_MESSAGES,
    Upstream,
    hamsa_tool,
    http_mcp_client,
    serve_asgi,
    text_of,
    write_tools,
)

from mcp_webtools.serving.http_app import HttpSettings, build_http_app
from mcp_webtools.serving.runtime import open_webtools

BOUND = 60
VERSION = "2026-07-28"


def config_for(directory: Path, upstream: str) -> Path:
    item = {
        "type": "object",
        "properties": {"n": {"type": "integer", "description": "Which item."}},
        "required": ["n"],
    }
    return write_tools(
        directory,
        [
            hamsa_tool("get_item", f"{upstream}/item", params=item),
            hamsa_tool("broken", f"{upstream}/broken"),
            hamsa_tool("spoken", f"{upstream}/item", params=item, messages=SPOKEN_MESSAGES),
            hamsa_tool(
                "tagged",
                f"{upstream}/item",
                params={
                    "type": "object",
                    "properties": {"region": {"type": "string", "x-mcp-header": "Region"}},
                    "required": ["region"],
                },
            ),
        ],
    )


@asynccontextmanager
async def two_servers(config: Path) -> AsyncIterator[tuple[str, str]]:
    """(base URL with the hot path, base URL without it), one config."""
    hot = open_webtools([str(config)], log_filter=LOG_FILTER)
    sdk = open_webtools([str(config)], log_filter=LOG_FILTER)
    async with (
        serve_asgi(build_http_app(hot, HttpSettings())) as hot_base,
        serve_asgi(build_http_app(sdk, HttpSettings(hot_path=False))) as sdk_base,
    ):
        yield hot_base, sdk_base


def post(method: str, params: dict[str, Any], request_id: Any = 1, **headers: str) -> dict[str, Any]:
    """A raw 2026-07-28 POST as a client sends it: the routing headers and the `_meta` envelope."""
    sent = {
        "accept": "application/json, text/event-stream",
        "content-type": "application/json",
        "mcp-protocol-version": VERSION,
        "mcp-method": method,
    }
    if "name" in params:
        sent["mcp-name"] = params["name"]
    sent.update({name.replace("_", "-"): value for name, value in headers.items()})
    body = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": {**params, "_meta": {**MODERN_ENVELOPE}}}
    return {"headers": sent, "content": json.dumps(body)}


async def exchange(base: str, request: dict[str, Any]) -> tuple[int, str, bytes]:
    """(status, content type, body) of the answer; the upstream's time in the body (`elapsedMs`) as 0."""
    async with httpx2.AsyncClient(timeout=BOUND) as http:
        response = await http.post(f"{base}/mcp", **request)
    body = re.sub(rb'"elapsedMs":[0-9.]+', b'"elapsedMs":0', response.content)
    return response.status_code, response.headers.get("content-type", ""), body


HOT = [
    ("a call", "tools/call", {"name": "get_item", "arguments": {"n": 7}}, {}),
    ("a string id", "tools/call", {"name": "get_item", "arguments": {"n": 8}}, {"request_id": "call-8"}),
    ("invalid arguments", "tools/call", {"name": "get_item", "arguments": {"n": "seven"}}, {}),
    ("no arguments", "tools/call", {"name": "get_item"}, {}),
    ("an upstream 500", "tools/call", {"name": "broken", "arguments": {}}, {}),
    ("an unknown tool", "tools/call", {"name": "nope", "arguments": {}}, {}),
    ("a progress token", "tools/call", {"name": "spoken", "arguments": {"n": 3}, "_meta": {"progressToken": 5}}, {}),
    ("a matching Mcp-Param header", "tools/call", {"name": "tagged", "arguments": {"region": "eu"}},
     {"mcp_param_region": "eu"}),
    ("tools/list", "tools/list", {}, {}),
]  # fmt: skip

TO_THE_SDK = [
    ("a wrong Mcp-Name", "tools/call", {"name": "get_item", "arguments": {"n": 1}}, {"mcp_name": "other"}),
    ("a wrong Mcp-Method", "tools/call", {"name": "get_item", "arguments": {"n": 1}}, {"mcp_method": "tools/list"}),
    ("no SSE in Accept", "tools/call", {"name": "get_item", "arguments": {"n": 1}}, {"accept": "application/json"}),
    ("an Mcp-Param header that disagrees", "tools/call", {"name": "tagged", "arguments": {"region": "eu"}},
     {"mcp_param_region": "us"}),
    ("params the version refuses", "tools/call", {"name": "get_item", "arguments": [1]}, {}),
    ("a log level", "tools/call",
     {"name": "get_item", "arguments": {"n": 2}, "_meta": {"io.modelcontextprotocol/logLevel": "info"}}, {}),
    ("server/discover", "server/discover", {}, {}),
    ("ping, which 2026-07-28 does not have", "ping", {}, {}),
]  # fmt: skip


def request_of(method: str, params: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    options = dict(options)
    request_id = options.pop("request_id", 1)
    request = post(method, params, request_id, **options)
    body = json.loads(request["content"])
    body["params"]["_meta"] = {**MODERN_ENVELOPE, **params.get("_meta", {})}
    request["content"] = json.dumps(body)
    return request


def answered(upstream: Upstream) -> None:
    upstream.reply_json("GET", "/item", {"n": 1, "name": "item"})
    upstream.reply_json("GET", "/broken", {"error": "it broke"}, status=500)


@pytest.mark.anyio
@pytest.mark.parametrize(("what", "method", "params", "options"), HOT, ids=[case[0] for case in HOT])
async def test_the_hot_path_answers_what_the_sdk_answers_without_the_sdk(
    tmp_path, upstream, sdk_runs, what, method, params, options
):
    answered(upstream)
    request = request_of(method, params, options)
    async with two_servers(config_for(tmp_path, upstream.url)) as (hot, sdk):
        if method == "tools/list":  # the SDK shapes each view's list once (WebTools._list_once), then it is kept
            await exchange(hot, request)
            sdk_runs.clear()
        hot_answer = await exchange(hot, request)
        hot_seen = [(r.method, r.raw_path, r.query, r.body) for r in upstream.requests]
        assert sdk_runs == []  # the SDK did not run for it
        upstream.requests.clear()
        sdk_answer = await exchange(sdk, request)
        sdk_seen = [(r.method, r.raw_path, r.query, r.body) for r in upstream.requests]
    assert sdk_runs == [method]
    assert hot_answer == sdk_answer
    assert hot_seen == sdk_seen
    status, content_type, body = hot_answer
    if what == "a progress token":
        assert content_type == "text/event-stream"
        events = [json.loads(line[6:]) for line in body.decode().splitlines() if line.startswith("data: ")]
        assert [e.get("params", {}).get("message") for e in events[:-1]] == ["Looking that up.", "Found it."]
        assert events[-1]["result"]["content"][0]["text"] == '{"n":1,"name":"item"}'
    elif what == "an unknown tool":
        assert (status, json.loads(body)["error"]["code"]) == (400, -32602)
    else:
        assert (status, content_type) == (200, "application/json")


@pytest.mark.anyio
@pytest.mark.parametrize(("what", "method", "params", "options"), TO_THE_SDK, ids=[c[0] for c in TO_THE_SDK])
async def test_what_the_hot_path_does_not_answer_the_sdk_answers_as_before(
    tmp_path, upstream, sdk_runs, what, method, params, options
):
    answered(upstream)
    request = request_of(method, params, options)
    async with two_servers(config_for(tmp_path, upstream.url)) as (hot, sdk):
        hot_answer = await exchange(hot, request)
        sdk_answer = await exchange(sdk, request)
    assert hot_answer == sdk_answer
    refused_before_the_runner = what in ("a wrong Mcp-Name", "a wrong Mcp-Method", "no SSE in Accept")
    refused_before_the_runner |= what == "an Mcp-Param header that disagrees"
    assert sdk_runs == ([] if refused_before_the_runner else [method, method])


@pytest.mark.anyio
@pytest.mark.parametrize("era", ERAS)
async def test_a_real_client_gets_progress_and_results_in_both_eras(tmp_path, upstream, sdk_runs, era):
    answered(upstream)
    config = config_for(tmp_path, upstream.url)
    webtools = open_webtools([str(config)], log_filter=LOG_FILTER)
    progress: list[str | None] = []

    async def note(value: float, total: float | None, message: str | None) -> None:
        progress.append(message)

    async with serve_asgi(build_http_app(webtools, HttpSettings())) as base, http_mcp_client(base, era) as client:
        result = await client.call_tool("spoken", {"n": 4}, progress_callback=note)
        listed = [tool.name for tool in (await client.list_tools(cache_mode="bypass")).tools]
        listed_again = [tool.name for tool in (await client.list_tools(cache_mode="bypass")).tools]
        version = client.protocol_version
    assert text_of(result) == '{"n":1,"name":"item"}' and not result.is_error
    assert progress == ["Looking that up.", "Found it."]
    assert listed == listed_again == ["broken", "get_item", "spoken", "tagged"]
    assert upstream.requests[0].query == "n=4"
    if version == VERSION:  # the hot path: the SDK ran only for the first listing
        assert sdk_runs.count("tools/call") == 0 and sdk_runs.count("tools/list") == 1
    else:  # the SDK served the handshake and the client's own first listing (which shows the session)
        assert sdk_runs == ["initialize", "tools/list"]


@pytest.mark.anyio
@pytest.mark.parametrize("hot_path", [True, False], ids=["hot path", "sdk"])
async def test_a_client_that_hangs_up_cancels_its_call_and_its_upstream_request(tmp_path, holding, hot_path):
    held, url = holding
    config = write_tools(tmp_path, [hamsa_tool("slow", f"{url}/slow")])
    webtools = open_webtools([str(config)], log_filter=LOG_FILTER)
    request = request_of("tools/call", {"name": "slow", "arguments": {}}, {})
    async with serve_asgi(build_http_app(webtools, HttpSettings(hot_path=hot_path))) as base:
        async with anyio.create_task_group() as tg:

            async def call() -> None:
                async with httpx2.AsyncClient(timeout=BOUND) as http:
                    await http.post(f"{base}/mcp", **request)

            tg.start_soon(call)
            await held.arrived("/slow")
            tg.cancel_scope.cancel()  # the client hangs up while the upstream holds the answer
        assert await held.finished("/slow") == "disconnected"  # the upstream request was abandoned with it


@pytest.mark.anyio
@pytest.mark.parametrize("hot_path", [True, False], ids=["hot path", "sdk"])
async def test_a_call_silent_past_the_ping_interval_commits_to_sse_with_keep_alives(
    tmp_path, holding, monkeypatch, hot_path
):
    # The SDK's interval and ours, shortened alike: the same stream from both.
    monkeypatch.setattr("mcp_webtools.serving.hot_http.SSE_PING_SECONDS", 0.05)
    monkeypatch.setattr("mcp.server._streamable_http_modern._SSE_PING_INTERVAL", 0.05)
    held, url = holding
    config = write_tools(tmp_path, [hamsa_tool("slow", f"{url}/slow")])
    webtools = open_webtools([str(config)], log_filter=LOG_FILTER)
    request = request_of("tools/call", {"name": "slow", "arguments": {}}, {})
    async with serve_asgi(build_http_app(webtools, HttpSettings(hot_path=hot_path))) as base:
        async with httpx2.AsyncClient(timeout=BOUND) as http, http.stream("POST", f"{base}/mcp", **request) as response:
            chunks = response.aiter_bytes()
            first = await chunks.__anext__()  # sent while the upstream still holds the call
            assert response.headers["content-type"] == "text/event-stream"
            assert first.startswith(b": ping\r\n\r\n")
            held.release("/slow")
            rest = b"".join([chunk async for chunk in chunks])
    events = [json.loads(line[6:]) for line in (first + rest).decode().splitlines() if line.startswith("data: ")]
    assert len(events) == 1 and events[0]["result"]["structuredContent"]["released"] is True
    assert set((first + rest).replace(b": ping\r\n\r\n", b"").split(b"\r\n\r\n")) == {
        b"event: message\r\ndata: " + json.dumps(events[0], separators=(",", ":")).encode(),
        b"",
    }


# -- handshake-era sessions ------------------------------------------------------------------------

SESSION_VERSIONS = ["2025-11-25", "2025-06-18"]  # with priming events (resumable) and without


class Session:
    """A raw handshake-era session: initialize, initialized, and one tools/list the SDK answers."""

    def __init__(self, http: httpx2.AsyncClient, base: str, version: str) -> None:
        self.http, self.base, self.version = http, base, version
        self.id = ""

    async def open(self) -> Session:
        initialize = {**RAW_INITIALIZE, "params": {**RAW_INITIALIZE["params"], "protocolVersion": self.version}}
        response = await self.http.post(f"{self.base}/mcp", json=initialize, headers=POST_HEADERS)
        self.id = response.headers["mcp-session-id"]
        await self.post(RAW_INITIALIZED)
        await self.post({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        return self

    async def post(self, message: dict[str, Any], **headers: str) -> tuple[int, list[tuple[str, str]], bytes]:
        sent = {**POST_HEADERS, "mcp-session-id": self.id, "mcp-protocol-version": self.version, **headers}
        response = await self.http.post(f"{self.base}/mcp", json=message, headers=sent)
        shown = [(k, v) for k, v in response.headers.multi_items() if k not in ("date", "server", "mcp-session-id")]
        body = re.sub(rb'"elapsedMs":[0-9.]+', b'"elapsedMs":0', response.content)
        return response.status_code, shown, re.sub(rb"(?m)^id: \S+", b"id: -", body)  # event ids are random


def call(request_id: Any, name: str, arguments: Any, **meta: Any) -> dict[str, Any]:
    params = {"name": name, "arguments": arguments, **({"_meta": meta} if meta else {})}
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}


SESSION_CASES = [
    ("a call", call(3, "get_item", {"n": 7}), True),
    ("a string id", call("c-4", "get_item", {"n": 8}), True),
    ("invalid arguments", call(5, "get_item", {"n": "seven"}), True),
    ("an upstream 500", call(6, "broken", {}), True),
    ("an unknown tool", call(7, "nope", {}), True),
    ("a progress token", call(8, "spoken", {"n": 3}, progressToken="p-8"), True),
    ("tools/list", {"jsonrpc": "2.0", "id": 9, "method": "tools/list"}, True),
    ("ping", {"jsonrpc": "2.0", "id": 12, "method": "ping"}, True),
    ("arguments not an object", call(10, "get_item", [1]), False),
    ("the 2026-07-28 envelope", call(11, "get_item", {"n": 1}, **{"io.modelcontextprotocol/protocolVersion": VERSION}),
     False),
]  # fmt: skip


@pytest.mark.anyio
@pytest.mark.parametrize("version", SESSION_VERSIONS)
@pytest.mark.parametrize(("what", "message", "hot"), SESSION_CASES, ids=[case[0] for case in SESSION_CASES])
async def test_in_a_session_the_hot_path_answers_what_the_sdk_answers(
    tmp_path, upstream, sdk_runs, version, what, message, hot
):
    answered(upstream)
    async with two_servers(config_for(tmp_path, upstream.url)) as (hot_base, sdk_base):
        async with httpx2.AsyncClient(timeout=BOUND) as http:
            on_hot = await Session(http, hot_base, version).open()
            on_sdk = await Session(http, sdk_base, version).open()
            sdk_runs.clear()
            hot_answer = await on_hot.post(message)
            hot_seen = [(r.method, r.raw_path, r.query, r.body) for r in upstream.requests]
            assert sdk_runs == ([] if hot else [message["method"]])
            upstream.requests.clear()
            sdk_answer = await on_sdk.post(message)
            sdk_seen = [(r.method, r.raw_path, r.query, r.body) for r in upstream.requests]
    assert hot_answer == sdk_answer
    assert hot_seen == sdk_seen
    status, headers, body = hot_answer
    assert status == 200 and ("content-type", "text/event-stream") in headers
    priming = body.startswith(b"id: -\r\ndata: \r\nretry: 1000\r\n\r\n")
    assert priming == (version == "2025-11-25")
    if what == "ping":
        assert body.endswith(b'id: -\r\nevent: message\r\ndata: {"jsonrpc":"2.0","id":12,"result":{}}\r\n\r\n')


@pytest.mark.anyio
@pytest.mark.parametrize("hot_path", [True, False], ids=["hot path", "sdk"])
async def test_a_cancel_notification_in_a_session_cancels_the_call_which_is_answered_32800(
    tmp_path, holding, sdk_runs, hot_path
):
    held, url = holding
    config = write_tools(tmp_path, [hamsa_tool("slow", f"{url}/slow")])
    webtools = open_webtools([str(config)], log_filter=LOG_FILTER)
    async with serve_asgi(build_http_app(webtools, HttpSettings(hot_path=hot_path))) as base:
        async with httpx2.AsyncClient(timeout=BOUND) as http:
            session = await Session(http, base, "2025-11-25").open()
            sdk_runs.clear()
            sent = {**POST_HEADERS, "mcp-session-id": session.id, "mcp-protocol-version": session.version}
            async with http.stream("POST", f"{base}/mcp", json=call(3, "slow", {}), headers=sent) as response:
                await held.arrived("/slow")
                cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 3}}
                assert (await session.post(cancel))[0] == 202
                body = b"".join([chunk async for chunk in response.aiter_bytes()])
    events = [json.loads(line[6:]) for line in body.decode().splitlines() if line.startswith("data: {")]
    assert events == [{"jsonrpc": "2.0", "id": 3, "error": {"code": -32800, "message": "Request cancelled"}}]
    assert await held.finished("/slow") == "disconnected"  # the upstream request was abandoned with the call
    assert ("tools/call" in sdk_runs) is not hot_path
