"""Start-up imports only what the configuration uses (issue 17): `serve` over stdio with a JSON
config answers tools/list without loading PyJWT (the OAuth resource server), the web console,
`mcp-webtools test`'s cassettes, PyYAML, redis, prometheus-client (metrics are for HTTP, where
`/metrics` can show them) or our HTTP layer; each loads when its feature is asked for."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from support import RAW_INITIALIZE, RAW_INITIALIZED, hamsa_tool, stdio_exchange, write_tools

pytestmark = pytest.mark.anyio

# Run in the server's own process; the modules it loaded are written to argv[2] at exit.
SERVE = """
import atexit, json, sys
atexit.register(lambda: open(sys.argv[2], "w").write(json.dumps(sorted(sys.modules))))
from mcp_webtools.cli.commands import main
sys.exit(main(["serve", "--watch", "--config", sys.argv[1]]))
"""
NOT_FOR_THIS_CONFIG = (
    "jwt",  # serve --oauth-issuer
    "yaml",  # a YAML config file
    "redis",  # serve --state redis://
    "mcp_webtools.serving.console",  # serve --ui
    "mcp_webtools.cli.testing",  # mcp-webtools test
    "mcp_webtools.cassettes",
    "prometheus_client",  # serve --transport http (GET /metrics, the console)
    "mcp_webtools.observe.metrics",
    "mcp_webtools.serving.http_app",  # serve --transport http
    "mcp_webtools.serving.hot_http",
    "mcp_webtools.serving.events",
)


async def serve_stdio(config: Path, loaded: Path) -> list[dict]:
    """The answers of `serve` over stdio to initialize and tools/list; the modules it loaded go to `loaded`."""
    command = [sys.executable, "-c", SERVE, str(config), str(loaded)]
    return await stdio_exchange(
        command, [RAW_INITIALIZE, RAW_INITIALIZED, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}]
    )


@pytest.mark.e2e
async def test_serving_a_json_config_over_stdio_loads_none_of_the_optional_features(tmp_path):
    config = write_tools(tmp_path, [hamsa_tool("Get Item", "http://127.0.0.1:9/item")])
    loaded = tmp_path / "modules.json"
    answers = await serve_stdio(config, loaded)
    assert [a["id"] for a in answers] == [1, 2]
    assert [tool["name"] for tool in answers[1]["result"]["tools"]] == ["get_item"]
    modules = set(json.loads(loaded.read_text()))
    assert [m for m in sorted(modules) if any(m == n or m.startswith(n + ".") for n in NOT_FOR_THIS_CONFIG)] == []


@pytest.mark.e2e
async def test_a_yaml_config_loads_pyyaml(tmp_path):
    config = tmp_path / "tools.yaml"
    config.write_text(json.dumps([hamsa_tool("Get Item", "http://127.0.0.1:9/item")]))  # JSON is YAML
    loaded = tmp_path / "modules.json"
    answers = await serve_stdio(config, loaded)
    assert [tool["name"] for tool in answers[1]["result"]["tools"]] == ["get_item"]
    assert "yaml" in json.loads(loaded.read_text())
