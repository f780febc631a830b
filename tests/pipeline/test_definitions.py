"""The three input shapes and the rules of one tool definition (issue 2, "Tool definitions").

Fixtures are the examples of ../shared/reference/hamsa-create-web-tool-api.txt and
hamsa-api-integration-guide.txt, transcribed as Python values (the guide's JSON has raw line
breaks inside strings, so it cannot be pasted as JSON).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mcp_webtools.definitions import Message, ToolDefinition, slugify
from mcp_webtools.errors import ConfigErrors
from mcp_webtools.loading import LoadResult, load_definitions

WEATHER_PARAMS = {
    "type": "object",
    "properties": {"test": {"type": "number", "description": "Hello world from Hamsa AI!"}},
    "required": ["test"],
}
# The create-web-tool API request body, verbatim.
API_BODY = {
    "type": "FUNCTION",
    "name": "Weather API Tool",
    "toolSettings": {
        "serverUrl": "https://api.example.com/webhook",
        "methodType": "POST",
        "authToken": "bearer_token_12345",
        "timeOut": 15,
        "httpHeaders": {"Content-Type": "application/json", "Authorization": "Bearer token"},
        "pathParameters": {"userId": "12345"},
    },
    "description": "A tool that fetches current weather information for a given location.",
    "async": True,
    "messages": [{"type": "system", "content": "You are a helpful weather assistant."}],
    "params": WEATHER_PARAMS,
}
# The same endpoint's response, verbatim (yes, `"success": false` with `"message": "success"`).
API_RESPONSE = {
    "success": False,
    "message": "success",
    "data": {
        "id": "d949f13f-40d2-4e48-ac86-b66633070603",
        "persistentId": "cmjx8qzw0000004kz3jek1ktu",
        "version": 1,
        "name": "Weather API Tool",
        "type": "FUNCTION",
        "userId": "550e8400-e29b-41d4-a716-446655440000",
        "projectId": "d949f13f-40d2-4e48-ac86-b66633070603",
        "isActive": True,
        "async": True,
        "description": "A tool that fetches current weather information for a given location.",
        "collectionId": "550e8400-e29b-41d4-a716-446655440000",
        "toolSettings": {
            "serverUrl": "https://api.example.com/webhook",
            "httpHeaders": {"Content-Type": "application/json", "Authorization": "Bearer token"},
            "pathParameters": {"userId": "12345"},
            "timeout": 5000,
            "authToken": "bearer_token_12345",
            "methodType": "POST",
        },
        "params": {"location": {"type": "string", "description": "The location to get weather for"}},
        "messages": [{"type": "system", "content": "You are a helpful weather assistant."}],
    },
}
ORDER_PARAMS = {
    "type": "object",
    "properties": {"orderId": {"type": "string", "description": "Order ID (format: ORD-XXXXX)"}},
    "required": ["orderId"],
}
# The guide's "GET Requests" example.
GET_ORDER_STATUS = {
    "name": "Get Order Status",
    "description": "Retrieves order status, tracking info, and estimated delivery.\n"
    "                 Use when caller asks about their order or delivery.",
    "methodType": "GET",
    "url": "https://api.yourstore.com/orders/:orderId",
    "authType": "jwtAuth",
    "authToken": "Bearer sk_live_123",
    "pathParameters": [{"name": "orderId", "defaultValue": "ORD-12345"}],
    "parameters": ORDER_PARAMS,
}
# The guide's "Async Tool Execution" example: no authType, no authToken.
GENERATE_REPORT = {
    "name": "Generate Report",
    "description": "Generates detailed account report (may take 30-60 seconds).",
    "methodType": "POST",
    "url": "https://api.yourservice.com/reports/generate",
    "async": True,
    "timeoutSeconds": 60,
    "parameters": {
        "type": "object",
        "properties": {
            "account_id": {"type": "string"},
            "report_type": {"type": "string", "enum": ["summary", "detailed", "transactions"]},
        },
    },
}


def load(tmp_path: Path, document: Any) -> LoadResult:
    path = tmp_path / "tool.json"
    path.write_text(json.dumps(document))
    return load_definitions([path], environ={})


def load_one(tmp_path: Path, document: Any) -> ToolDefinition:
    (definition,) = load(tmp_path, document).definitions
    return definition


def errors(tmp_path: Path, document: Any) -> list[tuple[str | None, str | None, str]]:
    """`(tool, field, message)` of every error; each must name the file it came from."""
    with pytest.raises(ConfigErrors) as caught:
        load(tmp_path, document)
    assert {e.file for e in caught.value.errors} == {str(tmp_path / "tool.json")}
    return [(e.tool, e.field, e.message) for e in caught.value.errors]


# --- the three shapes -------------------------------------------------------------------------


def test_api_body_example(tmp_path: Path) -> None:
    result = load(tmp_path, API_BODY)
    assert result.definitions == [
        ToolDefinition(
            name="Weather API Tool",
            mcp_name="weather_api_tool",
            description="A tool that fetches current weather information for a given location.",
            method="POST",
            url="https://api.example.com/webhook",
            url_template="https://api.example.com/webhook",
            auth_token="bearer_token_12345",
            headers=(("Content-Type", "application/json"), ("Authorization", "Bearer token")),
            path_defaults={"userId": "12345"},
            params=WEATHER_PARAMS,
            is_async=True,
            timeout_seconds=15.0,
            messages=(Message(type="system", content="You are a helpful weather assistant."),),
            source=str(tmp_path / "tool.json"),
        )
    ]
    # The example sets both an authToken and an Authorization header: the user is told which wins.
    assert [str(w) for w in result.warnings] == [
        f"{tmp_path / 'tool.json'}: tool 'Weather API Tool': field `toolSettings.httpHeaders.Authorization`: "
        "is replaced by the tool's authToken"
    ]


def test_api_response_envelope_example(tmp_path: Path) -> None:
    definition = load_one(tmp_path, API_RESPONSE)
    assert definition.timeout_seconds == 5.0  # `timeout: 5000` is milliseconds in a response
    # The response shows `params` as a bare map of properties.
    assert definition.params == {
        "type": "object",
        "properties": {"location": {"type": "string", "description": "The location to get weather for"}},
    }
    body = load_one(tmp_path, API_BODY)
    assert definition == body.model_copy(update={"timeout_seconds": 5.0, "params": definition.params})


def test_guide_async_example_has_no_auth(tmp_path: Path) -> None:
    definition = load_one(tmp_path, GENERATE_REPORT)
    assert (definition.mcp_name, definition.method, definition.auth_token) == ("generate_report", "POST", None)
    assert (definition.is_async, definition.timeout_seconds, definition.headers) == (True, 60.0, ())


def test_guide_first_tool_with_spoken_messages(tmp_path: Path) -> None:
    """The guide's "Creating Your First Tool": messages written as `Request Start: "..."`."""
    tool = {
        "name": "Lookup Customer by Phone",
        "methodType": "POST",
        "url": "https://api.yourcrm.com/customers/lookup",
        "authType": "jwtAuth",
        "authToken": "Bearer sk_live_abc123xyz789",
        "timeoutSeconds": 10,
        "messages": {
            "Request Start": "Let me look that up for you...",
            "Request Complete": "I found your account information.",
        },
        "parameters": {"type": "object", "properties": {"phone_number": {"type": "string"}}},
    }
    definition = load_one(tmp_path, tool)
    assert definition.mcp_name == "lookup_customer_by_phone"
    assert definition.messages == (
        Message(type="Request Start", content="Let me look that up for you..."),
        Message(type="Request Complete", content="I found your account information."),
    )


