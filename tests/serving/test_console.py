"""The web console's server side (`serve --ui`): its API answered to raw HTTP, next to real MCP clients.

The browser drives the same API in test_console_browser.py; here each guarantee is checked on the
wire: the token and Host/Origin checks, what the Tools view shows (and never shows), the dry run
being the CLI's, a call streaming its spoken messages before its result through the MCP call path,
the ring of audit records, the config's reload errors and warnings, the health figures. Every
console answer is fed to the suite's secrets scan.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import Implementation
from support import REPO, SCANNER, Reply, hamsa_tool, secret, serve_asgi, write_tools

from mcp_webtools.cli import commands as cli
from mcp_webtools.observe.metrics import DURATION_BUCKETS
from mcp_webtools.serving.console.health import quantile
from mcp_webtools.serving.http_app import HttpSettings, build_http_app
from mcp_webtools.serving.reload import Reloader
from mcp_webtools.serving.runtime import open_reloader, open_webtools
from mcp_webtools.serving.server import WebTools

pytestmark = pytest.mark.anyio

TOKEN = secret("console-token-never-shown-41d")
UPSTREAM_TOKEN = "upstream-never-shown-7a2c"
HEADER_SECRET = "x-key-never-shown-9e01"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JSON_POST = {**AUTH, "Content-Type": "application/json"}
CLIENT_INFO = Implementation(name="voice-agent", version="2.1")


def scanned(response: httpx2.Response, what: str) -> httpx2.Response:
    """Every console answer goes through the suite's secrets scan."""
    SCANNER.scan("output", f"console {what}", response.text)
    return response


def order_tool(url: str, **extra: Any) -> dict[str, Any]:
    """GET /orders/:orderId with the upstream's token, a secret header, and spoken messages."""
    params = {
        "type": "object",
        "properties": {
            "orderId": {"type": "string", "pattern": "^ORD-[0-9]+$", "description": "Order ID"},
            "expand": {"type": "boolean", "default": False},
        },
        "required": ["orderId"],
        "examples": [{"orderId": "ORD-1"}],
    }
    return hamsa_tool(
        "Get Order",
        f"{url}/orders/:orderId",
        "GET",
        params,
        authToken=UPSTREAM_TOKEN,
        httpHeaders={"X-Api-Key": HEADER_SECRET, "Accept": "application/json"},
        messages=[
            {"type": "request-start", "content": "Let me check on that order."},
            {"type": "request-response-delayed", "content": "Still looking, one moment."},
            {"type": "request-complete", "content": "Found it."},
        ],
        **extra,
    )


def ticket_tool(url: str) -> dict[str, Any]:
    params = {
        "type": "object",
        "properties": {
            "subject": {"type": "string", "minLength": 3},
            "priority": {"type": "string", "enum": ["low", "high"], "default": "low"},
        },
        "required": ["subject"],
        "additionalProperties": False,
    }
    return hamsa_tool("Create Ticket", f"{url}/tickets", "POST", params, authToken=UPSTREAM_TOKEN)


@dataclass
class Served:
    base: str
    http: httpx2.AsyncClient
    webtools: WebTools
    reloader: Reloader


@asynccontextmanager
async def console(config: Path, *, token: str | None = TOKEN, **settings: Any) -> AsyncIterator[Served]:
    """mcp-webtools over HTTP with the console on, in this process; a raw HTTP client for it."""
    webtools = open_webtools([str(config)])
    reloader = open_reloader(webtools, [str(config)], watch=False)
    app = build_http_app(webtools, HttpSettings(auth_token=token, ui=True, **settings), reloader)
    async with serve_asgi(app) as base, httpx2.AsyncClient(base_url=base, timeout=30) as http:
        yield Served(base, http, webtools, reloader)


@asynccontextmanager
async def mcp_http(base: str, era: str = "legacy") -> AsyncIterator[Client]:
    http = httpx2.AsyncClient(headers=AUTH, timeout=httpx2.Timeout(30, read=60))
    transport = streamable_http_client(f"{base}/mcp", http_client=http)
    async with http, Client(transport, mode=era, client_info=CLIENT_INFO) as client:
        yield client


async def ndjson(response: httpx2.Response) -> AsyncIterator[dict[str, Any]]:
    async for line in response.aiter_lines():
        if line.strip():
            SCANNER.scan("output", "console stream", line)
            yield json.loads(line)


# -- off by default; the token and the Host/Origin checks -----------------------------------------


