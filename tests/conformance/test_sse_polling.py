"""The conformance suite's `server-sse-polling` scenario (SEP-1699), driven through run.py: the
suite's own client initializes at 2025-11-25, then posts `tools/call test_reconnection` with an
`mcp-protocol-version: 2025-03-26` header and expects a priming event (an id, empty data) first on
the stream, with a `retry` field. The session's negotiated version decides (events.SessionTransport).

Needs Node and the suite like test_inspector.py (`$MCP_WEBTOOLS_NODE`, `$MCP_WEBTOOLS_NODE_MODULES`);
skips without them, except where `$MCP_WEBTOOLS_REQUIRE_NODE=1` (CI): there it fails.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import anyio
import pytest
from support import REPO, find_node_package

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

BOUND = 120  # seconds: Node start-up, the server's, and the scenario's slow call


async def test_the_server_sse_polling_scenario_passes(tmp_path: Path) -> None:
    node, package = find_node_package("@modelcontextprotocol/conformance", (22, 0))
    command = [sys.executable, str(REPO / "tests/conformance/run.py"), "--scenario", "server-sse-polling"]
    command += ["--node", node, "--conformance", str(package / "dist/index.js"), "--output", str(tmp_path)]
    with anyio.fail_after(BOUND):
        done = await anyio.run_process(command, env=dict(os.environ), check=False, cwd=REPO)
    assert done.returncode == 0, done.stdout.decode()[-3000:]
    [checks_file] = tmp_path.glob("server-server-sse-polling-*/checks.json")
    checks = {check["id"]: check for check in json.loads(checks_file.read_text())}
    assert checks["server-sse-priming-event"]["status"] == "SUCCESS"
    assert checks["server-sse-priming-event"]["details"]["primingEventIsFirst"] is True
    assert checks["server-sse-retry-field"]["status"] == "SUCCESS"
    assert checks["server-sse-retry-field"]["details"]["retryValue"] == 1000
    statuses = [check["status"] for check in checks.values()]
    assert "FAILURE" not in statuses and "WARNING" not in statuses
