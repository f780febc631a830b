"""The MCP Inspector CLI (`@modelcontextprotocol/inspector` 2.12.0, a client nobody here wrote)
against mcp-webtools over stdio and over Streamable HTTP with a bearer token.

Needs Node >= 22.19 and the Inspector package: `$MCP_WEBTOOLS_NODE` (the node binary) and
`$MCP_WEBTOOLS_NODE_MODULES` (a node_modules folder holding `@modelcontextprotocol/inspector`),
as .ci/run sets them up; else `.tools/node22` and `.tools/mcp` in the clone (docs/development.md,
"Conformance"). Without them the tests skip, except where `$MCP_WEBTOOLS_REQUIRE_NODE=1` (CI):
there they fail.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from support import REPO, SCANNER, Upstream, find_node_package, hamsa_tool, secret, serve_asgi, write_tools

from mcp_webtools import demo
from mcp_webtools.serving.http_app import HttpSettings, build_http_app
from mcp_webtools.serving.runtime import open_webtools

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

INSPECTOR = "@modelcontextprotocol/inspector"
ISSUES = 5  # the Inspector's exit code for an isError result (and for an unknown tool)
BOUND = 90  # seconds for one Inspector run: Node start-up dominates


def find_inspector() -> tuple[str, Path]:
    """(node binary, the Inspector's launcher script), or skip/fail saying what is missing."""
    node, package = find_node_package(INSPECTOR, (22, 19))
    return node, package / "clients/launcher/build/index.js"


@pytest.fixture(scope="module")
def inspector() -> list[str]:
    node, launcher = find_inspector()
    return [node, str(launcher), "--cli", "--format", "json", "--stored-auth-only"]


async def run_inspector(command: list[str], home: Path) -> tuple[int, dict[str, Any]]:
    """Run the Inspector; (exit code, its one JSON object: a result on stdout or an error on stderr).

    Its own state (catalog, OAuth store) goes under `home`.
    """
    env = {**os.environ, "HOME": str(home), "MCP_CATALOG_PATH": str(home / "mcp.json")}
    with anyio.fail_after(BOUND):
        done = await anyio.run_process(command, env=env, check=False)
    stdout, stderr = done.stdout.decode(), done.stderr.decode()
    SCANNER.scan("output", "inspector", stdout + stderr)
    # With --format json a result is one object on stdout; an error envelope is stderr's last line.
    output = stdout.strip() or (stderr.strip().splitlines() or [""])[-1]
    assert output, f"exit {done.returncode}, no output"
    return done.returncode, json.loads(output)


@pytest.fixture
def config(upstream: Upstream, tmp_path: Path) -> Path:
    upstream.reply_json("GET", "/orders/42", {"id": 42, "status": "shipped"})
    upstream.reply_json("GET", "/broken", {"error": "database down"}, status=503)
    order = {"type": "object", "properties": {"orderId": {"type": "integer"}}, "required": ["orderId"]}
    tools = [
        hamsa_tool("Get Order", f"{upstream.url}/orders/:orderId", params=order),
        {**hamsa_tool("Broken", f"{upstream.url}/broken"), "retry": {"retries": 0}},
    ]
    return write_tools(tmp_path / "config", tools)


def tool_names(listing: dict[str, Any]) -> list[str]:
    return [tool["name"] for tool in listing["result"]["tools"]]


def only_text(result: dict[str, Any]) -> str:
    content = result["result"]["content"]
    assert [block["type"] for block in content] == ["text"], content
    return content[0]["text"]


async def test_over_stdio(inspector: list[str], config: Path, upstream: Upstream, tmp_path: Path) -> None:
    # The server command goes after `--`, so its own flags (--config) are not the Inspector's.
    server = ["--cwd", str(REPO), "--", sys.executable, "-m", "mcp_webtools", "serve", "--config", str(config)]

    status, listing = await run_inspector([*inspector, "--method", "tools/list", *server], tmp_path)
    assert status == 0 and tool_names(listing) == ["broken", "get_order"]

    # key=value arguments: the Inspector sends 42 as a number, as the schema wants.
    call = ["--method", "tools/call", "--tool-name", "get_order", "--tool-arg", "orderId=42"]
    status, result = await run_inspector([*inspector, *call, *server], tmp_path)
    assert status == 0 and result["result"].get("isError") is not True
    assert json.loads(only_text(result)) == {"id": 42, "status": "shipped"}

    call = ["--method", "tools/call", "--tool-name", "broken"]
    status, result = await run_inspector([*inspector, *call, *server], tmp_path)
    assert status == ISSUES and result["result"]["isError"] is True
    assert "503" in only_text(result) and "database down" in only_text(result)
    assert [(r.method, r.raw_path) for r in upstream.requests] == [("GET", "/orders/42"), ("GET", "/broken")]


@pytest.mark.parametrize("era", ["legacy", "modern"])
async def test_over_streamable_http_with_a_bearer_token(
    inspector: list[str], config: Path, upstream: Upstream, tmp_path: Path, era: str
) -> None:
    token = secret("inspector-never-shown-token")
    webtools = open_webtools([str(config)], environ=dict(os.environ))
    async with serve_asgi(build_http_app(webtools, HttpSettings(auth_token=token))) as base:
        target = [f"{base}/mcp", "--protocol-era", era, "--header", f"Authorization: Bearer {token}"]

        status, listing = await run_inspector([*inspector, *target, "--method", "tools/list"], tmp_path)
        assert status == 0 and tool_names(listing) == ["broken", "get_order"]

        call = ["--method", "tools/call", "--tool-name", "get_order", "--tool-args-json", '{"orderId": 42}']
        status, result = await run_inspector([*inspector, *target, *call], tmp_path)
        assert status == 0 and json.loads(only_text(result)) == {"id": 42, "status": "shipped"}

        call = ["--method", "tools/call", "--tool-name", "broken"]
        status, result = await run_inspector([*inspector, *target, *call], tmp_path)
        assert status == ISSUES and result["result"]["isError"] is True and "503" in only_text(result)

        # Without the token: refused, and the Inspector does not start an OAuth dance in CI.
        status, refused = await run_inspector([*inspector, f"{base}/mcp", "--method", "tools/list"], tmp_path)
        assert status != 0 and refused["error"]["code"] == "auth_required"
    assert [(r.method, r.raw_path) for r in upstream.requests] == [("GET", "/orders/42"), ("GET", "/broken")]


def readme_tool_arg_example() -> str:
    """The README's `--tool-arg` example for a string that looks like a number, as the shell passes it."""
    readme = (REPO / "README.md").read_text()
    example = re.search(r"`(--tool-arg '[^`]+')`", readme).group(1)
    flag, value = shlex.split(example)
    return value


async def test_a_string_that_looks_like_a_number_as_the_readme_shows(
    inspector: list[str], upstream: Upstream, tmp_path: Path
) -> None:
    user = {"type": "object", "properties": {"userId": {"type": "string"}}, "required": ["userId"]}
    config = write_tools(tmp_path / "config", [hamsa_tool("Get User", f"{upstream.url}/users/:userId", params=user)])
    server = ["--cwd", str(REPO), "--", sys.executable, "-m", "mcp_webtools", "serve", "--config", str(config)]
    call = ["--method", "tools/call", "--tool-name", "get_user", "--tool-arg"]
    argument = readme_tool_arg_example()
    assert argument == 'userId="42"'

    status, result = await run_inspector([*inspector, *call, argument, *server], tmp_path)
    assert status == 0 and result["result"].get("isError") is not True, result
    assert json.loads(only_text(result))["path"] == "/users/42"
    # Unquoted, the Inspector sends the number 42: the schema refuses it and nothing is sent.
    status, result = await run_inspector([*inspector, *call, "userId=42", *server], tmp_path)
    assert status == ISSUES and result["result"]["isError"] is True
    assert only_text(result).startswith("Invalid arguments for tool 'get_user'; nothing was sent:")
    assert [(r.method, r.raw_path) for r in upstream.requests] == [("GET", "/users/42")]


def test_the_readme_and_the_demo_pin_the_inspector_that_ci_installs() -> None:
    # .ci/run installs the version the tests above drive; an unpinned `npx -y` may run any cached one.
    pinned = re.findall(rf"{INSPECTOR}@[0-9][^ \n]*", (REPO / ".ci/run").read_text())
    assert len(set(pinned)) == 1, pinned
    readme = (REPO / "README.md").read_text()
    npx = re.findall(rf"npx -y ({INSPECTOR}\S*)", readme)
    assert npx and set(npx) == set(pinned), npx
    assert demo.INSPECTOR == pinned[0]