async def test_the_console_is_off_unless_asked_for(upstream, tmp_path):
    config = write_tools(tmp_path, [order_tool(upstream.url)])
    app = build_http_app(open_webtools([str(config)]), HttpSettings())
    async with serve_asgi(app) as base, httpx2.AsyncClient(base_url=base) as http:
        assert (await http.get("/ui")).status_code == 404
        assert (await http.get("/ui/api/tools")).status_code == 404


def test_ui_needs_the_http_transport(tmp_path, capsys):
    config = write_tools(tmp_path, [hamsa_tool("Echo", "http://127.0.0.1:9/echo")])
    assert cli.main(["serve", "--config", str(config), "--ui"]) == 2
    assert "--ui needs --transport http" in capsys.readouterr().err


async def test_the_page_opens_without_the_token_and_its_api_does_not(upstream, tmp_path):
    async with console(write_tools(tmp_path, [order_tool(upstream.url)])) as served:
        http = served.http
        page = await http.get("/ui")
        script = await http.get("/ui/app.js")
        slash = await http.get("/ui/")
        refused = {
            "no token": await http.get("/ui/api/tools"),
            "wrong token": await http.get("/ui/api/tools", headers={"Authorization": "Bearer wrong-token"}),
            "wrong token, events": await http.get("/ui/api/events", headers={"Authorization": "Bearer nope"}),
            "wrong token, call": await http.post(
                "/ui/api/call",
                json={"tool": "get_order", "arguments": {"orderId": "ORD-1"}},
                headers={"Authorization": f"Bearer {TOKEN}x"},
            ),
        }
        allowed = await http.get("/ui/api/tools", headers=AUTH)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert (slash.status_code, slash.headers["location"]) == (308, "../ui")  # the page's links are relative to /ui
    for what, response in refused.items():
        assert response.status_code == 401, what
        assert response.headers["www-authenticate"] == 'Bearer realm="mcp-webtools"', what
    assert allowed.status_code == 200
    assert upstream.requests == []  # the refused call sent nothing


async def test_the_console_has_the_same_host_and_origin_checks_as_mcp(upstream, tmp_path):
    async with console(write_tools(tmp_path, [order_tool(upstream.url)])) as served:
        http = served.http
        rebound = {
            "page": await http.get("/ui", headers={"Host": "evil.example"}),
            "api": await http.get("/ui/api/tools", headers={**AUTH, "Host": "evil.example:80"}),
            "mcp": await http.post("/mcp", json={}, headers={**AUTH, "Host": "evil.example"}),
        }
        body = {"tool": "get_order", "arguments": {"orderId": "ORD-1"}}
        foreign = await http.post("/ui/api/call", json=body, headers={**JSON_POST, "Origin": "https://evil.example"})
        as_text = {**AUTH, "Content-Type": "text/plain"}
        as_form = await http.post("/ui/api/call", content=json.dumps(body), headers=as_text)
        own_origin = await http.post("/ui/api/dry-run", json=body, headers={**JSON_POST, "Origin": served.base})
    for what, response in rebound.items():
        assert response.status_code == 421, what
    assert foreign.status_code == 403
    assert as_form.status_code == 400  # a cross-site form cannot send JSON without a CORS preflight
    assert own_origin.status_code == 200
    assert upstream.requests == []


def test_the_page_is_small_and_self_contained():
    static = resources.files("mcp_webtools.serving.console").joinpath("static")
    files = {name: static.joinpath(name).read_text() for name in ("index.html", "app.js", "app.css")}
    assert sum(len(text.encode()) for text in files.values()) < 150 * 1024
    for name, text in files.items():
        # Nothing from elsewhere: no CDN, no web fonts, works offline.
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", ""), name
        assert "https://" not in text, name
    assert "innerHTML" not in files["app.js"]  # server texts become text nodes, never markup


# -- Tools ------------------------------------------------------------------------------------------


