"""Graceful shutdown, cancelled calls, and the inbound request size limit.

On SIGTERM the HTTP server stops accepting, lets the calls in flight finish for up to the grace
period, then cancels the rest; a client that cancels a call (or gives up waiting) cancels its
upstream request. The upstream here holds every request until the test releases it and notes
whether the caller hung up first, so "cancelled" means: the upstream saw the connection close
before it answered.
"""

from __future__ import annotations

import json
import signal
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp import Client, ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from support import (
    ERAS,
    TRANSPORTS,
    ServerProcess,
    hamsa_tool,
    held_tools,
    http_server_process,
    mcp_client,
    serve_asgi,
    text_of,
    write_tools,
)

from mcp_webtools.serving.http_app import HttpSettings, build_http_app
from mcp_webtools.serving.runtime import open_webtools

pytestmark = pytest.mark.anyio

RELEASED = '{"released":true}'  # what the upstream answers when released, as the tool result's text
BOUND = 30  # seconds: every wait below is bounded, so a broken guarantee fails instead of hanging


def tool(name: str, url: str, **settings: object) -> dict:
    """A Hamsa-shaped tool without retries (`retry` is one of our top-level extension settings)."""
    return {**hamsa_tool(name, url, **settings), "retry": {"retries": 0}}


# -- graceful shutdown of `mcp-webtools serve --transport http` -----------------------------------


@asynccontextmanager
async def serve_subprocess(config: Path, *flags: str) -> AsyncIterator[ServerProcess]:
    async with http_server_process(config, *flags, bound=BOUND) as server:
        match = await server.wait_for_log(r"serving MCP at (http://127\.0\.0\.1:\d+)/mcp")
        server.url = match.group(1)
        yield server


@asynccontextmanager
async def connect(transport: str, era: str, url: str) -> AsyncIterator[Client | ClientSession]:
    if transport == "sse":
        async with sse_client(f"{url}/sse") as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            yield session
        return
    http = httpx2.AsyncClient(timeout=httpx2.Timeout(30, read=60))
    async with http, Client(streamable_http_client(f"{url}/mcp", http_client=http), mode=era) as client:
        yield client


