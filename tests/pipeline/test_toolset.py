"""The prepared toolset: what tools/list publishes, compared with what calls are checked against."""

from __future__ import annotations

import json
from pathlib import Path

from support import hamsa_tool, write_tools

from mcp_webtools.loading import load_definitions
from mcp_webtools.toolset import Toolset

SECRET = "sk_live_schema_leak_4242"


def test_schemas_are_published_redacted_but_validated_as_written(tmp_path: Path) -> None:
    params = {
        "type": "object",
        "properties": {"key": {"type": "string", "description": f"use {SECRET}", "default": SECRET}},
    }
    config = write_tools(tmp_path, hamsa_tool("Keyed", "https://api.example.com/k", "POST", params, authToken=SECRET))
    toolset = Toolset.from_definitions(load_definitions([config], environ={}).definitions)
    listing = json.dumps(toolset.list_wire)
    assert SECRET not in listing
    assert json.loads(listing)["tools"][0]["inputSchema"]["properties"]["key"] == {
        "type": "string",
        "description": "use ***",
        "default": "***",
    }
    tool = toolset.get("keyed")
    assert tool is not None and tool.validator.validate({}) == {"key": SECRET}
