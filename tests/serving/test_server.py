"""tools/list and tools/call over real `mcp.Client` connections, against a recording upstream.

One upstream and one config serve the whole module, and connections are module-scoped, so many
calls share one connection (which is also what a real host does). Listing, results and unknown
tools cross the transport, so they run on all four transport x era combinations; how a request
is built does not depend on the transport, so those tests use one connection.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import mcp_types as types
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from support import ERAS, TRANSPORTS, Reply, Upstream, hamsa_tool, mcp_client, serve_asgi, write_tools

pytestmark = pytest.mark.anyio

COMBOS = [(transport, era) for transport in TRANSPORTS for era in ERAS]
META_HTTP = "mcp-webtools/http"
META_TOOL = "mcp-webtools/tool"
USER_AGENT = "mcp-webtools/0.1.0"
# Set by the HTTP client on every request; everything else the upstream sees comes from config.
TRANSPORT_HEADERS = {"host", "content-length", "accept-encoding", "connection"}
PLAIN_HEADERS = {"user-agent": USER_AGENT, "accept": "application/json"}
BODY_HEADERS = {**PLAIN_HEADERS, "content-type": "application/json"}

ENV = {"TICKET_API_KEY": "env-ticket-key-0042", "TENANT": "tenant-from-env-77"}
ORDER_TOKEN = "sk_live_order_token_1"
DELETE_TOKEN = "Token tok_delete_secret_2"
BASIC_TOKEN = "Basic dXNlcjpwYXNzd29yZA=="
ORDER_HEADER_SECRET = "hdr-secret-value-3"
PATCH_AUTH_HEADER = "ApiKey hdr-auth-secret-9"
TRACE_HEADER = "trace-value-abc"
IGNORED_TOKEN = "ignored-token-xyz"  # guide shape with authType none: never sent
SECRETS = (ORDER_TOKEN, DELETE_TOKEN, BASIC_TOKEN, ORDER_HEADER_SECRET, PATCH_AUTH_HEADER, TRACE_HEADER, *ENV.values())

GET_ORDER_PARAMS = {
    "type": "object",
    "properties": {
        "orderId": {"type": "string", "description": "The order number"},
        "verbose": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "limit": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
        "email": {"type": "string", "format": "email"},
    },
    "required": ["orderId"],
}
CREATE_TICKET_PARAMS = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {
        "contact": {
            "type": "object",
            "properties": {"email": {"type": "string", "format": "email"}, "name": {"type": "string"}},
            "required": ["email"],
            "additionalProperties": False,
        }
    },
    "properties": {
        "subject": {"type": "string", "minLength": 1, "maxLength": 80},
        "priority": {"enum": ["low", "normal", "high"], "default": "normal"},
        "contact": {"$ref": "#/$defs/contact"},
        "routing": {  # a default object whose properties have defaults of their own
            "type": "object",
            "properties": {"queue": {"default": "support"}, "escalate": {"type": "boolean", "default": False}},
            "default": {},
        },
    },
    "required": ["subject", "contact"],
    "additionalProperties": False,
}
PROFILE_PARAMS = {
    "type": "object",
    "required": ["profileId"],
    "properties": {"region": {"type": "string"}, "profileId": {"type": "string"}, "name": {}},
}
DELETE_PARAMS = {
    "type": "object",
    "required": ["orderId"],
    "properties": {"orderId": {"type": "string"}, "reason": {"enum": ["duplicate", "fraud"]}},
}
PHONE_PARAMS = {"type": "object", "properties": {"phone": {"type": "string"}}, "required": ["phone"]}
ORDER_MESSAGES = [{"type": "request-start", "content": "Looking up your order"}]
TICKET_MESSAGES = [
    {"type": "request-start", "content": "Opening a ticket"},
    {"type": "request-failed", "content": "The ticket system is down"},
]


def tool_configs(base: str) -> list[dict[str, Any]]:
    """Every method and auth form; written unsorted so the listing's order is the server's doing."""
    return [
        hamsa_tool(
            "Replace Profile",
            f"{base}/regions/:region/profiles/:profileId",
            "PUT",
            PROFILE_PARAMS,
            authToken=BASIC_TOKEN,
            pathParameters={"region": "eu-west"},
        ),
        hamsa_tool(
            "Get Order",
            f"{base}/orders/:orderId",
            "get",
            GET_ORDER_PARAMS,
            authToken=ORDER_TOKEN,
            httpHeaders={"X-Client-Secret": ORDER_HEADER_SECRET},
            messages=ORDER_MESSAGES,
            description="Look up one order by its number.",
        ),
        hamsa_tool(
            "Create Ticket",
            f"{base}/tenants/:tenant/tickets",
            "POST",
            CREATE_TICKET_PARAMS,
            httpHeaders={"X-Api-Key": "${TICKET_API_KEY}", "User-Agent": "HamsaAgent/1.0"},
            pathParameters={"tenant": "${TENANT}"},
            messages=TICKET_MESSAGES,
            **{"async": True},
        ),
        {
            "name": "Lookup Customer by Phone",
            "description": "Find a customer from a phone number.",
            "methodType": "GET",
            "url": f"{base}/customers",
            "authType": "none",
            "authToken": IGNORED_TOKEN,
            "headers": [{"name": "X-Trace", "value": TRACE_HEADER}],
            "parameters": PHONE_PARAMS,
        },
        hamsa_tool("Delete Order", f"{base}/orders/{{orderId}}", "DELETE", DELETE_PARAMS, authToken=DELETE_TOKEN),
        hamsa_tool(
            "Patch Profile",
            f"{base}/profiles/:profileId",
            "PATCH",
            PROFILE_PARAMS,
            httpHeaders={"Authorization": PATCH_AUTH_HEADER},
        ),
    ]


# --- module-wide upstream, config and connections ----------------------------------------------


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def api() -> AsyncIterator[Upstream]:
    app = Upstream()
    async with serve_asgi(app) as url:
        app.url = url
        yield app


@pytest.fixture(autouse=True)
def fresh_upstream(api: Upstream) -> None:
    api.requests.clear()
    api.routes.clear()


@pytest.fixture(scope="module")
def config(api: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tools(tmp_path_factory.mktemp("tools"), tool_configs(api.url))


@pytest.fixture(scope="module", params=COMBOS, ids=["-".join(combo) for combo in COMBOS])
async def any_client(request: pytest.FixtureRequest, config: Path) -> AsyncIterator[Client]:
    transport, era = request.param
    async with mcp_client(transport, era, config, env=ENV) as client:
        yield client


@pytest.fixture(scope="module")
async def client(config: Path) -> AsyncIterator[Client]:
    async with mcp_client("http", "auto", config, env=ENV) as connected:
        yield connected


def text_of(result: types.CallToolResult) -> str:
    assert len(result.content) == 1 and isinstance(result.content[0], types.TextContent), result.content
    return result.content[0].text


def app_headers(seen: Any) -> dict[str, str]:
    return {name: value for name, value in seen.headers.items() if name not in TRANSPORT_HEADERS}


def assert_http_meta(result: types.CallToolResult, status: int) -> None:
    meta = result.meta[META_HTTP]
    assert set(meta) == {"status", "elapsedMs"} and meta["status"] == status, meta
    assert isinstance(meta["elapsedMs"], float) and meta["elapsedMs"] >= 0


def hints(read_only: bool, destructive: bool, idempotent: bool) -> dict[str, bool]:
    return {
        "readOnlyHint": read_only,
        "destructiveHint": destructive,
        "idempotentHint": idempotent,
        "openWorldHint": True,
    }


# --- tools/list --------------------------------------------------------------------------------


def expected_listing() -> list[dict[str, Any]]:
    def entry(name, title, description, schema, annotations, method, is_async=False, messages=()):
        return {
            "name": name,
            "title": title,
            "description": description,
            "inputSchema": schema,
            "annotations": annotations,
            "_meta": {META_TOOL: {"method": method, "async": is_async, "messages": list(messages)}},
        }

    return [
        entry(
            "create_ticket",
            "Create Ticket",
            "Create Ticket tool",
            CREATE_TICKET_PARAMS,
            hints(False, False, False),
            "POST",
            True,
            TICKET_MESSAGES,
        ),
        entry("delete_order", "Delete Order", "Delete Order tool", DELETE_PARAMS, hints(False, True, True), "DELETE"),
        entry(
            "get_order",
            "Get Order",
            "Look up one order by its number.",
            GET_ORDER_PARAMS,
            hints(True, False, True),
            "GET",
            False,
            ORDER_MESSAGES,
        ),
        entry(
            "lookup_customer_by_phone",
            "Lookup Customer by Phone",
            "Find a customer from a phone number.",
            PHONE_PARAMS,
            hints(True, False, True),
            "GET",
        ),
        entry(
            "patch_profile", "Patch Profile", "Patch Profile tool", PROFILE_PARAMS, hints(False, False, False), "PATCH"
        ),
        entry(
            "replace_profile",
            "Replace Profile",
            "Replace Profile tool",
            PROFILE_PARAMS,
            hints(False, False, True),
            "PUT",
        ),
    ]


async def test_list_tools_publishes_each_definition_exactly(any_client):
    listing = await any_client.list_tools()
    assert listing.next_cursor is None
    assert [tool.model_dump(by_alias=True, exclude_none=True) for tool in listing.tools] == expected_listing()
    assert (await any_client.list_tools()).tools == listing.tools  # the same every time


async def test_list_tools_shows_no_secret(any_client):
    wire = (await any_client.list_tools()).model_dump_json(by_alias=True)
    for secret in (*SECRETS, IGNORED_TOKEN):
        for form in {secret, secret.partition(" ")[2] or secret, quote(secret, safe="")}:
            assert form not in wire, f"secret {secret!r} leaked into tools/list"


# --- tools/call: validation ------------------------------------------------------------------

INVALID_CALLS = [  # problems at the top level come first, then field by field
    (
        "get_order",
        {"verbose": "yes", "limit": 0, "email": "not-an-email"},
        [
            "orderId: is required",
            "email: 'not-an-email' is not a 'email'",
            "limit: 0 is less than the minimum of 1",
            "verbose: 'yes' is not of type 'boolean'",
        ],
    ),
    (
        "create_ticket",
        {"subject": "", "priority": "urgent", "contact": {"email": "nobody", "phone": "1"}, "color": 1},
        [
            "color: is not an accepted parameter",
            "contact.phone: is not an accepted parameter",
            "contact.email: 'nobody' is not a 'email'",
            "priority: 'urgent' is not one of ['low', 'normal', 'high']",
            "subject: '' should be non-empty",
        ],
    ),
    ("get_order", {"orderId": "1", "limit": 101}, ["limit: 101 is greater than the maximum of 100"]),
    ("delete_order", {"orderId": "1", "reason": "bored"}, ["reason: 'bored' is not one of ['duplicate', 'fraud']"]),
    (
        "replace_profile",
        {"profileId": "."},
        [
            "profileId: must not contain a '.' or '..' path segment (split on '/' or '\\', encoded or not): "
            "a proxy that decodes the URL would resolve it to another path"
        ],
    ),
    ("patch_profile", {"profileId": ""}, ["profileId: must not be empty: it fills a URL path segment"]),
]


@pytest.mark.parametrize(("tool", "arguments", "problems"), INVALID_CALLS)
async def test_invalid_arguments_name_each_field_and_send_nothing(client, api, tool, arguments, problems):
    result = await client.call_tool(tool, arguments)
    assert result.is_error is True
    assert text_of(result) == f"Invalid arguments for tool {tool!r}; nothing was sent:\n" + "\n".join(
        f"- {problem}" for problem in problems
    )
    assert result.structured_content is None
    assert api.requests == []


async def test_unknown_tool_is_a_protocol_error(any_client, api):
    with pytest.raises(MCPError) as raised:
        await any_client.call_tool("no_such_tool", {"x": 1})
    assert raised.value.error.code == types.INVALID_PARAMS
    assert raised.value.error.message == "Unknown tool: no_such_tool"
    assert api.requests == []


# --- tools/call: the request the upstream saw ----------------------------------------------------


async def test_get_sends_query_defaults_and_bearer_auth(client, api):
    result = await client.call_tool(
        "get_order", {"orderId": "A 1/2", "verbose": True, "tags": ["a", "b&c"], "email": "ann@example.com"}
    )
    assert result.is_error is False, result.content
    [seen] = api.requests
    assert (seen.method, seen.raw_path) == ("GET", "/orders/A%201%2F2")
    assert seen.query == "verbose=true&tags=a&tags=b%26c&email=ann%40example.com&limit=20"
    assert seen.body == b""
    assert seen.headers["host"] == api.url.removeprefix("http://")
    assert app_headers(seen) == {
        **PLAIN_HEADERS,
        "authorization": f"Bearer {ORDER_TOKEN}",
        "x-client-secret": ORDER_HEADER_SECRET,
    }


async def test_delete_sends_query_and_scheme_token_as_is(client, api):
    result = await client.call_tool("delete_order", {"orderId": "o-1", "reason": "fraud"})
    assert result.is_error is False, result.content
    [seen] = api.requests
    assert (seen.method, seen.raw_path, seen.query, seen.body) == ("DELETE", "/orders/o-1", "reason=fraud", b"")
    assert app_headers(seen) == {**PLAIN_HEADERS, "authorization": DELETE_TOKEN}


@pytest.mark.parametrize(
    ("arguments", "defaults"),
    [
        ({"routing": {"escalate": True}}, {"routing": {"escalate": True, "queue": "support"}, "priority": "normal"}),
        ({"priority": "low"}, {"priority": "low", "routing": {"queue": "support", "escalate": False}}),
    ],
)
async def test_post_sends_json_body_with_nested_defaults_and_env_values(client, api, arguments, defaults):
    given = {"subject": "Printer on fire", "contact": {"email": "ann@example.com"}}
    result = await client.call_tool("create_ticket", {**given, **arguments})
    assert result.is_error is False, result.content
    [seen] = api.requests
    assert (seen.method, seen.raw_path, seen.query) == ("POST", f"/tenants/{ENV['TENANT']}/tickets", "")
    assert seen.json() == {**given, **defaults}
    assert seen.headers["content-length"] == str(len(seen.body))
    assert app_headers(seen) == {**BODY_HEADERS, "user-agent": "HamsaAgent/1.0", "x-api-key": ENV["TICKET_API_KEY"]}


@pytest.mark.parametrize(
    ("arguments", "path", "body"),
    [
        ({"profileId": "p1", "name": "Ann"}, "/regions/eu-west/profiles/p1", {"name": "Ann"}),
        ({"profileId": "p1", "region": "us east", "name": "Ann"}, "/regions/us%20east/profiles/p1", {"name": "Ann"}),
        ({"profileId": "..x", "region": "a/b..c"}, "/regions/a%2Fb..c/profiles/..x", {}),
    ],
)
async def test_put_fills_path_from_arguments_then_defaults(client, api, arguments, path, body):
    result = await client.call_tool("replace_profile", arguments)
    assert result.is_error is False, result.content
    [seen] = api.requests
    assert (seen.method, seen.raw_path, seen.query, seen.json()) == ("PUT", path, "", body)
    assert app_headers(seen) == {**BODY_HEADERS, "authorization": BASIC_TOKEN}


async def test_patch_sends_body_and_configured_authorization_header(client, api):
    result = await client.call_tool("patch_profile", {"profileId": "p/1", "name": "Zoë"})
    assert result.is_error is False, result.content
    [seen] = api.requests
    assert (seen.method, seen.raw_path, seen.query) == ("PATCH", "/profiles/p%2F1", "")
    assert seen.body == '{"name":"Zoë"}'.encode()
    assert app_headers(seen) == {**BODY_HEADERS, "authorization": PATCH_AUTH_HEADER}


async def test_guide_shape_with_auth_type_none_sends_no_authorization(client, api):
    result = await client.call_tool("lookup_customer_by_phone", {"phone": "+1 555 0100"})
    assert result.is_error is False, result.content
    [seen] = api.requests
    assert (seen.method, seen.raw_path, seen.query) == ("GET", "/customers", "phone=%2B1%20555%200100")
    assert app_headers(seen) == {**PLAIN_HEADERS, "x-trace": TRACE_HEADER}


# --- results ------------------------------------------------------------------------------------

JSON = [("content-type", "application/json")]


@pytest.mark.parametrize(
    ("reply", "text", "structured"),
    [
        (
            Reply(200, b'{"id": "r1", "total": 12.5, "items": [1, 2], "note": "caf\xc3\xa9"}', JSON),
            '{"id":"r1","total":12.5,"items":[1,2],"note":"café"}',
            {"id": "r1", "total": 12.5, "items": [1, 2], "note": "café", "api_response_status": 200},
        ),
        (Reply(201, b'{"created": true}', JSON), '{"created":true}', {"created": True, "api_response_status": 201}),
        (Reply(200, b"[1, 2, 3]", JSON), "[1,2,3]", {"data": [1, 2, 3], "api_response_status": 200}),
        (Reply(200, b"42", JSON), "42", {"data": 42, "api_response_status": 200}),
        (
            Reply(200, b"hello <b>world</b>", [("content-type", "text/html; charset=utf-8")]),
            "hello <b>world</b>",
            {"data": "hello <b>world</b>", "api_response_status": 200},
        ),
        (
            Reply(200, b"{not json", JSON),
            "[the upstream API labelled this answer application/json, but it is not valid JSON]\n{not json",
            {"data": "{not json", "api_response_status": 200},
        ),
        (
            Reply(200, b"caf\xe9", [("content-type", "text/plain; charset=latin-1")]),
            "café",
            {"data": "café", "api_response_status": 200},
        ),
    ],
    ids=["object", "created", "array", "scalar", "html", "broken-json", "latin-1"],
)
async def test_success_results(any_client, api, reply, text, structured):
    api.reply("GET", "/orders/r1", reply)
    result = await any_client.call_tool("get_order", {"orderId": "r1"})
    assert result.is_error is False
    assert "\n".join(block.text for block in result.content) == text
    assert result.structured_content == structured
    assert_http_meta(result, reply.status)


@pytest.mark.parametrize(
    ("reply", "text"),
    [
        (
            Reply(404, b'{"error": "no such order"}', JSON),
            'The upstream API answered HTTP 404 Not Found.\nResponse body:\n{"error": "no such order"}',
        ),
        (Reply(409, b"", []), "The upstream API answered HTTP 409 Conflict."),
        (
            Reply(400, b"x" * 5000, [("content-type", "text/plain")]),
            "The upstream API answered HTTP 400 Bad Request.\nResponse body:\n"
            + "x" * 4096
            + "... [904 more characters not shown]",
        ),
    ],
    ids=["json-body", "empty-body", "capped-body"],
)
async def test_error_status_results(any_client, api, reply, text):
    api.reply("GET", "/orders/bad", reply)
    result = await any_client.call_tool("get_order", {"orderId": "bad"})
    assert result.is_error is True
    assert text_of(result) == text
    assert result.structured_content == {"api_response_status": reply.status}
    assert_http_meta(result, reply.status)


@pytest.mark.parametrize(
    ("content_type", "kind"), [("image/png", "image"), ("audio/wav", "audio"), ("audio/mpeg", "audio")]
)
async def test_images_and_audio_come_back_as_image_and_audio_content(any_client, api, content_type, kind):
    """An audio answer (text-to-speech, a recording) once came back as a one-line note."""
    body = b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\xff\xfe"
    api.reply("GET", "/orders/media", Reply(200, body, [("content-type", content_type)]))
    result = await any_client.call_tool("get_order", {"orderId": "media"})
    assert result.is_error is False
    assert [(block.type, block.mime_type, base64.b64decode(block.data)) for block in result.content] == [
        (kind, content_type, body)
    ]
    assert result.structured_content == {"api_response_status": 200}
    assert_http_meta(result, 200)


async def test_audio_holding_a_secret_is_described_not_passed_on(any_client, api):
    # Base64 would carry the secret past the text redactor, so the audio itself is withheld.
    body = b"ID3\x04\x00 comment: " + ORDER_TOKEN.encode() + b" \xff\xfb"
    api.reply("GET", "/orders/spoken", Reply(200, body, [("content-type", "audio/mpeg")]))
    result = await any_client.call_tool("get_order", {"orderId": "spoken"})
    assert (result.is_error, text_of(result)) == (
        False,
        f"The upstream API answered HTTP 200 with {len(body)} bytes of audio/mpeg.",
    )


async def test_secrets_echoed_in_a_success_body_are_redacted(client, api):
    echoed = {"auth": f"Bearer {ORDER_TOKEN}", "tenant": ENV["TENANT"], "url": f"/x?k={quote(ORDER_HEADER_SECRET)}"}
    api.reply("GET", "/orders/echo", Reply(200, json.dumps(echoed).encode(), JSON))
    result = await client.call_tool("get_order", {"orderId": "echo"})
    redacted = {"auth": "Bearer ***", "tenant": "***", "url": "/x?k=***"}
    assert result.structured_content == {**redacted, "api_response_status": 200}
    assert json.loads(text_of(result)) == redacted