def refuses_connections(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.mark.e2e
@pytest.mark.parametrize(("transport", "era"), [("http", "legacy"), ("http", "auto"), ("sse", "legacy")])
async def test_sigterm_lets_calls_finish_then_cancels_the_rest(holding, tmp_path, transport, era):
    upstream, url = holding
    held_tools(tmp_path, url, "Finish", "Stuck")
    # Never answered either; its 1 s timeout is the test's clock: once its answer is in, the
    # server has been shutting down for about a second (long enough for sse-starlette, left to
    # itself, to have closed every legacy answer stream, "finish"'s included).
    write_tools(tmp_path, [tool("Clock", f"{url}/clock", timeOut=1)], "clock.json")
    grace = ["--shutdown-grace", "3"]
    async with serve_subprocess(tmp_path, *grace) as server, connect(transport, era, server.url) as client:
        # The SDK client fetches tools/list after a call it has no listing for; after SIGTERM that
        # would need a new connection, which is refused.
        await client.list_tools()
        results: dict[str, types.CallToolResult] = {}
        clock_answered = anyio.Event()
        stuck_when_finish_answered: list[str | None] = []

        async def call(name: str) -> None:
            results[name] = await client.call_tool(name, {})
            if name == "finish":
                stuck_when_finish_answered.append(upstream.outcome.get("/stuck"))
            elif name == "clock":
                clock_answered.set()

        async with anyio.create_task_group() as tg:
            for name in ("finish", "stuck", "clock"):
                tg.start_soon(call, name)
            await upstream.arrived("/finish", "/stuck", "/clock")
            server.process.send_signal(signal.SIGTERM)
            await server.wait_for_log(r"shutting down: no new connections; waiting up to 3 s for 3 call\(s\) in flight")
            with anyio.fail_after(BOUND):
                await clock_answered.wait()
            assert text_of(results["clock"]) == "Calling 'clock' failed: timed out after 1 s."
            upstream.release("/finish")

        # Released after SIGTERM: it finished normally, while the other was still held.
        assert results["finish"].is_error is False and text_of(results["finish"]) == RELEASED
        assert stuck_when_finish_answered == [None]
        # Never released: cancelled when the grace period ended, with an answer that says so ...
        assert results["stuck"].is_error is True
        assert text_of(results["stuck"]) == (
            "Calling 'stuck' failed: mcp-webtools is shutting down and cancelled the call: "
            "it was still running after the 3 s grace period."
        )
        # ... and its upstream request was closed rather than left to run.
        assert await upstream.finished("/stuck") == "disconnected"
        assert upstream.outcome == {"/finish": "answered", "/stuck": "disconnected", "/clock": "disconnected"}
        assert refuses_connections(server.url)
        # uvicorn re-raises the signal once it is done, so the exit status says "terminated by SIGTERM".
        assert await server.exit_code() == -signal.SIGTERM
        assert "cancelled 1 call(s) in flight: it was still running after the 3 s grace period" in server.log
        assert "Traceback" not in server.log


@pytest.mark.e2e
async def test_idle_legacy_streams_do_not_hold_up_shutdown(holding, tmp_path):
    """A legacy client keeps a GET stream open for as long as it is connected; shutdown must not wait for it."""
    upstream, url = holding
    config = held_tools(tmp_path, url, "Finish")
    async with (
        serve_subprocess(config, "--shutdown-grace", "600") as server,
        connect("http", "legacy", server.url) as client,
    ):
        await client.list_tools()
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.call_tool, "finish", {})
            await upstream.arrived("/finish")
            server.process.send_signal(signal.SIGTERM)
            await server.wait_for_log(r"waiting up to 600 s for 1 call\(s\) in flight")
            upstream.release("/finish")
        # Well inside the 600 s grace: done once the call is, and nothing left to cancel.
        assert await server.exit_code() == -signal.SIGTERM
        assert "cancelled" not in server.log and "timeout graceful shutdown exceeded" not in server.log
        assert upstream.outcome == {"/finish": "answered"}


@pytest.mark.e2e
async def test_a_second_signal_cuts_the_grace_period_short(holding, tmp_path):
    upstream, url = holding
    held_tools(tmp_path, url, "Stuck")
    async with (
        serve_subprocess(tmp_path, "--shutdown-grace", "600") as server,
        connect("http", "auto", server.url) as client,
    ):
        await client.list_tools()
        async with anyio.create_task_group() as tg:

            async def call() -> None:
                result = await client.call_tool("stuck", {})
                assert text_of(result) == (
                    "Calling 'stuck' failed: mcp-webtools is shutting down and cancelled the call: "
                    "the shutdown was forced."
                )

            tg.start_soon(call)
            await upstream.arrived("/stuck")
            server.process.send_signal(signal.SIGTERM)
            await server.wait_for_log(r"waiting up to 600 s for 1 call\(s\) in flight")
            server.process.send_signal(signal.SIGINT)  # Ctrl-C again: do not wait out the grace
        assert await upstream.finished("/stuck") == "disconnected"
        assert await server.exit_code() == -signal.SIGTERM
        assert "cancelled 1 call(s) in flight: the shutdown was forced" in server.log


# -- a cancelled call cancels its upstream request -----------------------------------------------


@pytest.mark.parametrize("era", ERAS)
@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("how", ["cancel", "read timeout"])
async def test_a_cancelled_call_closes_its_upstream_request(holding, tmp_path, transport, era, how):
    upstream, url = holding
    config = held_tools(tmp_path, url, "Gone", "After")
    async with mcp_client(transport, era, config) as client:
        await client.list_tools()
        if how == "cancel":
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.call_tool, "gone", {})
                await upstream.arrived("/gone")
                tg.cancel_scope.cancel()
        else:
            # The timeout is the point here: long enough for the request to reach the upstream.
            with pytest.raises(MCPError) as timed_out:
                await client.call_tool("gone", {}, read_timeout_seconds=1.0)
            assert timed_out.value.error.code == types.REQUEST_TIMEOUT
        assert await upstream.finished("/gone") == "disconnected"
        # The server is none the worse: the next call on the same connection goes through.
        upstream.release("/after")
        after = await client.call_tool("after", {})
        assert after.is_error is False and text_of(after) == RELEASED
    assert upstream.outcome == {"/gone": "disconnected", "/after": "answered"}


