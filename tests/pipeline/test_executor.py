"""An upstream that hangs, is down, fails, answers too much, misbehaves or echoes secrets.

Every fault must become a tool error (`isError: true`) that says what happened, with nothing
secret in it, and the connection must keep serving the next call.
"""

from __future__ import annotations

import json
import os
import socket
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
from support import ERAS, TRANSPORTS, Recorded, Reply, Upstream, hamsa_tool, mcp_client, serve_asgi, write_tools

from mcp_webtools.serving.http_app import HttpSettings, build_http_app
from mcp_webtools.serving.runtime import ServerOptions, open_webtools

pytestmark = pytest.mark.anyio

META_HTTP = "mcp-webtools/http"
JSON = [("content-type", "application/json")]
COMBOS = [(transport, era) for transport in TRANSPORTS for era in ERAS]


def text_of(result: types.CallToolResult) -> str:
    assert len(result.content) == 1 and isinstance(result.content[0], types.TextContent), result.content
    return result.content[0].text


def assert_failure_meta(result: types.CallToolResult) -> None:
    """No HTTP status when there was no answer, but the time spent waiting is there."""
    meta = result.meta[META_HTTP]
    assert set(meta) == {"elapsedMs"} and isinstance(meta["elapsedMs"], float), meta


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@asynccontextmanager
async def capped_client(config: Path, max_response_bytes: int) -> AsyncIterator[Client]:
    """Like `support.mcp_client("http", "legacy", ...)`, with a small response size cap."""
    webtools = open_webtools(
        [str(config)], environ=os.environ, options=ServerOptions(max_response_bytes=max_response_bytes)
    )
    async with serve_asgi(build_http_app(webtools, HttpSettings())) as base:
        http = httpx2.AsyncClient(timeout=httpx2.Timeout(30, read=60))
        async with http, Client(streamable_http_client(f"{base}/mcp", http_client=http), mode="legacy") as client:
            yield client


class TricklingUpstream(Upstream):
    """Sends the status and the first bytes of a body, then never finishes it."""

    def __init__(self, head: bytes) -> None:
        super().__init__()
        self.head = head
        self.hang = anyio.Event()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": self.head, "more_body": True})
        with anyio.move_on_after(60):
            await self.hang.wait()


# --- a hanging upstream ---------------------------------------------------------------------------


@pytest.mark.parametrize(("transport", "era"), COMBOS, ids=["-".join(combo) for combo in COMBOS])
async def test_timeouts_are_tool_errors_and_calls_run_concurrently(upstream, tmp_path, transport, era):
    never, held, release = anyio.Event(), anyio.Event(), anyio.Event()

    async def hold(seen: Recorded) -> Reply:
        held.set()
        await release.wait()
        return Reply(200, b'{"held": true}', JSON)

    upstream.reply("GET", "/never", Reply(wait=never))
    upstream.reply("GET", "/held", hold)
    config = write_tools(
        tmp_path,
        [
            hamsa_tool("Never", f"{upstream.url}/never", timeOut=0.5),
            hamsa_tool("Held", f"{upstream.url}/held", timeOut=60),
            hamsa_tool("Fast", f"{upstream.url}/fast"),
        ],
    )
    try:
        async with mcp_client(transport, era, config) as client:
            # A call stuck upstream does not stop the next call on the same connection.
            results: list[types.CallToolResult] = []

            async def call_held() -> None:
                results.append(await client.call_tool("held", {}))

            async with anyio.create_task_group() as tg:
                tg.start_soon(call_held)
                await held.wait()
                fast = await client.call_tool("fast", {})
                assert fast.is_error is False and fast.structured_content["path"] == "/fast"
                release.set()
            assert results[0].structured_content == {"held": True, "api_response_status": 200}

            timed_out = await client.call_tool("never", {})
            assert timed_out.is_error is True
            assert text_of(timed_out) == "Calling 'never' failed: timed out after 0.5 s."
            assert_failure_meta(timed_out)

            after = await client.call_tool("fast", {})
            assert after.is_error is False and after.structured_content["path"] == "/fast"
    finally:
        never.set()
    assert [seen.raw_path for seen in upstream.requests] == ["/held", "/fast", "/never", "/fast"]


