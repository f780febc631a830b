"""`auth: {type: oauth2ClientCredentials, ...}` (issue 12) against a real OAuth2 authorization server.

The authorization server is the npm `oauth2-mock-server` (oauth_server.py); the API is the recording
upstream. What is checked: the exact token request the authorization server saw (grant type, scope,
audience, client authentication by Basic and by the form), the exact `Authorization` the API saw, one
token per client shared by its tools and kept across a reload, refresh before expiry (a driven clock,
never a sleep), key rotation, one fetch under 50 concurrent calls, one more after the API revokes a
token and never a loop, and every way the token endpoint can fail as the exact `isError` text. The
harness registers every token it issues with the secrets scan, and the client secret is one too.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import anyio
import jwt
import pytest
from mcp import Client
from support import ERAS, TRANSPORTS, Recorded, Reply, Upstream, mcp_client, register_config_secrets, secret, text_of
from support import write_tools as write_config

from mcp_webtools.auth import AuthenticatingSender
from mcp_webtools.calls import ToolCalls
from mcp_webtools.cli import commands as cli
from mcp_webtools.egress import EgressPolicy
from mcp_webtools.errors import ConfigErrors
from mcp_webtools.executor import Executor, create_http_client
from mcp_webtools.loading import load_definitions
from mcp_webtools.outcomes import CallRecord
from mcp_webtools.serving.runtime import ServerOptions, open_reloader, open_webtools
from mcp_webtools.serving.server import WebTools
from mcp_webtools.toolset import Toolset

pytestmark = pytest.mark.anyio

COMBOS = [(transport, era) for transport in TRANSPORTS for era in ERAS]
CLIENT_ID = "orders-client-7710"
ENV = {"CLIENT_ID": secret(CLIENT_ID), "CLIENT_SECRET": secret("orders-secret-never-shown-p@ss:w/rd+%")}
API = "https://api.example.com"
PREVIEW = "Bearer <from oauth2 token endpoint>"


def basic(client_id: str, client_secret: str) -> str:
    """`client_secret_basic` as RFC 6749 section 2.3.1 says: each part form-urlencoded, then base64."""
    return "Basic " + base64.b64encode(f"{quote_plus(client_id)}:{quote_plus(client_secret)}".encode()).decode()


def oauth_tool(name: str, url: str, token_url: str, **auth: Any) -> dict[str, Any]:
    block = {
        "type": "oauth2ClientCredentials",
        "tokenUrl": token_url,
        "clientId": "${CLIENT_ID}",
        "clientSecret": "${CLIENT_SECRET}",
        **auth,
    }
    return {"name": name, "description": f"{name} tool", "methodType": "GET", "url": url, "auth": block}


def write_tools(directory: Path, tools: list[dict[str, Any]] | dict[str, Any]) -> Path:
    config = write_config(directory, tools)
    register_config_secrets(config, ENV)
    return config


def orders_tools(upstream: Upstream, token_url: str, **auth: Any) -> list[dict[str, Any]]:
    """Two tools of one client (the same token URL, client, scopes and audience): one token for both."""
    auth = {"scopes": ["orders.read", "orders.write"], "audience": API, **auth}
    return [
        oauth_tool("Orders", f"{upstream.url}/orders", token_url, **auth),
        oauth_tool("Invoices", f"{upstream.url}/invoices", token_url, **auth),
    ]


def echo_authorization(upstream: Upstream, path: str, revoked: set[str] | None = None) -> None:
    """`path` answers with the Authorization it received (the model must see it masked), or 401 for a revoked one."""

    def answer(request: Recorded) -> Reply:
        authorization = request.headers.get("authorization", "")
        if revoked is not None and authorization in revoked:
            return Reply(401, b'{"error": "token revoked"}', [("content-type", "application/json")])
        return Reply(200, json.dumps({"authorization": authorization}).encode(), [("content-type", "application/json")])

    upstream.reply("GET", path, answer)


async def distinct_tokens(oauth_server, count: int, **settings: Any) -> None:
    """The next `count` tokens each with its own `serial` claim: two tokens issued in the same second
    with the same claims are the same JWT, and a test of a new token must be able to tell it apart."""
    for serial in range(count):
        await oauth_server.set_tokens(claims={"serial": serial}, times=1, **settings)


def bearers(upstream: Upstream) -> list[str]:
    return [request.headers["authorization"].removeprefix("Bearer ") for request in upstream.requests]


@asynccontextmanager
async def served(config: Path) -> AsyncIterator[tuple[WebTools, Client, list[CallRecord]]]:
    """The server in this process (its token cache within reach), a real MCP client, the audit records."""
    webtools = open_webtools([str(config)], environ=ENV)
    records: list[CallRecord] = []
    webtools.calls.observers.append(records.append)
    async with Client(webtools.server) as client:
        yield webtools, client, records


class Clock:
    """A driven clock for the token cache: expiry without waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- end to end: stdio and Streamable HTTP, both eras --------------------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize(("transport", "era"), COMBOS)
