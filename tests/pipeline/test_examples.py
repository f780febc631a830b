"""A tool's `examples`: read in every shape, checked at load (file, tool, field, a "did you mean"), kept
out of the MCP listing, and judged against results (`first_difference`); `references` for recordings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from support import ERAS, mcp_client, secret, write_tools

from mcp_webtools.definitions import Expect
from mcp_webtools.errors import ConfigErrors
from mcp_webtools.examples import first_difference
from mcp_webtools.loading import load_definitions
from mcp_webtools.results import META_HTTP

URL = "http://127.0.0.1:9/orders/{orderId}"
PARAMS = {
    "type": "object",
    "properties": {"orderId": {"type": "string", "pattern": "^[0-9]+$"}, "verbose": {"type": "boolean"}},
    "required": ["orderId"],
}
SHIPPED = {"name": "shipped order", "arguments": {"orderId": "42"}, "expect": {"status": 200}}


def guide(examples: Any, **extra: Any) -> dict[str, Any]:
    return {"name": "Get Order", "methodType": "GET", "url": URL, "parameters": PARAMS, "examples": examples, **extra}


def errors_of(tmp_path: Path, document: Any, environ: dict[str, str] | None = None) -> list[str]:
    path = write_tools(tmp_path, document)
    with pytest.raises(ConfigErrors) as caught:
        load_definitions([path], environ=environ or {})
    return [str(problem) for problem in caught.value.errors]


@pytest.mark.parametrize("shape", ["guide", "hamsa-api", "envelope"])
def test_examples_are_read_in_every_shape(tmp_path, shape):
    api = {
        "type": "FUNCTION",
        "name": "Get Order",
        "description": "d",
        "toolSettings": {"serverUrl": URL, "methodType": "GET"},
        "params": PARAMS,
        "examples": [SHIPPED],
    }
    document = {
        "guide": guide([SHIPPED]),
        "hamsa-api": api,
        "envelope": {"success": True, "message": "ok", "data": [api]},
    }[shape]
    (definition,) = load_definitions([write_tools(tmp_path, document)], environ={}).definitions
    (example,) = definition.examples
    assert (example.name, example.arguments, example.expect.status) == ("shipped order", {"orderId": "42"}, 200)


def test_unknown_keys_of_an_example_and_of_expect_get_a_did_you_mean(tmp_path):
    examples = [
        {"name": "a", "arguments": {"orderId": "1"}, "expect": {"status": 200, "isEror": False}},
        {"name": "b", "argument": {"orderId": "1"}},
        {"name": "c", "arguments": {"orderId": "1"}, "expect": {"field": {"order.id": 1}}},
    ]
    file = tmp_path / "tools.json"
    assert errors_of(tmp_path, guide(examples)) == [
        f"{file}: tool 'Get Order': field `examples[0].expect`: `isEror` is not a key of expect "
        "(did you mean `isError`?); it takes status, isError, fields, contains",
        f"{file}: tool 'Get Order': field `examples[1]`: `argument` is not a key of an example "
        "(did you mean `arguments`?); it takes name, arguments, expect",
        f"{file}: tool 'Get Order': field `examples[2].expect`: `field` is not a key of expect "
        "(did you mean `fields`?); it takes status, isError, fields, contains",
    ]


def test_example_arguments_are_checked_against_the_tools_input_schema(tmp_path):
    examples = [
        {"name": "bad id", "arguments": {"orderId": "x1"}},
        {"name": "no id", "arguments": {"verbose": True}},
        {"name": "typed", "arguments": {"orderId": "7", "verbose": "yes"}},
        {"name": "traversal", "arguments": {"orderId": ".."}},
    ]
    params = {**PARAMS, "properties": {**PARAMS["properties"], "orderId": {"type": "string"}}}
    file = tmp_path / "tools.json"
    errors = errors_of(tmp_path, [guide(examples[:3]), guide(examples[3:], name="Other", parameters=params)])
    assert errors == [
        f"{file}: tool 'Get Order': field `[0].examples[0].arguments.orderId`: 'x1' does not match '^[0-9]+$'",
        f"{file}: tool 'Get Order': field `[0].examples[1].arguments.orderId`: is required",
        f"{file}: tool 'Get Order': field `[0].examples[2].arguments.verbose`: 'yes' is not of type 'boolean'",
        f"{file}: tool 'Other': field `[1].examples[0].arguments.orderId`: "
        "must not contain a '.' or '..' path segment (split on '/' or '\\', encoded or not): "
        "a proxy that decodes the URL would resolve it to another path",
    ]


def test_example_names_are_unique_per_tool_and_other_fields_are_typed(tmp_path):
    file = tmp_path / "tools.json"
    same = [dict(SHIPPED), {**SHIPPED, "name": "Shipped Order"}]
    assert errors_of(tmp_path, guide(same)) == [
        f"{file}: tool 'Get Order': field `examples`: example names 'shipped order' and 'Shipped Order' are the "
        "same (or give the same cassette file name); give each example of a tool its own name"
    ]
    wrong = [{"name": "", "arguments": []}, {"name": "s", "arguments": {"orderId": "1"}, "expect": {"status": "200"}}]
    assert errors_of(tmp_path, guide(wrong)) == [
        f"{file}: tool 'Get Order': field `examples[0].name`: must not be empty",
        f"{file}: tool 'Get Order': field `examples[0].arguments`: must be an object",
        f"{file}: tool 'Get Order': field `examples[1].expect.status`: must be a whole number",
    ]
    assert errors_of(tmp_path, guide({"name": "x"})) == [f"{file}: tool 'Get Order': field `examples`: must be a list"]


def test_the_same_name_in_two_tools_is_fine(tmp_path):
    path = write_tools(tmp_path, [guide([SHIPPED]), guide([SHIPPED], name="Other")])
    assert [len(d.examples) for d in load_definitions([path], environ={}).definitions] == [1, 1]


@pytest.mark.anyio
@pytest.mark.parametrize("era", ERAS)
async def test_examples_are_never_published_to_clients(tmp_path, era):
    config = write_tools(tmp_path, guide([SHIPPED], description="Look up an order"))
    async with mcp_client("http", era, config) as client:
        listed = await client.list_tools()
    (tool,) = listed.tools
    wire = json.dumps(tool.model_dump(by_alias=True, mode="json"))
    assert tool.name == "get_order" and "example" not in wire and "shipped order" not in wire


def test_every_secret_read_through_a_reference_keeps_its_reference(tmp_path):
    environ = {
        "ORDERS_API": "http://127.0.0.1:9",
        "ORDERS_KEY": secret("orders-key-never-shown-1"),
        "SVC_USER": secret("svc-user-never-shown"),
        "SVC_PASS": secret("svc-pass-never-shown"),
    }
    token_file = tmp_path / "token"
    token_file.write_text(secret("file-token-never-shown") + "\n")
    tools = [
        {**guide([]), "url": "${ORDERS_API}/orders/{orderId}", "headers": {"X-Key": "${ORDERS_KEY}"}},
        {**guide([], name="Basic"), "auth": {"type": "basic", "username": "${SVC_USER}", "password": "${SVC_PASS}"}},
        {**guide([], name="Bearer"), "authToken": f"${{file:{token_file}}}"},
    ]
    path = write_tools(tmp_path, tools)
    basic, bearer, orders = load_definitions([path], environ=environ).definitions
    assert dict(orders.references) == {
        "http://127.0.0.1:9": "${ORDERS_API}",
        environ["ORDERS_KEY"]: "${ORDERS_KEY}",
    }
    encoded = "c3ZjLXVzZXItbmV2ZXItc2hvd246c3ZjLXBhc3MtbmV2ZXItc2hvd24="
    assert dict(basic.references) == {
        environ["SVC_USER"]: "${SVC_USER}",
        environ["SVC_PASS"]: "${SVC_PASS}",
        encoded: "${base64:${SVC_USER}:${SVC_PASS}}",
    }
    assert dict(bearer.references) == {"file-token-never-shown": f"${{file:{token_file}}}"}


def result(body: Any = None, status: int = 200, error: bool = False, text: str = "") -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text or json.dumps(body))],
        structured_content=body,
        is_error=error,
        _meta={META_HTTP: {"status": status, "elapsedMs": 1.0}},
    )


BODY = {"api_response_status": 200, "order": {"status": "shipped", "items": [{"sku": "a"}, {"sku": "b"}], "n": 2}}


@pytest.mark.parametrize(
    ("expect", "answer", "difference"),
    [
        ({"status": 200, "fields": {"order.status": "shipped"}}, result(BODY), None),
        (
            {"fields": {"order.items[*].sku": ["a", "b"], "order.items[-1].sku": "b", "order.n": 2.0}},
            result(BODY),
            None,
        ),
        ({"status": 200}, result(BODY, status=404, error=True), "status: expected 200, got HTTP 404"),
        ({"status": 404}, result(BODY, status=404, error=True, text="not found"), None),
        ({"isError": True}, result(BODY), "isError: expected true, got false"),
        (
            {},
            result(None, status=500, error=True, text="HTTP 500: boom"),
            "isError: expected false, got true (HTTP 500: boom)",
        ),
        (
            {"fields": {"order.status": "pending"}},
            result(BODY),
            'fields.order.status: expected "pending", got "shipped"',
        ),
        ({"fields": {"order.n": True}}, result(BODY), "fields.order.n: expected true, got 2"),
        ({"fields": {"order.id": 1}}, result(BODY), "fields.order.id: expected 1, but the result has no such field"),
        ({"contains": "shipped"}, result(BODY), None),
        ({"fields": {"order.items[1].sku": "b"}}, result({"order.items[1].sku": "b"}), None),  # flatten: true
        ({"contains": ["shipped", "lost"]}, result(BODY), 'contains: "lost" is not in the result text ('),
    ],
)
def test_the_first_difference_between_a_result_and_what_an_example_expects(expect, answer, difference):
    found = first_difference(Expect.model_validate(expect), answer)
    if difference is not None and difference.endswith("("):  # then the result's text, shortened
        assert found is not None and found.startswith(difference)
    else:
        assert found == difference


def test_a_call_that_got_no_answer_says_so_against_an_expected_status():
    failed = types.CallToolResult(
        content=[types.TextContent(type="text", text="Calling 'x' failed: timed out after 2 s.")], is_error=True
    )
    found = first_difference(Expect(status=200), failed)
    assert found == "status: expected 200, got no HTTP answer (Calling 'x' failed: timed out after 2 s.)"