# --- an upstream that is down or fails ------------------------------------------------------------


async def test_connection_refused_is_a_tool_error(upstream, tmp_path):
    config = write_tools(
        tmp_path,
        [
            hamsa_tool("Down", f"http://127.0.0.1:{closed_port()}/x", authToken="sk_down_secret_1"),
            hamsa_tool("Up", f"{upstream.url}/up"),
        ],
    )
    async with mcp_client("http", "legacy", config) as client:
        down = await client.call_tool("down", {})
        up = await client.call_tool("up", {})
    assert down.is_error is True
    # A GET is idempotent, so the default policy tried it three times before giving up.
    assert text_of(down) == (
        "Calling 'down' failed after 3 attempts: could not connect to the upstream API (Connection refused)."
    )
    assert set(down.meta[META_HTTP]) == {"elapsedMs", "attempts"} and down.meta[META_HTTP]["attempts"] == 3
    assert up.is_error is False


@pytest.mark.parametrize(
    ("status", "reason", "reply_body", "content_type", "shown"),
    [
        (500, "Internal Server Error", b'{"error": "boom"}', "application/json", '{"error": "boom"}'),
        (
            502,
            "Bad Gateway",
            b"<html><body>upstream down</body></html>\n",
            "text/html",
            "<html><body>upstream down</body></html>",
        ),
        (503, "Service Unavailable", b"try later", "text/plain; charset=utf-8", "try later"),
        (504, "Gateway Timeout", b"\x89PNG\r\n", "image/png", None),
    ],
    ids=["json", "html", "text", "binary"],
)
async def test_server_errors_are_tool_errors_with_status_reason_and_body(
    upstream, tmp_path, status, reason, reply_body, content_type, shown
):
    upstream.reply("POST", "/jobs", Reply(status, reply_body, [("content-type", content_type)]))
    config = write_tools(tmp_path, hamsa_tool("Start Job", f"{upstream.url}/jobs", "POST"))
    async with mcp_client("http", "auto", config) as client:
        result = await client.call_tool("start_job", {})
    assert result.is_error is True
    expected = f"The upstream API answered HTTP {status} {reason}."
    assert text_of(result) == (expected if shown is None else f"{expected}\nResponse body:\n{shown}")
    assert result.meta[META_HTTP]["status"] == status
    assert len(upstream.requests) == 1  # not retried


NOT_FOLLOWED = (
    "was not followed: this tool does not follow redirects (followRedirects: true in its definition follows them "
    "within the same origin)."
)


