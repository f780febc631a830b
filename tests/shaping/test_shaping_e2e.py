"""Response shaping end to end: a real `mcp.Client` in both protocol eras, against a recording upstream.

The SDK client validates `structuredContent` against the tool's published `outputSchema` on every
successful call (and raises when it does not conform), so these tests also prove that nothing we
send breaks a validating client: conforming answers, answers cut to the budget, upstream answers
off the schema, and HTTP errors.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from support import ERAS, Reply, Upstream, mcp_client, write_tools

from mcp_webtools.shaping.projection import response_shaping

pytestmark = pytest.mark.anyio

JSON = [("content-type", "application/json")]
# The guide's "Using API Responses" example, with the kind of bulk a real CRM adds.
CUSTOMER = {
    "customer": {"id": "CUST-12345", "name": "John Smith", "email": "john@example.com", "tier": "gold",
                 "balance": 1250.5, "notes": "n" * 20_000},
    "orders": [{"id": "ORD-11111", "status": "shipped", "total": 99.99},
               {"id": "ORD-11112", "status": "processing", "total": 5.0}],
}  # fmt: skip
# The guide's "GET Requests" example (order status), also with bulk the agent does not need.
ORDER = {
    "order_id": "ORD-12345", "status": "shipped", "tracking_number": "1Z999AA10123456784",
    "estimated_delivery": "2024-01-18", "items": [{"sku": f"SKU-{i}", "qty": 1} for i in range(300)],
}  # fmt: skip
ORDER_FIELDS = ["order_id", "status", "tracking_number", "estimated_delivery"]
ORDER_SCHEMA = {
    "type": "object",
    "properties": {
        "order_id": {"type": "string", "pattern": "^ORD-"},
        "status": {"enum": ["processing", "shipped", "delivered"]},
        "tracking_number": {"type": "string"},
        "estimated_delivery": {"type": "string"},
    },
    "required": ["order_id", "status"],
    "additionalProperties": False,
}
ORDERS_SCHEMA = {
    "type": "object",
    "properties": {"data": {"type": "array", "items": {"type": "object", "required": ["id"]}}},
    "required": ["data"],
}


def order_list(count: int) -> list[dict[str, str]]:
    return [{"id": f"ORD-{i:05}", "status": "shipped"} for i in range(count)]


def guide_tool(name: str, url: str, **settings: Any) -> dict[str, Any]:
    params = {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}
    return {"name": name, "methodType": "GET", "url": f"{url}/{name.lower()}/:id", "parameters": params, **settings}


def config(tmp_path: Path, upstream: Upstream) -> Path:
    return write_tools(
        tmp_path,
        [
            guide_tool("Customer", upstream.url, responseFields=["customer.name", "customer.tier", "orders[*].id"]),
            guide_tool("Variables", upstream.url, flatten=True, responseFields=["customer.name", "orders[-1].status"]),
            guide_tool("Order", upstream.url, responseFields=ORDER_FIELDS, outputSchema=ORDER_SCHEMA),
            guide_tool("Orders", upstream.url, outputSchema=ORDERS_SCHEMA, maxResultBytes=1024),
            guide_tool("Plain", upstream.url),
        ],
    )


def text_of(result: types.CallToolResult) -> str:
    assert len(result.content) == 1 and isinstance(result.content[0], types.TextContent), result.content
    return result.content[0].text


@pytest.mark.parametrize("transport", ["stdio", "http"])
@pytest.mark.parametrize("era", ERAS)
async def test_a_crm_record_becomes_the_values_the_agent_needs(upstream, tmp_path, transport, era):
    upstream.reply_json("GET", "/customer/C1", CUSTOMER)
    upstream.reply_json("GET", "/variables/C1", CUSTOMER)
    async with mcp_client(transport, era, config(tmp_path, upstream)) as client:
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
        nested = await client.call_tool("customer", {"id": "C1"})
        flat = await client.call_tool("variables", {"id": "C1"})
    kept = {"customer": {"name": "John Smith", "tier": "gold"}, "orders": [{"id": "ORD-11111"}, {"id": "ORD-11112"}]}
    assert nested.is_error is False
    assert text_of(nested) == json.dumps(kept, separators=(",", ":"))
    assert nested.structured_content == {**kept, "api_response_status": 200}
    # The guide's "variables auto-created", with the original index of the last order.
    assert flat.structured_content == {
        "customer.name": "John Smith", "orders[1].status": "processing", "api_response_status": 200
    }  # fmt: skip
    assert [(seen.method, seen.raw_path) for seen in upstream.requests] == [
        ("GET", "/customer/C1"),
        ("GET", "/variables/C1"),
    ]
    # tools/list publishes an outputSchema only where one is declared: the declared schema plus our keys.
    assert listed["order"].output_schema == response_shaping(output_schema=ORDER_SCHEMA).output_schema
    assert listed["order"].output_schema["required"] == ["order_id", "status", "api_response_status"]
    assert {name for name, tool in listed.items() if tool.output_schema is not None} == {"order", "orders"}


@pytest.mark.parametrize("era", ERAS)
async def test_structured_results_always_satisfy_a_validating_client(upstream, tmp_path, era):
    upstream.reply_json("GET", "/order/good", ORDER)
    upstream.reply_json("GET", "/order/bad", {**ORDER, "status": "lost"})
    upstream.reply_json("GET", "/order/gone", {"error": "no such order"}, status=404)
    upstream.reply_json("GET", "/order/down", {"error": "maintenance"}, status=500)
    upstream.reply_json("GET", "/orders/many", order_list(400))
    async with mcp_client("http", era, config(tmp_path, upstream)) as client:
        good = await client.call_tool("order", {"id": "good"})
        bad = await client.call_tool("order", {"id": "bad"})
        gone = await client.call_tool("order", {"id": "gone"})
        down = await client.call_tool("order", {"id": "down"})
        many = await client.call_tool("orders", {"id": "many"})
        # The client really validates in this era: a result off the published schema raises.
        off_schema = types.CallToolResult(content=[], structured_content={"order_id": "ORD-1", "status": "lost"})
        with pytest.raises(RuntimeError, match="Invalid structured content returned by tool order"):
            await client.session.validate_tool_result("order", off_schema)

    assert good.is_error is False
    assert good.structured_content == {**{key: ORDER[key] for key in ORDER_FIELDS}, "api_response_status": 200}

    # An upstream answer off the schema is a tool error, never invalid structured content.
    assert bad.is_error is True and bad.structured_content is None
    assert text_of(bad) == (
        "The upstream API answered HTTP 200, but the answer does not match this tool's outputSchema: "
        "at status: 'lost' is not one of ['processing', 'shipped', 'delivered']."
    )
    # HTTP errors: the schema requires order fields, so the status goes in _meta and the text only.
    for result, status, text in [
        (gone, 404, 'The upstream API answered HTTP 404 Not Found.\nResponse body:\n{"error": "no such order"}'),
        (down, 500, "The upstream API answered HTTP 500 Internal Server Error."
                    '\nResponse body:\n{"error": "maintenance"}'),
    ]:  # fmt: skip
        assert result.is_error is True and result.structured_content is None
        assert text_of(result) == text
        assert result.meta["mcp-webtools/http"]["status"] == status

    # Over the budget: a prefix of the list, still valid against the schema, saying what was dropped.
    assert many.is_error is False
    structured = many.structured_content
    kept = structured["api_response_truncated"]["cuts"][0]["kept"]
    assert 0 < kept < 400
    assert structured == {
        "data": order_list(kept),
        "api_response_status": 200,
        "api_response_truncated": {
            "maxResultBytes": 1024,
            "originalBytes": len(
                json.dumps({"data": order_list(400), "api_response_status": 200}, separators=(",", ":"))
            ),
            "droppedItems": 400 - kept,
            "droppedCharacters": 0,
            "cuts": [{"path": "data", "kept": kept, "total": 400, "unit": "items", "places": 1}],
        },
    }
    assert len(json.dumps(structured, separators=(",", ":")).encode()) <= 1024
    body, note = (block.text for block in many.content)
    assert json.loads(body) == structured["data"]
    assert note.startswith("[Shortened to fit this tool's result budget of 1024 bytes")


@pytest.mark.parametrize("era", ERAS)
async def test_flows_can_route_on_the_status(upstream, tmp_path, era):
    """The guide's validation router: 200 / 404 / >= 500, on every kind of answer."""
    upstream.reply_json("GET", "/plain/ok", ["a", "b"])
    upstream.reply_json("GET", "/plain/missing", {"error": "no such customer"}, status=404)
    upstream.reply("GET", "/plain/broken", Reply(500, b"oops", [("content-type", "text/plain")]))
    upstream.reply("GET", "/plain/empty", Reply(204))
    async with mcp_client("http", era, config(tmp_path, upstream)) as client:
        results = {key: await client.call_tool("plain", {"id": key}) for key in ("ok", "missing", "broken", "empty")}
    assert {key: (r.is_error, r.structured_content) for key, r in results.items()} == {
        "ok": (False, {"data": ["a", "b"], "api_response_status": 200}),
        "missing": (True, {"api_response_status": 404}),
        "broken": (True, {"api_response_status": 500}),
        "empty": (False, {"api_response_status": 204}),
    }
    assert text_of(results["ok"]) == '["a","b"]'
