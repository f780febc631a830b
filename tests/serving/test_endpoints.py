"""Endpoints with their own tools and clients: two endpoints, three clients, real MCP clients.

`sales` serves `get_order` (by name) and `crm_*` (a glob); `support` serves the tools tagged
`helpdesk`. `hamsa-sales` opens sales, `hamsa-support` and `ide` (a `tokenSha256` client) open
support; the `--auth-token` opens everything, `/mcp` included.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import anyio.abc
import httpx2
import pytest
import yaml
from mcp import Client, ClientSession, StdioServerParameters
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.shared.subscriptions import ToolsListChanged
from support import (
    ERAS,
    LOG_FILTER,
    POST_HEADERS,
    RAW_INITIALIZE,
    REPO,
    Upstream,
    hamsa_tool,
    run_module,
    secret,
    serve_asgi,
    write_tools,
)

from mcp_webtools.errors import ConfigErrors
from mcp_webtools.loading import load_definitions
from mcp_webtools.ratelimit import RateLimit
from mcp_webtools.serving.http_app import HttpSettings, build_http_app
from mcp_webtools.serving.runtime import open_reloader, open_webtools

pytestmark = pytest.mark.anyio

SALES_TOKEN = secret("sales-token-1c9e4b7a")
SUPPORT_TOKEN = secret("support-token-77ad02f3")
IDE_TOKEN = secret("ide-token-0b5e19c2")
OPERATOR_TOKEN = secret("operator-token-4a8d")
ENV = {"SALES_AGENT_TOKEN": SALES_TOKEN, "SUPPORT_AGENT_TOKEN": SUPPORT_TOKEN}
SALES_TOOLS = ["crm_lookup", "get_order"]
SUPPORT_TOOLS = ["open_ticket"]
UNAUTHORIZED = {"error": "unauthorized", "error_description": "send Authorization: Bearer <token>"}
CHALLENGE = 'Bearer realm="mcp-webtools"'


def endpoints_document(**changes: object) -> dict:
    return {
        "endpoints": [
            {
                "name": "sales",
                "tools": ["get_order", "crm_*"],
                "clients": ["hamsa-sales"],
                "rateLimit": {"requests": 900, "per": "minute"},
            },
            {"name": "support", "tags": ["helpdesk"], "clients": ["hamsa-support", "ide"], "requiredScopes": ["s"]},
        ],
        "clients": [
            {"id": "hamsa-sales", "token": "${SALES_AGENT_TOKEN}"},
            {"id": "hamsa-support", "token": "${SUPPORT_AGENT_TOKEN}"},
            {"id": "ide", "tokenSha256": hashlib.sha256(IDE_TOKEN.encode()).hexdigest()},
        ],
        "defaultEndpoint": "all",
        **changes,
    }


def write_config(upstream: Upstream, directory: Path, **changes: object) -> Path:
    x = {"type": "object", "properties": {"x": {"type": "string"}}}
    tools = [
        hamsa_tool("get_order", f"{upstream.url}/orders/:x", "GET", x),
        hamsa_tool("crm_lookup", f"{upstream.url}/crm", "GET"),
        {**hamsa_tool("open_ticket", f"{upstream.url}/tickets", "POST"), "tags": ["helpdesk"]},
    ]
    write_tools(directory, tools)
    (directory / "endpoints.yaml").write_text(yaml.safe_dump(endpoints_document(**changes), sort_keys=False))
    return directory


@asynccontextmanager
async def served(config: Path, auth_token: str | None = OPERATOR_TOKEN) -> AsyncIterator[tuple[str, object]]:
    webtools = open_webtools([str(config)], environ=ENV, log_filter=LOG_FILTER)
    reloader = open_reloader(webtools, [str(config)], environ=ENV, watch=False, log_filter=LOG_FILTER)
    async with serve_asgi(build_http_app(webtools, HttpSettings(auth_token=auth_token), reloader)) as base:
        yield base, reloader


@asynccontextmanager
async def client_at(url: str, token: str, era: str, **options: object) -> AsyncIterator[Client]:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=httpx2.Timeout(30, read=60))
    async with http, Client(streamable_http_client(url, http_client=http), mode=era, **options) as client:
        yield client


async def tool_names(client: Client) -> list[str]:
    return sorted(tool.name for tool in (await client.list_tools()).tools)


async def unknown_tool_error(client: Client, name: str) -> str:
    with pytest.raises(MCPError) as caught:
        await client.call_tool(name, {})
    return caught.value.error.message


@pytest.mark.parametrize("era", ERAS)
async def test_each_client_sees_exactly_its_endpoints_tools(upstream, tmp_path, era):
    upstream.reply_json("GET", "/orders/7", {"status": "shipped"})
    async with served(write_config(upstream, tmp_path)) as (base, _):
        async with client_at(f"{base}/mcp/sales", SALES_TOKEN, era) as sales:
            assert await tool_names(sales) == SALES_TOOLS
            result = await sales.call_tool("get_order", {"x": "7"})
            assert not result.is_error and result.structured_content == {
                "status": "shipped",
                "api_response_status": 200,
            }
            assert [(r.method, r.raw_path) for r in upstream.requests] == [("GET", "/orders/7")]
            # Another endpoint's tool is unknown here, exactly as a tool that exists nowhere.
            assert await unknown_tool_error(sales, "open_ticket") == "Unknown tool: open_ticket"
            assert await unknown_tool_error(sales, "no_such_tool") == "Unknown tool: no_such_tool"
        for token in (SUPPORT_TOKEN, IDE_TOKEN):
            async with client_at(f"{base}/mcp/support", token, era) as support:
                assert await tool_names(support) == SUPPORT_TOOLS
                assert await unknown_tool_error(support, "get_order") == "Unknown tool: get_order"
        async with client_at(f"{base}/mcp", OPERATOR_TOKEN, era) as operator:
            assert await tool_names(operator) == sorted(SALES_TOOLS + SUPPORT_TOOLS)
        async with client_at(f"{base}/mcp/sales", OPERATOR_TOKEN, era) as operator:
            assert await tool_names(operator) == SALES_TOOLS
    assert len(upstream.requests) == 1  # nothing else was sent upstream


async def test_tokens_open_only_their_endpoints(upstream, tmp_path):
    async with served(write_config(upstream, tmp_path)) as (base, _), httpx2.AsyncClient() as http:
        for path in ("/mcp/sales", "/mcp/support", "/mcp", "/sse/sales", "/metrics"):
            for headers in ({}, {"Authorization": "Bearer not-a-token"}):
                response = await http.post(f"{base}{path}", json=RAW_INITIALIZE, headers={**POST_HEADERS, **headers})
                assert response.status_code == 401, (path, response.text)
                assert response.json() == UNAUTHORIZED
                assert response.headers["www-authenticate"] == CHALLENGE
        refusals = [
            (SALES_TOKEN, "/mcp/support", "this token does not open the endpoint 'support'"),
            (SUPPORT_TOKEN, "/mcp/sales", "this token does not open the endpoint 'sales'"),
            (IDE_TOKEN, "/sse/sales", "this token does not open the endpoint 'sales'"),
            (SALES_TOKEN, "/mcp", "this token does not open this path"),
            (SALES_TOKEN, "/metrics", "this token does not open this path"),
            (SALES_TOKEN, "/mcp/nowhere", "this token does not open the endpoint 'nowhere'"),
        ]
        for token, path, description in refusals:
            headers = {**POST_HEADERS, "Authorization": f"Bearer {token}"}
            response = await http.post(f"{base}{path}", json=RAW_INITIALIZE, headers=headers)
            assert response.status_code == 403, (path, response.text)
            assert response.json() == {"error": "forbidden", "error_description": description}
            assert "www-authenticate" not in response.headers
        operator = {**POST_HEADERS, "Authorization": f"Bearer {OPERATOR_TOKEN}"}
        response = await http.post(f"{base}/mcp/nowhere", json=RAW_INITIALIZE, headers=operator)
        assert response.status_code == 404
        assert response.json() == {"error": "not_found", "error_description": "no endpoint 'nowhere' is configured"}
        # A session opened on one endpoint is not another endpoint's, even to a token that opens both.
        opened = await http.post(f"{base}/mcp/sales", json=RAW_INITIALIZE, headers=operator)
        session = opened.headers["mcp-session-id"]
        listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
        crossed = {**operator, "Mcp-Session-Id": session, "MCP-Protocol-Version": "2025-11-25"}
        response = await http.post(f"{base}/mcp/support", json=listing, headers=crossed)
        assert response.status_code == 404


async def test_default_endpoint_none_closes_mcp(upstream, tmp_path):
    config = write_config(upstream, tmp_path, defaultEndpoint="none")
    async with served(config) as (base, _), httpx2.AsyncClient() as http:
        headers = {**POST_HEADERS, "Authorization": f"Bearer {OPERATOR_TOKEN}"}
        response = await http.post(f"{base}/mcp", json=RAW_INITIALIZE, headers=headers)
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"
        assert (await http.post(f"{base}/mcp/sales", json=RAW_INITIALIZE, headers=headers)).status_code == 200


async def test_legacy_sse_endpoint_serves_its_tools(upstream, tmp_path):
    async with served(write_config(upstream, tmp_path)) as (base, _):
        headers = {"Authorization": f"Bearer {SUPPORT_TOKEN}"}
        async with sse_client(f"{base}/sse/support", headers=headers) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                listed = await session.list_tools()
                assert [tool.name for tool in listed.tools] == SUPPORT_TOOLS
                with pytest.raises(MCPError, match="Unknown tool: get_order"):
                    await session.call_tool("get_order", {"x": "1"})


async def test_reload_removes_a_client_from_its_next_request(upstream, tmp_path):
    config = write_config(upstream, tmp_path)
    async with served(config) as (base, reloader), client_at(f"{base}/mcp/support", IDE_TOKEN, "legacy") as ide:
        assert await tool_names(ide) == SUPPORT_TOOLS
        document = endpoints_document()
        document["clients"] = document["clients"][:2]
        document["endpoints"][1]["clients"] = ["hamsa-support"]
        (config / "endpoints.yaml").write_text(yaml.safe_dump(document))
        outcome = await reloader.reload()
        assert outcome.ok and outcome.endpoints_changed and not outcome.notified
        with pytest.raises(MCPError):
            await ide.list_tools(cache_mode="refresh")
        async with httpx2.AsyncClient() as http:
            headers = {**POST_HEADERS, "Authorization": f"Bearer {IDE_TOKEN}"}
            response = await http.post(f"{base}/mcp/support", json=RAW_INITIALIZE, headers=headers)
            assert (response.status_code, response.json()) == (401, UNAUTHORIZED)
            assert response.headers["www-authenticate"] == CHALLENGE
            headers["Authorization"] = f"Bearer {SUPPORT_TOKEN}"  # the client that stays still gets in
            assert (await http.post(f"{base}/mcp/support", json=RAW_INITIALIZE, headers=headers)).status_code == 200


class Hearing:
    """Counts the tools/list_changed one client hears, either era's way."""

    def __init__(self) -> None:
        self.count = 0
        self.event = anyio.Event()

    def heard(self) -> None:
        self.count += 1
        self.event.set()

    async def on_message(self, message: object) -> None:
        if getattr(message, "method", None) == "notifications/tools/list_changed":
            self.heard()

    async def listen(self, client: Client, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        async with client.listen(tools_list_changed=True) as subscription:
            task_status.started()
            async for event in subscription:
                if isinstance(event, ToolsListChanged):
                    self.heard()


@pytest.mark.parametrize("era", ERAS)
async def test_list_changed_reaches_only_the_endpoint_whose_list_changed(upstream, tmp_path, era):
    config = write_config(upstream, tmp_path)
    sales_hears, support_hears = Hearing(), Hearing()
    async with served(config) as (base, reloader), anyio.create_task_group() as tg:
        legacy = era == "legacy"
        # Handshake era: on the connection; 2026-07-28: on a listen stream (whose frames `on_message` sees too).
        sales_options = {"message_handler": sales_hears.on_message} if legacy else {}
        support_options = {"message_handler": support_hears.on_message} if legacy else {}
        async with (
            client_at(f"{base}/mcp/sales", SALES_TOKEN, era, **sales_options) as sales,
            client_at(f"{base}/mcp/support", SUPPORT_TOKEN, era, **support_options) as support,
        ):
            await sales.list_tools(), await support.list_tools()  # the handshake-era connections are known
            if not legacy:
                await tg.start(sales_hears.listen, sales)
                await tg.start(support_hears.listen, support)
            webtools = reloader.webtools
            sent: list[list[str | None]] = []
            notify = webtools.tool_list.notify

            async def recording(endpoints: object = None) -> int:
                sent.append(sorted(endpoints, key=str))  # type: ignore[arg-type]
                return await notify(endpoints)  # type: ignore[arg-type]

            webtools.tool_list.notify = recording
            # Change only support's tool: sales' list stays the same, so sales hears nothing.
            tools = json.loads((config / "tools.json").read_text())
            tools[2]["description"] = "Opens a ticket, now described differently"
            write_tools(config, tools)
            assert (await reloader.reload()).notified
            await support_hears.event.wait()
            assert sent == [[None, "support"]]  # `/mcp` lists every tool, so it changed too
            # Then a change to sales: its clients hear it, once; support's count stays at one.
            tools[0]["description"] = "Order status, described anew"
            write_tools(config, tools)
            assert (await reloader.reload()).notified
            await sales_hears.event.wait()
            assert sent == [[None, "support"], [None, "sales"]]
            assert (sales_hears.count, support_hears.count) == (1, 1)
            tg.cancel_scope.cancel()


def load_errors(directory: Path) -> list[str]:
    with pytest.raises(ConfigErrors) as caught:
        load_definitions([str(directory)], ENV)
    return [str(error) for error in caught.value.errors]


async def test_config_mistakes_name_file_and_field(upstream, tmp_path):
    config = write_config(upstream, tmp_path)
    file = str(config / "endpoints.yaml")
    document = endpoints_document()
    document["endpoints"][0]["clients"] = ["hamsa-sales", "nobody"]
    document["endpoints"].append({"name": "sales", "tools": ["get_order"]})
    document["clients"].append({"id": "both", "token": "${SALES_AGENT_TOKEN}", "tokenSha256": "ab" * 32})
    document["clients"].append({"id": "twin", "token": "${SALES_AGENT_TOKEN}"})
    document["clients"].append({"id": "ide", "tokenSha256": "cd" * 32})
    (config / "endpoints.yaml").write_text(yaml.safe_dump(document))
    assert sorted(load_errors(config)) == sorted(
        [
            f"{file}: field `endpoints[2].name`: endpoint 'sales' is defined twice; keep one",
            f"{file}: field `clients[both]`: has both `token` and `tokenSha256`; keep one",
            f"{file}: field `clients[5].id`: client 'ide' is defined twice; keep one",
            f"{file}: field `endpoints[sales].clients[1]`: client 'nobody' is not defined under `clients:` "
            "(defined: hamsa-sales, hamsa-support, ide, twin); define it there",
            f"{file}: field `clients[twin]`: has the same token as client 'hamsa-sales'; "
            "give each client its own token",
        ]
    )


async def test_unmatched_names_and_tags_are_warnings_and_validate_shows_endpoints(upstream, tmp_path, caplog):
    config = write_config(upstream, tmp_path)
    document = endpoints_document()
    document["endpoints"][0]["tools"] = ["get_ordr", "crm_*"]
    document["endpoints"][1]["tags"] = ["helpdesk", "nope"]
    (config / "endpoints.yaml").write_text(yaml.safe_dump(document))
    loaded = load_definitions([str(config)], ENV)
    file = str(config / "endpoints.yaml")
    assert [str(w) for w in loaded.warnings] == [
        f"{file}: field `endpoints[sales].tools[0]`: 'get_ordr' matches no tool; the endpoint serves the tools "
        "the rest selects (did you mean `get_order`?)",
        f"{file}: field `endpoints[support].tags[1]`: no tool carries the tag 'nope'",
    ]
    assert loaded.endpoints.endpoints["sales"].tools == ("crm_lookup",)
    # Read as a tool's `rateLimit` is: a checked limit, not the mapping as written.
    assert loaded.endpoints.endpoints["sales"].rate_limit == RateLimit(requests=900, per="minute")
    assert loaded.endpoints.endpoints["support"].required_scopes == ("s",)


@pytest.mark.e2e
async def test_validate_lists_endpoints_and_clients_never_a_token(upstream, tmp_path):
    config = write_config(upstream, tmp_path)
    code, out, err = await run_module("validate", str(config), env=ENV)
    assert code == 0, err
    assert out.splitlines()[-6:] == [
        "/mcp serves every tool",
        "endpoint sales  /mcp/sales  tools: crm_lookup, get_order  clients: hamsa-sales",
        "endpoint support  /mcp/support  tools: open_ticket  clients: hamsa-support, ide",
        "client hamsa-sales  (token)  endpoints: sales",
        "client hamsa-support  (token)  endpoints: support",
        "client ide  (tokenSha256)  endpoints: support",
    ]


@pytest.mark.e2e
@pytest.mark.parametrize("era", ERAS)
async def test_stdio_endpoint_serves_only_its_tools(upstream, tmp_path, era):
    config = write_config(upstream, tmp_path)
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "mcp_webtools", "serve", "--config", str(config), "--endpoint", "support"],
        env={**os.environ, **ENV},
        cwd=str(REPO),
    )
    async with Client(params, mode=era, read_timeout_seconds=60) as client:
        assert await tool_names(client) == SUPPORT_TOOLS
        assert await unknown_tool_error(client, "get_order") == "Unknown tool: get_order"
        result = await client.call_tool("open_ticket", {})
        assert not result.is_error
    assert [(r.method, r.raw_path) for r in upstream.requests] == [("POST", "/tickets")]