async def test_a_legacy_http_client_that_just_hangs_up_cancels_its_call(holding, tmp_path):
    """No cancel notification this time: the client only closes the POST awaiting the answer.

    (The SDK client always sends one; a host that crashes or drops the connection does not.) A
    client of 2025-06-18 cannot resume the stream, so its call is abandoned; one of 2025-11-25 can,
    and its call goes on (tests/serving/test_resumable_streams.py).
    """
    upstream, url = holding
    app = build_http_app(open_webtools([str(held_tools(tmp_path, url, "Gone", "After"))]), HttpSettings())
    headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}

    def call(request_id: int, tool: str) -> bytes:
        return json.dumps(
            {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": {"name": tool}}
        ).encode()

    async with serve_asgi(app) as base, httpx2.AsyncClient(base_url=base, timeout=BOUND) as http:
        hello = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}
        opened = await http.post(
            "/mcp", headers=headers, json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": hello}
        )
        session = {**headers, "mcp-session-id": opened.headers["mcp-session-id"], "mcp-protocol-version": "2025-06-18"}
        await http.post("/mcp", headers=session, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
        async with anyio.create_task_group() as tg:

            async def hang_up_later() -> None:
                async with http.stream("POST", "/mcp", headers=session, content=call(2, "gone")) as answer:
                    await answer.aread()

            tg.start_soon(hang_up_later)
            await upstream.arrived("/gone")
            tg.cancel_scope.cancel()  # closes that connection
        assert await upstream.finished("/gone") == "disconnected"
        upstream.release("/after")
        after = await http.post("/mcp", headers=session, content=call(3, "after"))
        assert json.dumps(RELEASED)[1:-1] in after.text  # the session goes on
    assert upstream.outcome == {"/gone": "disconnected", "/after": "answered"}


# -- inbound request size ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "at_limit_answer"),
    [
        ("/mcp", (400, "Bad Request: Missing session ID")),
        ("/messages/?session_id=00000000000000000000000000000000", (404, "Could not find session")),
    ],
    ids=["streamable-http", "sse-messages"],
)
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_request_bodies_over_the_limit_get_413(tmp_path, path, at_limit_answer, chunked):
    config = write_tools(tmp_path, [tool("Any", "http://127.0.0.1:9/any")])
    app = build_http_app(open_webtools([str(config)]), HttpSettings(max_body_bytes=1000))
    headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}

    def body(size: int) -> Any:
        data = b'{"jsonrpc": "2.0", "method": "ping", "id": 1}'.ljust(size)
        if not chunked:
            return data

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(data), 300):
                yield data[start : start + 300]

        return chunks()

    async with serve_asgi(app) as base, httpx2.AsyncClient(base_url=base) as http:
        too_big = await http.post(path, content=body(1001), headers=headers)
        assert (too_big.status_code, too_big.text) == (413, "Request body too large")
        at_limit = await http.post(path, content=body(1000), headers=headers)
        # At the limit the body is read and handled (here: refused as out of session, not as too big).
        status, reason = at_limit_answer
        assert at_limit.status_code == status and reason in at_limit.text


@pytest.mark.e2e
async def test_max_inbound_bytes_flag(tmp_path):
    config = write_tools(tmp_path, [tool("Any", "http://127.0.0.1:9/any")])
    async with serve_subprocess(config, "--max-inbound-bytes", "2048") as server:
        async with httpx2.AsyncClient(base_url=server.url) as http:
            headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
            assert (await http.post("/mcp", content=b" " * 2049, headers=headers)).status_code == 413
            assert (await http.post("/mcp", content=b" " * 2048, headers=headers)).status_code == 400
        server.process.send_signal(signal.SIGTERM)
        assert await server.exit_code() == -signal.SIGTERM
