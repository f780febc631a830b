"""The console's HTTP routes: the page (three static files) and its JSON API under `/ui/api/`.

Every route first passes the same Host/Origin checks as `/mcp` (421 / 403); POSTs must also be
`application/json`, which a cross-site form cannot send without a CORS preflight that this
server never answers. The bearer token is checked before any of this by `http_app`'s guard, for
every path but the page's own files, which hold no data.

Two answers stream NDJSON (one JSON object per line), read by the page with `fetch` (which,
unlike `EventSource`, can send the `Authorization` header):

- `POST /ui/api/call`: the call's progress notifications (spoken messages, heartbeats) in the
  order they happen, then its result. It runs through `WebTools.call`, the very path of an MCP
  `tools/call`: validation, limits, audit record, metrics. Closing the page cancels the call, as
  a client hanging up does.
- `GET /ui/api/events`: each finished call (from the ring in recent.py) and each config reload,
  as they happen; a `ping` every `KEEPALIVE_SECONDS`; ended when the server shuts down.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import TYPE_CHECKING, Any

import anyio
from mcp.shared.exceptions import MCPError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ... import __version__
from ...arguments import ArgumentError
from ...calls import build_call, problems_of
from ...requests import RequestBuildError
from ..http_scope import AUTHENTICATED, Caller
from ..reload import REQUEST
from ..resource_server import insufficient_scope
from ..server import CALLER
from .views import config_view, endpoint_paths, reload_view

if TYPE_CHECKING:
    from . import Console

__all__ = ["PAGE_PATHS", "console_routes"]

logger = logging.getLogger("mcp_webtools.console")

KEEPALIVE_SECONDS = 15.0
# The page's own files: no data in them, so they open without the token (the page then asks for it).
STATIC = {
    "/ui": ("index.html", "text/html"),
    "/ui/app.js": ("app.js", "text/javascript"),
    "/ui/app.css": ("app.css", "text/css"),
}
PAGE_PATHS = frozenset({*STATIC, "/ui/"})  # `/ui/` only redirects to `/ui` (the page's links are relative)
# The page loads only its own files and talks only to this server; nothing may frame it.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
API_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}

Write = Callable[[dict[str, Any]], Awaitable[None]]
Endpoint = Callable[[Request], Awaitable[Any]]


def console_routes(console: Console) -> list[Route]:
    guard = console.guard
    webtools = console.webtools
    call_ids = itertools.count(1)
    static = resources.files(__package__).joinpath("static")
    files = {path: (static.joinpath(name).read_bytes(), kind) for path, (name, kind) in STATIC.items()}

    def checked(endpoint: Endpoint, *, post: bool = False) -> Endpoint:
        async def run(request: Request) -> Any:
            refused = await guard.validate_request(request, is_post=post)
            if refused is not None:
                return refused
            return await endpoint(request)

        return run

    def answer(payload: dict[str, Any], status: int = 200) -> JSONResponse:
        return JSONResponse(console.redactor().redact_json(payload), status_code=status, headers=API_HEADERS)

    async def page(request: Request) -> Response:
        body, kind = files[request.url.path]
        return Response(body, media_type=kind, headers=PAGE_HEADERS)

    async def to_page(request: Request) -> Response:
        return RedirectResponse("../ui", status_code=308)  # relative, so that a proxy's path prefix is kept

    async def overview(request: Request) -> JSONResponse:
        return answer(
            {
                "server": "mcp-webtools",
                "version": __version__,
                "pid": os.getpid(),
                "workers": console.workers,
                "auth": console.auth,
                "tools": len(webtools.toolset),
                "endpoints": endpoint_paths(webtools.toolset.endpoints),
                "ring": console.recent.capacity,
                "started": round(console.started, 3),
            }
        )

    async def tools(request: Request) -> JSONResponse:
        return answer({"tools": console.tool_views(), "pid": os.getpid()})

    async def dry_run(request: Request) -> Response:
        # Validation as the form is filled, and the Dry run button: nothing is sent, nothing recorded.
        call = await _call_request(request, console)
        if isinstance(call, Response):
            return call
        tool, arguments = call
        try:
            prepared = build_call(tool, arguments, webtools.toolset.redactor)
        except (ArgumentError, RequestBuildError) as exc:
            return answer({"ok": False, "problems": _problems(exc)})
        return answer({"ok": True, "problems": [], "request": prepared.dry_run()})

    async def call(request: Request) -> Response:
        parsed = await _call_request(request, console)
        if isinstance(parsed, Response):
            return parsed
        tool, arguments = parsed
        # An OAuth caller gets no more through the console than through /mcp (resource_server.py).
        authenticated = request.scope.get(AUTHENTICATED)
        refused = insufficient_scope(authenticated, tool.definition.required_scopes)
        if refused is not None:
            return answer({"error": refused.error, "error_description": refused.reason}, refused.status)
        peer = request.client.host if request.client else None
        caller = f"web console (http {peer})" if peer else "web console"
        request_id = f"console-{next(call_ids)}"

        async def produce(write: Write) -> None:
            started = time.perf_counter()

            def ms() -> float:
                return round((time.perf_counter() - started) * 1000, 3)

            async def progress(value: float, total: float | None, message: str | None) -> None:
                await write({"type": "progress", "progress": value, "total": total, "message": message, "ms": ms()})

            CALLER.set(caller)
            await write({"type": "started", "tool": tool.name, "request_id": request_id, "pid": os.getpid()})
            try:
                client = authenticated.id if isinstance(authenticated, Caller) else None
                result = await webtools.calls.call(tool.name, arguments, progress, request_id=request_id, client=client)
            except MCPError as exc:  # the tool went away in a reload since the page looked it up
                await write({"type": "error", "message": exc.error.message, "ms": ms()})
                return
            dumped = result.model_dump(by_alias=True, exclude_none=True, mode="json")
            await write({"type": "result", "result": dumped, "ms": ms()})

        return NdjsonStream(produce, console)

    async def calls(request: Request) -> JSONResponse:
        return answer({"calls": console.recent.recent(), "capacity": console.recent.capacity, "pid": os.getpid()})

    async def events(request: Request) -> Response:
        async def produce(write: Write) -> None:
            with console.recent.listen() as received:
                await write({"type": "hello", "pid": os.getpid(), "workers": console.workers})
                async with anyio.create_task_group() as tg:

                    async def end_on_shutdown() -> None:
                        await webtools.in_flight.wait_closing()
                        tg.cancel_scope.cancel()

                    tg.start_soon(end_on_shutdown)
                    while True:
                        with anyio.move_on_after(KEEPALIVE_SECONDS):
                            try:
                                event = await received.receive()
                            except anyio.EndOfStream:  # dropped for falling behind: the page reconnects
                                tg.cancel_scope.cancel()
                                return
                            await write(event)
                            continue
                        await write({"type": "ping"})

        return NdjsonStream(produce, console)

    async def config(request: Request) -> JSONResponse:
        return answer(config_view(webtools.toolset, console.reloader, console.loaded_at, console.last_reload))

    async def reload(request: Request) -> JSONResponse:
        if console.reloader is None:
            return answer({"error": "this server does not reload its config"}, 409)
        outcome = await console.reloader.reload(REQUEST)
        return answer(reload_view(outcome, time.time()))

    async def health(request: Request) -> JSONResponse:
        return answer({**console.health.report(), "pid": os.getpid(), "workers": console.workers})

    return [
        *(Route(path, checked(page), methods=["GET"]) for path in STATIC),
        Route("/ui/", checked(to_page), methods=["GET"]),
        Route("/ui/api/overview", checked(overview), methods=["GET"]),
        Route("/ui/api/tools", checked(tools), methods=["GET"]),
        Route("/ui/api/dry-run", checked(dry_run, post=True), methods=["POST"]),
        Route("/ui/api/call", checked(call, post=True), methods=["POST"]),
        Route("/ui/api/calls", checked(calls), methods=["GET"]),
        Route("/ui/api/events", checked(events), methods=["GET"]),
        Route("/ui/api/config", checked(config), methods=["GET"]),
        Route("/ui/api/reload", checked(reload, post=True), methods=["POST"]),
        Route("/ui/api/health", checked(health), methods=["GET"]),
    ]


def _problems(exc: ArgumentError | RequestBuildError) -> list[dict[str, str]]:
    return [{"field": field, "message": message} for field, message in problems_of(exc)]


async def _call_request(request: Request, console: Console) -> tuple[Any, dict[str, Any]] | Response:
    """`{"tool": name, "arguments": {...}}` from the body: the tool and the arguments, or the refusal."""
    limit = console.max_body_bytes
    try:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                return _refuse(request, 413, f"the request body is over {limit} bytes")
        payload = json.loads(body)
    except ClientDisconnect:
        return Response(status_code=400)
    except ValueError:
        return _refuse(request, 400, 'the body must be JSON: {"tool": "<name>", "arguments": {...}}')
    if not isinstance(payload, dict) or not isinstance(payload.get("tool"), str):
        return _refuse(request, 400, 'the body must be a JSON object: {"tool": "<name>", "arguments": {...}}')
    tool = console.webtools.toolset.get(payload["tool"])
    if tool is None:
        return _refuse(request, 404, "no tool of that name is served (the config may have been reloaded)")
    arguments = payload.get("arguments", {})
    if not isinstance(arguments, dict):
        return _refuse(request, 400, "`arguments` must be a JSON object")
    return tool, arguments


def _refuse(request: Request, status: int, message: str) -> JSONResponse:
    # A client's mistake: one WARNING line, never a traceback (the page itself never sends these).
    logger.warning("console: refused %s %s (%d): %s", request.method, request.url.path, status, message)
    return JSONResponse({"error": message}, status_code=status, headers=API_HEADERS)


class NdjsonStream:
    """An ASGI response streaming `produce`'s events as NDJSON, each through the console's redactor.

    A client that disconnects cancels `produce` (and with it a running call).
    """

    def __init__(self, produce: Callable[[Write], Awaitable[None]], console: Console) -> None:
        self.produce = produce
        self.console = console

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"application/x-ndjson")]
        headers += [(k.lower().encode(), v.encode()) for k, v in API_HEADERS.items()]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        lock = anyio.Lock()
        gone = False

        async def write(event: dict[str, Any]) -> None:
            line = json.dumps(self.console.redactor().redact_json(event), ensure_ascii=False) + "\n"
            async with lock:
                await send({"type": "http.response.body", "body": line.encode(), "more_body": True})

        async with anyio.create_task_group() as tg:

            async def watch_disconnect() -> None:
                nonlocal gone
                while (await receive())["type"] != "http.disconnect":
                    pass
                gone = True
                tg.cancel_scope.cancel()

            tg.start_soon(watch_disconnect)
            try:
                await self.produce(write)
            except OSError:  # the connection broke while writing: as good as a disconnect
                gone = True
            tg.cancel_scope.cancel()
        if not gone:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
