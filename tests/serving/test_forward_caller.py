"""Per-caller credentials (issue 12): `forwardCaller` sends the MCP client's own credential upstream.

Real MCP clients over Streamable HTTP (both eras) send the credential in a dedicated header through
their httpx client; the recording upstream says exactly what arrived. Over stdio the value comes from
`stdioEnv` or the call is refused. Every value is a test secret: the suite's scan fails a test whose
result, error, log line or span shows one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from support import (
    ERAS,
    Recorded,
    Reply,
    Upstream,
    http_mcp_client,
    http_server_process,
    mcp_client,
    secret,
    text_of,
    webtools_http,
    write_tools,
)

from mcp_webtools.errors import ConfigErrors
from mcp_webtools.loading import load_definitions

pytestmark = pytest.mark.anyio

HEADER = "X-Upstream-Authorization"
FORWARD = {"header": HEADER, "as": "Authorization"}
OUR_TOKEN = "inbound-server-token-8841"  # the client's credential for mcp-webtools itself (--auth-token)
TOOL_TOKEN = "tool-own-bearer-token-6620"


def forwarding_tool(url: str, forward: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "name": "As User",
        "description": "calls the API as the end user",
        "methodType": "GET",
        "url": f"{url}/me",
        "forwardCaller": forward if forward is not None else FORWARD,
        **extra,
    }


def echo_authorization(upstream: Upstream) -> None:
    """`GET /me` answers with the Authorization it received (as a careless API's debug output might)."""
    upstream.reply(
        "GET",
        "/me",
        lambda seen: Reply(
            200, json.dumps({"you": seen.headers.get("authorization")}).encode(), [("content-type", "application/json")]
        ),
    )


def headers_seen(seen: Recorded) -> str:
    return " ".join(f"{name}: {value}" for name, value in seen.header_list)


@pytest.mark.parametrize("era", ERAS)
async def test_the_callers_header_goes_upstream_as_authorization_and_is_masked(tmp_path: Path, upstream: Upstream, era):
    user = secret(f"Bearer user-token-{era}-31337")
    echo_authorization(upstream)
    config = write_tools(tmp_path, forwarding_tool(upstream.url))
    async with mcp_client("http", era, config, auth_token=secret(OUR_TOKEN), headers={HEADER: user}) as client:
        result = await client.call_tool("as_user", {})
    assert result.is_error is False, text_of(result)
    [seen] = upstream.requests
    assert seen.headers["authorization"] == user
    # Never the inbound Authorization (our own --auth-token), and never the inbound header's own name.
    assert OUR_TOKEN not in headers_seen(seen) and HEADER.lower() not in seen.headers
    assert json.loads(text_of(result)) == {"you": "***"}


@pytest.mark.parametrize("era", ERAS)
async def test_without_the_header_the_call_is_refused_saying_which_header_to_send(
    tmp_path: Path, upstream: Upstream, era
):
    config = write_tools(tmp_path, forwarding_tool(upstream.url))
    async with mcp_client("http", era, config, auth_token=secret(OUR_TOKEN)) as client:
        result = await client.call_tool("as_user", {})
    assert result.is_error is True
    assert text_of(result) == (
        "Calling 'as_user' failed: this tool calls its API with the caller's own credential: send it in the "
        "X-Upstream-Authorization HTTP header of your MCP requests; nothing was sent."
    )
    assert upstream.requests == []


@pytest.mark.parametrize("era", ERAS)
async def test_fallback_auth_uses_the_tools_own_auth_only_without_the_header(tmp_path: Path, upstream: Upstream, era):
    user = secret(f"user-token-fallback-{era}-5150")
    config = write_tools(
        tmp_path,
        forwarding_tool(upstream.url, {**FORWARD, "fallback": "auth"}, auth={"type": "bearer", "token": TOOL_TOKEN}),
    )
    async with webtools_http(config) as (base, _):
        async with http_mcp_client(base, era) as anonymous:
            assert (await anonymous.call_tool("as_user", {})).is_error is False
        async with http_mcp_client(base, era, headers={HEADER: user}) as caller:
            assert (await caller.call_tool("as_user", {})).is_error is False
    assert [seen.headers["authorization"] for seen in upstream.requests] == [f"Bearer {TOOL_TOKEN}", user]


@pytest.mark.parametrize("era", ERAS)
async def test_two_concurrent_callers_each_send_their_own_credential(tmp_path: Path, upstream: Upstream, era):
    alice, bob = secret(f"alice-credential-{era}-0101"), secret(f"bob-credential-{era}-0202")
    both_arrived = anyio.Event()

    async def hold_until_both(seen: Recorded) -> Reply:
        # Both calls are at the upstream at once before either is answered: truly concurrent.
        if len(upstream.requests) == 2:
            both_arrived.set()
        with anyio.fail_after(30):
            await both_arrived.wait()
        return Reply(200, json.dumps({"who": seen.query, "auth": seen.headers.get("authorization")}).encode())

    upstream.reply("GET", "/me", hold_until_both)
    config = write_tools(
        tmp_path,
        forwarding_tool(
            upstream.url, params={"type": "object", "properties": {"who": {"type": "string"}}, "required": ["who"]}
        ),
    )
    results: dict[str, Any] = {}
    async with webtools_http(config) as (base, webtools):

        async def call_as(name: str, credential: str) -> None:
            async with http_mcp_client(base, era, headers={HEADER: credential}) as client:
                results[name] = await client.call_tool("as_user", {"who": name})

        async with anyio.create_task_group() as tg:
            tg.start_soon(call_as, "alice", alice)
            tg.start_soon(call_as, "bob", bob)
        # Neither value joined the toolset's shared secrets: outside its call, nobody else's text is matched.
        assert webtools.toolset.redactor(f"{alice} {bob}") == f"{alice} {bob}"
    assert {seen.query: seen.headers["authorization"] for seen in upstream.requests} == {
        "who=alice": alice,
        "who=bob": bob,
    }
    assert all(result.is_error is False for result in results.values())
    assert {name: json.loads(text_of(result))["auth"] for name, result in results.items()} == {
        "alice": "***",
        "bob": "***",
    }


async def test_an_upstream_error_echoing_the_credential_is_masked_in_the_result(tmp_path: Path, upstream: Upstream):
    user = secret("Bearer revoked-user-token-4242")
    upstream.reply("GET", "/me", lambda seen: Reply(401, f"token {seen.headers['authorization']} is revoked".encode()))
    config = write_tools(tmp_path, forwarding_tool(upstream.url))
    async with webtools_http(config) as (base, _), http_mcp_client(base, "auto", headers={HEADER: user}) as client:
        result = await client.call_tool("as_user", {})
    assert result.is_error is True
    assert "token *** is revoked" in text_of(result) and "revoked-user-token" not in text_of(result)


@pytest.mark.e2e
@pytest.mark.parametrize("era", ERAS)
async def test_over_stdio_the_call_is_refused_without_stdio_env(tmp_path: Path, upstream: Upstream, era):
    config = write_tools(tmp_path, forwarding_tool(upstream.url))
    async with mcp_client("stdio", era, config) as client:
        result = await client.call_tool("as_user", {})
    assert result.is_error is True
    assert text_of(result) == (
        "Calling 'as_user' failed: this tool calls its API with the caller's own credential, sent in the "
        "X-Upstream-Authorization HTTP header; this call came on no MCP HTTP request (stdio, `mcp-webtools call`, "
        "the console), so there is none. Connect over HTTP and send that header, or have the operator set "
        "forwardCaller.stdioEnv; nothing was sent."
    )
    assert upstream.requests == []


@pytest.mark.e2e
@pytest.mark.parametrize("era", ERAS)
async def test_over_stdio_stdio_env_supplies_the_credential(tmp_path: Path, upstream: Upstream, era):
    value = secret(f"Token stdio-user-credential-{era}-77")
    echo_authorization(upstream)
    config = write_tools(tmp_path, forwarding_tool(upstream.url, {**FORWARD, "stdioEnv": "UPSTREAM_AUTH"}))
    async with mcp_client("stdio", era, config, env={"UPSTREAM_AUTH": value}) as client:
        result = await client.call_tool("as_user", {})
    assert result.is_error is False, text_of(result)
    assert [seen.headers["authorization"] for seen in upstream.requests] == [value]
    assert json.loads(text_of(result)) == {"you": "***"}


@pytest.mark.e2e
async def test_over_stdio_an_unset_stdio_env_is_refused_naming_the_variable(tmp_path: Path, upstream: Upstream):
    config = write_tools(tmp_path, forwarding_tool(upstream.url, {**FORWARD, "stdioEnv": "UNSET_UPSTREAM_AUTH"}))
    async with mcp_client("stdio", "auto", config) as client:
        result = await client.call_tool("as_user", {})
    assert text_of(result) == (
        "Calling 'as_user' failed: this tool calls its API with the caller's own credential; over stdio it comes "
        "from the environment variable UNSET_UPSTREAM_AUTH, which is not set in the server's environment; "
        "nothing was sent."
    )
    assert upstream.requests == []


def problems_of(tmp_path: Path, forward: Any, **extra: Any) -> list[str]:
    config = write_tools(tmp_path, forwarding_tool("https://api.example.com", forward, **extra))
    with pytest.raises(ConfigErrors) as caught:
        load_definitions([config], environ={})
    prefix = f"{config}: tool 'As User': field `"
    return [str(problem).removeprefix(prefix) for problem in caught.value.errors]


@pytest.mark.parametrize(
    ("forward", "expected"),
    [
        (
            {"header": "Authorization", "as": "Authorization"},
            "forwardCaller.header`: cannot be Authorization: that is the client's credential for this server, and "
            "MCP forbids passing it through (token passthrough); have clients send the upstream credential in a "
            "dedicated header such as X-Upstream-Authorization",
        ),
        (
            {"header": "Connection", "as": "Authorization"},
            "forwardCaller.header`: cannot be Connection: a connection-level or cookie header is never forwarded",
        ),
        (
            {"header": "Cookie", "as": "Authorization"},
            "forwardCaller.header`: cannot be Cookie: a connection-level or cookie header is never forwarded",
        ),
        (
            {"header": HEADER, "as": "Host"},
            "forwardCaller.as`: cannot be Host: a connection-level or cookie header is never forwarded",
        ),
        (
            {"header": "Mcp-Session-Id", "as": "Authorization"},
            "forwardCaller.header`: cannot be Mcp-Session-Id: the MCP transport uses that header itself",
        ),
        (
            {**FORWARD, "fallback": "auth"},
            "forwardCaller.fallback`: is auth, but the tool has no `auth` block or `authToken` to fall back to",
        ),
        (
            {**FORWARD, "fallback": "none"},
            "forwardCaller.fallback`: must be error (refuse the call) or auth (use the tool's own auth)",
        ),
        ({"header": HEADER}, "forwardCaller.as`: is required, as an HTTP header name (e.g. X-Upstream-Authorization)"),
        (
            {**FORWARD, "stdioEnv": "NOT A NAME"},
            "forwardCaller.stdioEnv`: must be an environment variable name (letters, digits, _)",
        ),
        (
            {**FORWARD, "from": "x"},
            "forwardCaller.from`: is not a field of forwardCaller; it takes header, as, fallback, stdioEnv",
        ),
        (
            "X-Upstream-Authorization",
            "forwardCaller`: must be an object: {header: X-Upstream-Authorization, as: Authorization}",
        ),
    ],
)
def test_a_bad_forward_caller_block_is_a_config_error(tmp_path: Path, forward, expected):
    assert problems_of(tmp_path, forward) == [expected]


def test_fallback_auth_with_an_auth_token_is_valid(tmp_path: Path):
    config = write_tools(
        tmp_path, forwarding_tool("https://api.example.com", {**FORWARD, "fallback": "auth"}, authToken=TOOL_TOKEN)
    )
    [definition] = load_definitions([config], environ={}).definitions
    assert definition.forward_caller == {**FORWARD, "fallback": "auth"}


@pytest.mark.e2e
async def test_a_serve_process_never_logs_the_forwarded_value_even_at_debug(tmp_path: Path, upstream: Upstream):
    user = secret("Bearer logged-nowhere-credential-9090")
    upstream.reply("GET", "/me", lambda seen: Reply(500, f"failed for {seen.headers['authorization']}".encode()))
    config = write_tools(tmp_path, forwarding_tool(upstream.url))
    async with http_server_process(config, "--log-level", "DEBUG", "--log-format", "json") as server:
        base = (await server.wait_for_log(r"serving MCP at (http://\S+)/mcp")).group(1)
        async with http_mcp_client(base, "auto", headers={HEADER: user}) as client:
            result = await client.call_tool("as_user", {})
        await server.wait_for_log(r"mcp_webtools\.audit")  # the call's audit line: its logging is done
    assert result.is_error is True and "failed for ***" in text_of(result)
    assert [seen.headers["authorization"] for seen in upstream.requests] == [user]
    assert "logged-nowhere-credential" not in server.log
