"""The HTTP face of the server: Streamable HTTP at `/mcp`, legacy HTTP+SSE, and `/healthz`.

Transports only carry bytes; tool logic lives in `server.WebTools`. DNS-rebinding protection is
always on with explicit `TransportSecuritySettings` (the SDK leaves it off when none are given),
and an optional static bearer token guards every path but `/healthz`.
"""

from __future__ import annotations

import contextlib
import hmac
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from mcp.server.sse import SseServerTransport
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .server import WebTools

__all__ = ["BearerTokenGuard", "HttpSettings", "bind_host_allowance", "build_http_app", "transport_security"]

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
WILDCARD_HOSTS = ("", "0.0.0.0", "::")
OPEN_PATHS = frozenset({"/healthz"})


@dataclass(frozen=True)
class HttpSettings:
    auth_token: str | None = None
    allowed_hosts: Sequence[str] = field(default_factory=tuple)
    allowed_origins: Sequence[str] = field(default_factory=tuple)
    stateless: bool = False


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


class BearerTokenGuard:
    """Requires `Authorization: Bearer <token>` (or Hamsa's `Token <token>`) on every guarded path."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._token = token.encode("utf-8")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS or self._authorized(scope):
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
        app=webtools.server, stateless=settings.stateless, security_settings=security
    )
    sse = SseServerTransport("/messages/", security_settings=security)

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
        return JSONResponse({"status": "ok", "tools": len(webtools.toolset)})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with webtools.executor.client, manager.run():
            yield

    app: ASGIApp = Starlette(
        routes=[
            Route("/mcp", endpoint=StreamableHTTPASGIApp(manager)),
            Route("/sse", endpoint=sse_endpoint, methods=["GET"]),
            Mount("/messages/", app=sse.handle_post_message),
            Route("/healthz", endpoint=healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    if settings.auth_token:
        app = BearerTokenGuard(app, settings.auth_token)
    return app