async def test_tools_of_one_client_share_one_token_from_the_authorization_server(
    tmp_path: Path, upstream: Upstream, oauth_server, transport: str, era: str
):
    await oauth_server.require_client(CLIENT_ID, ENV["CLIENT_SECRET"])
    echo_authorization(upstream, "/orders")
    config = write_tools(tmp_path, orders_tools(upstream, oauth_server.token_url))
    async with mcp_client(transport, era, config, env=ENV) as client:
        results = [await client.call_tool(name, {}) for name in ("orders", "invoices", "orders", "invoices")]
    assert [result.is_error for result in results] == [False] * 4, [text_of(result) for result in results]
    # The API echoed the token: the model sees it masked, the secret from the moment it arrived.
    assert json.loads(text_of(results[0])) == {"authorization": "Bearer ***"}
    [token_request] = await oauth_server.token_requests()
    assert token_request.form == {
        "grant_type": "client_credentials",
        "scope": "orders.read orders.write",
        "audience": API,
    }
    assert (token_request.method, token_request.client_auth, token_request.client_id, token_request.status) == (
        "POST",
        "client_secret_basic",
        CLIENT_ID,
        200,
    )
    assert token_request.headers["authorization"] == basic(CLIENT_ID, ENV["CLIENT_SECRET"])
    [token] = set(bearers(upstream))
    assert [request.raw_path for request in upstream.requests] == ["/orders", "/invoices"] * 2
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (claims["client_id"], claims["aud"], claims["scope"]) == (CLIENT_ID, API, "orders.read orders.write")


@pytest.mark.e2e
@pytest.mark.parametrize(("transport", "era"), COMBOS)
async def test_a_refused_client_is_the_calls_error_on_every_transport(
    tmp_path: Path, upstream: Upstream, oauth_server, transport: str, era: str
):
    await oauth_server.require_client(CLIENT_ID, secret("the-secret-the-server-expects-0990"))
    config = write_tools(tmp_path, orders_tools(upstream, oauth_server.token_url))
    async with mcp_client(transport, era, config, env=ENV) as client:
        result = await client.call_tool("orders", {})
    assert result.is_error is True
    assert text_of(result) == (
        f"Calling 'orders' failed: the OAuth2 token endpoint {oauth_server.token_url} answered HTTP 401 with error "
        "invalid_client (the test asked for invalid_client); check the tool's auth.clientId, auth.clientSecret and "
        "auth.clientAuth."
    )
    [token_request] = await oauth_server.token_requests()
    assert (token_request.status, upstream.requests) == (401, [])


@pytest.mark.e2e
async def test_client_auth_body_sends_the_client_credentials_in_the_form(tmp_path, upstream, oauth_server):
    await oauth_server.require_client(CLIENT_ID, ENV["CLIENT_SECRET"])
    config = write_tools(
        tmp_path, [oauth_tool("Orders", f"{upstream.url}/orders", oauth_server.token_url, clientAuth="body")]
    )
    async with served(config) as (_, client, _records):
        assert (await client.call_tool("orders", {})).is_error is False
    [token_request] = await oauth_server.token_requests()
    assert token_request.client_auth == "client_secret_post" and "authorization" not in token_request.headers
    # No scopes and no audience configured: neither is sent.
    assert token_request.body == (
        f"grant_type=client_credentials&client_id={quote_plus(CLIENT_ID)}&client_secret={quote_plus(ENV['CLIENT_SECRET'])}"
    )
    [token] = bearers(upstream)
    assert jwt.decode(token, options={"verify_signature": False})["client_id"] == CLIENT_ID


# --- expiry, refresh, rotation ------------------------------------------------------------------------


