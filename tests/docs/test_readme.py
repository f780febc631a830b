"""The examples in the README and on the docs pages are definitions that load, and answer as shown.

The worked voice-agent example (docs/hamsa-and-voice.md) runs against the demo API's order; the
README's first tool is called with `--dry-run`; every other tool definition and settings example
on a page loads without an error or a warning.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml
from support import REPO, hamsa_tool, mcp_client, secret, write_tools

from mcp_webtools import cli
from mcp_webtools.demo.api import ORDERS
from mcp_webtools.loading import load_definitions

README = "README.md"
VOICE = "docs/hamsa-and-voice.md"
CONFIGURATION = "docs/configuration.md"


def page(name: str) -> str:
    return (REPO / name).read_text()


def block_after(text: str, after: str, language: str) -> str:
    """The first ```language block after the text `after`."""
    section = text.split(after, 1)[1]
    return re.search(rf"```{language}\n(.*?)```", section, re.S).group(1)


def config_blocks(text: str) -> list[Any]:
    """Every ```yaml and ```json block of a page, parsed."""
    return [yaml.safe_load(body) for body in re.findall(r"```(?:yaml|json)\n(.*?)```", text, re.S)]


def environ_for(document: Any) -> dict[str, str]:
    """A value for each `${NAME}` a document reads: a base URL for `..._URL`, else a made-up key."""
    names = set(re.findall(r"\$\{([A-Z0-9_]+)", json.dumps(document)))
    return {n: "https://api.example.com" if n.endswith("_URL") else secret(f"doc-{n.lower()}-1234") for n in names}


@pytest.mark.anyio
async def test_the_order_status_example_answers_as_the_page_shows(upstream, tmp_path):
    text = page(VOICE)
    order = ORDERS["ORD-12345"]  # the demo API's order, as in the page's output
    upstream.reply_json("GET", "/orders/ORD-12345", order)
    config = tmp_path / "orders.yaml"
    config.write_text(block_after(text, "**The definition**", "yaml"))
    shown = json.loads(block_after(text, "**What the agent receives**", "json"))
    env = {"SHOP_API_URL": upstream.url, "SHOP_API_KEY": "sk_live_shop_never-shown-1"}
    async with mcp_client("http", "legacy", config, env=env) as client:
        result = await client.call_tool("get_order_status", {"orderId": "ORD-12345"})
    assert result.structured_content == shown["structuredContent"]
    assert [block.text for block in result.content] == [shown["content"][0]["text"]]
    assert upstream.requests[0].raw_path == "/orders/ORD-12345"
    assert upstream.requests[0].headers["authorization"] == "Bearer sk_live_shop_never-shown-1"


def test_the_readme_first_tool_sends_the_request_the_readme_describes(tmp_path, capsys, monkeypatch):
    text = page(README)
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "weather.yaml").write_text(block_after(text, "## A first tool definition", "yaml"))
    monkeypatch.setenv("WEATHER_API_KEY", secret("wk_live_weather-never-shown-1"))
    argv = ["call", "get_weather", "--config", str(tools), "--args", '{"city": "Cairo"}', "--dry-run"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    # What the README says the call becomes.
    assert "`GET https://api.example.com/weather/Cairo?units=metric`" in text
    assert "MCP clients see a tool `get_weather`" in text
    assert out.splitlines()[:2] == ["GET /weather/Cairo?units=metric HTTP/1.1", "Host: api.example.com"]
    assert "Authorization: Bearer ***" in out.splitlines()


@pytest.mark.parametrize(
    ("name", "tools"),
    [
        (README, ["get_weather"]),
        (CONFIGURATION, ["get_order_status", "lookup_customer_by_phone"]),
        (VOICE, ["get_order_status"]),
    ],
)
def test_every_tool_definition_on_a_page_loads_without_a_warning(name, tools, tmp_path):
    documents = [d for d in config_blocks(page(name)) if isinstance(d, dict) and {"url", "toolSettings"} & d.keys()]
    loaded = []
    for number, document in enumerate(documents):
        config = write_tools(tmp_path, document, f"example-{number}.json")
        result = load_definitions([config], environ=environ_for(document))
        assert result.warnings == [], (name, document)
        loaded += [definition.mcp_name for definition in result.definitions]
    assert sorted(loaded) == tools


@pytest.mark.parametrize(
    ("name", "heading", "language"),
    [
        (CONFIGURATION, "## Reliability settings (any shape)", "yaml"),
        (CONFIGURATION, "## Responses an LLM can use (any shape)", "yaml"),
        (VOICE, "## Async tools and spoken messages", "json"),
    ],
)
def test_every_settings_example_is_accepted_on_a_tool(name, heading, language, tmp_path):
    """The settings a page shows on their own are top-level keys of a tool, known and valid."""
    settings = yaml.safe_load(block_after(page(name), heading, language))
    tool = {**hamsa_tool("Example", "https://api.example.com/orders", "POST"), **settings}
    result = load_definitions([write_tools(tmp_path, tool)], environ={})
    assert result.warnings == []
    assert [definition.mcp_name for definition in result.definitions] == ["example"]
