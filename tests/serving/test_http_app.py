"""The HTTP transport: bearer-token guard, /healthz, DNS-rebinding protection, legacy HTTP+SSE.

Servers run in-process under uvicorn on 127.0.0.1; MCP traffic goes through the SDK's real
clients, and the checks that clients cannot provoke (bad tokens, foreign Host/Origin) use raw
httpx2 requests.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx2
import pytest
from mcp import Client, ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from prometheus_client.parser import text_string_to_metric_families
from support import (
    ERAS,
    POST_HEADERS,
    RAW_INITIALIZE,
    SECRET_MARK,
    Upstream,
    hamsa_tool,
    http_server_process,
    mcp_client,
    secret,
    serve_asgi,
    write_tools,
)

from mcp_webtools.serving.http_app import HttpSettings, bind_host_allowance, build_http_app, transport_security
from mcp_webtools.serving.runtime import open_webtools

pytestmark = pytest.mark.anyio

TOKEN = "inbound-token-5f2c9a"
UPSTREAM_TOKEN = "upstream-secret-9876"
UNAUTHORIZED = {"error": "unauthorized", "error_description": "send Authorization: Bearer <token>"}
CHALLENGE = 'Bearer realm="mcp-webtools"'
# What httpx2 sends on its own plus what the tool config adds; nothing from the inbound request.
UPSTREAM_HEADER_NAMES = ["host", "accept-encoding", "connection", "user-agent", "accept"]

MODERN_HEADERS = {**POST_HEADERS, "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/list"}


def config_for(upstream: Upstream, directory: Path) -> Path:
    """Two tools: `echo` carries no upstream auth, `secured` its own token."""
    x = {"type": "object", "properties": {"x": {"type": "string"}}}
    echo = hamsa_tool("Echo", f"{upstream.url}/echo/:x", "GET", x)
    secured = hamsa_tool(
        "Secured",
        f"{upstream.url}/secured",
        "POST",
        {"type": "object", "properties": {"note": {"type": "string"}}},
        authToken=UPSTREAM_TOKEN,
    )
    return write_tools(directory, [echo, secured])


@asynccontextmanager
async def served(config: Path, settings: HttpSettings) -> AsyncIterator[str]:
    async with serve_asgi(build_http_app(open_webtools([str(config)]), settings)) as base:
        yield base


@asynccontextmanager
async def raw_http(base: str) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(base_url=base, timeout=30) as http:
        yield http


def assert_no_inbound_headers_forwarded(upstream: Upstream) -> None:
    for seen in upstream.requests:
        configured = ("content-length", "content-type", "authorization")
        assert [name for name, _ in seen.header_list if name not in configured] == UPSTREAM_HEADER_NAMES
        assert all(TOKEN not in value for _, value in seen.header_list)


# -- bearer-token guard -------------------------------------------------------------------------


BAD_CREDENTIALS = [
    None,
    "Bearer wrong-token",
    "Token wrong-token",
    f"Basic {TOKEN}",  # right token, wrong scheme
    TOKEN,  # no scheme at all
    "Bearer",
    f"Bearer {TOKEN}x",
    f"Bearer {TOKEN[:-1]}",
]


async def test_guarded_paths_answer_401_without_the_right_token(upstream, tmp_path):
    async with served(config_for(upstream, tmp_path), HttpSettings(auth_token=TOKEN)) as base, raw_http(base) as http:
        for authorization in BAD_CREDENTIALS:
            headers = {"Authorization": authorization} if authorization is not None else {}
            responses = {
                "POST /mcp": await http.post("/mcp", json=RAW_INITIALIZE, headers={**POST_HEADERS, **headers}),
                "GET /mcp": await http.get("/mcp", headers={"Accept": "text/event-stream", **headers}),
                "GET /sse": await http.get("/sse", headers=headers),
                "POST /messages/": await http.post("/messages/?session_id=0", json=RAW_INITIALIZE, headers=headers),
            }
            for what, response in responses.items():
                case = (what, authorization)
                assert response.status_code == 401, case
                assert response.headers["www-authenticate"] == CHALLENGE, case
                assert response.json() == UNAUTHORIZED, case
    assert upstream.requests == []


async def test_probes_are_open_and_say_nothing_but_the_state(upstream, tmp_path):
    """Anyone may ask them, so they show no process id and no tool count (both are in /metrics)."""
    async with served(config_for(upstream, tmp_path), HttpSettings(auth_token=TOKEN)) as base, raw_http(base) as http:
        for path, body in (("/healthz", {"status": "ok"}), ("/readyz", {"status": "ready"})):
            for headers in ({}, {"Authorization": "Bearer nope"}):
                response = await http.get(path, headers=headers)
                assert response.status_code == 200
                assert response.headers["content-type"] == "application/json"
                assert response.json() == body


@pytest.mark.parametrize("era", ERAS)
@pytest.mark.parametrize("scheme", ["Bearer", "Token"])
async def test_streamable_http_client_passes_with_either_scheme(upstream, tmp_path, scheme, era):
    headers = {"Authorization": f"{scheme} {TOKEN}"}
    async with served(config_for(upstream, tmp_path), HttpSettings(auth_token=TOKEN)) as base:
        http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=60))
        async with http, Client(streamable_http_client(f"{base}/mcp", http_client=http), mode=era) as client:
            assert [t.name for t in (await client.list_tools()).tools] == ["echo", "secured"]
            echo = await client.call_tool("echo", {"x": "a b"})
            secured = await client.call_tool("secured", {"note": "hi"})
    assert echo.is_error is False, echo.content
    assert echo.structured_content == {
        "method": "GET",
        "path": "/echo/a%20b",
        "query": "",
        "body": None,
        "api_response_status": 200,
    }
    assert secured.is_error is False, secured.content
    assert secured.structured_content == {
        "method": "POST", "path": "/secured", "query": "", "body": {"note": "hi"}, "api_response_status": 200
    }  # fmt: skip
    # The inbound credential is ours alone: the upstream sees its own configured token or none.
    first, second = upstream.requests
    assert "authorization" not in first.headers
    assert second.headers["authorization"] == f"Bearer {UPSTREAM_TOKEN}"
    assert_no_inbound_headers_forwarded(upstream)


# -- legacy HTTP+SSE ------------------------------------------------------------------------------


async def test_support_sse_transport_round_trip(upstream, tmp_path):
    """The harness's "sse" transport (Bearer token) drives /sse + /messages/ end to end."""
    async with mcp_client("sse", "legacy", config_for(upstream, tmp_path), auth_token=TOKEN) as session:
        assert [t.name for t in (await session.list_tools()).tools] == ["echo", "secured"]
        result = await session.call_tool("secured", {"note": "over sse"})
    assert result.is_error is False, result.content
    assert result.structured_content == {
        "method": "POST", "path": "/secured", "query": "", "body": {"note": "over sse"}, "api_response_status": 200
    }  # fmt: skip
    [seen] = upstream.requests
    assert seen.headers["authorization"] == f"Bearer {UPSTREAM_TOKEN}"
    assert_no_inbound_headers_forwarded(upstream)