@pytest.mark.e2e
async def test_a_token_is_refreshed_its_margin_before_it_expires(tmp_path, upstream, oauth_server):
    config = write_tools(tmp_path, orders_tools(upstream, oauth_server.token_url))
    await oauth_server.set_tokens(expires_in=600)  # refreshed 30 s (the most: 10% would be 60) before it expires
    await distinct_tokens(oauth_server, 2)
    async with served(config) as (webtools, client, _records):
        clock = webtools.calls.toolset.tokens.clock = Clock()
        assert (await client.call_tool("orders", {})).is_error is False
        clock.now += 600 - 30 - 0.001
        assert (await client.call_tool("invoices", {})).is_error is False
        assert len(await oauth_server.token_requests()) == 1
        clock.now += 0.001
        assert (await client.call_tool("orders", {})).is_error is False
        assert (await client.call_tool("invoices", {})).is_error is False
    assert len(await oauth_server.token_requests()) == 2
    first, again, fresh, same = bearers(upstream)
    assert first == again != fresh == same


@pytest.mark.e2e
async def test_a_short_lived_token_has_a_margin_of_a_tenth_and_one_already_due_serves_its_own_call_only(
    tmp_path, upstream, oauth_server
):
    config = write_tools(tmp_path, orders_tools(upstream, oauth_server.token_url))
    await oauth_server.set_tokens(expires_in=0, claims={"serial": "stale"}, times=1)  # stale on arrival
    await distinct_tokens(oauth_server, 2, expires_in=100)
    async with served(config) as (webtools, client, _records):
        clock = webtools.calls.toolset.tokens.clock = Clock()
        for _ in range(2):
            assert (await client.call_tool("orders", {})).is_error is False
        clock.now += 100 - 10 - 0.001  # 10% of 100 s
        assert (await client.call_tool("orders", {})).is_error is False
        clock.now += 0.001
        assert (await client.call_tool("orders", {})).is_error is False
    assert len(await oauth_server.token_requests()) == 3
    stale, second, still, third = bearers(upstream)
    assert len({stale, second, third}) == 3 and still == second


@pytest.mark.e2e
async def test_a_token_signed_with_a_rotated_key_is_used_once_the_old_one_expires(tmp_path, upstream, oauth_server):
    config = write_tools(tmp_path, orders_tools(upstream, oauth_server.token_url))
    async with served(config) as (webtools, client, _records):
        clock = webtools.calls.toolset.tokens.clock = Clock()
        assert (await client.call_tool("orders", {})).is_error is False
        kid = await oauth_server.rotate_key(retire=True)
        assert (await client.call_tool("orders", {})).is_error is False  # the old token is still fresh
        clock.now += 3600
        assert (await client.call_tool("orders", {})).is_error is False
    old, kept, new = bearers(upstream)
    assert old == kept != new
    assert jwt.get_unverified_header(old)["kid"] != kid == jwt.get_unverified_header(new)["kid"]
    assert len(await oauth_server.token_requests()) == 2


# --- single flight, revocation -------------------------------------------------------------------------


@pytest.mark.e2e
async def test_fifty_concurrent_calls_without_a_token_make_exactly_one_token_request(tmp_path, upstream, oauth_server):
    config = write_tools(tmp_path, orders_tools(upstream, oauth_server.token_url))
    await oauth_server.fail("hang")  # the first token request is held until every call waits on it
    results = []
    async with served(config) as (_webtools, client, _records):

        async def call(name: str) -> None:
            results.append(await client.call_tool(name, {}))

        async with anyio.create_task_group() as group:
            for number in range(50):
                group.start_soon(call, ("orders", "invoices")[number % 2])
            await oauth_server.wait_for_token_requests(1)
            await anyio.wait_all_tasks_blocked()
            assert await oauth_server.release() == 1
    assert [result.is_error for result in results] == [False] * 50
    assert len(await oauth_server.token_requests()) == 1
    assert len(upstream.requests) == 50 and len(set(bearers(upstream))) == 1


@pytest.mark.e2e
async def test_a_revoked_token_makes_exactly_one_more_token_request_and_the_calls_succeed(
    tmp_path, upstream, oauth_server
):
    revoked: set[str] = set()
    echo_authorization(upstream, "/orders", revoked)
    await distinct_tokens(oauth_server, 2)
    config = write_tools(tmp_path, orders_tools(upstream, oauth_server.token_url))
    async with served(config) as (_webtools, client, records):
        assert (await client.call_tool("orders", {})).is_error is False
        [old] = upstream.requests
        revoked.add(old.headers["authorization"])  # the API answers 401 to it from now on
        results = []

        async def call() -> None:
            results.append(await client.call_tool("orders", {}))

        async with anyio.create_task_group() as group:
            for _ in range(20):
                group.start_soon(call)
    assert [result.is_error for result in results] == [False] * 20, text_of(results[0])
    assert {json.loads(text_of(result))["authorization"] for result in results} == {"Bearer ***"}
    assert len(await oauth_server.token_requests()) == 2
    new = {token for token in bearers(upstream)} - {old.headers["authorization"].removeprefix("Bearer ")}
    assert len(new) == 1 and bearers(upstream).count(new.pop()) == 20
    assert {record.outcome for record in records} == {"ok"}