async def test_tools_show_what_the_model_sees_and_what_is_sent_without_secrets(upstream, tmp_path):
    config = write_tools(tmp_path, [order_tool(upstream.url), ticket_tool(upstream.url)])
    async with console(config) as served:
        tools = scanned(await served.http.get("/ui/api/tools", headers=AUTH), "tools").json()["tools"]
        async with mcp_http(served.base) as client:
            listed = (await client.list_tools()).tools
    assert UPSTREAM_TOKEN not in json.dumps(tools) and HEADER_SECRET not in json.dumps(tools)
    # What the model sees is exactly the tools/list entry, in the same order.
    wire = [tool.model_dump(by_alias=True, mode="json", exclude_none=True) for tool in listed]
    assert [tool["model"] for tool in tools] == wire
    ticket, order = tools
    assert order["examples"] == [{"orderId": "ORD-1"}]
    assert order["sent"]["method"] == "GET"
    assert order["sent"]["url"] == f"{upstream.url}/orders/:orderId"
    assert order["sent"]["arguments"] == [
        {"name": "orderId", "in": "path", "required": True},
        {"name": "expand", "in": "query", "required": False},
        {"name": "(any other argument)", "in": "query", "required": False},
    ]
    assert ticket["sent"]["arguments"] == [
        {"name": "subject", "in": "body", "required": True},
        {"name": "priority", "in": "body", "required": False},
    ]
    assert order["sent"]["auth"] == {"type": "Bearer token (authToken)", "header": "Authorization: Bearer ***"}
    assert order["sent"]["headers"] == [
        ["User-Agent", "mcp-webtools/0.1.0"],
        ["Authorization", "Bearer ***"],
        ["X-Api-Key", "***"],
        ["Accept", "application/json"],
    ]
    assert order["source"] == str(config)
    assert order["endpoints"] == ["/mcp", "/sse"]


async def test_tools_list_the_endpoints_that_serve_each(upstream, tmp_path):
    folder = tmp_path / "config"
    write_tools(folder, [order_tool(upstream.url), {**ticket_tool(upstream.url), "tags": ["helpdesk"]}])
    endpoints = {
        "endpoints": [{"name": "sales", "tools": ["get_*"]}, {"name": "support", "tags": ["helpdesk"]}],
        "defaultEndpoint": "none",
    }
    (folder / "endpoints.json").write_text(json.dumps(endpoints))
    async with console(folder) as served:
        tools = (await served.http.get("/ui/api/tools", headers=AUTH)).json()["tools"]
        overview = (await served.http.get("/ui/api/overview", headers=AUTH)).json()
    assert {tool["name"]: tool["endpoints"] for tool in tools} == {
        "create_ticket": ["/mcp/support", "/sse/support"],
        "get_order": ["/mcp/sales", "/sse/sales"],
    }
    assert overview["endpoints"] == ["/mcp/sales", "/sse/sales", "/mcp/support", "/sse/support"]


# -- Try: dry run and call -----------------------------------------------------------------------------


async def test_each_tools_auth_is_shown_as_list_says_it_never_a_value(upstream, tmp_path):
    basic = {"type": "basic", "username": secret("console-user-5501"), "password": secret("console-pass-5502")}
    query = {"type": "apiKey", "in": "query", "name": "api_key", "value": secret("console-query-key-5503")}
    header = {"type": "apiKey", "in": "header", "name": "X-Key", "value": secret("console-header-key-5504")}
    forward = {"header": "X-Upstream-Authorization", "as": "Authorization", "fallback": "auth"}

    def tool(name: str, **extra: Any) -> dict[str, Any]:
        return {"name": name, "description": "d", "methodType": "GET", "url": f"{upstream.url}/x", **extra}

    config = write_tools(
        tmp_path,
        [
            tool("A Basic", auth=basic),
            tool("B Query", auth=query),
            tool("C Header", auth=header),
            tool("D Caller", auth={"type": "bearer", "token": secret("console-fallback-5505")}, forwardCaller=forward),
            tool("E Caller Only", forwardCaller={"header": "X-User-Token", "as": "X-Token"}),
            tool("F None", auth={"type": "none"}),
        ],
    )
    async with console(config) as served:
        tools = scanned(await served.http.get("/ui/api/tools", headers=AUTH), "tools").json()["tools"]
    sent = {tool["name"]: tool["sent"] for tool in tools}
    assert {name: shown["auth"] for name, shown in sent.items()} == {
        "a_basic": {"type": "basic", "header": "Authorization: Basic ***"},
        "b_query": {"type": "apiKey", "header": "?api_key=***"},
        "c_header": {"type": "apiKey", "header": "X-Key: ***"},
        "d_caller": {
            "type": "forwardCaller",
            "header": "Authorization: <from the caller's X-Upstream-Authorization header>",
            "fallback": "bearer, Authorization: Bearer ***",
        },
        "e_caller_only": {
            "type": "forwardCaller",
            "header": "X-Token: <from the caller's X-User-Token header>",
            "fallback": "refused",
        },
        "f_none": {"type": "none", "header": ""},
    }
    assert ["Authorization", "<from the caller's X-Upstream-Authorization header>"] in sent["d_caller"]["headers"]
    assert ["X-Token", "<from the caller's X-User-Token header>"] in sent["e_caller_only"]["headers"]
    assert ["X-Key", "***"] in sent["c_header"]["headers"]