async def test_sse_client_with_hamsa_token_scheme(upstream, tmp_path):
    async with served(config_for(upstream, tmp_path), HttpSettings(auth_token=TOKEN)) as base:
        async with sse_client(f"{base}/sse", headers={"Authorization": f"Token {TOKEN}"}) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                result = await session.call_tool("echo", {"x": "sse"})
                invalid = await session.call_tool("echo", {"x": 5})
    assert result.is_error is False, result.content
    assert result.structured_content == {
        "method": "GET",
        "path": "/echo/sse",
        "query": "",
        "body": None,
        "api_response_status": 200,
    }
    assert invalid.is_error is True
    assert len(upstream.requests) == 1
    assert "authorization" not in upstream.requests[0].headers
    assert_no_inbound_headers_forwarded(upstream)


# -- DNS-rebinding protection ---------------------------------------------------------------------


@pytest.mark.parametrize("headers", [POST_HEADERS, MODERN_HEADERS], ids=["legacy", "modern"])
async def test_foreign_host_and_origin_are_refused(upstream, tmp_path, headers, caplog):
    # With a token configured, the rebinding checks run behind a passing token.
    authorized = {**headers, "Authorization": f"Bearer {TOKEN}"}
    async with served(config_for(upstream, tmp_path), HttpSettings(auth_token=TOKEN)) as base, raw_http(base) as http:
        host = await http.post("/mcp", json=RAW_INITIALIZE, headers={**authorized, "Host": "evil.example"})
        origin = await http.post("/mcp", json=RAW_INITIALIZE, headers={**authorized, "Origin": "http://evil.example"})
        sse_host = await http.get("/sse", headers={"Authorization": f"Bearer {TOKEN}", "Host": "evil.example:80"})
        post_origin = await http.post(
            "/messages/?session_id=0", json=RAW_INITIALIZE, headers={**authorized, "Origin": "https://evil.example"}
        )
    assert (host.status_code, host.text) == (421, "Invalid Host header")
    assert (origin.status_code, origin.text) == (403, "Invalid Origin header")
    assert (sse_host.status_code, sse_host.text) == (421, "Invalid Host header")
    assert (post_origin.status_code, post_origin.text) == (403, "Invalid Origin header")
    assert upstream.requests == []
    # A refused request is routine: a warning, never a server error with a traceback.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_loopback_and_operator_listed_hosts_and_origins_are_accepted(upstream, tmp_path):
    settings = HttpSettings(
        allowed_hosts=("mcp.example.com", "proxy.internal:8443"), allowed_origins=("https://app.example.com",)
    )
    accepted = [
        {"Origin": "http://localhost:6274"},  # the MCP Inspector's own page
        {"Host": "localhost"},
        {"Host": "mcp.example.com"},  # behind a TLS proxy: a bare Host
        {"Host": "mcp.example.com:8080"},
        {"Host": "proxy.internal:8443"},
        {"Host": "mcp.example.com", "Origin": "https://app.example.com"},
    ]
    refused = [
        ({"Host": "proxy.internal:9999"}, 421),  # listed with a port: that port only
        ({"Host": "example.com"}, 421),
        ({"Origin": "https://app.example.com:8443"}, 403),  # origins are exact
        ({"Origin": "http://app.example.com"}, 403),
    ]
    async with served(config_for(upstream, tmp_path), settings) as base, raw_http(base) as http:
        for extra in accepted:
            response = await http.post("/mcp", json=RAW_INITIALIZE, headers={**POST_HEADERS, **extra})
            assert response.status_code == 200, (extra, response.text)
            assert response.headers["mcp-session-id"]
        for extra, status in refused:
            response = await http.post("/mcp", json=RAW_INITIALIZE, headers={**POST_HEADERS, **extra})
            assert response.status_code == status, extra