def test_guide_api_key_header_with_auth_type_none(tmp_path: Path) -> None:
    tool = {**GENERATE_REPORT, "authType": "none", "authToken": "Bearer ignored-token"}
    tool["headers"] = [{"name": "X-API-Key", "value": "sk_live_abc123xyz789"}]
    result = load(tmp_path, tool)
    assert result.definitions[0].auth_token is None
    assert result.definitions[0].headers == (("X-API-Key", "sk_live_abc123xyz789"),)
    assert [(w.tool, w.field, w.message) for w in result.warnings] == [
        ("Generate Report", "authToken", 'is ignored because authType is "none"')
    ]


SAME_EXTRAS = {"async": True, "messages": [{"type": "request-start", "content": "One moment."}]}
# The guide's GET example, with what it lacks to show every field carried across shapes.
SAME_GUIDE = {**GET_ORDER_STATUS, **SAME_EXTRAS, "methodType": "get", "timeoutSeconds": 15}
SAME_GUIDE["headers"] = [{"name": "X-Client-ID", "value": "client_123"}]
SAME_SETTINGS = {
    "serverUrl": "https://api.yourstore.com/orders/:orderId",
    "methodType": "GET",
    "authToken": "Bearer sk_live_123",
    "httpHeaders": {"X-Client-ID": "client_123"},
    "pathParameters": {"orderId": "ORD-12345"},
}
SAME_BODY = {
    "type": "FUNCTION",
    "name": "Get Order Status",
    "description": GET_ORDER_STATUS["description"],
    "toolSettings": {**SAME_SETTINGS, "timeOut": 15},
    "params": ORDER_PARAMS,
    **SAME_EXTRAS,
}
SAME_RESPONSE_DATA = {**SAME_BODY, "id": "d949f13f", "toolSettings": {**SAME_SETTINGS, "timeout": 15000}}