async def test_the_dry_run_is_the_cli_dry_run_and_validation_is_the_tools_own(upstream, tmp_path, capsys):
    config = write_tools(tmp_path, [order_tool(upstream.url), ticket_tool(upstream.url)])
    arguments = {"subject": "Broken screen", "priority": "high"}
    argv = ["call", "create_ticket", "--config", str(config), "--dry-run", "--args", json.dumps(arguments)]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    async with console(config) as served:
        http = served.http
        good = {"tool": "create_ticket", "arguments": arguments}
        dry = await http.post("/ui/api/dry-run", json=good, headers=JSON_POST)
        bad = {"tool": "create_ticket", "arguments": {"subject": "no", "colour": "red"}}
        invalid = await http.post("/ui/api/dry-run", json=bad, headers=JSON_POST)
        async with mcp_http(served.base) as client:
            refused = await client.call_tool("create_ticket", bad["arguments"])
        calls = (await http.get("/ui/api/calls", headers=AUTH)).json()["calls"]
    assert scanned(dry, "dry run").json() == {"ok": True, "problems": [], "request": printed}
    assert "Authorization: Bearer ***" in printed and UPSTREAM_TOKEN not in printed
    problems = scanned(invalid, "dry run").json()["problems"]
    assert problems == [
        {"field": "colour", "message": "is not an accepted parameter"},
        {"field": "subject", "message": "'no' is too short"},
    ]
    # The same problems, in the same words, as an MCP client's tools/call gets back.
    assert refused.is_error is True
    assert refused.content[0].text.splitlines()[1:] == [f"- {p['field']}: {p['message']}" for p in problems]
    # Dry runs are not calls: only the MCP client's refused call was recorded.
    assert [(c["tool"], c["outcome"]) for c in calls] == [("create_ticket", "invalid_arguments")]
    assert upstream.requests == []


async def test_a_call_streams_its_spoken_messages_then_its_result_through_the_mcp_call_path(upstream, tmp_path):
    release = anyio.Event()
    answer = Reply(200, b'{"status": "shipped"}', [("content-type", "application/json")], wait=release)
    upstream.reply("GET", "/orders/ORD-7", answer)
    tool = order_tool(upstream.url, delayedMessageSeconds=0.2)  # said while the upstream is held
    async with console(write_tools(tmp_path, [tool])) as served:
        body = {"tool": "get_order", "arguments": {"orderId": "ORD-7"}}
        events: list[dict[str, Any]] = []
        async with served.http.stream("POST", "/ui/api/call", json=body, headers=JSON_POST) as response:
            assert response.headers["content-type"] == "application/x-ndjson"
            async for event in ndjson(response):
                events.append(event)
                if event.get("message") == "Still looking, one moment.":
                    release.set()  # the delayed message came while the upstream still held the call
        calls = scanned(await served.http.get("/ui/api/calls", headers=AUTH), "calls").json()["calls"]
        metrics = (await served.http.get("/metrics", headers=AUTH)).text
    assert [e["type"] for e in events] == ["started", "progress", "progress", "progress", "result"]
    assert [e.get("message") for e in events[1:4]] == [
        "Let me check on that order.",
        "Still looking, one moment.",
        "Found it.",
    ]
    assert [e["total"] for e in events[1:4]] == [None, None, 3.0]
    result = events[-1]["result"]
    assert result["isError"] is False
    assert result["structuredContent"] == {"status": "shipped", "api_response_status": 200}
    assert result["_meta"]["mcp-webtools/http"]["status"] == 200
    assert events[-1]["ms"] >= events[2]["ms"] >= events[1]["ms"]
    # The upstream saw exactly what an MCP tools/call sends: defaults filled, the tool's own credentials.
    (seen,) = upstream.requests
    assert (seen.method, seen.raw_path, seen.query) == ("GET", "/orders/ORD-7", "expand=false")
    assert seen.headers["authorization"] == f"Bearer {UPSTREAM_TOKEN}" and seen.headers["x-api-key"] == HEADER_SECRET
    assert TOKEN not in json.dumps(seen.headers)
    (call,) = calls
    assert call["client"] == "web console (http 127.0.0.1)"
    assert call["request_id"] == events[0]["request_id"] == "console-1"
    assert (call["tool"], call["outcome"], call["status"], call["attempts"]) == ("get_order", "ok", 200, 1)
    # The console is opened by the operator's --auth-token: its calls are the client `default`'s.
    assert 'mcp_webtools_tool_calls_total{client="default",outcome="ok",tool="get_order"} 1.0' in metrics