@pytest.mark.parametrize(("transport", "era"), [("stdio", "legacy"), ("http", "auto")])
async def test_redirects_are_not_followed_and_cookies_not_kept(upstream, tmp_path, transport, era):
    """A redirect says it was not followed, why, and which setting follows it (it once said only "HTTP 302 Found.")."""
    token = "sk_live_redirect_token_5"
    upstream.reply("GET", "/moved", Reply(302, b"", [("location", f"{upstream.url}/elsewhere")]))
    upstream.reply("GET", "/relogin", Reply(303, b"", [("location", f"/login?token={token}")]))
    upstream.reply("GET", "/far", Reply(301, b"", [("location", "/" + "x" * 200)]))
    upstream.reply("GET", "/login", Reply(200, b"{}", [*JSON, ("set-cookie", "session=abc123; Path=/")]))
    tools = [hamsa_tool("Moved", f"{upstream.url}/moved"), hamsa_tool("Login", f"{upstream.url}/login")]
    tools.append(hamsa_tool("Relogin", f"{upstream.url}/relogin", authToken=token))
    tools.append(hamsa_tool("Far", f"{upstream.url}/far"))
    config = write_tools(tmp_path, tools)
    async with mcp_client(transport, era, config) as client:
        moved = await client.call_tool("moved", {})
        relogin = await client.call_tool("relogin", {})
        far = await client.call_tool("far", {})
        await client.call_tool("login", {})
        await client.call_tool("login", {})
    assert [(result.is_error, text_of(result)) for result in (moved, relogin, far)] == [
        (True, f"The upstream API answered HTTP 302 Found. The redirect to {upstream.url}/elsewhere {NOT_FOLLOWED}"),
        (True, f"The upstream API answered HTTP 303 See Other. The redirect to /login?token=*** {NOT_FOLLOWED}"),
        # A Location too long to quote whole is left out, never cut (a cut could split a secret).
        (True, f"The upstream API answered HTTP 301 Moved Permanently. The redirect {NOT_FOLLOWED}"),
    ]
    assert [seen.raw_path for seen in upstream.requests] == ["/moved", "/relogin", "/far", "/login", "/login"]
    assert "cookie" not in upstream.requests[4].headers


async def test_requests_that_cannot_be_built_are_tool_errors(upstream, tmp_path):
    params = {"type": "object", "properties": {"q": {"type": "string"}}}
    config = write_tools(tmp_path, [hamsa_tool("Search", f"{upstream.url}/search", "GET", params)])
    async with mcp_client("http", "legacy", config) as client:
        too_long = await client.call_tool("search", {"q": "x" * 70_000})
        fine = await client.call_tool("search", {"q": "x"})
    length = len(f"{upstream.url}/search?q=") + 70_000
    assert (too_long.is_error, text_of(too_long)) == (
        True,
        "Invalid arguments for tool 'search'; nothing was sent:\n"
        f"- q: makes the URL {length} characters long (encoded); at most 65536 fit in a URL",
    )
    assert fine.is_error is False
    assert [seen.query for seen in upstream.requests] == ["q=x"]


# --- an upstream that answers too much --------------------------------------------------------------


async def test_bodies_over_the_cap_are_truncated(upstream, tmp_path):
    big = json.dumps({"items": ["x" * 40] * 100}).encode()
    exact = json.dumps({"pad": "y" * (1024 - 11)}).encode()
    assert len(exact) == 1024
    upstream.reply("GET", "/big", Reply(200, big, JSON))
    upstream.reply("GET", "/exact", Reply(200, exact, JSON))
    upstream.reply("GET", "/big-error", Reply(500, b"e" * 3000, [("content-type", "text/plain")]))
    config = write_tools(
        tmp_path,
        [
            hamsa_tool("Big", f"{upstream.url}/big"),
            hamsa_tool("Exact", f"{upstream.url}/exact"),
            hamsa_tool("Big Error", f"{upstream.url}/big-error"),
        ],
    )
    async with capped_client(config, max_response_bytes=1024) as client:
        result = await client.call_tool("big", {})
        at_cap = await client.call_tool("exact", {})
        error = await client.call_tool("big_error", {})

    assert result.is_error is False and result.structured_content == {"api_response_status": 200}
    assert text_of(result) == (
        "[response truncated: the upstream body exceeded 1024 bytes; only the beginning is shown]\n"
        + big[:1024].decode()
    )
    assert result.meta[META_HTTP]["truncated"] is True and result.meta[META_HTTP]["status"] == 200

    assert at_cap.structured_content == {**json.loads(exact), "api_response_status": 200}
    assert "truncated" not in at_cap.meta[META_HTTP]

    assert error.is_error is True
    assert text_of(error) == (
        "The upstream API answered HTTP 500 Internal Server Error.\nResponse body:\n"
        + "e" * 1024
        + " [cut off at the response size limit]"
    )
    assert error.meta[META_HTTP]["truncated"] is True


