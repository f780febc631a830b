"""The HTTP face of the server: Streamable HTTP at `/mcp`, legacy HTTP+SSE, probes, `/metrics`.

Transports only carry bytes; tool logic lives in `calls.ToolCalls`. DNS-rebinding protection is
always on with explicit `TransportSecuritySettings` (the SDK leaves it off when none are given),
an optional static bearer token guards every path but the probes `/healthz` and `/readyz` (and
`/metrics` with `metrics_public`, and the web console's data-free page), request bodies past
`HttpSettings.max_body_bytes` get 413 before they are parsed, and a body that is not one JSON-RPC
message is answered before the SDK sees it.

What anyone on the network can cause (a refused token, a body that is not JSON-RPC, a body cut
short) is a WARNING line naming the client and the reason, never a traceback, and capped
(`logcap.CappedLog`) so that a flood cannot fill the disk.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

import anyio
from mcp.server.sse import SseServerTransport
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.server.transport_security import (
    RequestBodyLimitMiddleware,
    TransportSecurityMiddleware,
    TransportSecuritySettings,
)
from mcp.shared.inbound import MCP_PROTOCOL_VERSION_HEADER
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..egress import LOOPBACK_HOSTS
from ..observe.logcap import CappedLog
from ..observe.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from ..observe.metrics import Metrics
from .console import Console
from .events import ResumableSessionManager, SessionEvents, resumable
from .http_scope import CLIENT_GONE, HangUp
from .jsonrpc_input import Refusal, answer_json, read_message
from .jsonrpc_input import logger as protocol_logger
from .reload import Reloader
from .server import WebTools

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "BearerTokenGuard",
    "HttpSettings",
    "JsonRpcBodyCheck",
    "bind_host_allowance",
    "build_http_app",
    "transport_security",
]

WILDCARD_HOSTS = ("", "0.0.0.0", "::")
# Probes must work without the token; /metrics too only with `metrics_public` (it names every tool).
OPEN_PATHS = frozenset({"/healthz", "/readyz"})
# The SDK's own default: room for a tool call whose arguments fill the default 1 MiB request cap
# several times over (JSON escaping can double a string), and no more.
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
# Longer than any token worth issuing (the README's recipe makes 43 characters): a refusal of one
# is logged as `overlong`, the kind of thing someone probing the server sends.
MAX_TOKEN_BYTES = 1024
# What each `metrics.UNAUTHORIZED_REASONS` means, as the log line says it (never the token itself).
UNAUTHORIZED = {
    "missing": "no token (send Authorization: Bearer <token>)",
    "scheme": "an Authorization scheme other than Bearer or Token",
    "overlong": f"a token longer than {MAX_TOKEN_BYTES} bytes",
    "wrong": "a wrong token",
}

auth_logger = logging.getLogger("mcp_webtools.auth")


@dataclass(frozen=True)
class HttpSettings:
    auth_token: str | None = field(default=None, repr=False)  # a secret: never in a repr or log
    allowed_hosts: Sequence[str] = field(default_factory=tuple)
    allowed_origins: Sequence[str] = field(default_factory=tuple)
    stateless: bool = False
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES  # inbound POST bodies (JSON-RPC messages); larger: 413
    metrics_public: bool = False  # serve /metrics without the bearer token (for a scraper without it)
    ui: bool = False  # the web console at /ui (console/), behind the same token and Host/Origin checks
    workers: int = 1  # `serve --workers N`: the console says it shows one worker's calls


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


@contextlib.asynccontextmanager
async def _nothing() -> AsyncIterator[None]:
    yield


def _host_patterns(host: str) -> list[str]:
    if host.endswith(":*") or re.search(r":[0-9]+$", host):
        return [host]
    return [host, f"{host}:*"]


class StreamableHttpLifecycle:
    """What `/mcp` needs around the SDK's transport: hang-ups noticed, idle streams ended on shutdown.

    - POST: the `HangUp` put in the ASGI scope (`CLIENT_GONE`) cancels the call waiting to answer
      on that POST when the client disconnects (see http_scope.py and `WebTools._call_tool`),
      unless the client can resume the stream (a session of 2025-11-25 or later, events.py): then
      the call goes on, within its timeout, and its answer waits for the reconnect.
    - GET (the legacy standalone stream): ended as soon as the server starts shutting down. It
      only carries messages the server starts on its own, never a call's answer, so a graceful
      shutdown must not wait for the client to hang up (it never would). The response is
      finished cleanly, so the client sees the stream end rather than a broken connection.
    """

    def __init__(self, app: ASGIApp, webtools: WebTools, *, resumable_sessions: bool = False) -> None:
        self.app = app
        self.in_flight = webtools.in_flight
        self.resumable_sessions = resumable_sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            await self._post(scope, receive, send)
        elif scope["type"] == "http" and scope["method"] == "GET":
            await self._get(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _post(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.resumable_sessions and resumable(Headers(scope=scope).get(MCP_PROTOCOL_VERSION_HEADER)):
            await self.app(scope, receive, send)  # a hang-up is a pause: the client may come back for the answer
            return
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
    """Requires `Authorization: Bearer <token>` (or Hamsa's `Token <token>`) on every guarded path.

    Each refusal is a WARNING line on `mcp_webtools.auth` with the client's address and the reason
    (one of `UNAUTHORIZED`, never what was sent), capped per minute, and counted in `metrics`.
    """

    def __init__(
        self, app: ASGIApp, token: str, open_paths: frozenset[str] = OPEN_PATHS, metrics: Metrics | None = None
    ) -> None:
        self.app = app
        self._token = token.encode("utf-8")
        self.open_paths = open_paths
        self.metrics = metrics
        self._log = CappedLog(auth_logger, "refused requests")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.open_paths:
            await self.app(scope, receive, send)
            return
        reason = self._refusal(scope)
        if reason is None:
            await self.app(scope, receive, send)
            return
        if self.metrics is not None:
            self.metrics.observe_unauthorized(reason)
        client = client_address(scope)
        self._log.warning(
            "401 for %s: %s", request_line(scope), UNAUTHORIZED[reason],
            extra={"event": "unauthorized", "reason": reason, "client": client},
        )  # fmt: skip
        response = JSONResponse(
            {"error": "unauthorized", "error_description": "send Authorization: Bearer <token>"},
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="mcp-webtools"'},
        )
        await response(scope, receive, send)

    def _refusal(self, scope: Scope) -> str | None:
        """None for the right token, else why not (a key of `UNAUTHORIZED`)."""
        header: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                header = value
                break
        scheme, _, credential = (header or b"").strip().partition(b" ")
        presented = credential.strip() if scheme.lower() in (b"bearer", b"token") else b""
        # Compare in constant time, always, so timing says nothing about the token.
        if hmac.compare_digest(presented, self._token) and presented:
            return None
        if not header:
            return "missing"
        if scheme.lower() not in (b"bearer", b"token"):
            return "scheme"
        if not presented:
            return "missing"
        return "overlong" if len(presented) > MAX_TOKEN_BYTES else "wrong"


class JsonRpcBodyCheck:
    """The POST bodies of the MCP endpoints (`/mcp`, `/messages/`), read before the SDK's transport.

    - A body that is not one valid JSON-RPC message gets HTTP 400 with the JSON-RPC error it is
      owed (`jsonrpc_input.py`), on both endpoints and in both eras. The SDK takes a request whose
      id is `1.5`, `true` or `{}` for a notification (202, never an answer), answers `/messages/`
      in plain text with an ERROR traceback in the log, and the legacy `/mcp` with `-32602`.
    - A client that hangs up before its whole body arrived (fewer bytes than its Content-Length)
      is gone: there is no one to answer. The SDK logs an ERROR with a traceback for it.

    Each is one WARNING line on `mcp_webtools.protocol`. Host, Origin and Content-Type are checked
    first, as the SDK does, so a request refused for those is answered the same as before. The
    SDK's `RequestBodyLimitMiddleware` reads the body (413 past `max_body_bytes`) and hands it
    over whole, or as far as it came before the client hung up.
    """

    def __init__(self, app: ASGIApp, guard: TransportSecurityMiddleware, max_body_bytes: int, log: CappedLog) -> None:
        self.app = app
        self._guard = guard
        self._read_whole = RequestBodyLimitMiddleware(self._check, max_body_bytes)
        self._log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            await self._read_whole(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _check(self, scope: Scope, receive: Receive, send: Send) -> None:
        first = await receive()
        pending = [first]

        async def replay() -> Message:
            return pending.pop() if pending else await receive()

        if first["type"] != "http.request" or first.get("more_body", False):
            declared = Request(scope).headers.get("content-length", "an unknown number of")
            self._log.warning(
                "%s: the client hung up after sending %d of the %s bytes of its body; nothing was done",
                request_line(scope), len(first.get("body", b"")), declared,
                extra={"event": "protocol_error", "client": client_address(scope)},
            )  # fmt: skip
            return
        refused = await self._guard.validate_request(Request(scope, replay), is_post=True)
        if refused is not None:
            await refused(scope, replay, send)
            return
        try:
            read_message(first["body"])
        except Refusal as refusal:
            self._log.warning(
                "%s: answered %s", request_line(scope), refusal,
                extra={"event": "protocol_error", "client": client_address(scope)},
            )  # fmt: skip
            await Response(answer_json(refusal), 400, media_type="application/json")(scope, replay, send)
            return
        await self.app(scope, replay, send)


def client_address(scope: Scope) -> str:
    """The client's address as uvicorn saw it (behind a trusted proxy: X-Forwarded-For's)."""
    client = scope.get("client")
    if not client:
        return "an unknown client"
    host, port = client[0], client[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def request_line(scope: Scope) -> str:
    """`POST /mcp from 10.0.0.7:51234`, safe to log: the path percent-encoded as sent, and cut short."""
    path = scope.get("raw_path") or scope["path"].encode("utf-8")
    shown = quote(path, safe="/:@!$&'()*+,;=-._~%")
    shown = shown if len(shown) <= 100 else shown[:100] + "..."
    return f"{scope['method']} {shown} from {client_address(scope)}"


def build_http_app(webtools: WebTools, settings: HttpSettings, reloader: Reloader | None = None) -> ASGIApp:
    security = transport_security(settings)
    # Sessions (without --stateless) get resumable streams: events kept for a reconnect (events.py).
    manager = ResumableSessionManager(
        webtools.server,
        events=SessionEvents(),
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

    # The probes answer anyone, so they say nothing but the state: the tool count and the
    # process id are in /metrics, behind the token.
    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        # Config loaded (a WebTools only exists with one) and not draining: send traffic here.
        if webtools.in_flight.closing:
            return JSONResponse({"status": "shutting down"}, status_code=503)
        return JSONResponse({"status": "ready"})

    async def metrics(request: Request) -> Response:
        return Response(webtools.metrics.exposition(), media_type=METRICS_CONTENT_TYPE)

    # The web console (console/): its page and scripts hold no data and open without the token,
    # so that the page can ask for it; its API sits behind the token like /mcp.
    console = Console(webtools, settings, guard, reloader) if settings.ui else None

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with webtools.executor.client, manager.run(), console.running() if console else _nothing():
            yield

    protocol_log = CappedLog(protocol_logger, "bad request bodies")

    def checked(app: ASGIApp) -> ASGIApp:
        return JsonRpcBodyCheck(app, guard, settings.max_body_bytes, protocol_log)

    app: ASGIApp = Starlette(
        routes=[
            Route(
                "/mcp",
                endpoint=StreamableHttpLifecycle(
                    checked(StreamableHTTPASGIApp(manager)), webtools, resumable_sessions=not settings.stateless
                ),
            ),
            Route("/sse", endpoint=sse_endpoint, methods=["GET"]),
            Mount("/messages/", app=checked(sse.handle_post_message)),
            Route("/healthz", endpoint=healthz, methods=["GET"]),
            Route("/readyz", endpoint=readyz, methods=["GET"]),
            Route("/metrics", endpoint=metrics, methods=["GET"]),
            *(console.routes if console else ()),
        ],
        lifespan=lifespan,
    )
    if settings.auth_token:
        open_paths = OPEN_PATHS | {"/metrics"} if settings.metrics_public else OPEN_PATHS
        app = BearerTokenGuard(
            app, settings.auth_token, open_paths | (console.public_paths if console else set()), webtools.metrics
        )
    return app
