"""Argument placement end to end: a real MCP client calls placed tools and the recording upstream sees the
exact path, query, headers and JSON or form body."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest
from support import Upstream, hamsa_tool, mcp_client, serve_asgi, write_tools

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

PARAMS = {
    "type": "object",
    "properties": {
        "sid": {"type": "string"},
        "limit": {"type": "integer"},
        "requestId": {"type": "string"},
        "To": {"type": "array", "items": {"type": "string"}},
        "Body": {"type": "string"},
        "metadata": {"type": "object"},
        "order": {"type": "object"},
    },
}


@pytest.mark.parametrize(("transport", "era"), [("stdio", "legacy"), ("http", "auto")])
async def test_placed_arguments_reach_the_upstream_exactly(tmp_path, transport, era):
    upstream = Upstream()
    upstream.reply_json("POST", "/Accounts/AC 1/Messages.json", {"sid": "SM1", "status": "queued"}, status=201)
    async with serve_asgi(upstream) as url:
        form_tool = hamsa_tool("Send message", f"{url}/Accounts/{{sid}}/Messages.json", "POST", params=PARAMS)
        form_tool.update({
            "placement": {"limit": "query", "requestId": {"in": "header", "name": "X-Request-Id"}},
            "bodyEncoding": "form",
        })  # fmt: skip
        json_tool = hamsa_tool("Put order", f"{url}/orders/{{sid}}", "PUT", params=PARAMS)
        json_tool.update({"bodyArgument": "order", "placement": {"requestId": {"in": "header", "name": "X-Req"}}})
        config = write_tools(tmp_path, [form_tool, json_tool])
        async with mcp_client(transport, era, config, env={}) as client:
            sent = await client.call_tool("send_message", {
                "sid": "AC 1", "limit": 5, "requestId": "r-1", "To": ["+1555", "+1666"], "Body": "Hi & bye",
                "metadata": {"k": "v"},
            })  # fmt: skip
            assert not sent.is_error, sent
            assert sent.structured_content["sid"] == "SM1", sent
            put = await client.call_tool("put_order", {"sid": "7", "limit": 2, "requestId": "q", "order": {"a": [1]}})
            assert not put.is_error, put
    form, whole = upstream.requests
    assert (form.method, form.raw_path, form.query) == ("POST", "/Accounts/AC%201/Messages.json", "limit=5")
    assert form.headers["x-request-id"] == "r-1"
    assert form.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qsl(form.body.decode()) == [
        ("To", "+1555"),
        ("To", "+1666"),
        ("Body", "Hi & bye"),
        ("metadata[k]", "v"),
    ]
    assert (whole.method, whole.raw_path, whole.query) == ("PUT", "/orders/7", "limit=2")
    assert whole.headers["x-req"] == "q" and whole.headers["content-type"] == "application/json"
    assert whole.body == b'{"a":[1]}'
