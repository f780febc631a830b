"""The tools/list answer is shaped once per toolset view and protocol version (issue 17), not per request.

The SDK validates and re-dumps every spec result against its version's schema; `WebTools._list_once`
shapes the first answer for a view (`/mcp`, each `/mcp/<name>`) and version as the SDK's runner
does, but tool by tool (the answer pinned to the runner's for every protocol version and every
tool of the repository's config), keeps it, and gives it to later requests after the SDK's own
checks. Counted here by the shaping of tools/list answers, with real clients over Streamable HTTP
in both eras, across endpoints and a reload; and over stdio, raw JSON-RPC: a request the SDK
refuses is still refused the same way once the answer is kept.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import anyio
import httpx2
import pytest
import yaml
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.caching import CacheHint
from mcp.server.runner import ServerRunner
from mcp_types.version import SUPPORTED_PROTOCOL_VERSIONS
from support import (
    ERAS,
    LOG_FILTER,
    RAW_INITIALIZE,
    RAW_INITIALIZED,
    hamsa_tool,
    serve_asgi,
    stdio_exchange,
    write_tools,
)

from mcp_webtools.serving.http_app import HttpSettings, build_http_app
from mcp_webtools.serving.runtime import load_toolset, open_webtools
from mcp_webtools.serving.server import WebTools
from mcp_webtools.toolset import Toolset

BOUND = 60


@pytest.fixture
def shaped(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How many tools/list answers the server shaped for the wire, by protocol version: ours
    (`WebTools._shaped_list`, the runner's shaping tool by tool) and the SDK's own
    (`ServerRunner._serialize`: validated and dumped against the version's schema), together."""
    counts: Counter[str] = Counter()
    sdk_shaping, our_shaping = ServerRunner._serialize, WebTools._shaped_list

    def counting_sdk(runner: ServerRunner, method: str, version: str, result: object) -> dict:
        if method == "tools/list":
            counts[version] += 1
        return sdk_shaping(runner, method, version, result)

    def counting_ours(webtools: WebTools, toolset: Toolset, version: str) -> dict | None:
        counts[version] += 1
        return our_shaping(webtools, toolset, version)

    monkeypatch.setattr(ServerRunner, "_serialize", counting_sdk)
    monkeypatch.setattr(WebTools, "_shaped_list", counting_ours)
    return counts


def write_config(directory: Path, names: list[str]) -> Path:
    write_tools(directory, [hamsa_tool(name, f"http://127.0.0.1:9/{name}") for name in names])
    endpoints = {"endpoints": [{"name": "first", "tools": ["alpha"]}], "defaultEndpoint": "all"}
    (directory / "endpoints.yaml").write_text(yaml.safe_dump(endpoints))
    return directory


async def listed(url: str, era: str, times: int = 2) -> list[list[dict]]:
    """`times` tools/list answers of one session at `url`, as the client parsed them (its cache bypassed)."""
    http = httpx2.AsyncClient(timeout=httpx2.Timeout(30, read=60))
    async with http, Client(streamable_http_client(url, http_client=http), mode=era) as client:
        return [
            [
                tool.model_dump(by_alias=True, exclude_none=True)
                for tool in (await client.list_tools(cache_mode="bypass")).tools
            ]
            for _ in range(times)
        ]