def test_transport_security_lists_loopback_plus_operator_entries():
    security = transport_security(
        HttpSettings(allowed_hosts=("mcp.example.com", "10.0.0.5:8000"), allowed_origins=("https://app.example.com",))
    )
    assert security.enable_dns_rebinding_protection is True
    assert security.allowed_hosts == [
        "127.0.0.1", "127.0.0.1:*", "localhost", "localhost:*", "[::1]", "[::1]:*",
        "mcp.example.com", "mcp.example.com:*", "10.0.0.5:8000",
    ]  # fmt: skip
    assert security.allowed_origins == [
        "http://127.0.0.1", "http://127.0.0.1:*", "https://127.0.0.1", "https://127.0.0.1:*",
        "http://localhost", "http://localhost:*", "https://localhost", "https://localhost:*",
        "http://[::1]", "http://[::1]:*", "https://[::1]", "https://[::1]:*",
        "https://app.example.com",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("bind", "allowed"),
    [
        ("0.0.0.0", ()),
        ("::", ()),
        ("127.0.0.1", ()),
        ("localhost", ()),
        ("::1", ()),
        ("10.0.0.5", ("10.0.0.5",)),
        ("fd00::5", ("[fd00::5]",)),
        ("mcp.internal", ("mcp.internal",)),
    ],
)
def test_bind_host_allowance(bind, allowed):
    assert bind_host_allowance(bind) == allowed