@pytest.mark.e2e
async def test_a_second_401_is_the_calls_answer_and_nothing_is_tried_again(tmp_path, upstream, oauth_server):
    upstream.reply("GET", "/orders", Reply(401, b"token not accepted", [("content-type", "text/plain")]))
    await distinct_tokens(oauth_server, 2)
    config = write_tools(tmp_path, orders_tools(upstream, oauth_server.token_url))
    async with served(config) as (_webtools, client, records):
        result = await client.call_tool("orders", {})
    assert result.is_error is True
    assert text_of(result) == (
        "The upstream API answered HTTP 401 Unauthorized (after 2 attempts).\nResponse body:\ntoken not accepted"
    )
    assert len(upstream.requests) == 2 and len(set(bearers(upstream))) == 2
    assert len(await oauth_server.token_requests()) == 2
    assert [(record.outcome, record.status, record.attempts) for record in records] == [("http_error", 401, 2)]


# --- reload ---------------------------------------------------------------------------------------------


@pytest.mark.e2e
async def test_a_reload_keeps_the_token(tmp_path, upstream, oauth_server):
    tools = orders_tools(upstream, oauth_server.token_url)
    config = write_tools(tmp_path, tools[:1])
    webtools = open_webtools([str(config)], environ=ENV)
    reloader = open_reloader(webtools, [str(config)], environ=ENV)
    async with Client(webtools.server) as client:
        assert (await client.call_tool("orders", {})).is_error is False
        write_tools(tmp_path, tools)  # a tool of the same client added
        assert (await reloader.reload()).added == ("invoices",)
        assert (await client.call_tool("orders", {})).is_error is False
        assert (await client.call_tool("invoices", {})).is_error is False
    assert len(await oauth_server.token_requests()) == 1
    assert len(set(bearers(upstream))) == 1


# --- the token endpoint failing ---------------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("fault", "says"),
    [
        (
            "invalid_client",
            "answered HTTP 401 with error invalid_client (the test asked for invalid_client); "
            "check the tool's auth.clientId, auth.clientSecret and auth.clientAuth",
        ),
        ("invalid_scope", "answered HTTP 400 with error invalid_scope (the test asked for invalid_scope); "
         "check the tool's auth.scopes"),
        ("server_error", "answered HTTP 500 with error server_error (the test asked for server_error); "
         "try again later"),
        ("not_json", "answered HTTP 200 with a body that is not JSON (text/html)"),
        ("hang", "gave no answer: timed out after 1 s"),
    ],
)  # fmt: skip
async def test_a_failing_token_endpoint_is_the_calls_error_naming_it_and_the_oauth_error(
    tmp_path, upstream, oauth_server, fault: str, says: str
):
    tools = [{**tool, "timeOut": 1} for tool in orders_tools(upstream, oauth_server.token_url)]
    config = write_tools(tmp_path, tools)
    await oauth_server.fail(fault)
    async with served(config) as (_webtools, client, records):
        result = await client.call_tool("orders", {})
        if fault == "hang":
            assert await oauth_server.release() == 1
        assert result.is_error is True
        assert text_of(result) == f"Calling 'orders' failed: the OAuth2 token endpoint {oauth_server.token_url} {says}."
        assert upstream.requests == []  # no token, no call
        assert (await client.call_tool("orders", {})).is_error is False  # a failure is not kept: the next call asks
    assert [(record.outcome, record.status, record.attempts) for record in records] == [
        ("auth_error", None, 0),
        ("ok", 200, 1),
    ]


async def test_a_token_answer_without_an_access_token_is_the_calls_error(tmp_path, upstream):
    # The recording upstream as a token endpoint: no real authorization server answers like this.
    upstream.reply_json("POST", "/token", {"token_type": "Bearer", "expires_in": 3600})
    config = write_tools(tmp_path, [oauth_tool("Orders", f"{upstream.url}/orders", f"{upstream.url}/token")])
    async with served(config) as (_webtools, client, records):
        result = await client.call_tool("orders", {})
    assert text_of(result) == (
        f"Calling 'orders' failed: the OAuth2 token endpoint {upstream.url}/token answered HTTP 200 "
        "with JSON but no access_token."
    )
    assert [request.raw_path for request in upstream.requests] == ["/token"]
    assert [record.outcome for record in records] == ["auth_error"]