async def test_reading_stops_at_the_cap(tmp_path):
    """A body that never ends still gives an answer: the cap stops the read, not the timeout."""
    app = TricklingUpstream(b"[" + b'"abcdefgh",' * 200)
    async with serve_asgi(app) as url:
        config = write_tools(tmp_path, hamsa_tool("Endless", f"{url}/endless", timeOut=10))
        try:
            async with capped_client(config, max_response_bytes=1024) as client:
                result = await client.call_tool("endless", {})
        finally:
            app.hang.set()
    assert result.is_error is False
    assert text_of(result).startswith("[response truncated: the upstream body exceeded 1024 bytes;")
    assert result.meta[META_HTTP]["truncated"] is True


# --- an upstream that answers JSON nested too deeply ------------------------------------------------

TOO_DEEP = (
    "[the upstream API answered with JSON nested more than 64 levels deep, too deep to pass on as structured "
    "content: it is passed on as text]"
)


def nested_objects(levels: int) -> str:
    """`{"a":{"a":...{}}}`: an object answer whose structured content is `levels` deep."""
    return '{"a":' * (levels - 1) + "{}" + "}" * (levels - 1)


@pytest.mark.parametrize(("transport", "era"), COMBOS, ids=["-".join(combo) for combo in COMBOS])
async def test_an_answer_nested_too_deeply_comes_back_as_text(upstream, tmp_path, transport, era):
    """`[[[...]]]` 300-900 levels deep (600-1800 bytes) once failed the call with JSON-RPC error 0
    "Maximum serialization depth exceeded": each is now a result the client can read."""
    bodies = {f"/lists{n}": "[" * n + "]" * n for n in (300, 600, 900)}
    bodies |= {"/objects64": nested_objects(64), "/objects65": nested_objects(65)}
    for path, body in bodies.items():
        upstream.reply("GET", path, Reply(200, body.encode(), JSON))
    fields = {"responseFields": ["[0]"]}  # a tool that needs the structure: an error it can explain
    tools = [hamsa_tool(path.strip("/"), f"{upstream.url}{path}") for path in bodies]
    tools.append({**hamsa_tool("Picked", f"{upstream.url}/lists300"), **fields})
    config = write_tools(tmp_path, tools)
    async with mcp_client(transport, era, config) as client:
        results = {path: await client.call_tool(path.strip("/"), {}) for path in bodies}
        picked = await client.call_tool("picked", {})
        after = await client.call_tool("objects64", {})  # the connection keeps serving

    for path in ("/lists300", "/lists600", "/lists900", "/objects65"):
        result = results[path]
        assert result.is_error is False, path
        assert [(block.type, block.text) for block in result.content] == [("text", TOO_DEEP), ("text", bodies[path])]
        assert result.structured_content == {"data": bodies[path], "api_response_status": 200}
    # 64 levels is the deepest structured content passed on as such.
    for result in (results["/objects64"], after):
        assert (result.is_error, text_of(result)) == (False, bodies["/objects64"])
        assert result.structured_content == {**json.loads(bodies["/objects64"]), "api_response_status": 200}
    assert picked.is_error is True
    assert text_of(picked) == (
        "The upstream API answered HTTP 200 with JSON nested more than 64 levels deep, too deep to pass on as "
        "structured content, so this tool's responseFields, flatten or outputSchema cannot be applied to it."
    )
    assert picked.structured_content == {"api_response_status": 200}
    assert [seen.raw_path for seen in upstream.requests] == [*bodies, "/lists300", "/objects64"]