# -- refused requests are logged and counted ------------------------------------------------------------

LOGIN_TOKEN = secret("login-token-3f9a7c1e")
REFUSED = [  # (method, path, Authorization header or None, reason label, what the log line says)
    ("POST", "/mcp", None, "missing", "no token (send Authorization: Bearer <token>)"),
    ("GET", "/sse", secret("Bearer wrong-token-5a1"), "wrong", "a wrong token"),
    ("GET", "/metrics", f"Basic {LOGIN_TOKEN}", "scheme", "an Authorization scheme other than Bearer or Token"),
    ("POST", "/messages/", LOGIN_TOKEN, "scheme", "an Authorization scheme other than Bearer or Token"),
    ("GET", "/mcp", "Bearer", "missing", "no token (send Authorization: Bearer <token>)"),
    ("POST", "/mcp", f"Bearer {SECRET_MARK * 100}", "overlong", "a token longer than 1024 bytes"),
    ("GET", "/metrics", secret("Token wrong-token-7c2"), "wrong", "a wrong token"),
]


def counted(metrics_text: str, name: str) -> dict[str, float]:
    """A labelled counter's values by its one label's value."""
    return {
        next(iter(sample.labels.values())): sample.value
        for family in text_string_to_metric_families(metrics_text)
        for sample in family.samples
        if sample.name == name
    }


@pytest.mark.e2e
async def test_refused_requests_are_logged_with_client_and_reason_capped_and_counted(upstream, tmp_path, monkeypatch):
    monkeypatch.setenv("MCP_WEBTOOLS_AUTH_TOKEN", LOGIN_TOKEN)
    authorized = {"Authorization": f"Bearer {LOGIN_TOKEN}"}
    async with http_server_process(config_for(upstream, tmp_path)) as server:
        base = (await server.wait_for_log(r"serving MCP at (http://\S+)/mcp")).group(1)
        async with raw_http(base) as http:
            for method, path, authorization, _, _ in REFUSED:
                headers = {"Authorization": authorization} if authorization is not None else {}
                response = await http.request(method, path, headers={**POST_HEADERS, **headers}, json=RAW_INITIALIZE)
                assert response.status_code == 401, (method, path, authorization)
            logged = await server.wait_for_logs(
                r"WARNING mcp_webtools\.auth: 401 for (\S+) (\S+) from 127\.0\.0\.1:\d+: (.*)\n", len(REFUSED)
            )
            assert [m.groups() for m in logged] == [(m, p, said) for m, p, _, _, said in REFUSED]
            # A flood: 20 lines a minute at most, the last saying so; every refusal is counted.
            for _ in range(30):
                assert (await http.get("/metrics", headers={"Authorization": "Bearer flood"})).status_code == 401
            # Something logged after the flood, so all its lines have arrived when this one has.
            garbage = await http.post("/mcp", content=b"garbage", headers={**POST_HEADERS, **authorized})
            assert garbage.status_code == 400
            await server.wait_for_log(r"WARNING mcp_webtools\.protocol: POST /mcp .*: answered -32700 ")
            metrics = await http.get("/metrics", headers=authorized)
    lines = re.findall(r"WARNING mcp_webtools\.auth: (.*)", server.log)
    assert len(lines) == 20
    assert lines[-1].endswith(
        ": a wrong token (20 such lines within 60 s: more refused requests are left out for now)"
    ), lines[-1]
    assert counted(metrics.text, "mcp_webtools_unauthorized_requests_total") == {
        "missing": 2.0, "scheme": 2.0, "overlong": 1.0, "wrong": 32.0
    }  # fmt: skip
    assert "Traceback" not in server.log and "flood" not in server.log