async def test_closing_the_page_cancels_its_call(tmp_path, holding):
    app, url = holding
    async with console(write_tools(tmp_path, [hamsa_tool("Slow", f"{url}/slow")])) as served:
        body = {"tool": "slow", "arguments": {}}
        async with served.http.stream("GET", "/ui/api/events", headers=AUTH) as stream:
            events = ndjson(stream)
            assert (await anext(events))["type"] == "hello"
            async with served.http.stream("POST", "/ui/api/call", json=body, headers=JSON_POST) as response:
                async for event in ndjson(response):
                    assert event["type"] == "started"
                    await app.arrived("/slow")
                    break  # the page goes away while the upstream holds the call
            finished = await anext(events)
        assert await app.finished("/slow") == "disconnected"  # the upstream request was abandoned too
    assert finished["type"] == "call"
    assert (finished["call"]["tool"], finished["call"]["outcome"]) == ("slow", "cancelled")


# -- Calls: the ring of audit records, live ------------------------------------------------------------


@pytest.mark.parametrize("era", ["legacy", "auto"])
async def test_calls_of_mcp_clients_arrive_live_redacted_as_in_the_audit_log(
    upstream,
    tmp_path,
    audit_log,
    era,  # noqa: F811 - the fixture imported above
):
    key = secret("query-key-never-shown-5b")
    # The key is written into the URL itself, so the URL template (which the audit record names) holds it.
    tool = hamsa_tool("Lookup", f"{upstream.url}/lookup?key={key}", authToken="Bearer ${LOOKUP_TOKEN}")
    os.environ["LOOKUP_TOKEN"] = key
    try:
        config = write_tools(tmp_path, [tool])
        async with console(config) as served:
            events = []
            async with served.http.stream("GET", "/ui/api/events", headers=AUTH) as stream:
                lines = ndjson(stream)
                events.append(await anext(lines))  # connected: calls from now on arrive here
                async with mcp_http(served.base, era) as client:
                    result = await client.call_tool("lookup", {})
                events.append(await anext(lines))
            calls = scanned(await served.http.get("/ui/api/calls", headers=AUTH), "calls").json()["calls"]
    finally:
        del os.environ["LOOKUP_TOKEN"]
    assert result.is_error is False
    assert events[0]["type"] == "hello" and events[0]["pid"] == os.getpid()
    assert events[1] == {"type": "call", "call": calls[0]}
    (call,) = calls
    assert key not in json.dumps(call)
    assert call["url_template"] == f"{upstream.url}/lookup?key=***"
    # Its clientInfo, in either era, and the configured client (the --auth-token's) the audit record names.
    assert call["client"] == "voice-agent 2.1 (http 127.0.0.1, client default)"
    # The ring holds the audit record's own fields, redacted the same way (`client` as the page says it).
    (record,) = audit_log
    assert record.client == "default"
    logged = {name: getattr(record, name) for name in record.__dict__ if name in call and name != "client"}
    assert logged == {name: call[name] for name in logged}
    assert set(logged) == {
        "tool", "method", "url_template", "outcome", "status", "attempts", "duration_ms", "request_bytes",
        "response_bytes", "request_id",
    }  # fmt: skip


# -- Config: files, tools per file, the last reload ----------------------------------------------------


