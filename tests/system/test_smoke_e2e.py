from __future__ import annotations

import pytest
from support import ERAS, TRANSPORTS, hamsa_tool, mcp_client, write_tools

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("era", ERAS)
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_get_tool_round_trip(upstream, tmp_path, transport, era):
    params = {
        "type": "object",
        "properties": {"orderId": {"type": "string"}, "verbose": {"type": "boolean"}},
        "required": ["orderId"],
    }
    config = write_tools(
        tmp_path, hamsa_tool("Get Order", f"{upstream.url}/orders/:orderId", "GET", params, authToken="sk_test_abcdef")
    )
    async with mcp_client(transport, era, config) as client:
        tools = (await client.list_tools()).tools
        assert [t.name for t in tools] == ["get_order"]
        result = await client.call_tool("get_order", {"orderId": "A/B", "verbose": True})
    assert result.is_error is False, result.content
    assert len(upstream.requests) == 1
    seen = upstream.requests[0]
    assert seen.method == "GET"
    assert seen.raw_path == "/orders/A%2FB"
    assert seen.query == "verbose=true"
    assert seen.headers["authorization"] == "Bearer sk_test_abcdef"
    assert result.structured_content == {
        "method": "GET",
        "path": "/orders/A%2FB",
        "query": "verbose=true",
        "body": None,
        "api_response_status": 200,
    }
