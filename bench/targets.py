"""What the comparison benchmark runs: the servers, their configs, and how to start them.

Every server exposes the same `get_item` tool (`GET {upstream}/item?n=N`) among `count` tools:
mcp-webtools from a Hamsa tool file, FastMCP from an OpenAPI document with the same operations,
and a bare low-level SDK server (bench/bare_server.py) as the floor.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "BENCH",
    "BENCH_PYTHON",
    "REPO",
    "SETTINGS",
    "WEBTOOLS_KINDS",
    "Target",
    "children_of",
    "free_port",
    "process_cpu",
    "process_rss_mib",
    "server_command",
    "write_configs",
]

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
BENCH_PYTHON = BENCH / ".venv" / "bin" / "python"  # FastMCP lives only there (bench/setup.sh)


def item_params(i: int) -> dict:
    # Each tool's schema differs, in shape and not only in its texts (as in a real config), so no
    # per-schema cache flatters start-up (metaschema.py checks each shape once).
    return {
        "type": "object",
        "properties": {
            "n": {"type": "integer", "maximum": ITEM_MAXIMUM + i, "description": f"Which item (variant {i})."}
        },
        "required": ["n"],
    }


ITEM_MAXIMUM = 10**9  # far above any n a run sends


# What each kind of server runs with, as its row says it: the bench's figures are only comparable
# when the settings are on the page. `webtools` is mcp-webtools as shipped (`serve` with no flags:
# one audit line per call at INFO, the config watcher on, the Prometheus metrics fed on every call
# over HTTP, where /metrics shows them: a stdio server has none); `lean` turns off what can be
# turned off (the audit line and the watcher; metrics always run over HTTP).
SETTINGS = {
    "webtools": "shipped: audit INFO, watch on, metrics on (HTTP)",
    "lean": "lean: log WARNING, no watch, metrics on (HTTP)",
    "fastmcp": "defaults, log WARNING",
    "bare": "no log, no checks",
}
WEBTOOLS_KINDS = ("webtools", "lean")


@dataclass(frozen=True)
class Target:
    """One server as measured: `kind` is webtools, lean, fastmcp or bare; `tool` is what is called."""

    kind: str
    transport: str  # stdio | http
    era: str  # legacy | auto
    tool: str = "get_item"
    log_level: str = "INFO"  # the shipped row's (compare.py --server-log-level)

    @property
    def settings(self) -> str:
        if self.kind == "webtools" and self.log_level.upper() != "INFO":
            return SETTINGS["webtools"].replace("shipped: audit INFO", f"shipped but log {self.log_level.upper()}")
        return SETTINGS[self.kind]

    @property
    def label(self) -> str:
        names = {
            "webtools": "mcp-webtools",
            "lean": "mcp-webtools",
            "fastmcp": "FastMCP OpenAPI",
            "bare": f"bare SDK {self.tool}",
        }
        if self.tool == "floor":
            return f"HTTP floor (uvicorn + the GET, no MCP), {self.transport}, {self.era}"
        return f"{names[self.kind]} ({self.settings}), {self.transport}, {self.era}"


def write_configs(directory: Path, upstream: str, count: int) -> tuple[Path, Path]:
    """(mcp-webtools tool file, OpenAPI document) with `count` tools, `get_item` first."""
    tools, paths = [], {}
    for i in range(count):
        name = "get_item" if i == 0 else f"get_item_{i:04d}"
        path = "/item" if i == 0 else f"/r{i}/item"
        description = f"One item by number (variant {i})."
        tools.append(
            {
                "type": "FUNCTION",
                "name": name.replace("_", " ").title(),
                "mcpName": name,
                "description": description,
                "toolSettings": {"serverUrl": f"{upstream}{path}", "methodType": "GET", "timeOut": 30},
                "params": item_params(i),
            }
        )
        paths[path] = {
            "get": {
                "operationId": name,
                "summary": description,
                "parameters": [
                    {
                        "name": "n",
                        "in": "query",
                        "required": True,
                        "description": f"Which item (variant {i}).",
                        "schema": {"type": "integer", "maximum": ITEM_MAXIMUM + i},
                    }
                ],
                "responses": {
                    "200": {
                        "description": "The item.",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "n": {"type": "integer"},
                                        "name": {"type": "string"},
                                        "tags": {"type": "array", "items": {"type": "string"}},
                                    },
                                }
                            }
                        },
                    }
                },
            }
        }
    spec = {"openapi": "3.1.0", "info": {"title": "bench", "version": "1"}, "servers": [{"url": upstream}]}
    spec["paths"] = paths
    hamsa = directory / f"tools-{count}.json"
    hamsa.write_text(json.dumps(tools))
    openapi = directory / f"openapi-{count}.json"
    openapi.write_text(json.dumps(spec))
    return hamsa, openapi


def server_command(
    kind: str,
    transport: str,
    configs: tuple[Path, Path],
    upstream: str,
    port: int,
    log_level: str,
    profile: Path | None = None,
    uvloop: bool = False,
) -> list[str]:
    """The command line; with `profile`, mcp-webtools runs under cProfile, writing stats there on exit.

    `log_level` is the shipped row's (`webtools`); the `lean` row always logs at WARNING, unwatched.
    """
    if kind in WEBTOOLS_KINDS:
        python = [sys.executable, "-m", "cProfile", "-o", str(profile)] if profile else [sys.executable]
        if uvloop:  # the same CLI on uvloop's event loop (anyio's asyncio backend takes the policy's loop)
            python = [*python, str(BENCH / "with_uvloop.py")]
        else:
            python = [*python, "-m"]
        level, watch = (log_level, "--watch") if kind == "webtools" else ("WARNING", "--no-watch")
        command = [*python, "mcp_webtools", "--log-level", level, "serve", watch, "--config", str(configs[0])]
        if transport == "http":
            command += ["--transport", "http", "--port", str(port), "--max-concurrency", "64", "--max-queue", "256"]
        return command
    if kind == "fastmcp":
        command = [str(BENCH_PYTHON), str(BENCH / "fastmcp_server.py"), str(configs[1]), upstream, transport]
        return command + ([str(port)] if transport == "http" else [])
    command = [sys.executable, str(BENCH / "bare_server.py"), upstream, transport]
    return command + ([str(port)] if transport == "http" else [])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def children_of(pid: int) -> set[int]:
    """The live child processes of `pid` (Linux /proc)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found.update(int(p) for p in (task / "children").read_text().split())
        except OSError:
            continue
    return found


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")
