"""The README's worked voice-agent example is a definition that loads, and answers as shown."""

from __future__ import annotations

import json
import re

import pytest
from support import REPO, mcp_client

from mcp_webtools.demo.api import ORDERS

pytestmark = pytest.mark.anyio

README = (REPO / "README.md").read_text()


def readme_block(after: str, language: str) -> str:
    section = README.split(after, 1)[1]
    return re.search(rf"```{language}\n(.*?)```", section, re.S).group(1)


async def test_the_order_status_example_answers_as_the_readme_shows(upstream, tmp_path):
    order = ORDERS["ORD-12345"]  # the demo API's order, as in the README's output
    upstream.reply_json("GET", "/orders/ORD-12345", order)
    config = tmp_path / "orders.yaml"
    config.write_text(readme_block("**The definition**", "yaml"))
    shown = json.loads(readme_block("**What the agent receives**", "json"))
    env = {"SHOP_API_URL": upstream.url, "SHOP_API_KEY": "sk_live_shop_never-shown-1"}
    async with mcp_client("http", "legacy", config, env=env) as client:
        result = await client.call_tool("get_order_status", {"orderId": "ORD-12345"})
    assert result.structured_content == shown["structuredContent"]
    assert [block.text for block in result.content] == [shown["content"][0]["text"]]
    assert upstream.requests[0].raw_path == "/orders/ORD-12345"
    assert upstream.requests[0].headers["authorization"] == "Bearer sk_live_shop_never-shown-1"