async def test_an_answer_too_deep_to_parse_comes_back_as_text(upstream, tmp_path):
    """Deeper than Python's JSON parser goes (it raises RecursionError): text, not "not valid JSON"."""
    body = "[" * 100_000 + "]" * 100_000
    upstream.reply("GET", "/abyss", Reply(200, body.encode(), JSON))
    config = write_tools(tmp_path, {**hamsa_tool("Abyss", f"{upstream.url}/abyss"), "maxResultBytes": 4096})
    async with mcp_client("http", "auto", config) as client:
        result = await client.call_tool("abyss", {})
    assert result.is_error is False
    note, text, cut = (block.text for block in result.content)
    assert note == TOO_DEEP
    kept, _, rest = text.partition("…")
    assert kept == body[: len(kept)] and rest == f"[+{len(body) - len(kept)} chars]"
    assert cut.startswith("[Shortened to fit this tool's result budget of 4096 bytes")
    assert result.structured_content["api_response_truncated"]["droppedCharacters"] > 190_000


# --- an upstream that echoes secrets ---------------------------------------------------------------

TOKEN = "sk_live_echo_token_77"
API_KEY = "env-api-key/42+42"


def echo_secrets(seen: Recorded) -> Reply:
    """A 401 that quotes what it was sent, in the ways real APIs do."""
    body = {
        "error": "invalid credentials",
        "authorization": seen.headers["authorization"],
        "apiKey": seen.headers["x-api-key"],
        "retryUrl": f"https://api.example.com/retry?token={TOKEN}&key={quote(API_KEY, safe='')}",
    }
    return Reply(401, json.dumps(body).encode(), JSON)


@pytest.mark.parametrize(("transport", "era"), [("stdio", "legacy"), ("http", "auto")])
async def test_secrets_echoed_in_an_error_body_are_redacted(upstream, tmp_path, transport, era):
    upstream.reply("POST", "/login", echo_secrets)
    upstream.reply("GET", "/plain", Reply(403, f"denied for Bearer {TOKEN}".encode(), [("content-type", "text/plain")]))
    config = write_tools(
        tmp_path,
        [
            hamsa_tool(
                "Login", f"{upstream.url}/login", "POST", authToken=TOKEN, httpHeaders={"X-Api-Key": "${ECHO_API_KEY}"}
            ),
            hamsa_tool("Plain", f"{upstream.url}/plain", authToken=TOKEN),
        ],
    )
    async with mcp_client(transport, era, config, env={"ECHO_API_KEY": API_KEY}) as client:
        login = await client.call_tool("login", {})
        plain = await client.call_tool("plain", {})

    assert upstream.requests[0].headers["authorization"] == f"Bearer {TOKEN}"  # it really was sent
    assert login.is_error is True
    assert text_of(login) == (
        "The upstream API answered HTTP 401 Unauthorized.\nResponse body:\n"
        '{"error": "invalid credentials", "authorization": "Bearer ***", "apiKey": "***", '
        '"retryUrl": "https://api.example.com/retry?token=***&key=***"}'
    )
    assert text_of(plain) == "The upstream API answered HTTP 403 Forbidden.\nResponse body:\ndenied for Bearer ***"
    for result in (login, plain):
        wire = result.model_dump_json(by_alias=True)
        assert TOKEN not in wire and API_KEY not in wire


async def test_an_internal_failure_is_a_redacted_tool_error(upstream, tmp_path, monkeypatch):
    """A bug of ours while shaping a result: in the handshake era the SDK would send the
    exception's text, secret and all, as the JSON-RPC error; the client must get a tool error."""

    def broken(response: Any, redactor: Any, shaping: Any = None) -> types.CallToolResult:
        raise RuntimeError(f"could not map the answer to Bearer {TOKEN}")

    monkeypatch.setattr("mcp_webtools.calls.response_result", broken)  # in-process: HTTP transport
    config = write_tools(tmp_path, hamsa_tool("Login", f"{upstream.url}/login", authToken=TOKEN))
    async with mcp_client("http", "legacy", config) as client:
        result = await client.call_tool("login", {})
    assert result.is_error is True
    assert text_of(result) == (
        "Calling 'login' failed: an unexpected error occurred in mcp-webtools (the server log has the details)."
    )