@pytest.mark.anyio
@pytest.mark.parametrize("era", ERAS)
async def test_each_view_is_shaped_once_per_protocol_version_and_again_after_a_reload(tmp_path, era, shaped):
    config = write_config(tmp_path, ["alpha", "beta"])
    webtools = open_webtools([str(config)], log_filter=LOG_FILTER)
    with anyio.fail_after(BOUND):
        async with serve_asgi(build_http_app(webtools, HttpSettings())) as base:
            first, again = await listed(f"{base}/mcp", era)
            assert [tool["name"] for tool in first] == ["alpha", "beta"]
            assert again == first  # the kept answer is the one the SDK shaped, to the byte as parsed
            (version,) = shaped  # one protocol version spoken
            assert shaped[version] == 1
            (other_session,) = await listed(f"{base}/mcp", era, times=1)
            assert other_session == first and shaped[version] == 1  # kept per view, not per session

            endpoint = await listed(f"{base}/mcp/first", era)
            assert [[tool["name"] for tool in answer] for answer in endpoint] == [["alpha"], ["alpha"]]
            assert shaped[version] == 2  # the endpoint's view is shaped once, on its own

            toolset, _ = load_toolset([str(write_config(tmp_path, ["alpha", "beta", "gamma"]))])
            webtools.replace_toolset(toolset)
            after = await listed(f"{base}/mcp", era)
            assert [[tool["name"] for tool in answer] for answer in after] == [["alpha", "beta", "gamma"]] * 2
            assert shaped[version] == 3  # a reload's views are new: the new tools, shaped once


LIST = {"jsonrpc": "2.0", "method": "tools/list"}


@pytest.mark.e2e
@pytest.mark.anyio
async def test_requests_the_sdk_refuses_are_still_refused_once_the_answer_is_kept(tmp_path):
    config = write_config(tmp_path, ["alpha", "beta"])
    command = [sys.executable, "-m", "mcp_webtools", "serve", "--no-watch", "--config", str(config)]
    answered = await stdio_exchange(
        command,
        [
            {**LIST, "id": "early"},  # before the handshake
            RAW_INITIALIZE,
            RAW_INITIALIZED,
            {**LIST, "id": "kept"},
            {**LIST, "id": "again", "params": {}},
            {**LIST, "id": "bad cursor", "params": {"cursor": 5}},
            {**LIST, "id": "bad meta", "params": {"_meta": "not an object"}},
        ],
    )
    answers = {answer["id"]: answer for answer in answered}
    assert [tool["name"] for tool in answers["kept"]["result"]["tools"]] == ["alpha", "beta"]
    assert answers["again"]["result"] == answers["kept"]["result"]
    for refused in ("early", "bad cursor", "bad meta"):
        assert answers[refused]["error"]["code"] == -32602, answers[refused]
        assert "result" not in answers[refused]


REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("version", SUPPORTED_PROTOCOL_VERSIONS)
def test_the_answer_shaped_tool_by_tool_is_the_runners_to_the_byte(tmp_path, version):
    """Every tool of the repository's config (paths, bodies, spoken messages, every method's hints),
    one whose description holds a secret and one with an output schema: the same JSON, key order included, as the
    SDK's runner makes of our handler's answer in one piece."""
    secret = "s3cret-in-a-description"
    extra = write_tools(
        tmp_path,
        [
            hamsa_tool("described", "http://127.0.0.1:9/x", description=f"Uses {secret}.", authToken=secret),
            {
                **hamsa_tool("shaped", "http://127.0.0.1:9/y", params={"type": "object", "properties": {}}),
                "outputSchema": {"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]},
                "flatten": False,
            },
        ],
    )
    webtools = open_webtools([str(REPO / "config"), str(extra)], log_filter=LOG_FILTER)
    toolset = webtools.tools_of(None)
    assert len(toolset) == 9  # seven from config/, two here
    runner = ServerRunner(webtools.server, None, None)  # type: ignore[arg-type]  # shaping reads only its server

    ours = webtools._shaped_list(toolset, version)
    sdk = runner._serialize("tools/list", version, toolset.list_wire)

    assert json.dumps(ours) == json.dumps(sdk)
    assert [tool["name"] for tool in ours["tools"]] == sorted(tool.name for tool in toolset)
    assert secret not in json.dumps(ours)


def test_the_sdk_shapes_the_answer_when_tools_list_has_cache_hints(tmp_path):
    webtools = open_webtools([str(write_config(tmp_path, ["alpha"]))], log_filter=LOG_FILTER)
    webtools.server.cache_hints["tools/list"] = CacheHint(ttl_ms=1000, scope="public")
    assert webtools._shaped_list(webtools.tools_of(None), "2026-07-28") is None