async def test_an_unreachable_token_endpoint_is_the_calls_error(tmp_path, upstream):
    token_url = "http://127.0.0.1:9/token"  # the discard port: nothing listens
    config = write_tools(tmp_path, [oauth_tool("Orders", f"{upstream.url}/orders", token_url)])
    async with served(config) as (_webtools, client, records):
        result = await client.call_tool("orders", {})
    assert text_of(result).startswith(
        f"Calling 'orders' failed: the OAuth2 token endpoint {token_url} gave no answer: could not connect"
    ), text_of(result)
    assert [record.outcome for record in records] == ["auth_error"] and upstream.requests == []


# --- configuration, validate, list, dry run ------------------------------------------------------------


def problems_of(
    tmp_path: Path, options: ServerOptions | None = None, allow_http: bool = False, **auth: Any
) -> list[str]:
    tool = oauth_tool("Orders", f"{API}/orders", "https://idp.example.com/oauth/token")
    tool["auth"] = {key: value for key, value in {**tool["auth"], **auth}.items() if value is not None}
    if allow_http:
        tool["allowHttp"] = True
    config = write_tools(tmp_path, tool)
    egress = options.egress if options is not None else EgressPolicy()
    try:
        load_definitions([config], environ=ENV, egress=egress)
    except ConfigErrors as exc:
        return [str(problem).removeprefix(f"{config}: tool 'Orders': ") for problem in exc.errors]
    return []


@pytest.mark.parametrize(
    ("auth", "problem"),
    [
        ({"clientAuth": "post"}, "field `auth.clientAuth`: must be basic (HTTP Basic, the default) or body "
         "(client_id and client_secret in the form)"),
        ({"tokenUrl": "/oauth/token"}, "field `auth.tokenUrl`: must be an absolute https:// (or http://) URL of "
         "the token endpoint"),
        ({"tokenUrl": "ftp://idp.example.com/token"}, "field `auth.tokenUrl`: must be an absolute https:// "
         "(or http://) URL of the token endpoint"),
        ({"tokenUrl": "https://user:pw@idp.example.com/token"}, "field `auth.tokenUrl`: must have no "
         "user:password@ and no #fragment; credentials go in clientId"),
        ({"tokenUrl": "http://idp.example.com/token"}, "field `auth.tokenUrl`: plain http:// to 'idp.example.com' "
         "is refused; use https://, or set `allowHttp: true` on the tool (or --allow-http) if the network path "
         "is trusted"),
        ({"clientSecret": None}, "field `auth.clientSecret`: is required for auth type oauth2ClientCredentials, "
         "as a non-empty string"),
        ({"scopes": "orders.read"}, "field `auth.scopes`: must be a list of scope names, each a non-empty string "
         "without spaces"),
        ({"scopes": ["orders.read orders.write"]}, "field `auth.scopes`: must be a list of scope names, each a "
         "non-empty string without spaces"),
        ({"audience": ""}, "field `auth.audience`: must be a non-empty string (the API the token is for)"),
        ({"grantType": "client_credentials"},
         "field `auth.grantType`: is not a field of auth type oauth2ClientCredentials; "
         "it takes tokenUrl, clientId, clientSecret, scopes, audience, clientAuth"),
    ],
)  # fmt: skip
def test_a_bad_oauth2_block_is_a_config_error_naming_the_field(tmp_path: Path, auth, problem):
    assert problems_of(tmp_path, **auth) == [problem]


def test_plain_http_to_the_token_endpoint_needs_allow_http_or_loopback_and_the_egress_policy_applies(tmp_path):
    assert problems_of(tmp_path, tokenUrl="http://idp.example.com/token", allow_http=True) == []
    assert problems_of(tmp_path, tokenUrl="http://127.0.0.1:8080/token") == []
    assert problems_of(tmp_path, tokenUrl="https://idp.example.com/token", scopes=["a", "b"], clientAuth="body") == []
    only_api = ServerOptions(egress=EgressPolicy(allowed_hosts=frozenset({"api.example.com"})))
    assert problems_of(tmp_path, only_api) == [
        "field `auth.tokenUrl`: host 'idp.example.com' is not in the allowed upstream hosts"
    ]