@pytest.mark.parametrize(
    "document",
    [
        SAME_GUIDE,
        SAME_BODY,
        {"success": True, "message": "success", "data": SAME_RESPONSE_DATA},
        {"success": True, "message": "success", "data": [SAME_RESPONSE_DATA]},
        [SAME_BODY],
        {"tools": [SAME_GUIDE]},
    ],
    ids=["guide", "api-body", "envelope", "envelope-list", "list", "tools-key"],
)
def test_every_shape_normalises_to_the_same_definition(tmp_path: Path, document: Any) -> None:
    assert load_one(tmp_path, document) == ToolDefinition(
        name="Get Order Status",
        mcp_name="get_order_status",
        description=GET_ORDER_STATUS["description"],
        method="GET",
        url="https://api.yourstore.com/orders/:orderId",
        url_template="https://api.yourstore.com/orders/:orderId",
        auth_token="Bearer sk_live_123",
        headers=(("X-Client-ID", "client_123"),),
        path_defaults={"orderId": "ORD-12345"},
        params=ORDER_PARAMS,
        is_async=True,
        timeout_seconds=15.0,
        messages=(Message(type="request-start", content="One moment."),),
        source=str(tmp_path / "tool.json"),
    )


def test_defaults_when_optional_fields_are_absent(tmp_path: Path) -> None:
    definition = load_one(tmp_path, {"name": "Ping", "methodType": "GET", "url": "https://x.test/ping"})
    assert definition.params == {"type": "object", "properties": {}, "additionalProperties": False}
    assert (definition.description, definition.timeout_seconds, definition.is_async) == ("", 10.0, False)
    assert (definition.messages, definition.headers, definition.path_defaults) == ((), (), {})


# --- names ------------------------------------------------------------------------------------


def test_slug() -> None:
    names = [
        "Lookup Customer by Phone",
        "  Get -- Order   Status!! ",
        "API v2.1 (beta)",
        "already_a_slug",
        "Ärger Café",
    ]
    slugs = ["lookup_customer_by_phone", "get_order_status", "api_v2_1_beta", "already_a_slug", "arger_cafe"]
    assert [slugify(name) for name in names] == slugs


def test_mcp_name_override_follows_the_mcp_name_rule(tmp_path: Path) -> None:
    tool = {**GENERATE_REPORT, "mcpName": "Reports.generate-v2"}
    assert load_one(tmp_path, tool).mcp_name == "Reports.generate-v2"


# --- one rule broken at a time: the exact error ------------------------------------------------

BASE = {"name": "T", "methodType": "POST", "url": "https://x.test/a", "parameters": {"type": "object"}}
NAME_RULE = "must be 1-128 characters of A-Z a-z 0-9 _ - . (set `mcpName` to choose one)"


@pytest.mark.parametrize(
    ("change", "tool", "message"),
    [
        ({"name": ""}, "unnamed entry", "must not be empty"),
        ({"name": "n" * 251}, "n" * 57 + "...", "must be at most 250 characters (it has 251)"),  # label shortened
        ({"name": "!!!"}, "!!!", f"MCP tool name '' {NAME_RULE}"),
        ({"name": "n" * 129}, "n" * 57 + "...", f"MCP tool name {'n' * 129!r} {NAME_RULE}"),
    ],
)
def test_name_rules(tmp_path: Path, change: dict[str, Any], tool: str, message: str) -> None:
    assert errors(tmp_path, {**BASE, **change}) == [(tool, "name", message)]