async def test_audit_record_and_metrics_name_the_client(upstream, tmp_path, caplog):
    upstream.reply_json("GET", "/orders/1", {"status": "new"})
    caplog.set_level("INFO", logger="mcp_webtools.audit")
    async with served(write_config(upstream, tmp_path)) as (base, _):
        async with client_at(f"{base}/mcp/sales", SALES_TOKEN, "legacy") as sales:
            await sales.call_tool("get_order", {"x": "1"})
        async with client_at(f"{base}/mcp", OPERATOR_TOKEN, "legacy") as operator:
            await operator.call_tool("get_order", {"x": "1"})
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}) as http:
            metrics = (await http.get(f"{base}/metrics")).text
    records = [r for r in caplog.records if r.name == "mcp_webtools.audit"]
    assert [getattr(r, "client", None) for r in records] == ["hamsa-sales", "default"]
    assert records[0].getMessage().endswith(" client=hamsa-sales")
    assert 'mcp_webtools_tool_calls_total{client="hamsa-sales",outcome="ok",tool="get_order"} 1.0' in metrics
    assert 'mcp_webtools_tool_calls_total{client="default",outcome="ok",tool="get_order"} 1.0' in metrics


async def test_without_any_token_endpoints_are_open_as_mcp_is(upstream, tmp_path):
    config = write_config(upstream, tmp_path, clients=[])
    document = yaml.safe_load((config / "endpoints.yaml").read_text())
    for endpoint in document["endpoints"]:
        endpoint.pop("clients")
    (config / "endpoints.yaml").write_text(yaml.safe_dump(document))
    async with served(config, auth_token=None) as (base, _):
        http = httpx2.AsyncClient(timeout=httpx2.Timeout(30, read=60))
        async with http, Client(streamable_http_client(f"{base}/mcp/support", http_client=http)) as client:
            assert await tool_names(client) == SUPPORT_TOOLS


@pytest.mark.e2e
async def test_serve_endpoint_refuses_http_and_an_unknown_name(upstream, tmp_path):
    config = write_config(upstream, tmp_path)
    code, _, err = await run_module("serve", "--config", str(config), "--endpoint", "nowhere", env=ENV)
    assert (code, err.splitlines()[-1]) == (2, "--endpoint nowhere: no such endpoint; defined: sales, support")
    code, _, err = await run_module("serve", "--transport", "http", "--endpoint", "sales", "--config", str(config))
    assert (code, err.splitlines()[-1]) == (
        2,
        "--endpoint is for stdio; over HTTP each endpoint is served at /mcp/<name>",
    )
