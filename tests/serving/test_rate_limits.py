"""A tool's `rateLimit` and an upstream's 429 pause, end to end: real MCP clients, a recording upstream.

The server's clock for the buckets is the test's (`MemoryStore(clock=...)`), so "exactly how many
reach the upstream" and "retry in exactly N s" hold however slow the machine is; nothing sleeps.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from support import ERAS, ManualClock, Recorded, Reply, hamsa_tool, mcp_client, secret, serve_asgi, text_of, write_tools

from mcp_webtools.ratelimit import MemoryStore, RateLimits
from mcp_webtools.results import META_HTTP
from mcp_webtools.serving.http_app import HttpSettings, build_http_app
from mcp_webtools.serving.runtime import open_webtools
from mcp_webtools.serving.server import WebTools

pytestmark = pytest.mark.anyio

JSON = [("content-type", "application/json")]


def limited_tool(url: str, rate_limit: dict, **settings: object) -> dict:
    return {**hamsa_tool("Orders", url, timeOut=20), "retry": {"retries": 0}, "rateLimit": rate_limit, **settings}


@asynccontextmanager
async def served(config: Path, era: str, clock: ManualClock) -> AsyncIterator[tuple[Client, WebTools]]:
    webtools = open_webtools([str(config)])
    # The buckets and the pauses on the test's clock: the same object for the calls and the executor.
    webtools.calls.rate_limits = webtools.executor.pauses = RateLimits(MemoryStore(clock=clock))
    async with serve_asgi(build_http_app(webtools, HttpSettings())) as base:
        http = httpx2.AsyncClient(timeout=httpx2.Timeout(30, read=60))
        async with http, Client(streamable_http_client(f"{base}/mcp", http_client=http), mode=era) as client:
            yield client, webtools


def refused_text(seconds: str, which: str = "the rate limit of tool 'orders' (10 per hour) is reached") -> str:
    return f"Calling 'orders' was refused, nothing was sent: {which}; try again in {seconds} s."


@pytest.mark.parametrize("era", ERAS)
async def test_thirty_concurrent_calls_under_a_limit_of_ten_send_exactly_ten(upstream, tmp_path, caplog, era):
    upstream.reply_json("GET", "/orders", {"ok": True})
    config = write_tools(tmp_path, [limited_tool(f"{upstream.url}/orders", {"requests": 10, "per": "hour"})])
    clock = ManualClock()
    results: list[types.CallToolResult] = []
    caplog.set_level(logging.INFO, "mcp_webtools.audit")
    async with served(config, era, clock) as (client, webtools):

        async def call() -> None:
            results.append(await client.call_tool("orders", {}))

        async with anyio.create_task_group() as tg:
            for _ in range(30):
                tg.start_soon(call)
        assert len(upstream.requests) == 10
        passed = [r for r in results if not r.is_error]
        refused = [r for r in results if r.is_error]
        assert (len(passed), len(refused)) == (10, 20)
        assert {text_of(r) for r in refused} == {refused_text("360")}
        assert all(r.meta[META_HTTP] == {"retryAfterSeconds": 360.0, "limit": "tool 'orders'"} for r in refused)
        clock.now += 360  # one token refilled: one more call reaches the upstream, the next is refused
        assert (await client.call_tool("orders", {})).is_error is False
        again = await client.call_tool("orders", {})
        assert (again.is_error, text_of(again)) == (True, refused_text("360"))
        metrics = webtools.metrics.exposition().decode()
    assert len(upstream.requests) == 11
    outcomes = [record.outcome for record in caplog.records if record.name == "mcp_webtools.audit"]
    assert sorted(outcomes) == ["ok"] * 11 + ["rate_limited"] * 21
    rate_limited = [r for r in caplog.records if r.name == "mcp_webtools.audit" and r.outcome == "rate_limited"]
    assert all((r.status, r.attempts) == (None, 0) for r in rate_limited)
    assert 'mcp_webtools_tool_calls_total{client="none",outcome="rate_limited",tool="orders"} 21.0' in metrics


@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_a_tool_limit_holds_over_stdio_and_http(upstream, tmp_path, transport):
    """In a real `serve` process too (stdio); the server's own clock, so the wait is read as a bound."""
    upstream.reply_json("GET", "/orders", {"ok": True})
    config = write_tools(tmp_path, [limited_tool(f"{upstream.url}/orders", {"requests": 2, "per": "hour"})])
    async with mcp_client(transport, "auto", config) as client:
        results = [await client.call_tool("orders", {}) for _ in range(4)]
    assert len(upstream.requests) == 2
    assert [r.is_error for r in results] == [False, False, True, True]
    for result in results[2:]:
        wait = result.meta[META_HTTP]["retryAfterSeconds"]
        assert 1790 < wait <= 1800
        assert text_of(result) == refused_text(f"{wait:g}", "the rate limit of tool 'orders' (2 per hour) is reached")


