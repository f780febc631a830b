"""`mcp-webtools demo`: the sample API and the MCP server over HTTP, wired together."""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
from pathlib import Path

import anyio
import uvicorn

from ..redaction import RedactingFilter
from ..serving.http_app import WILDCARD_HOSTS, HttpSettings, bind_host_allowance
from ..serving.listening import listen
from ..serving.runtime import open_reloader, open_webtools, start_http
from .api import DEFAULT_DEMO_TOKEN, create_demo_api

__all__ = ["DEFAULT_API_PORT", "run_demo"]

logger = logging.getLogger(__name__)
DEFAULT_API_PORT = 8900
# The Inspector version the tests drive (tests/test_inspector.py, .ci/run): an unpinned `npx -y`
# may run an old cached copy (one that refused --header).
INSPECTOR = "@modelcontextprotocol/inspector@2.12.0"


async def run_demo(
    config_paths: list[str],
    host: str,
    port: int,
    api_port: int,
    ui: bool = True,
    log_filter: RedactingFilter | None = None,
) -> int:
    """Serve until interrupted; 1 when a server cannot start.

    Raises `ListenError` when a port is taken (a demo already running, say), before anything starts.
    `log_filter`: the log redaction to tell the tools' secrets (`runtime.configure_logging`).
    """
    # Both ports first, so a taken one is a single line naming the option to change (listening.py).
    api_sockets = listen("127.0.0.1", api_port, port_option="--api-port")
    try:
        mcp_sockets = listen(host, port)
    except BaseException:
        for sock in api_sockets:
            sock.close()
        raise
    # The ports bound (port 0 picks a free one), for DEMO_API_URL and the instructions.
    api_port, port = (sockets[0].getsockname()[1] for sockets in (api_sockets, mcp_sockets))
    # config/ points at `${DEMO_API_URL:-http://127.0.0.1:8900}`; only a non-default port needs the variable.
    if api_port != DEFAULT_API_PORT and "DEMO_API_URL" not in os.environ:
        os.environ["DEMO_API_URL"] = f"http://127.0.0.1:{api_port}"
    token = os.environ.get("DEMO_API_TOKEN", DEFAULT_DEMO_TOKEN)
    webtools = open_webtools(config_paths, log_filter=log_filter)
    api = uvicorn.Server(uvicorn.Config(create_demo_api(token), host="127.0.0.1", port=api_port, log_config=None))
    # Edits to the config are picked up as with `serve` (docs/operations.md, "Hot reload").
    reloader = open_reloader(webtools, config_paths, log_filter=log_filter)
    settings = HttpSettings(allowed_hosts=bind_host_allowance(host), ui=ui)
    mcp = start_http(webtools, host, port, settings, reloader=reloader)
    failed: list[str] = []

    async def serve(server: uvicorn.Server, sockets: list[socket.socket], what: str) -> None:
        try:
            await server.serve(sockets)
        except SystemExit:
            # uvicorn exits at start-up when its app fails to start, after logging why. Without
            # both halves the demo is useless, so stop the other one too instead of half-running.
            failed.append(what)
            api.should_exit = mcp.should_exit = True

    async with anyio.create_task_group() as tg:
        tg.start_soon(serve, api, api_sockets, "the sample API")
        tg.start_soon(serve, mcp, mcp_sockets, "the MCP server")
        # uvicorn offers no start-up event, so watch its flag.
        while not (api.started and mcp.started) and not failed:
            await anyio.sleep(0.05)
        if not failed:
            _print_instructions(host, port, api_port, [t.name for t in webtools.toolset], config_paths, ui)
    if failed:
        print(f"mcp-webtools demo could not start {' and '.join(failed)}.", file=sys.stderr, flush=True)
        return 1
    return 0


def _print_instructions(
    host: str, port: int, api_port: int, tools: list[str], config_paths: list[str], ui: bool = True
) -> None:
    # A wildcard bind is reached through loopback; the Host allowlist accepts that name.
    shown = "127.0.0.1" if host in WILDCARD_HOSTS else (f"[{host}]" if ":" in host else host)
    url = f"http://{shown}:{port}/mcp"
    console = f"\n  console    : http://{shown}:{port}/ui   (open it in a browser: tools, try a call)" if ui else ""
    # A stdio server or a CLI call started elsewhere must find this sample API too.
    api_env = {"DEMO_API_URL": os.environ["DEMO_API_URL"]} if "DEMO_API_URL" in os.environ else {}
    env_prefix = "".join(f"{name}={value} " for name, value in api_env.items())
    args = ["-m", "mcp_webtools", "serve"]
    for path in config_paths:
        args += ["--config", str(Path(path).resolve())]
    server: dict[str, object] = {"command": sys.executable, "args": args}
    if api_env:
        server["env"] = api_env
    desktop = json.dumps({"mcpServers": {"webtools": server}})
    print(
        f"""
mcp-webtools demo is running.
  sample API : http://127.0.0.1:{api_port}   (customers, orders, tickets, appointments; in memory)
  MCP server : {url}   (Streamable HTTP; legacy SSE at /sse){console}
  tools      : {", ".join(tools)}   (edit the config: reloaded and announced to clients)

Try it with the MCP Inspector (Node 22+):
  npx -y {INSPECTOR} --cli {url} --method tools/list
  npx -y {INSPECTOR} --cli {url} --method tools/call \\
      --tool-name get_order_status --tool-arg orderId=ORD-12345

Or from the command line, without MCP:
  {env_prefix}mcp-webtools call get_order_status --args '{{"orderId": "ORD-12345"}}'

Claude Desktop (claude_desktop_config.json), over stdio:
  {desktop}

Press Ctrl+C to stop.""",
        flush=True,  # stdout: what the user asked for; the log goes on stderr
    )
