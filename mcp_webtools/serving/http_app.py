"""The HTTP face of the server: Streamable HTTP at `/mcp`, legacy HTTP+SSE, probes, `/metrics`.

Transports only carry bytes; tool logic lives in `calls.ToolCalls`. DNS-rebinding protection is
always on with explicit `TransportSecuritySettings` (the SDK leaves it off when none are given),
an optional static bearer token guards every path but the probes `/healthz` and `/readyz` (and
`/metrics` with `metrics_public`), and request bodies past
`HttpSettings.max_body_bytes` get 413 before they are parsed.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import anyio
from mcp.server.sse import SseServerTransport
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..observe.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .http_scope import CLIENT_GONE, HangUp
from .server import WebTools

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "BearerTokenGuard",
    "HttpSettings",
    "bind_host_allowance",
    "build_http_app",
    "transport_security",
]

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
WILDCARD_HOSTS = ("", "0.0.0.0", "::")
# Probes must work without the token; /metrics too only with `metrics_public` (it names every tool).
OPEN_PATHS = frozenset({"/healthz", "/readyz"})
# The SDK's own default: room for a tool call whose arguments fill the default 1 MiB request cap
# several times over (JSON escaping can double a string), and no more.
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class HttpSettings:
    auth_token: str | None = field(default=None, repr=False)  # a secret: never in a repr or log
    allowed_hosts: Sequence[str] = field(default_factory=tuple)
    allowed_origins: Sequence[str] = field(default_factory=tuple)
    stateless: bool = False
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES  # inbound POST bodies (JSON-RPC messages); larger: 413
    metrics_public: bool = False  # serve /metrics without the bearer token (for a scraper without it)


def transport_security(settings: HttpSettings) -> TransportSecuritySettings:
    """Loopback names on any port, plus the hosts and origins the operator listed.

    A host listed without a port (`mcp.example.com`) is allowed with any port and with none,
    since a reverse proxy on 443 sends a bare `Host`.
    """
    hosts = [pattern for host in (*LOOPBACK_HOSTS, *settings.allowed_hosts) for pattern in _host_patterns(host)]
    origins = [
        pattern
        for host in LOOPBACK_HOSTS
        for scheme in ("http", "https")
        for pattern in _host_patterns(f"{scheme}://{host}")
    ]
    origins += list(settings.allowed_origins)
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins)


def bind_host_allowance(bind_host: str) -> tuple[str, ...]:
    """The `Host` to accept because the operator bound to that very address (`--host 10.0.0.5`).

    Without it every request addressed to the bind address gets 421. A wildcard bind says
    nothing about the names clients use, so those still need `--allowed-host`.
    """
    host = f"[{bind_host}]" if ":" in bind_host else bind_host
    if bind_host in WILDCARD_HOSTS or host in LOOPBACK_HOSTS:
        return ()
    return (host,)


def _host_patterns(host: str) -> list[str]:
    if host.endswith(":*") or re.search(r":[0-9]+$", host):
        return [host]
    return [host, f"{host}:*"]


class StreamableHttpLifecycle:
    """What `/mcp` needs around the SDK's transport: hang-ups noticed, idle streams ended on shutdown.

    - POST: the `HangUp` put in the ASGI scope (`CLIENT_GONE`) cancels the call waiting to answer
      on that POST when the client disconnects (see http_scope.py and `WebTools._call_tool`).
    - GET (the legacy standalone stream): ended as soon as the server starts shutting down. It
      only carries messages the server starts on its own, never a call's answer, so a graceful
      shutdown must not wait for the client to hang up (it never would). The response is
      finished cleanly, so the client sees the stream end rather than a broken connection.
    """

    def __init__(self, app: ASGIApp, webtools: WebTools) -> None:
        self.app = app
        self.in_flight = webtools.in_flight

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            await self._post(scope, receive, send)
        elif scope["type"] == "http" and scope["method"] == "GET":
            await self._get(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _post(self, scope: Scope, receive: Receive, send: Send) -> None:
        hang_up = scope[CLIENT_GONE] = HangUp()

        async def noting_receive() -> Message:
            # The transport keeps receiving while it streams an answer (sse-starlette watches
            # for the disconnect), so the hang-up passes through here.
            message = await receive()
            if message["type"] == "http.disconnect":
                hang_up()
            return message

        await self.app(scope, noting_receive, send)

    async def _get(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = "not started"

        async def tracking_send(message: Message) -> None:
            nonlocal state
            if message["type"] == "http.response.start":
                state = "open"
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                state = "done"
            await send(message)

        async with anyio.create_task_group() as tg:

            async def end_on_shutdown() -> None:
                await self.in_flight.wait_closing()
                tg.cancel_scope.cancel()

            tg.start_soon(end_on_shutdown)
            await self.app(scope, receive, tracking_send)
            tg.cancel_scope.cancel()
        if state == "open":
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        elif state == "not started":
            await Response("shutting down", status_code=503)(scope, receive, send)


class BearerTokenGuard:
    """Requires `Authorization: Bearer <token>` (or Hamsa's `Token <token>`) on every guarded path."""

    def __init__(self, app: ASGIApp, token: str, open_paths: frozenset[str] = OPEN_PATHS) -> None:
        self.app = app
        self._token = token.encode("utf-8")
        self.open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.open_paths or self._authorized(scope):
            await self.app(scope, receive, send)
            return
        response = JSONResponse(
            {"error": "unauthorized", "error_description": "send Authorization: Bearer <token>"},
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="mcp-webtools"'},
        )
        await response(scope, receive, send)

    def _authorized(self, scope: Scope) -> bool:
        presented = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, credential = value.strip().partition(b" ")
                if scheme.lower() in (b"bearer", b"token"):
                    presented = credential.strip()
                break
        # Compare in constant time, always, so timing says nothing about the token.
        return hmac.compare_digest(presented, self._token) and bool(presented)


def build_http_app(webtools: WebTools, settings: HttpSettings) -> ASGIApp:
    security = transport_security(settings)
    manager = StreamableHTTPSessionManager(
        app=webtools.server,
        stateless=settings.stateless,
        security_settings=security,
        max_request_body_size=settings.max_body_bytes,
    )
    sse = SseServerTransport("/messages/", security_settings=security, max_request_body_size=settings.max_body_bytes)

    guard = TransportSecurityMiddleware(security)

    async def sse_endpoint(request: Request) -> Response:
        # Check Host/Origin here first: `connect_sse` answers 421/403 too, but then raises, which
        # would log a traceback for every refused (possibly hostile) request.
        refused = await guard.validate_request(request)
        if refused is not None:
            return refused
        async with sse.connect_sse(request.scope, request.receive, request._send) as (read, write):
            await webtools.server.run(read, write, webtools.server.create_initialization_options())
        return Response()

    async def healthz(request: Request) -> Response:
        # `pid` tells the processes of `serve --workers N` (or replicas) apart.
        return JSONResponse({"status": "ok", "tools": len(webtools.toolset), "pid": os.getpid()})

    async def readyz(request: Request) -> Response:
        # Config loaded (a WebTools only exists with one) and not draining: send traffic here.
        if webtools.in_flight.closing:
            return JSONResponse({"status": "shutting down", "pid": os.getpid()}, status_code=503)
        return JSONResponse({"status": "ready", "tools": len(webtools.toolset), "pid": os.getpid()})

    async def metrics(request: Request) -> Response:
        return Response(webtools.metrics.exposition(), media_type=METRICS_CONTENT_TYPE)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with webtools.executor.client, manager.run():
            yield

    app: ASGIApp = Starlette(
        routes=[
            Route("/mcp", endpoint=StreamableHttpLifecycle(StreamableHTTPASGIApp(manager), webtools)),
            Route("/sse", endpoint=sse_endpoint, methods=["GET"]),
            Mount("/messages/", app=sse.handle_post_message),
            Route("/healthz", endpoint=healthz, methods=["GET"]),
            Route("/readyz", endpoint=readyz, methods=["GET"]),
            Route("/metrics", endpoint=metrics, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    if settings.auth_token:
        open_paths = OPEN_PATHS | {"/metrics"} if settings.metrics_public else OPEN_PATHS
        app = BearerTokenGuard(app, settings.auth_token, open_paths)
    return app
