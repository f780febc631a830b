"""The MCP SDK alone: a bare low-level `mcp.server.Server`, the floor for any server on this SDK.

    python bench/bare_server.py UPSTREAM_URL stdio
    python bench/bare_server.py UPSTREAM_URL http PORT

Two tools: `noop` answers "ok" without any I/O (the SDK's own per-message cost), and `get_item`
does the benchmark's GET with one shared httpx2 client and returns the body as text, with no
validation, redaction or limits (the least any bridge could do). Over HTTP a third, `floor`, is
answered by `Floor` in front of the SDK's app: the same GET and one JSON answer, no MCP machinery
at all: what uvicorn, httpx2 and the event loop alone cost a call (the HTTP rows' floor; it
expects the bench's SDK client, which sends only valid JSON-RPC). With `BARE_STDIO=webtools` in the
environment, stdio uses mcp-webtools' transport (mcp_webtools/serving/stdio.py) instead of the SDK's.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator

import anyio
import httpx2
import mcp_types as types
import uvicorn
from mcp.server import Server, ServerRequestContext
from mcp.server.stdio import stdio_server
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
TOOLS = types.ListToolsResult(
    tools=[
        types.Tool(name="noop", input_schema={"type": "object"}),
        types.Tool(name="get_item", input_schema=SCHEMA),
        types.Tool(name="floor", input_schema=SCHEMA),
    ]
)


def build(upstream: str) -> tuple[Server, httpx2.AsyncClient]:
    http = httpx2.AsyncClient(base_url=upstream, timeout=30)

    async def list_tools(
        ctx: ServerRequestContext, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return TOOLS

    async def call_tool(ctx: ServerRequestContext, params: types.CallToolRequestParams) -> types.CallToolResult:
        if params.name == "noop":
            return types.CallToolResult(content=[types.TextContent(type="text", text="ok")])
        response = await http.get("/item", params=params.arguments)
        return types.CallToolResult(content=[types.TextContent(type="text", text=response.text)])

    server = Server("bare", on_list_tools=list_tools, on_call_tool=call_tool, get_tool_input_schema=lambda _: SCHEMA)
    return server, http


async def serve_stdio(upstream: str) -> None:
    server, http = build(upstream)
    transport = stdio_server
    if os.environ.get("BARE_STDIO") == "webtools":  # mcp-webtools' thread-free stdio transport instead
        from mcp_webtools.serving.stdio import stdio_streams as transport
    async with http, transport() as (read, write):
        await server.run(read, write, server.create_initialization_options())


class Floor:
    """ASGI: a `tools/call` of `floor` answered here with the GET and one JSON-RPC answer, as little
    as a server can do for a call (no checks, no pydantic, no SDK); anything else goes to `app`."""

    def __init__(self, app: ASGIApp, http: httpx2.AsyncClient) -> None:
        self.app = app
        self.http = http

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        body, more = b"", True
        while more:
            message = await receive()
            body, more = body + message.get("body", b""), message.get("more_body", False)
        request = json.loads(body)
        params = request.get("params") or {}
        if request.get("method") != "tools/call" or params.get("name") != "floor":
            replayed: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

            async def again() -> Message:
                return replayed.pop() if replayed else await receive()

            return await self.app(scope, again, send)
        response = await self.http.get("/item", params=params["arguments"])
        result = {"content": [{"type": "text", "text": response.text}], "resultType": "complete"}
        answer = json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": result}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(answer)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})


def serve_http(upstream: str, port: int) -> None:
    server, http = build(upstream)
    manager = StreamableHTTPSessionManager(app=server)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with http, manager.run():
            yield

    app = Starlette(routes=[Route("/mcp", endpoint=StreamableHTTPASGIApp(manager))], lifespan=lifespan)
    # The same event loop as mcp-webtools (asyncio): uvicorn would pick uvloop when it is installed.
    uvicorn.run(Floor(app, http), host="127.0.0.1", port=port, log_level="warning", loop="asyncio")


if __name__ == "__main__":
    if sys.argv[2] == "stdio":
        anyio.run(serve_stdio, sys.argv[1])
    else:
        serve_http(sys.argv[1], int(sys.argv[3]))