ABSOLUTE = "must be an absolute http:// or https:// URL"
BAD_SCHEMA = "is not valid JSON Schema: "
CONTROL_CHARS = "must not contain spaces or control characters (CR, LF, tab, ...)"
HOST_PLACEHOLDER = "placeholders are only allowed in the path; the host comes from config alone"
CRLF_VALUE = "has a value containing CR, LF or NUL"
CONTROL_VALUE = "has a value with control characters or leading/trailing whitespace"
CONTROL_TOKEN = "control characters or leading/trailing whitespace"
BAD_HEADER = "is not a valid HTTP header name"
NOT_ARRAY = "'a' is not of type 'array'"
TYPES = "array, boolean, integer, null, number, object, string"
TWO_STARTS = [{"type": "request-start", "content": "a"}, {"type": "request-start", "content": "b"}]


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"mcpName": "has space"}, "mcpName", f"MCP tool name 'has space' {NAME_RULE}"),
        ({"description": "d" * 1001}, "description", "must be at most 1000 characters (it has 1001)"),
        ({"methodType": "HEAD"}, "methodType", "must be one of GET, POST, PUT, PATCH, DELETE (any case)"),
        ({"url": "/orders"}, "url", ABSOLUTE),
        ({"url": "ftp://x.test/a"}, "url", ABSOLUTE),
        ({"url": "api.x.test/a"}, "url", ABSOLUTE),
        ({"url": "https://x.test/a#top"}, "url", "must not contain a #fragment"),
        (
            {"url": "https://user:pw@x.test/a"},
            "url",
            "must not contain user:password@; put credentials in authToken or headers",
        ),
        ({"url": "https://x.test:99999/a"}, "url", "has an invalid port (it must be a number from 0 to 65535)"),
        ({"url": "https://x.test/a\r\nX: 1"}, "url", CONTROL_CHARS),
        ({"url": "https://x.test/a\x00b"}, "url", CONTROL_CHARS),
        ({"url": "https://x.test/a\x7fb"}, "url", CONTROL_CHARS),
        ({"url": "https://x.test/a\u00a0b"}, "url", CONTROL_CHARS),  # no-break space
        ({"url": "https://x.test/a\u2028b"}, "url", CONTROL_CHARS),  # line separator
        ({"url": "https://x.test/a\x1cb"}, "url", CONTROL_CHARS),  # file separator: a space to Python
        ({"url": "https://{host}/a"}, "url", HOST_PLACEHOLDER),
        (
            {"url": "https://x.test/orders/:orderId/items/{itemId}"},
            "url",
            "URL placeholder(s) :orderId, {itemId} have neither a parameter of that name nor a pathParameters default",
        ),
        ({"parameters": {"type": "string"}}, "parameters", 'must be a JSON Schema with "type": "object"'),
        (
            {"parameters": {"type": "object", "properties": {"a": {"type": "text"}}}},
            "parameters.properties.a.type",
            BAD_SCHEMA + f"'text' is not a JSON Schema type; the types are {TYPES}",
        ),
        ({"parameters": {"type": "object", "required": "a"}}, "parameters.required", BAD_SCHEMA + NOT_ARRAY),
        ({"messages": TWO_STARTS}, "messages", "message type 'request-start' appears more than once"),
        (
            {"messages": {"Request Start": "a", "request_start": "b"}},
            "messages",
            "message type 'request_start' appears more than once",
        ),
        ({"headers": [{"name": "X-A", "value": "a\r\nX-B: 1"}]}, "headers", "header 'X-A' " + CRLF_VALUE),
        ({"headers": {"X-A": "a\nX-B: 1"}}, "headers", "header 'X-A' " + CRLF_VALUE),
        *[
            ({"headers": {"X-A": value}}, "headers", "header 'X-A' " + CONTROL_VALUE)
            for value in (" x-lead-value", "x-trail-value\t", "x-bell\x07", "x-del\x7f")
        ],
        ({"authToken": "tok\x01", "authType": "jwtAuth"}, "authToken", "contains " + CONTROL_TOKEN),
        ({"headers": [{"name": "Bad Name", "value": "a"}]}, "headers", "header name 'Bad Name' " + BAD_HEADER),
        ({"authToken": "tok\nX: 1", "authType": "jwtAuth"}, "authToken", "contains CR, LF or NUL"),
        (
            {"headers": {"X-Team": "Équipe"}},
            "headers",
            "header 'X-Team' has a non-ASCII value, which HTTP headers cannot carry",
        ),
        (
            {"authToken": "clé", "authType": "jwtAuth"},
            "authToken",
            "contains non-ASCII characters, which HTTP headers cannot carry",
        ),
        ({"authType": "basic"}, "authType", 'must be "jwtAuth" or "none", not \'basic\''),
        ({"type": "TOOL"}, "type", 'must be "FUNCTION" or "MCP", not \'TOOL\''),
        ({"timeoutSeconds": 0}, "timeoutSeconds", "must be greater than 0"),
        ({"timeoutSeconds": 3601}, "timeoutSeconds", "must be at most 3600"),
    ],
)
def test_rule_errors(tmp_path: Path, change: dict[str, Any], field: str, message: str) -> None:
    assert errors(tmp_path, {**BASE, **change}) == [("T", field, message)]


