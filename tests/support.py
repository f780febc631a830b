"""Test harness: a recording upstream HTTP server and real MCP clients over every transport.

Everything runs on 127.0.0.1. Servers listen on sockets bound before they start, so a client
can connect at once: the kernel queues the connection until uvicorn accepts it.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import anyio
import httpx2
import uvicorn
import yaml
from mcp import Client, StdioServerParameters
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from mcp_webtools.http_app import HttpSettings, build_http_app
from mcp_webtools.runtime import open_webtools

REPO = Path(__file__).resolve().parent.parent
TRANSPORTS = ("stdio", "http")
ERAS = ("legacy", "auto")  # "auto" lands on 2026-07-28 against our server


@dataclass
class Recorded:
    """One request exactly as the upstream received it."""

    method: str
    raw_path: str  # still percent-encoded, as sent on the wire
    query: str
    headers: dict[str, str]
    header_list: list[tuple[str, str]]
    body: bytes

    @property
    def query_pairs(self) -> list[tuple[str, str]]:
        return parse_qsl(self.query, keep_blank_values=True)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    wait: anyio.Event | None = None  # an event that is never set makes a hanging upstream


Handler = Callable[[Recorded], Awaitable[Reply] | Reply]


class Upstream:
    """An ASGI app that records every request and answers as the test says.

    By default it echoes what it received as JSON: `{"method", "path", "query", "body"}`.
    """

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.routes: dict[tuple[str, str], Reply | Handler] = {}
        self.url = ""
        self.released = anyio.Event()

    def reply(self, method: str, path: str, reply: Reply | Handler) -> None:
        self.routes[(method.upper(), path)] = reply

    def reply_json(self, method: str, path: str, value: Any, status: int = 200, **headers: str) -> None:
        self.reply(
            method,
            path,
            Reply(status, json.dumps(value).encode(), [("content-type", "application/json"), *headers.items()]),
        )

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    self.released.set()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        header_list = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        recorded = Recorded(
            method=scope["method"],
            raw_path=scope["raw_path"].decode("latin-1"),
            query=scope["query_string"].decode("latin-1"),
            headers={k.lower(): v for k, v in header_list},
            header_list=header_list,
            body=body,
        )
        self.requests.append(recorded)
        route = self.routes.get((recorded.method, scope["path"]))
        if route is None:
            echo = {"method": recorded.method, "path": recorded.raw_path, "query": recorded.query}
            echo["body"] = recorded.json() if body else None
            reply = Reply(200, json.dumps(echo).encode(), [("content-type", "application/json")])
        elif isinstance(route, Reply):
            reply = route
        else:
            reply = route(recorded)
            if not isinstance(reply, Reply):
                reply = await reply
        if reply.wait is not None:
            with anyio.move_on_after(60):
                await reply.wait.wait()
        headers = [(k.encode(), v.encode()) for k, v in reply.headers]
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": reply.body})


def bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(512)
    return sock


@asynccontextmanager
async def serve_asgi(app: Any) -> AsyncIterator[str]:
    """Run `app` under uvicorn on a free loopback port; yield its base URL."""
    sock = bound_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_config=None, lifespan="auto", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve, [sock])
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True


def write_tools(directory: Path, tools: list[dict[str, Any]] | dict[str, Any], name: str = "tools.json") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    if name.endswith((".yaml", ".yml")):
        path.write_text(yaml.safe_dump(tools, sort_keys=False))
    else:
        path.write_text(json.dumps(tools, indent=2))
    return path


def hamsa_tool(name: str, url: str, method: str = "GET", params: dict | None = None, **settings: Any) -> dict:
    """A tool in the Hamsa create-web-tool API shape."""
    extra = {k: settings.pop(k) for k in ("async", "messages", "description") if k in settings}
    return {
        "type": "FUNCTION",
        "name": name,
        "description": extra.pop("description", f"{name} tool"),
        "toolSettings": {"serverUrl": url, "methodType": method, **settings},
        "params": params or {"type": "object", "properties": {}},
        **extra,
    }


@asynccontextmanager
async def mcp_client(
    transport: str,
    era: str,
    config: Path,
    *,
    env: dict[str, str] | None = None,
    auth_token: str | None = None,
) -> AsyncIterator[Client]:
    """A real `mcp.Client` connected to mcp-webtools over `transport` ("stdio" | "http" | "sse")."""
    environ = {**os.environ, **(env or {})}
    if transport == "stdio":
        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "mcp_webtools", "serve", "--config", str(config)],
            env=environ,
            cwd=str(REPO),
        )
        async with Client(params, mode=era, read_timeout_seconds=60) as client:
            yield client
        return

    webtools = open_webtools([str(config)], environ=environ)
    app = build_http_app(webtools, HttpSettings(auth_token=auth_token))
    headers = {"Authorization": f"Bearer {auth_token}"} if auth_token else {}
    async with serve_asgi(app) as base:
        if transport == "sse":
            async with sse_client(f"{base}/sse", headers=headers) as (read, write):
                from mcp import ClientSession

                async with ClientSession(read, write) as session:
                    await session.initialize()
                    yield session  # type: ignore[misc]
            return
        http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=60))
        async with http, Client(streamable_http_client(f"{base}/mcp", http_client=http), mode=era) as client:
            yield client