async def test_config_shows_files_tools_and_every_error_and_warning_of_the_last_reload(upstream, tmp_path):
    folder = tmp_path / "config"
    write_tools(folder, [order_tool(upstream.url)], name="orders.json")
    tickets = write_tools(folder, [ticket_tool(upstream.url)], name="tickets.json")
    async with console(folder) as served:
        http = served.http
        before = scanned(await http.get("/ui/api/config", headers=AUTH), "config").json()
        broken = {**ticket_tool(upstream.url), "toolSettings": {"methodType": "POST"}, "retries": 3}
        tickets.write_text(json.dumps(broken))
        reloaded = scanned(await http.post("/ui/api/reload", headers=JSON_POST), "reload").json()
        after = scanned(await http.get("/ui/api/config", headers=AUTH), "config").json()
        tickets.write_text(json.dumps({**ticket_tool(upstream.url), "retries": 3}))
        fixed = (await http.post("/ui/api/reload", headers=JSON_POST)).json()
        warned = scanned(await http.get("/ui/api/config", headers=AUTH), "config").json()
    assert before["files"] == [
        {"path": str(folder / "orders.json"), "tools": ["get_order"]},
        {"path": str(tickets), "tools": ["create_ticket"]},
    ]
    assert before["last_reload"] is None and before["tools"] == 2 and before["paths"] == [str(folder)]
    assert reloaded["ok"] is False and reloaded["trigger"] == "request"
    assert after["last_reload"] == reloaded
    assert after["files"] == before["files"]  # the last good set keeps serving
    (error,) = reloaded["errors"]
    assert (error["file"], error["tool"], error["field"]) == (str(tickets), "Create Ticket", "toolSettings.serverUrl")
    assert error["text"].startswith(f"{tickets}: tool 'Create Ticket': field `toolSettings.serverUrl`: ")
    assert fixed["ok"] is True
    (warning,) = warned["last_reload"]["warnings"]
    assert (warning["file"], warning["field"]) == (str(tickets), "retries")


# -- Health --------------------------------------------------------------------------------------------


def test_quantiles_are_read_from_the_histogram_as_prometheus_does():
    bounds = [*DURATION_BUCKETS, float("inf")]
    # 10 calls: 4 under 5 ms, 4 more under 10 ms, 2 more under 25 ms (cumulative, as Prometheus keeps them).
    counts = [0, 0, 4, 8, 10, *[10] * (len(bounds) - 5)]
    assert quantile(0.5, counts) == pytest.approx(0.005 + 0.005 * (1 / 4))
    assert quantile(0.95, counts) == pytest.approx(0.01 + 0.015 * (1.5 / 2))
    assert quantile(0.5, [0] * len(bounds)) is None
    assert quantile(0.99, [0] * (len(bounds) - 1) + [3]) == DURATION_BUCKETS[-1]  # all past the last bound


async def test_health_counts_calls_errors_latency_and_calls_in_flight_from_the_metrics(upstream, tmp_path):
    upstream.reply_json("GET", "/orders/ORD-404", {"error": "no such order"}, status=404)
    async with console(write_tools(tmp_path, [order_tool(upstream.url)])) as served:
        async with mcp_http(served.base) as client:
            for order in ("ORD-1", "ORD-2", "ORD-404"):
                await client.call_tool("get_order", {"orderId": order})
        health = scanned(await served.http.get("/ui/api/health", headers=AUTH), "health").json()
    assert health["totals"] == {"calls": 3, "errors": 1, "outcomes": {"http_error": 1, "ok": 2}}
    latest = health["points"][-1]
    assert latest["error_rate"] == pytest.approx(1 / 3, abs=1e-3)
    assert latest["calls_per_second"] > 0
    assert 0 < latest["p50_ms"] <= latest["p95_ms"]
    assert latest["in_flight"] == 0
    assert health["workers"] == 1


@pytest.mark.e2e
async def test_with_workers_each_page_says_whose_calls_it_shows(upstream, tmp_path):
    from support import http_server_process

    config = write_tools(tmp_path, [order_tool(upstream.url)])
    async with http_server_process(config, "--ui", "--workers", "2", "--stateless") as server:
        match = await server.wait_for_log(r"web console at (http://127\.0\.0\.1:\d+)/ui")
        async with httpx2.AsyncClient(base_url=match.group(1), timeout=30) as http:
            overview = (await http.get("/ui/api/overview")).json()
            page = (await http.get("/ui/app.js")).text
    assert overview["workers"] == 2 and overview["pid"] != server.process.pid
    assert "shows the calls, metrics and" in page  # the note the page puts at the top with workers > 1


def test_the_readme_names_the_console():
    readme, operations = (REPO / "README.md").read_text(), (REPO / "docs" / "operations.md").read_text()
    assert "docs/operations.md#web-console" in readme and "http://127.0.0.1:8000/ui" in readme
    assert "## Web console" in operations and "serve --transport http --ui" in operations