def test_api_shape_errors_name_the_users_fields(tmp_path: Path) -> None:
    tool = {
        "name": "T",
        "toolSettings": {"serverUrl": "https://x.test/:id", "methodType": "FETCH", "timeOut": "slow"},
        "params": {"type": "object"},
    }
    assert errors(tmp_path, tool) == [
        ("T", "toolSettings.methodType", "must be one of GET, POST, PUT, PATCH, DELETE (any case)"),
        ("T", "toolSettings.timeOut", "must be a number"),
    ]
    # With the fields fixed, the placeholder check (which needs a valid model) speaks up.
    tool["toolSettings"] = {"serverUrl": "https://x.test/:id", "methodType": "get"}
    unfillable = "URL placeholder(s) :id have neither a parameter of that name nor a pathParameters default"
    assert errors(tmp_path, tool) == [("T", "toolSettings.serverUrl", unfillable)]


ORDER_DEFAULT = {"pathParameters": [{"name": "orderId", "defaultValue": "ORD-1"}]}
CUSTOMER_DEFAULT = {"pathParameters": [{"name": "customerId", "defaultValue": 7}], "parameters": ORDER_PARAMS}


@pytest.mark.parametrize(
    ("url", "extra", "placeholders", "defaults"),
    [
        ("https://x.test/orders/:orderId", {"parameters": ORDER_PARAMS}, ("orderId",), {}),
        ("https://x.test/orders/{orderId}", {"parameters": ORDER_PARAMS}, ("orderId",), {}),
        ("https://x.test/orders/:orderId", ORDER_DEFAULT, ("orderId",), {"orderId": "ORD-1"}),
        ("https://x.test/c/{customerId}/o/:orderId", CUSTOMER_DEFAULT, ("customerId", "orderId"), {"customerId": "7"}),
        ("http://127.0.0.1:8900/orders", {}, (), {}),  # `:8900` is a port, not a placeholder
    ],
)
def test_fillable_placeholders(tmp_path: Path, url: str, extra: Any, placeholders: Any, defaults: Any) -> None:
    definition = load_one(tmp_path, {**BASE, "url": url, **extra})
    assert (definition.path_placeholders, definition.path_defaults) == (placeholders, defaults)


@pytest.mark.parametrize("method", ["get", "Post", "pUT", "patch", "DELETE"])
def test_method_in_any_case(tmp_path: Path, method: str) -> None:
    assert load_one(tmp_path, {**BASE, "methodType": method}).method == method.upper()


def test_limits_are_inclusive(tmp_path: Path) -> None:
    tool = {**BASE, "name": "n" * 250, "mcpName": "long", "description": "d" * 1000, "timeoutSeconds": 3600}
    definition = load_one(tmp_path, tool)
    assert (len(definition.name), len(definition.description), definition.timeout_seconds) == (250, 1000, 3600.0)


def test_error_paths_are_written_like_response_paths(tmp_path: Path) -> None:
    """One JSON-path formatter (shaping/paths.py): a key that is not plain is quoted, as in `responseFields`."""
    schema = {"type": "object", "properties": {"first name": {"type": "text"}}}
    not_a_type = f"{BAD_SCHEMA}'text' is not a JSON Schema type; the types are {TYPES}"
    where = 'parameters.properties["first name"].type'
    assert errors(tmp_path, {**BASE, "parameters": schema}) == [("T", where, not_a_type)]
    messages = [{"type": "request-start", "content": "a"}, {"type": "request-complete", "content": 7}]
    assert errors(tmp_path, {**BASE, "messages": messages}) == [("T", "messages[1].content", "must be a string")]