@pytest.mark.parametrize("era", ERAS)
async def test_a_429_with_retry_after_pauses_the_tool_for_every_caller(upstream, tmp_path, era):
    def answer(seen: Recorded) -> Reply:
        if len(upstream.requests) == 1:
            return Reply(429, b"quota exceeded", [("retry-after", "120"), ("content-type", "text/plain")])
        return Reply(200, b'{"ok": true}', JSON)

    upstream.reply("GET", "/orders", answer)
    config = write_tools(tmp_path, [limited_tool(f"{upstream.url}/orders", {"requests": 100, "per": "second"})])
    clock = ManualClock()
    async with served(config, era, clock) as (client, _):
        first = await client.call_tool("orders", {})
        assert first.is_error and text_of(first).startswith("The upstream API answered HTTP 429 Too Many Requests.")
        paused = [await client.call_tool("orders", {}) for _ in range(3)]
        assert len(upstream.requests) == 1  # nothing sent in the pause
        which = "the upstream API of tool 'orders' asked to wait (HTTP 429 with Retry-After)"
        assert {text_of(r) for r in paused} == {refused_text("120", which)}
        assert {str(r.meta[META_HTTP]) for r in paused} == {
            str({"retryAfterSeconds": 120.0, "limit": "the upstream of tool 'orders'"})
        }
        clock.now += 119.5
        assert text_of(await client.call_tool("orders", {})) == refused_text("0.5", which)
        clock.now += 0.5
        after = await client.call_tool("orders", {})
    assert after.is_error is False and len(upstream.requests) == 2


async def test_a_429_pause_as_an_http_date_is_obeyed(upstream, tmp_path):
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)
    upstream.reply("GET", "/orders", Reply(429, b"", [("retry-after", when)]))
    config = write_tools(tmp_path, [limited_tool(f"{upstream.url}/orders", {"requests": 100, "per": "second"})])
    async with served(config, "auto", ManualClock()) as (client, _):
        await client.call_tool("orders", {})
        paused = await client.call_tool("orders", {})
    assert len(upstream.requests) == 1
    assert 85 <= paused.meta[META_HTTP]["retryAfterSeconds"] <= 91


async def test_a_retry_waits_out_a_pause_another_callers_429_started(upstream, tmp_path):
    """A retry after a 503 (no Retry-After, no backoff configured) waits while the tool is paused,
    so a retry does not hammer an upstream that asked everyone to wait."""
    arrivals: list[float] = []
    no_wait = {"retries": 1, "backoffSeconds": 0, "maxBackoffSeconds": 0}
    tool = limited_tool(f"{upstream.url}/orders", {"requests": 100, "per": "second"}, retry=no_wait)
    webtools = open_webtools([str(write_tools(tmp_path, [tool]))])
    store = webtools.calls.rate_limits.store
    assert isinstance(store, MemoryStore)

    def answer(seen: Recorded) -> Reply:
        arrivals.append(anyio.current_time())
        if len(arrivals) > 1:
            return Reply(200, b'{"ok": true}', JSON)
        store.pause_now("pause:orders", 1.0)  # as if another caller's 429 had said "1 s" meanwhile
        return Reply(503, b"", [])

    upstream.reply("GET", "/orders", answer)
    async with webtools.executor.client:
        result = await webtools.calls.call("orders", {})
    assert result.is_error is False and len(arrivals) == 2
    assert arrivals[1] - arrivals[0] >= 0.95


@pytest.mark.parametrize("era", ERAS)
async def test_an_endpoints_and_a_clients_limits_hold_with_the_tools(upstream, tmp_path, era):
    """`rateLimit` on an endpoint and on a client (config/endpoints.yaml) hold together with the tool's
    own, each call taking from all three: the client's runs out first, then the endpoint's."""
    upstream.reply_json("GET", "/orders", {"ok": True})
    write_tools(tmp_path, [limited_tool(f"{upstream.url}/orders", {"requests": 10, "per": "hour"})])
    tokens = {"ana": secret("ana-agent-token-never-shown"), "bo": secret("bo-agent-token-never-shown")}
    (tmp_path / "endpoints.yaml").write_text(
        "endpoints:\n"
        "  - {name: sales, tools: [orders], clients: [ana, bo], rateLimit: {requests: 3, per: hour}}\n"
        "clients:\n"
        "  - {id: ana, token: '${ANA_TOKEN}', rateLimit: {requests: 1, per: hour}}\n"
        "  - {id: bo, token: '${BO_TOKEN}'}\n"
    )
    environ = {"ANA_TOKEN": tokens["ana"], "BO_TOKEN": tokens["bo"]}
    webtools = open_webtools([str(tmp_path)], environ=environ)
    webtools.calls.rate_limits = webtools.executor.pauses = RateLimits(MemoryStore(clock=ManualClock()))
    results: dict[str, list[types.CallToolResult]] = {"ana": [], "bo": []}
    async with serve_asgi(build_http_app(webtools, HttpSettings())) as base:
        for who, calls in (("ana", 2), ("bo", 3)):
            headers = {"Authorization": f"Bearer {tokens[who]}"}
            http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=60))
            async with http, Client(streamable_http_client(f"{base}/mcp/sales", http_client=http), mode=era) as client:
                for _ in range(calls):
                    results[who].append(await client.call_tool("orders", {}))
    assert [r.is_error for r in results["ana"]] == [False, True]
    assert [r.is_error for r in results["bo"]] == [False, False, True]
    assert text_of(results["ana"][1]) == refused_text("3600", "the rate limit of client 'ana' (1 per hour) is reached")
    endpoint_full = "the rate limit of endpoint 'sales' (3 per hour) is reached"
    assert text_of(results["bo"][2]) == refused_text("1200", endpoint_full)
    assert results["bo"][2].meta[META_HTTP] == {"retryAfterSeconds": 1200.0, "limit": "endpoint 'sales'"}
    assert len(upstream.requests) == 3  # nothing was sent for a refused call