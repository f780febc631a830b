"""Hostile arguments and hostile JSON: refused before sending, or sent only in the documented form.

Every schema rule is enforced before anything goes out; a path value stays one percent-encoded
segment, and one holding a dot segment in any encoding is refused (proved behind a real nginx);
arguments never become headers; oversized and deeply nested arguments are clear tool errors; and
none of it crashes the server or reaches the upstream otherwise.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from support import (
    BAD_MESSAGES,
    ERAS,
    TRANSPORTS,
    Reply,
    Upstream,
    error_answer,
    hamsa_tool,
    http_server_process,
    mcp_client,
    nginx_proxy,
    serve_asgi,
    write_tools,
)

from mcp_webtools.arguments import MAX_DEPTH
from mcp_webtools.cli import commands as cli
from mcp_webtools.requests import MAX_URL_CHARS
from mcp_webtools.serving.http_app import HttpSettings, build_http_app
from mcp_webtools.serving.runtime import ServerOptions, open_webtools

pytestmark = pytest.mark.anyio

COMBOS = [(transport, era) for transport in TRANSPORTS for era in ERAS]
POST_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
}


def refused(tool: str, *problems: str) -> str:
    return f"Invalid arguments for tool {tool!r}; nothing was sent:\n" + "\n".join(f"- {p}" for p in problems)


def text_of(result: types.CallToolResult) -> str:
    assert len(result.content) == 1 and isinstance(result.content[0], types.TextContent), result.content
    return result.content[0].text


@asynccontextmanager
async def served(config: Path, options: ServerOptions | None = None) -> AsyncIterator[str]:
    """The server over in-process Streamable HTTP; yields its base URL."""
    webtools = open_webtools([str(config)], environ=os.environ, options=options or ServerOptions())
    async with serve_asgi(build_http_app(webtools, HttpSettings())) as base:
        yield base


@asynccontextmanager
async def client_for(base: str, era: str) -> AsyncIterator[Client]:
    http = httpx2.AsyncClient(timeout=httpx2.Timeout(30, read=60))
    async with http, Client(streamable_http_client(f"{base}/mcp", http_client=http), mode=era) as client:
        yield client


# -- every schema rule, before sending -------------------------------------------------------------------

# keyword: (schema, a value that breaks it, what the caller is told, a value that satisfies it)
RULES: dict[str, tuple[dict[str, Any], Any, str, Any]] = {
    "integer": ({"type": "integer"}, "1", "integer: '1' is not of type 'integer'", 1),
    "boolean": ({"type": "boolean"}, "true", "boolean: 'true' is not of type 'boolean'", True),
    "null": ({"type": "null"}, 0, "null: 0 is not of type 'null'", None),
    "enum": ({"enum": ["a", "b"]}, "c", "enum: 'c' is not one of ['a', 'b']", "a"),
    "const": ({"const": "fixed"}, "other", "const: 'fixed' was expected", "fixed"),
    "minLength": ({"type": "string", "minLength": 3}, "ab", "minLength: 'ab' is too short", "abc"),
    "maxLength": ({"type": "string", "maxLength": 3}, "abcd", "maxLength: 'abcd' is too long", "abc"),
    "pattern": (
        {"pattern": "^[A-Z]{3}-[0-9]+$"},
        "abc-1",
        "pattern: 'abc-1' does not match '^[A-Z]{3}-[0-9]+$'",
        "ABC-1",
    ),
    "email": ({"format": "email"}, "not-an-email", "email: 'not-an-email' is not a 'email'", "a@example.com"),
    "date": ({"format": "date"}, "2026-13-01", "date: '2026-13-01' is not a 'date'", "2026-12-01"),
    "dateTime": (
        {"format": "date-time"},
        "yesterday",
        "dateTime: 'yesterday' is not a 'date-time'",
        "2026-11-21T10:00:00Z",
    ),
    "uri": ({"format": "uri"}, "not a uri", "uri: 'not a uri' is not a 'uri'", "https://example.com/x"),
    "uuid": ({"format": "uuid"}, "1234", "uuid: '1234' is not a 'uuid'", "0b9e3a5e-5c1f-4a55-9d4b-7f2a0c6e1d11"),
    "ipv4": ({"format": "ipv4"}, "999.1.1.1", "ipv4: '999.1.1.1' is not a 'ipv4'", "10.0.0.1"),
    "minimum": ({"minimum": 1}, 0, "minimum: 0 is less than the minimum of 1", 1),
    "maximum": ({"maximum": 100}, 101, "maximum: 101 is greater than the maximum of 100", 100),
    "exclusiveMinimum": (
        {"exclusiveMinimum": 0},
        0,
        "exclusiveMinimum: 0 is less than or equal to the minimum of 0",
        1,
    ),
    "exclusiveMaximum": (
        {"exclusiveMaximum": 1},
        1,
        "exclusiveMaximum: 1 is greater than or equal to the maximum of 1",
        0,
    ),
    "multipleOf": ({"multipleOf": 0.5}, 0.3, "multipleOf: 0.3 is not a multiple of 0.5", 1.5),
    "minItems": ({"minItems": 1}, [], "minItems: [] should be non-empty", [1]),
    "maxItems": ({"maxItems": 1}, [1, 2], "maxItems: [1, 2] is too long", [1]),
    "uniqueItems": ({"uniqueItems": True}, [1, 1], "uniqueItems: [1, 1] has non-unique elements", [1, 2]),
    "items": ({"items": {"type": "string"}}, ["a", 1], "items[1]: 1 is not of type 'string'", ["a"]),
    "prefixItems": (
        {"prefixItems": [{"type": "string"}], "items": False},
        ["a", "b"],
        "prefixItems: Expected at most 1 item but found 1 extra: 'b'",
        ["a"],
    ),
    "contains": (
        {"contains": {"const": "x"}},
        ["a"],
        "contains: ['a'] does not contain items matching the given schema",
        ["x"],
    ),
    "minProperties": ({"minProperties": 1}, {}, "minProperties: {} should be non-empty", {"a": 1}),
    "maxProperties": (
        {"maxProperties": 1},
        {"a": 1, "b": 2},
        "maxProperties: {'a': 1, 'b': 2} has too many properties",
        {},
    ),
    "required": ({"type": "object", "required": ["id"]}, {}, "required.id: is required", {"id": "1"}),
    "extra": (
        {"properties": {"id": {}}, "additionalProperties": False},
        {"x": 2},
        "extra.x: is not an accepted parameter",
        {},
    ),
    "propertyNames": (
        {"propertyNames": {"pattern": "^[a-z]+$"}},
        {"Bad": 1},
        "propertyNames: 'Bad' does not match '^[a-z]+$'",
        {},
    ),
    "dependentRequired": (
        {"dependentRequired": {"card": ["cvv"]}},
        {"card": "4111"},
        "dependentRequired: 'cvv' is a dependency of 'card'",
        {"card": "4111", "cvv": "123"},
    ),
    "oneOf": (
        {"oneOf": [{"type": "string"}, {"type": "integer"}]},
        True,
        "oneOf: True is not valid under any of the given schemas",
        "s",
    ),
    "anyOf": (
        {"anyOf": [{"type": "string"}, {"type": "integer"}]},
        [],
        "anyOf: [] is not valid under any of the given schemas",
        3,
    ),
    "allOf": ({"allOf": [{"type": "integer"}, {"minimum": 5}]}, 4, "allOf: 4 is less than the minimum of 5", 5),
    "not": ({"not": {"const": "admin"}}, "admin", "not: 'admin' should not be valid under {'const': 'admin'}", "user"),
    "ifThen": (
        {"if": {"properties": {"kind": {"const": "a"}}, "required": ["kind"]}, "then": {"required": ["a"]}},
        {"kind": "a"},
        "ifThen.a: is required",
        {"kind": "a", "a": 1},
    ),
}


async def test_every_schema_rule_is_enforced_before_sending(upstream: Upstream, tmp_path):
    schema = {
        "type": "object",
        "properties": {"id": {"type": "string"}, **{name: rule[0] for name, rule in RULES.items()}},
        "required": ["id"],
        "additionalProperties": False,
    }
    webtools = open_webtools(
        [str(write_tools(tmp_path, [hamsa_tool("Rules", f"{upstream.url}/rules", "POST", schema)]))]
    )
    async with webtools.executor.client:
        for name, (_, bad, problem, good) in RULES.items():
            result = await webtools.calls.call("rules", {"id": "1", name: bad})
            assert (result.is_error, text_of(result)) == (True, refused("rules", problem)), name
            assert (await webtools.calls.call("rules", {"id": "1", name: good})).is_error is False, name
        # The top-level rules, every problem at once.
        result = await webtools.calls.call("rules", {"surplus": 1, "integer": 1.5})
        problems = ("id: is required", "surplus: is not an accepted parameter", "integer: 1.5 is not of type 'integer'")
        assert text_of(result) == refused("rules", *problems)
    # Exactly the valid calls were sent, each with exactly its arguments as the body.
    assert [r.json() for r in upstream.requests] == [{"id": "1", name: rule[3]} for name, rule in RULES.items()]


# -- path values ----------------------------------------------------------------------------------------

LONG = "x" * 10_000
DOT_SEGMENT = (
    "must not contain a '.' or '..' path segment (split on '/' or '\\', encoded or not): a proxy that decodes "
    "the URL would resolve it to another path"
)
PATH_VALUES = [  # value -> the one segment the upstream sees, or the problem the caller is told
    ("a/b", "a%2Fb"),
    ("%2f", "%252f"),
    ("a\r\nX-Injected: 1", "a%0D%0AX-Injected%3A%201"),
    ("a\x00b", "a%00b"),
    ("?admin=1#frag", "%3Fadmin%3D1%23frag"),
    ("...", "..."),
    ("v1.2..beta", "v1.2..beta"),
    (LONG, LONG),
    ("../../admin", f"name: {DOT_SEGMENT}"),
    ("%2e%2e", f"name: {DOT_SEGMENT}"),
    ("..%2fadmin", f"name: {DOT_SEGMENT}"),
    ("..\\..\\admin", f"name: {DOT_SEGMENT}"),
    ("\uff0e\uff0e", f"name: {DOT_SEGMENT}"),  # fullwidth dots: NFKC makes them dots
    ("..", f"name: {DOT_SEGMENT}"),
    (".", f"name: {DOT_SEGMENT}"),
    ("", "name: must not be empty: it fills a URL path segment"),
    ("y" * MAX_URL_CHARS, "name: makes the URL {length} characters long (encoded); at most 65536 fit in a URL"),
]


@pytest.mark.parametrize("era", ERAS)
async def test_path_values_stay_one_encoded_segment_or_are_refused(upstream: Upstream, tmp_path, era):
    params = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    config = write_tools(tmp_path, [hamsa_tool("File", f"{upstream.url}/files/:name/raw", "GET", params)])
    async with served(config) as base, client_for(base, era) as client:
        for value, expected in PATH_VALUES:
            result = await client.call_tool("file", {"name": value})
            if expected.startswith("name: "):
                expected = expected.format(length=len(f"{upstream.url}/files/{value}/raw"))
                assert (result.is_error, text_of(result)) == (True, refused("file", expected)), value
            else:
                assert result.is_error is False, (value, text_of(result))
    sent = [expected for value, expected in PATH_VALUES if not expected.startswith("name: ")]
    assert [(r.method, r.raw_path, r.query) for r in upstream.requests] == [
        ("GET", f"/files/{s}/raw", "") for s in sent
    ]


# -- dot segments behind a decoding proxy ---------------------------------------------------------------

DOT_SEGMENT_VALUES = [
    *("../admin", "..\\admin", "x/..", "./x", ".", "..", "x/../../admin", "..;/admin"),
    *("%2e%2e/admin", "%2E./admin", "..%2Fadmin", "%252e%252e%252fadmin", "%25252E%25252E/admin"),  # (double) encoded
    *("\uff0e\uff0e/admin", "\u2025/admin", "..\uff0fadmin", "..\uff3cadmin"),  # Unicode dots, slashes: NFKC
    *("%c0%ae%c0%ae/admin", "%EF%BC%8E%EF%BC%8E/admin", "%u002e%u002e/admin"),  # overlong UTF-8, IIS's %u
]


@pytest.mark.e2e
async def test_dot_segments_never_reach_the_backend_behind_a_decoding_proxy(upstream: Upstream, tmp_path):
    """nginx decodes `..%2Fadmin` and resolves the `..` before proxying to its backend: the tool's
    `/api/items/:itemId` then reached `/public/admin`. Every dot-segment value is refused now."""
    upstream.reply("GET", "/public/admin", Reply(200, b'{"admin": "the backend\'s admin page"}'))
    backend = upstream.url.removeprefix("http://")
    location = "        location /api/ { proxy_pass http://backend/public/; }"
    async with nginx_proxy(tmp_path / "nginx", location, f"    upstream backend {{ server {backend}; }}") as proxy:
        # What the tool used to send for itemId "../admin" (one encoded segment): nginx serves the admin page.
        async with httpx2.AsyncClient(base_url=proxy, timeout=30) as http:
            leaked = await http.get("/api/items/" + quote("../admin", safe=""))
        assert (leaked.status_code, leaked.json()) == (200, {"admin": "the backend's admin page"})
        assert [seen.raw_path for seen in upstream.requests] == ["/public/admin"]

        params = {"type": "object", "properties": {"itemId": {"type": "string"}}, "required": ["itemId"]}
        config = write_tools(tmp_path, [hamsa_tool("Item", f"{proxy}/api/items/:itemId", "GET", params)])
        expected = (True, refused("item", f"itemId: {DOT_SEGMENT}"))
        for transport, era in COMBOS:
            async with mcp_client(transport, era, config) as client:
                for value in DOT_SEGMENT_VALUES:
                    result = await client.call_tool("item", {"itemId": value})
                    assert (result.is_error, text_of(result)) == expected, value
                fine = await client.call_tool("item", {"itemId": "42"})
                assert (fine.is_error, fine.structured_content["path"]) == (False, "/public/items/42")
    assert [seen.raw_path for seen in upstream.requests] == ["/public/admin"] + ["/public/items/42"] * len(COMBOS)


# -- arguments never become headers ---------------------------------------------------------------------

HEADER_LIKE = {
    "Authorization": "Bearer stolen",
    "Host": "evil.example",
    "X-Tenant": "other-tenant",
    "Content-Length": "0",
    "Transfer-Encoding": "chunked",
    "region": "eu\r\nX-Injected: 1\r\n\r\nGET /admin HTTP/1.1",
    "note": "\r\nAuthorization: Bearer injected",
}


@pytest.mark.parametrize("era", ERAS)
@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_the_upstream_sees_exactly_the_configured_headers_whatever_the_arguments(
    upstream: Upstream, tmp_path, era, method
):
    # `region` is also mirrored into an inbound `Mcp-Param-Region` header by 2026-07-28 clients.
    properties = {"region": {"type": "string", "x-mcp-header": "Region"}, "note": {"type": "string"}}
    tool = hamsa_tool(
        "Find", f"{upstream.url}/find", method, {"type": "object", "properties": properties},
        authToken="tok-configured", httpHeaders={"X-Tenant": "acme"},
    )  # fmt: skip
    async with served(write_tools(tmp_path, [tool])) as base, client_for(base, era) as client:
        assert (await client.call_tool("find", {"region": "eu"})).is_error is False
        for name, value in HEADER_LIKE.items():
            assert (await client.call_tool("find", {name: value, "region": value})).is_error is False
    baseline, *hostile = upstream.requests
    body = [("content-type", "application/json")] if method == "POST" else []
    assert [(n, v) for n, v in baseline.header_list if n not in ("host", "accept-encoding", "content-length")] == [
        ("connection", "keep-alive"),
        ("user-agent", "mcp-webtools/0.1.0"),
        ("accept", "application/json"),
        *body,
        ("authorization", "Bearer tok-configured"),
        ("x-tenant", "acme"),
    ]
    for seen, (name, value) in zip(hostile, HEADER_LIKE.items(), strict=True):
        assert [(n, v) for n, v in seen.header_list if n != "content-length"] == [
            (n, v) for n, v in baseline.header_list if n != "content-length"
        ], name
        # The values went where arguments go, intact.
        sent = seen.json() if method == "POST" else dict(seen.query_pairs)
        assert sent == {name: value, "region": value}, name


# -- oversized arguments ------------------------------------------------------------------------------


@pytest.mark.parametrize("era", ERAS)
async def test_request_body_caps_per_tool_and_server_wide(upstream: Upstream, tmp_path, era):
    note = {"type": "object", "properties": {"note": {"type": "string"}}}
    tools = [
        {**hamsa_tool("Small", f"{upstream.url}/small", "POST", note), "maxRequestBytes": 64},
        hamsa_tool("Large", f"{upstream.url}/large", "PUT", note),
    ]
    options = ServerOptions(max_request_bytes=200)  # --max-request-bytes 200
    envelope = len(json.dumps({"note": ""}, separators=(",", ":")))
    async with served(write_tools(tmp_path, tools), options) as base, client_for(base, era) as client:
        for tool, cap in (("small", 64), ("large", 200)):
            at_cap = await client.call_tool(tool, {"note": "n" * (cap - envelope)})
            over = await client.call_tool(tool, {"note": "é" * (cap - envelope)})  # two bytes each in UTF-8
            assert at_cap.is_error is False, text_of(at_cap)
            size = envelope + 2 * (cap - envelope)
            problem = f"arguments: the request body would be {size} bytes; this tool accepts at most {cap}"
            assert (over.is_error, text_of(over)) == (True, refused(tool, problem))
    assert [(r.raw_path, len(r.body)) for r in upstream.requests] == [("/small", 64), ("/large", 200)]


def test_max_request_bytes_flag_on_call(tmp_path, capsys, monkeypatch):
    tool = hamsa_tool("Post", "http://127.0.0.1:9/p", "POST", {"type": "object"})
    config = str(write_tools(tmp_path, [tool]))
    argv = ["call", "post", "--dry-run", "--config", config, "--args", json.dumps({"n": "x" * 20})]
    assert cli.main([*argv, "--max-request-bytes", "28"]) == 0
    assert capsys.readouterr().out.endswith('\n\n{"n":"xxxxxxxxxxxxxxxxxxxx"}\n')
    assert cli.main([*argv, "--max-request-bytes", "27"]) == 1
    out = json.loads(capsys.readouterr().out)
    problem = "arguments: the request body would be 28 bytes; this tool accepts at most 27"
    assert (out["isError"], out["content"][0]["text"]) == (True, refused("post", problem))


async def test_an_oversized_mcp_request_is_refused_and_the_server_keeps_serving(upstream: Upstream, tmp_path):
    config = write_tools(tmp_path, [hamsa_tool("Post", f"{upstream.url}/p", "POST", {"type": "object"})])
    huge = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "post", "arguments": {"n": "x" * 5_000_000}},
    }
    async with served(config) as base:
        async with httpx2.AsyncClient(base_url=base, timeout=30) as http:
            headers = {
                **POST_HEADERS,
                "MCP-Protocol-Version": "2026-07-28",
                "Mcp-Method": "tools/call",
                "Mcp-Name": "post",
            }
            response = await http.post("/mcp", json=huge, headers=headers)
        assert response.status_code == 413
        async with client_for(base, "auto") as client:
            assert (await client.call_tool("post", {"n": 1})).is_error is False
    assert [r.json() for r in upstream.requests] == [{"n": 1}]


# -- deeply nested JSON -------------------------------------------------------------------------------


def nested(levels: int) -> Any:
    """An argument value that makes the arguments object `levels` deep in all (itself included)."""
    value: Any = "leaf"
    for level in range(levels - 1):
        value = {"a": value} if level % 2 else [value]
    return value


@pytest.mark.parametrize(("transport", "era"), COMBOS, ids=["-".join(c) for c in COMBOS])
async def test_deeply_nested_arguments_over_a_real_client(upstream: Upstream, tmp_path, transport, era):
    config = write_tools(tmp_path, [hamsa_tool("Deep", f"{upstream.url}/deep", "POST", {"type": "object"})])
    deepest = nested(MAX_DEPTH)
    async with mcp_client(transport, era, config) as client:
        assert (await client.call_tool("deep", {"v": deepest})).is_error is False
        for levels in (MAX_DEPTH + 1, 150):
            result = await client.call_tool("deep", {"v": nested(levels)})
            problem = f"arguments: are nested more than {MAX_DEPTH} levels deep"
            assert (result.is_error, text_of(result)) == (True, refused("deep", problem))
        assert (await client.call_tool("deep", {"v": 1})).structured_content["body"] == {"v": 1}
    assert [r.json() for r in upstream.requests] == [{"v": deepest}, {"v": 1}]


def raw_call(arguments: str, modern: bool) -> str:
    params = f'{{"name":"deep","arguments":{arguments}' + (f',"_meta":{json.dumps(MODERN_META)}}}' if modern else "}")
    return f'{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{params}}}'


@pytest.mark.parametrize("era", ["legacy", "modern"])
async def test_nesting_too_deep_to_parse_is_a_parse_error_not_a_crash(upstream: Upstream, tmp_path, era):
    """A client library refuses to send JSON this deep, so this one is written by hand."""
    config = write_tools(tmp_path, [hamsa_tool("Deep", f"{upstream.url}/deep", "POST", {"type": "object"})])
    modern = era == "modern"
    headers = {**POST_HEADERS, "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "deep"}
    async with served(config) as base, httpx2.AsyncClient(base_url=base, timeout=30) as http:
        if not modern:
            init = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}
            opened = await http.post(
                "/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init}, headers=POST_HEADERS
            )
            headers = {
                **POST_HEADERS,
                "Mcp-Session-Id": opened.headers["mcp-session-id"],
                "MCP-Protocol-Version": "2025-11-25",
            }
            await http.post("/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers)
        for levels in (1_000, 100_000):
            deep = '{"v":' + "[" * levels + "]" * levels + "}"
            response = await http.post("/mcp", content=raw_call(deep, modern), headers=headers)
            assert response.status_code == 400, response.text
            assert response.json()["error"]["code"] == -32700, response.text
            assert "Traceback" not in response.text
        response = await http.post("/mcp", content=raw_call('{"v":[[1]]}', modern), headers=headers)
        assert response.status_code == 200, response.text
        assert '\\"body\\":{\\"v\\":[[1]]}' in response.text
    assert [r.json() for r in upstream.requests] == [{"v": [[1]]}]


# -- bodies that are not one JSON-RPC message -----------------------------------------------------------

ECHO_PARAMS = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
INITIALIZE = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}


def sse_messages(text: str) -> list[dict[str, Any]]:
    """The JSON-RPC messages in a text/event-stream body (priming events carry no data)."""
    return [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:") and line[5:].strip()]


class RawSession:
    """One MCP session over raw HTTP on `endpoint`: the legacy or modern `/mcp`, or legacy HTTP+SSE."""

    def __init__(self, http: httpx2.AsyncClient, endpoint: str) -> None:
        self.http = http
        self.endpoint = endpoint
        self.path = "/mcp"
        self.headers = dict(POST_HEADERS)
        self._events: Any = None

    async def open(self) -> None:
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": INITIALIZE}
        if self.endpoint == "mcp-modern":
            self.headers.update({"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "echo"})
            return
        if self.endpoint == "mcp-legacy":
            opened = await self.http.post("/mcp", json=init, headers=POST_HEADERS)
            self.headers["Mcp-Session-Id"] = opened.headers["mcp-session-id"]
            self.headers["MCP-Protocol-Version"] = "2025-11-25"
        else:  # legacy HTTP+SSE: answers come on the GET /sse stream
            self.path = next(e["data"] for e in await self._next_events(1, "endpoint"))
            assert (await self.post(json.dumps(init))).status_code == 202
            assert (await self._next_events(1))[0]["id"] == 1
        initialized = json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"})
        assert (await self.post(initialized)).status_code == 202

    async def post(self, body: str) -> httpx2.Response:
        return await self.http.post(self.path, content=body.encode(), headers=self.headers)

    async def call_echo(self, request_id: int, n: int) -> dict[str, Any]:
        """A valid `tools/call`, and its answer wherever the endpoint gives it."""
        params: dict[str, Any] = {"name": "echo", "arguments": {"n": n}}
        if self.endpoint == "mcp-modern":
            params["_meta"] = MODERN_META
        call = {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}
        response = await self.post(json.dumps(call))
        if self.endpoint == "messages":
            assert response.status_code == 202, response.text
            return (await self._next_events(1))[0]
        assert response.status_code == 200, response.text
        if response.headers["content-type"].startswith("application/json"):
            return response.json()
        [answer] = sse_messages(response.text)
        return answer

    async def _next_events(self, count: int, kind: str = "message") -> list[Any]:
        """The next `count` events of `kind` on the SSE stream (`message` data parsed as JSON)."""
        found: list[Any] = []
        event = ""
        async for line in self._events:
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event == kind:
                found.append({"data": line[5:].strip()} if kind == "endpoint" else json.loads(line[5:]))
                if len(found) == count:
                    return found
        raise AssertionError("the SSE stream ended")


@asynccontextmanager
async def raw_session(base: str, endpoint: str) -> AsyncIterator[RawSession]:
    async with httpx2.AsyncClient(base_url=base, timeout=30) as http:
        session = RawSession(http, endpoint)
        if endpoint != "messages":
            await session.open()
            yield session
            return
        async with http.stream("GET", "/sse") as stream:
            session._events = stream.aiter_lines()
            await session.open()
            yield session


@pytest.mark.parametrize("endpoint", ["mcp-legacy", "mcp-modern", "messages"])
async def test_bodies_that_are_no_message_get_their_json_rpc_error_and_the_server_keeps_serving(
    upstream: Upstream, tmp_path, endpoint, caplog
):
    """Streamable HTTP in both eras and the legacy `/messages/`: HTTP 400 with the JSON-RPC error
    (ids 1.5, true and {} included: they used to get 202 and no answer), one WARNING line each."""
    caplog.set_level(logging.WARNING)
    config = write_tools(tmp_path, [hamsa_tool("Echo", f"{upstream.url}/echo", "POST", ECHO_PARAMS)])
    async with served(config) as base, raw_session(base, endpoint) as session:
        for n, (what, body, owed) in enumerate(BAD_MESSAGES):
            response = await session.post(body)
            answer = (response.status_code, response.headers["content-type"], response.json())
            assert answer == (400, "application/json", error_answer(owed)), what
            # Still serving, this session too: the next call is answered, and nothing else came first.
            echoed = await session.call_echo(100 + n, n)
            assert (echoed["id"], echoed["result"]["structuredContent"]["body"]) == (100 + n, {"n": n}), what
    assert [r.json() for r in upstream.requests] == [{"n": n} for n in range(len(BAD_MESSAGES))]
    path = re.escape(session.path.partition("?")[0])
    logged = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "mcp_webtools.protocol"]
    assert len(logged) == len(BAD_MESSAGES)
    for (level, message), (_, _, owed) in zip(logged, BAD_MESSAGES, strict=True):
        assert level == "WARNING"
        said = f"{owed['code']} {owed['message']}"
        assert re.fullmatch(rf"POST {path} from 127\.0\.0\.1:\d+: answered {re.escape(said)}", message)
    assert [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info] == []


async def post_cut_short(base: str, path: str, body: bytes, declared: int) -> bytes:
    """POST `body` announced as `declared` bytes long, then hang up; what the server sent back."""
    host, port = base.removeprefix("http://").split(":")
    head = f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
    head += f"Accept: application/json, text/event-stream\r\nContent-Length: {declared}\r\n\r\n"
    async with await anyio.connect_tcp(host, int(port)) as stream:
        await stream.send(head.encode() + body)
        await stream.send_eof()
        received = b""
        with anyio.fail_after(30):
            try:
                while True:
                    received += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return received


@pytest.mark.e2e
async def test_a_body_shorter_than_its_content_length_is_one_warning_line_not_a_traceback(upstream: Upstream, tmp_path):
    config = write_tools(tmp_path, [hamsa_tool("Echo", f"{upstream.url}/echo", "POST", ECHO_PARAMS)])
    async with http_server_process(config) as server:
        base = (await server.wait_for_log(r"serving MCP at (http://\S+)/mcp")).group(1)
        async with httpx2.AsyncClient(base_url=base, timeout=30) as http, http.stream("GET", "/sse") as events:
            endpoint = await anext(line[5:].strip() async for line in events.aiter_lines() if line.startswith("data:"))
            for path in ("/mcp", endpoint):
                assert await post_cut_short(base, path, b'{"jsonrpc":', 100) == b""  # the client is gone
                shown = re.escape(path.partition("?")[0])
                await server.wait_for_log(
                    rf"WARNING mcp_webtools\.protocol: POST {shown} from 127\.0\.0\.1:\d+: "
                    r"the client hung up after sending 11 of the 100 bytes of its body; nothing was done\n"
                )
        for n, era in enumerate(ERAS):  # and the server serves on
            async with client_for(base, era) as client:
                assert (await client.call_tool("echo", {"n": n})).is_error is False
        await server.wait_for_logs(r"call tool=echo ", len(ERAS))
        assert "Traceback" not in server.log and " ERROR " not in server.log, server.log
    assert [r.json() for r in upstream.requests] == [{"n": n} for n in range(len(ERAS))]
