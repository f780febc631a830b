"""`mcp-webtools demo`: the sample API and the MCP server over HTTP, wired together."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import anyio
import uvicorn

from ..http_app import HttpSettings
from ..runtime import open_webtools, start_http
from .api import DEFAULT_DEMO_TOKEN, create_demo_api

__all__ = ["DEFAULT_API_PORT", "run_demo"]

logger = logging.getLogger(__name__)
DEFAULT_API_PORT = 8900


async def run_demo(config_paths: list[str], host: str, port: int, api_port: int) -> None:
    # config/ points at `${DEMO_API_URL:-http://127.0.0.1:8900}`; only a non-default port needs the variable.
    if api_port != DEFAULT_API_PORT and "DEMO_API_URL" not in os.environ:
        os.environ["DEMO_API_URL"] = f"http://127.0.0.1:{api_port}"
    token = os.environ.get("DEMO_API_TOKEN", DEFAULT_DEMO_TOKEN)
    webtools = open_webtools(config_paths)
    api = uvicorn.Server(uvicorn.Config(create_demo_api(token), host="127.0.0.1", port=api_port, log_config=None))
    mcp = start_http(webtools, host, port, HttpSettings())
    async with anyio.create_task_group() as tg:
        tg.start_soon(api.serve)
        tg.start_soon(mcp.serve)
        while not (api.started and mcp.started):
            if api.should_exit or mcp.should_exit:
                return
            await anyio.sleep(0.05)
        _print_instructions(host, port, api_port, [t.name for t in webtools.toolset], config_paths)


def _print_instructions(host: str, port: int, api_port: int, tools: list[str], config_paths: list[str]) -> None:
    url = f"http://{host}:{port}/mcp"
    config = ", ".join(str(Path(p).resolve()) for p in config_paths)
    print(
        f"""
mcp-webtools demo is running.
  sample API : http://127.0.0.1:{api_port}   (customers, orders, tickets, appointments; in memory)
  MCP server : {url}   (Streamable HTTP; legacy SSE at /sse)
  tools      : {", ".join(tools)}

Try it with the MCP Inspector (Node 22+):
  npx -y @modelcontextprotocol/inspector --cli {url} --method tools/list
  npx -y @modelcontextprotocol/inspector --cli {url} --method tools/call \\
      --tool-name get_order_status --tool-arg orderId=ORD-12345

Or from the command line, without MCP:
  mcp-webtools call get_order_status --args '{{"orderId": "ORD-12345"}}'

Claude Desktop (claude_desktop_config.json), over stdio:
  {{"mcpServers": {{"webtools": {{"command": "{sys.executable}",
      "args": ["-m", "mcp_webtools", "serve", "--config", "{config}"]}}}}}}

Press Ctrl+C to stop.""",
        file=sys.stderr,
        flush=True,
    )
