"""The conformance fixture (tests/conformance/) stays honest without Node: the baseline lists only
out-of-scope scenarios, each with a reason, and the fixture tools load and answer as the suite
expects. The suite itself runs in CI through tests/conformance/run.py (docs/development.md, "Conformance").
"""

from __future__ import annotations

import base64
import importlib.util

import pytest
import yaml
from support import REPO, mcp_client, serve_asgi

from mcp_webtools.loading import load_definitions

pytestmark = pytest.mark.anyio

HERE = REPO / "tests" / "conformance"
# Scenarios the issue requires to pass: tools, transport, logging, progress, errors, JSON Schema
# 2020-12 and DNS rebinding.
MUST_PASS = {
    "server-initialize",
    "ping",
    "logging-set-level",
    "tools-list",
    "tools-call-simple-text",
    "tools-call-image",
    "tools-call-audio",
    "tools-call-error",
    "tools-call-with-logging",
    "tools-call-with-progress",
    "json-schema-2020-12",
    "server-sse-multiple-streams",
    "server-sse-polling",
    "dns-rebinding-protection",
}
# The fixture upstream next to run.py (tests/conformance is not a package).
_spec = importlib.util.spec_from_file_location("conformance_upstream", HERE / "upstream.py")
assert _spec is not None and _spec.loader is not None
fixture_api = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fixture_api)
OUT_OF_SCOPE = ("resources-", "prompts-", "completion-", "elicitation-", "tools-call-")


def test_the_baseline_lists_only_out_of_scope_scenarios_each_with_a_reason() -> None:
    text = (HERE / "conformance-baseline.yml").read_text()
    expected = yaml.safe_load(text)["server"]
    assert expected and not set(expected) & MUST_PASS
    assert all(name.startswith(OUT_OF_SCOPE) for name in expected)
    entries = [line for line in text.splitlines() if line.lstrip().startswith("- ")]
    assert len(entries) == len(expected)
    assert all(len(line.partition("#")[2].strip()) > 10 for line in entries), "every entry needs a reason"


def test_the_fixture_tools_load() -> None:
    loaded = load_definitions([HERE / "tools.yaml"], environ={"CONFORMANCE_UPSTREAM": "http://127.0.0.1:1"})
    assert sorted(d.mcp_name for d in loaded.definitions) == [
        "json_schema_2020_12_tool",
        "test_audio_content",
        "test_error_handling",
        "test_image_content",
        "test_reconnection",
        "test_simple_text",
        "test_tool_with_logging",
        "test_tool_with_progress",
    ]


async def test_the_fixture_tools_answer_as_the_suite_expects() -> None:
    async with serve_asgi(fixture_api.app) as base:
        env = {"CONFORMANCE_UPSTREAM": base}
        async with mcp_client("http", "legacy", HERE / "tools.yaml", env=env) as client:
            listed = {tool.name: tool for tool in (await client.list_tools()).tools}
            text = await client.call_tool("test_simple_text", {})
            image = await client.call_tool("test_image_content", {})
            audio = await client.call_tool("test_audio_content", {})
            error = await client.call_tool("test_error_handling", {})
    schema = listed["json_schema_2020_12_tool"].input_schema
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "address" in schema["$defs"] and schema["additionalProperties"] is False
    assert [(c.type, c.text) for c in text.content] == [("text", fixture_api.SIMPLE_TEXT)]
    assert [(c.type, c.mime_type, base64.b64decode(c.data)) for c in image.content] == [
        ("image", "image/png", fixture_api.PNG)
    ]
    assert [(c.type, c.mime_type, base64.b64decode(c.data)) for c in audio.content] == [
        ("audio", "audio/wav", fixture_api.WAV)
    ]
    assert error.is_error is True and "500" in error.content[0].text
