"""The HTTP face of the server: Streamable HTTP at `/mcp`, legacy HTTP+SSE, probes, `/metrics`, and
each configured endpoint (endpoints.py) at `/mcp/<name>` and `/sse/<name>` (`EndpointRouting`).

Transports only carry bytes; tool logic lives in `calls.ToolCalls`. DNS-rebinding protection is
always on with explicit `TransportSecuritySettings` (the SDK leaves it off when none are given),
bearer tokens (`--auth-token`, the config's clients: client_auth.py) guard every path but the
probes `/healthz` and `/readyz` (and `/metrics` with `metrics_public`, and the web console's
data-free page), request bodies past `HttpSettings.max_body_bytes` get 413 before they are parsed,
and a body that is not one JSON-RPC message is answered before the SDK sees it.

What anyone on the network can cause (a refused token, a body that is not JSON-RPC, a body cut
short) is a WARNING line naming the client and the reason, never a traceback, and capped
(`logcap.CappedLog`) so that a flood cannot fill the disk.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import quote

import anyio
from mcp.server.sse import SseServerTransport
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.server.transport_security import (
    RequestBodyLimitMiddleware,
    TransportSecurityMiddleware,
    TransportSecuritySettings,
)
from mcp_types import JSONRPCMessage, JSONRPCRequest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..egress import LOOPBACK_HOSTS
from ..endpoints import EndpointConfig
from ..observe.logcap import CappedLog
from ..observe.telemetry import tracing_configured
from .client_auth import MAX_TOKEN_BYTES, Authenticator, StaticClients, bearer_token, may_use
from .events import ResumableSessionManager, SessionEvents
from .hot_http import JSONRPC_BODY, HotPath, SessionHotPath
from .http_scope import AUTHENTICATED, CLIENT_GONE, ENDPOINT, REQUEST_ENDPOINT, Caller, HangUp
from .jsonrpc_input import DEFAULT_MAX_BODY_BYTES, Refusal, answer_json, read_message
from .jsonrpc_input import logger as protocol_logger
from .reload import Reloader
from .resource_server import METADATA_PATH, OAuthSettings, Refused, ResourceServer, insufficient_scope
from .server import WebTools
from .shared_events import SharedEvents

if TYPE_CHECKING:
    from ..observe.metrics import Metrics  # prometheus-client: loaded by runtime.open_webtools when wanted
    from .console import Console  # imported with `--ui` only (build_http_app)

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
# Sessions whose endpoint `EndpointRouting` remembers; past it the oldest is forgotten (then any endpoint may use it).
MAX_BOUND_SESSIONS = 100_000
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
    oauth: OAuthSettings | None = None  # resource-server mode (resource_server.py), next to or instead of auth_token
    hot_path: bool = True  # tools/call and tools/list answered by hot_http.py, both eras (off: all by the SDK)


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

    def __init__(self, app: ASGIApp, webtools: WebTools, *, resumes: Callable[[Scope], bool] | None = None) -> None:
        self.app = app
        self.in_flight = webtools.in_flight
        self.resumes = resumes  # whether a POST's client can resume its stream (events.ResumableSessionManager)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            await self._post(scope, receive, send)
        elif scope["type"] == "http" and scope["method"] == "GET":
            await self._get(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _post(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.resumes is not None and self.resumes(scope):
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
    """Requires `Authorization: Bearer <token>` (or Hamsa's `Token <token>`) on every guarded path,
    and that the token's client may use the endpoint the path is for (client_auth.py).

    No valid token: 401 with `WWW-Authenticate: Bearer`; a valid token of a client the endpoint
    does not list: 403. With `oauth` (resource-server mode), a token no static client holds is an
    access token the resource server verifies: its refusals, and an endpoint's `requiredScopes` the
    token lacks, are answered with the challenge the MCP authorization spec prescribes
    (`resource_server.Refused`); an OAuth caller's endpoints are opened by scopes, not client lists.
    Each refusal is a WARNING line on `mcp_webtools.auth` with the client's address and the reason
    (one of `UNAUTHORIZED`, the client's id, or the resource server's reason, never what was sent),
    capped per minute, and counted in `metrics`. The caller goes into the ASGI scope under
    `AUTHENTICATED` for the layers below (the audit record's `client`).
    """

    def __init__(
        self,
        app: ASGIApp,
        authenticators: Sequence[Authenticator],
        open_paths: frozenset[str] = OPEN_PATHS,
        metrics: Metrics | None = None,
        endpoints: Callable[[], EndpointConfig] = EndpointConfig,
        oauth: ResourceServer | None = None,
    ) -> None:
        self.app = app
        self.authenticators = tuple(authenticators)  # tried in order; the first that knows the caller wins
        self.open_paths = open_paths
        self.metrics = metrics
        self._endpoints = endpoints
        self.oauth = oauth
        self._log = CappedLog(auth_logger, "refused requests")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        active = [a for a in self.authenticators if a.active]
        if scope["type"] != "http" or self._is_open(scope["path"]) or not (active or self.oauth):
            await self.app(scope, receive, send)
            return
        refusals = [a.authenticate(scope) for a in active]
        caller = next((c for c in refusals if isinstance(c, Caller)), None)
        endpoint = endpoint_in_path(scope["path"])
        if caller is None and self.oauth is not None:
            reason = str(refusals[0]) if refusals else _reason_without_static_tokens(scope)
            verdict = await self._oauth(reason, scope)
            if isinstance(verdict, Refused):
                await self._refuse(verdict, reason, endpoint, scope, receive, send)
                return
            caller = verdict
        if caller is None:
            await self._unauthorized(str(refusals[0]), scope, receive, send)
            return
        if caller.scopes is not None:  # an OAuth access token: an endpoint is opened by its requiredScopes
            config = self._endpoints().endpoints.get(endpoint) if endpoint else None
            refused = insufficient_scope(caller, config.required_scopes if config is not None else ())
            if refused is not None:
                await self._refuse(refused, "insufficient_scope", endpoint, scope, receive, send)
                return
        elif not may_use(caller, endpoint, self._endpoints()):
            self._log.warning(
                "403 for %s: client %r may not use %s", request_line(scope), caller.id,
                f"the endpoint {endpoint!r}" if endpoint else "this path (only the --auth-token may)",
                extra={"event": "forbidden", "client": client_address(scope), "client_id": caller.id},
            )  # fmt: skip
            opens = f"the endpoint {endpoint!r}" if endpoint else "this path"
            description = f"this token does not open {opens}"
            response = JSONResponse({"error": "forbidden", "error_description": description}, status_code=403)
            await response(scope, receive, send)
            return
        scope[AUTHENTICATED] = Caller(caller.id, caller.scopes, endpoint)
        await self.app(scope, receive, send)

    async def _unauthorized(self, reason: str, scope: Scope, receive: Receive, send: Send) -> None:
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

    async def _oauth(self, reason: str, scope: Scope) -> Caller | Refused:
        """Resource-server mode: a token no static client holds is an access token to verify."""
        assert self.oauth is not None
        presented = _presented(scope) if reason in ("wrong", "overlong") else b""
        # An endpoint (`/mcp/<name>`) is a resource of its own: its URL is an accepted audience too,
        # and its challenge points at its own metadata.
        endpoint = endpoint_in_path(scope["path"])
        if not presented:
            return self.oauth.unauthenticated(UNAUTHORIZED[reason])
        return await self.oauth.authenticate(presented.decode("utf-8", "replace"), _resource_path(endpoint))

    def _is_open(self, path: str) -> bool:
        # Every protected resource metadata document (one per endpoint) is read before any token exists.
        metadata = path == METADATA_PATH or path.startswith(METADATA_PATH + "/")
        return path in self.open_paths or (self.oauth is not None and metadata)

    async def _refuse(
        self, refused: Refused, reason: str, endpoint: str | None, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Answer a resource-server refusal with its challenge, pointing at the endpoint's own metadata."""
        assert self.oauth is not None
        if self.metrics is not None and refused.status == 401:
            self.metrics.observe_unauthorized(reason)
        self._log.warning(
            "%d for %s: %s", refused.status, request_line(scope), refused.reason,
            extra={"event": "unauthorized" if refused.status == 401 else "insufficient_scope",
                   "reason": refused.error or reason, "client": client_address(scope)},
        )  # fmt: skip
        await refused.response(self.oauth.metadata_url(_resource_path(endpoint)))(scope, receive, send)



class EndpointRouting:
    """Says which endpoint a request is for (endpoints.py), or answers 404 for one not configured.

    `/mcp/<name>`, `/sse/<name>` and `/messages/<name>/` put `<name>` in the ASGI scope (`ENDPOINT`)
    and in `REQUEST_ENDPOINT` for the request's task. `/mcp`, `/sse` and `/messages/` serve every
    tool unless `defaultEndpoint: none`. A handshake-era session stays with the endpoint it was
    opened on: its id sent to another endpoint gets the SDK's own 404 for an unknown session.
    """

    def __init__(self, app: ASGIApp, endpoints: Callable[[], EndpointConfig]) -> None:
        self.app = app
        self._endpoints = endpoints
        self._sessions: dict[bytes, str | None] = {}  # Mcp-Session-Id -> the endpoint it was opened on

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        head = path.lstrip("/").partition("/")[0]
        if head not in ("mcp", "sse", "messages"):
            await self.app(scope, receive, send)
            return
        endpoint = endpoint_in_path(path)
        config = self._endpoints()
        served = config.serves_default if endpoint is None else endpoint in config.endpoints
        if not served:
            what = f"no endpoint {endpoint!r} is configured" if endpoint else "no tools here (defaultEndpoint: none)"
            await JSONResponse({"error": "not_found", "error_description": what}, status_code=404)(scope, receive, send)
            return
        if endpoint is not None:
            scope[ENDPOINT] = endpoint
        session = dict(scope["headers"]).get(b"mcp-session-id") if head == "mcp" else None
        if session is not None and self._sessions.get(session, endpoint) != endpoint:
            body = {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "Session not found"}}
            await JSONResponse(body, status_code=404)(scope, receive, send)
            return
        token = REQUEST_ENDPOINT.set(endpoint)
        try:
            await self.app(scope, receive, self._noting_session(send, endpoint) if head == "mcp" else send)
        finally:
            REQUEST_ENDPOINT.reset(token)

    def _noting_session(self, send: Send, endpoint: str | None) -> Send:
        async def noting(message: Message) -> None:
            if message["type"] == "http.response.start":
                for name, value in message.get("headers", ()):
                    if name.lower() == b"mcp-session-id":
                        if len(self._sessions) >= MAX_BOUND_SESSIONS:
                            self._sessions.pop(next(iter(self._sessions)))  # the oldest
                        self._sessions[value] = endpoint
            await send(message)

        return noting


def endpoint_in_path(path: str) -> str | None:
    """The endpoint `/mcp/<name>`, `/sse/<name>` or `/messages/<name>/...` is for; None for any other path."""
    head, _, rest = path.lstrip("/").partition("/")
    if head in ("mcp", "sse", "messages") and rest:
        return rest.partition("/")[0] or None
    return None


def _resource_path(endpoint: str | None) -> str | None:
    """The resource path of an endpoint (`/mcp/<name>`); None for `/mcp` and the paths around it."""
    return None if endpoint is None else f"/mcp/{endpoint}"


def _reason_without_static_tokens(scope: Scope) -> str:
    """Why a request is not yet let in when OAuth is the only way in (a key of `UNAUTHORIZED`)."""
    header, presented = bearer_token(scope)
    if presented:
        return "overlong" if len(presented) > MAX_TOKEN_BYTES else "wrong"
    if header and header.strip().partition(b" ")[0].lower() not in (b"bearer", b"token"):
        return "scheme"
    return "missing"


def _presented(scope: Scope) -> bytes:
    """The credential of an `Authorization: Bearer` header (OAuth knows no `Token` scheme), else b""."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, credential = value.strip().partition(b" ")
            return credential.strip() if scheme.lower() == b"bearer" else b""
    return b""


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

    def __init__(
        self,
        app: ASGIApp,
        guard: TransportSecurityMiddleware,
        max_body_bytes: int,
        log: CappedLog,
        admit: Callable[[Scope, JSONRPCMessage], Response | None] | None = None,
    ) -> None:
        self.app = app
        self._guard = guard
        self._read_whole = RequestBodyLimitMiddleware(self._check, max_body_bytes)
        self._log = log
        self._admit = admit  # a last say on a valid message (a tools/call the caller's scopes do not allow: 403)

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
            message = read_message(first["body"])
        except Refusal as refusal:
            self._log.warning(
                "%s: answered %s", request_line(scope), refusal,
                extra={"event": "protocol_error", "client": client_address(scope)},
            )  # fmt: skip
            await Response(answer_json(refusal), 400, media_type="application/json")(scope, replay, send)
            return
        refused = self._admit(scope, message) if self._admit is not None else None
        if refused is not None:
            await refused(scope, replay, send)
            return
        scope[JSONRPC_BODY] = first["body"]  # for the hot path (hot_path.py): checked, not to be read again
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
    exposed = webtools.metrics
    if exposed is None:
        raise ValueError("an HTTP app serves /metrics: open the WebTools with metrics=True (runtime.open_webtools)")
    security = transport_security(settings)
    # Sessions (without --stateless) get resumable streams: events kept for a reconnect (events.py),
    # on Redis with --state, so that any replica can serve the reconnect (shared_events.py).
    manager = ResumableSessionManager(
        webtools.server,
        events=SharedEvents(webtools.shared) if webtools.shared is not None else SessionEvents(),
        # A session's common requests answered without the SDK's session machinery (hot_path.py).
        hot=SessionHotPath(webtools, tracing=tracing_configured) if settings.hot_path else None,
        stateless=settings.stateless,
        security_settings=security,
        max_request_body_size=settings.max_body_bytes,
    )
    if settings.hot_path:
        webtools.server.middleware.append(manager.remember_connection)
    # Legacy SSE: one transport (its own sessions) per endpoint, `/messages/<name>/` (None: `/sse`).
    sse_transports: dict[str | None, SseServerTransport] = {}

    def sse_of(endpoint: str | None) -> SseServerTransport:
        if endpoint not in sse_transports:
            path = "/messages/" if endpoint is None else f"/messages/{endpoint}/"
            sse_transports[endpoint] = SseServerTransport(
                path, security_settings=security, max_request_body_size=settings.max_body_bytes
            )
        return sse_transports[endpoint]

    guard = TransportSecurityMiddleware(security)

    async def sse_endpoint(request: Request) -> Response:
        # Check Host/Origin here first: `connect_sse` answers 421/403 too, but then raises, which
        # would log a traceback for every refused (possibly hostile) request.
        refused = await guard.validate_request(request)
        if refused is not None:
            return refused
        sse = sse_of(request.scope.get(ENDPOINT))
        async with sse.connect_sse(request.scope, request.receive, request._send) as (read, write):
            await webtools.server.run(read, write, webtools.server.create_initialization_options())
        return Response()

    async def sse_message(scope: Scope, receive: Receive, send: Send) -> None:
        await sse_of(scope.get(ENDPOINT)).handle_post_message(scope, receive, send)

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
        return Response(exposed.exposition(), media_type=exposed.content_type)

    # The web console (console/): its page and scripts hold no data and open without the token,
    # so that the page can ask for it; its API sits behind the token like /mcp.
    console = _console(webtools, settings, guard, reloader) if settings.ui else None

    oauth = resource_server(webtools, settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with webtools.executor.client, manager.run(), console.running() if console else _nothing():
            try:
                yield
            finally:
                if oauth is not None:
                    await oauth.aclose()

    protocol_log = CappedLog(protocol_logger, "bad request bodies")
    admit = _tool_scopes(webtools, oauth) if oauth is not None else None

    def checked(app: ASGIApp) -> ASGIApp:
        return JsonRpcBodyCheck(app, guard, settings.max_body_bytes, protocol_log, admit)

    sdk: ASGIApp = StreamableHTTPASGIApp(manager)
    if settings.hot_path:  # the common 2026-07-28 requests without the SDK's per-request machinery
        sdk = HotPath(sdk, webtools, tracing=tracing_configured)
    streamable = StreamableHttpLifecycle(
        checked(sdk), webtools, resumes=None if settings.stateless else manager.resumes
    )
    metadata_routes = (
        [
            oauth.metadata_route(),
            oauth.metadata_route("/mcp"),
            oauth.endpoint_metadata_route(lambda name: name in webtools.toolset.endpoints.endpoints),
        ]
        if oauth is not None
        else []
    )
    app: ASGIApp = Starlette(
        routes=[
            Route("/mcp", endpoint=streamable),
            Route("/mcp/{endpoint}", endpoint=streamable),
            Route("/sse", endpoint=sse_endpoint, methods=["GET"]),
            Route("/sse/{endpoint}", endpoint=sse_endpoint, methods=["GET"]),
            Mount("/messages", app=checked(sse_message)),
            Route("/healthz", endpoint=healthz, methods=["GET"]),
            Route("/readyz", endpoint=readyz, methods=["GET"]),
            Route("/metrics", endpoint=metrics, methods=["GET"]),
            *(console.routes if console else ()),
            *(metadata_routes if oauth is not None else ()),
        ],
        lifespan=lifespan,
    )
    app = EndpointRouting(app, lambda: webtools.toolset.endpoints)

    def endpoints() -> EndpointConfig:
        return webtools.toolset.endpoints

    open_paths = OPEN_PATHS | {"/metrics"} if settings.metrics_public else OPEN_PATHS
    return BearerTokenGuard(
        app,
        [StaticClients(endpoints, settings.auth_token)],
        open_paths | (console.public_paths if console else set()),
        webtools.metrics,
        endpoints,
        oauth,
    )


def _console(
    webtools: WebTools, settings: HttpSettings, guard: TransportSecurityMiddleware, reloader: Reloader | None
) -> Console:
    """The web console, imported only when `--ui` asks for it (its routes and views cost start-up time)."""
    from .console import Console

    return Console(webtools, settings, guard, reloader)


# --- OAuth resource-server mode (resource_server.py) -------------------------------------------------


def resource_server(webtools: WebTools, settings: HttpSettings) -> ResourceServer | None:
    """The resource server of `settings.oauth`; it advertises the tools' requiredScopes of the day."""
    if settings.oauth is None:
        return None
    return ResourceServer(settings.oauth, scopes_in_use=lambda: webtools.toolset.required_scopes)


def _tool_scopes(webtools: WebTools, oauth: ResourceServer) -> Callable[[Scope, JSONRPCMessage], Response | None]:
    """403 with the step-up challenge for a `tools/call` of a tool whose requiredScopes the caller lacks.

    Answered at the HTTP level, as the MCP spec's scope step-up flow expects (a client reads the
    403's `scope=` and asks for a token with them), in both eras and on both endpoints.
    """

    log = CappedLog(auth_logger, "refused calls")  # a flood of refused calls cannot fill the disk

    def admit(scope: Scope, message: JSONRPCMessage) -> Response | None:
        if not isinstance(message, JSONRPCRequest) or message.method != "tools/call":
            return None
        name = (message.params or {}).get("name")
        # The endpoint's own tools: another endpoint's tool is unknown here, not a scope to ask for.
        tool = webtools.tools_of(scope.get(ENDPOINT)).get(name) if isinstance(name, str) else None
        if tool is None:
            return None  # the SDK answers an unknown tool
        refused = insufficient_scope(scope.get(AUTHENTICATED), tool.definition.required_scopes)
        if refused is None:
            return None
        log.warning(
            "403 for %s: tool %s: %s", request_line(scope), name, refused.reason,
            extra={"event": "insufficient_scope", "tool": name, "client": client_address(scope)},
        )  # fmt: skip
        return refused.response(oauth.metadata_url(_resource_path(scope.get(ENDPOINT))))

    return admit