def test_the_client_id_and_secret_are_secrets_and_the_token_url_is_not(tmp_path: Path):
    config = write_tools(tmp_path, [oauth_tool("Orders", f"{API}/orders", "https://idp.example.com/oauth/token")])
    [definition] = load_definitions([config], environ=ENV).definitions
    basic_credential = basic(CLIENT_ID, ENV["CLIENT_SECRET"]).removeprefix("Basic ")
    assert {ENV["CLIENT_ID"], ENV["CLIENT_SECRET"], basic_credential} <= definition.secrets
    assert not any("idp.example.com" in value for value in definition.secrets)


@pytest.mark.e2e
async def test_validate_list_and_dry_run_say_where_the_token_goes_and_fetch_nothing(
    tmp_path, upstream, oauth_server, capsys, monkeypatch
):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    config = str(write_tools(tmp_path, orders_tools(upstream, oauth_server.token_url)[:1]))
    shown = f"auth: oauth2ClientCredentials from {oauth_server.token_url}, Authorization: {PREVIEW}"
    assert cli.main(["validate", config]) == 0
    assert capsys.readouterr().out.splitlines()[0].endswith(f"  {shown}")
    assert cli.main(["list", config]) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith(f"  {shown}")
    assert cli.main(["call", "orders", "--args", "{}", "--config", config, "--dry-run"]) == 0
    assert f"Authorization: {PREVIEW}" in capsys.readouterr().out.splitlines()
    assert await oauth_server.token_requests() == [] and upstream.requests == []


async def test_the_token_request_goes_through_the_egress_policy_at_connect_time(tmp_path, upstream):
    # Loaded under the default policy, sent under one refusing loopback: the guard at connect time
    # stops the token request itself, as it would stop the call's own request.
    config = write_tools(tmp_path, [oauth_tool("Orders", f"{upstream.url}/orders", f"{upstream.url}/token")])
    toolset = Toolset.from_definitions(load_definitions([config], environ=ENV).definitions)
    executor = Executor(create_http_client(egress=EgressPolicy(deny_private=True)))
    records: list[CallRecord] = []
    async with executor.client:
        calls = ToolCalls(toolset, AuthenticatingSender(executor), observers=[records.append])
        result = await calls.call("orders", {})
    host = upstream.url.removeprefix("http://").partition(":")[0]
    assert text_of(result) == (
        f"Calling 'orders' failed: the OAuth2 token endpoint {upstream.url}/token gave no answer: the egress policy "
        f"refused the connection: host '{host}' resolves to {host}, which is a private, loopback or reserved "
        "address (refused by --deny-private)."
    )
    assert upstream.requests == [] and [record.outcome for record in records] == ["auth_error"]


@pytest.mark.e2e
async def test_forward_caller_falls_back_to_the_oauth2_token_and_never_sends_it_with_the_callers_own(
    tmp_path: Path, upstream: Upstream, oauth_server
):
    """`forwardCaller` with `fallback: auth` over an OAuth2 tool: a caller with the header sends theirs (no
    token fetched for it); a caller without it gets the client-credentials token."""
    await oauth_server.require_client(CLIENT_ID, ENV["CLIENT_SECRET"])
    echo_authorization(upstream, "/orders")
    tool = oauth_tool("Orders", f"{upstream.url}/orders", oauth_server.token_url)
    tool["forwardCaller"] = {"header": "X-Upstream-Authorization", "as": "Authorization", "fallback": "auth"}
    config = write_tools(tmp_path, [tool])
    own = secret("Bearer caller-own-token-4471")
    async with mcp_client("http", "auto", config, env=ENV, headers={"X-Upstream-Authorization": own}) as client:
        forwarded = await client.call_tool("orders", {})
    assert await oauth_server.token_requests() == []
    async with mcp_client("http", "auto", config, env=ENV) as client:
        fallback = await client.call_tool("orders", {})
    assert (forwarded.is_error, fallback.is_error) == (False, False), (text_of(forwarded), text_of(fallback))
    [token_request] = await oauth_server.token_requests()
    assert token_request.status == 200
    sent = [request.headers["authorization"] for request in upstream.requests]
    assert sent[0] == own and sent[1].startswith("Bearer ") and sent[1] != own
    # Each is masked in what the model sees: the caller's whole value, and the token after its scheme.
    assert [json.loads(text_of(result)) for result in (forwarded, fallback)] == [
        {"authorization": "***"},
        {"authorization": "Bearer ***"},
    ]
