"""The hot path over Streamable HTTP (hot_path.py): a 2026-07-28 POST, and a handshake-era session's POST.

- `HotPath` (ASGI, inside `http_app.JsonRpcBodyCheck`): a 2026-07-28 `tools/call` or `tools/list`,
  after the SDK's own checks of the POST (the Accept header, routing headers sent twice, the
  envelope against the `Mcp-Method`/`Mcp-Name` headers, the `Mcp-Param-*` headers against the
  tool's schema). The answer is framed as the SDK's `handle_modern_request` frames it:
  `application/json` (with the status its table maps an error to) when the call ends without a
  notification, else `text/event-stream` from the first progress notification on; a call silent
  for `SSE_PING_SECONDS` commits to SSE too, with a keep-alive comment every as many seconds.
- `SessionHotPath` (called by `events.SessionTransport` after its own checks: Host and Origin, the
  session, its idle clock): a `tools/call`, `tools/list` or `ping` in a session whose `Connection` a
  request the SDK served has shown (`ResumableSessionManager.remember_connection`). The answer is
  the session's SSE stream as the SDK writes it: the priming event (2025-11-25 on), then each
  message stored in the session's `EventStore` (so a reconnect with `Last-Event-ID` replays it) and
  sent with its event id, and sse-starlette's keep-alive comment every `SSE_PING_SECONDS`. A
  `notifications/cancelled` for a call running here cancels it, and it is answered `-32800`, as
  the SDK answers a cancelled request on this wire.

Either way a client that hangs up cancels its call where the SDK's would be (the `HangUp` that
`StreamableHttpLifecycle` puts in the scope; a resumable session's call goes on and its answer
waits in the event store).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import anyio
import mcp_types as types
import pydantic_core
from mcp.server.streamable_http import DEFAULT_NEGOTIATED_VERSION, REQUEST_CANCELLED
from mcp.shared.inbound import (
    ERROR_CODE_HTTP_STATUS,
    find_duplicated_routing_header,
    validate_mcp_param_headers,
    x_mcp_header_map,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from sse_starlette.event import ServerSentEvent, ensure_bytes
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .hot_path import (
    HotRequest,
    answer_call,
    client_seen,
    leaves_to_sdk,
    modern_request,
    prepared,
    progress_notification,
    session_request,
)
from .http_scope import AUTHENTICATED, CLIENT_GONE, ENDPOINT, Caller, HangUp
from .server import CallOrigin, ClientSeen, WebTools

if TYPE_CHECKING:
    from .events import SessionTransport

__all__ = ["JSONRPC_BODY", "SSE_PING_SECONDS", "HotPath", "SessionHotPath"]

logger = logging.getLogger("mcp_webtools.protocol")

# ASGI scope key: the POST body `JsonRpcBodyCheck` read whole and found to be one valid message.
JSONRPC_BODY = "mcp_webtools.jsonrpc_body"
# The SDK's `_SSE_PING_INTERVAL` and sse-starlette's ping interval: how long a 2026-07-28 call may
# run silent before its answer commits to SSE, and the keep-alive comment's period on a stream (so
# that a proxy's idle-read timeout never closes it).
SSE_PING_SECONDS = 15.0

_VERSION_HEADER: Final = b"mcp-protocol-version"
_SSE_HEADERS: Final = [  # the SDK's 2026-07-28 ones, in its order
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache, no-transform"),
    (b"connection", b"keep-alive"),
    (b"x-accel-buffering", b"no"),
]
_PING: Final = b": ping\r\n\r\n"
_SEP: Final = "\r\n"  # sse-starlette's, which the SDK's handshake-era streams use

Tracing = Callable[[], bool]


class HotPath:
    """ASGI: a 2026-07-28 `tools/call` or `tools/list` POST answered here; anything else to `app`."""

    def __init__(self, app: ASGIApp, webtools: WebTools, *, tracing: Tracing = lambda: False) -> None:
        self.app = app
        self.webtools = webtools
        self._tracing = tracing  # whether OpenTelemetry tracing is configured now (then: the SDK's way)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = self._request(scope)
        if request is None:
            await self.app(scope, receive, send)
        elif request.method != "tools/call":
            shaped = prepared(self.webtools, _endpoint(scope), _caller(scope), request)
            if shaped is None:
                await self.app(scope, receive, send)
            else:
                await _send_json(send, 200, _response(request.id, shaped))
        elif leaves_to_sdk(self.webtools, request) or self._param_headers_disagree(scope, request):
            await self.app(scope, receive, send)
        else:
            origin = _origin(scope, request, client_seen(request.meta.get(types.CLIENT_INFO_META_KEY), _where(scope)))
            await _Call(self.webtools, request, origin, receive, send).run()

    def _request(self, scope: Scope) -> HotRequest | None:
        """The request, when it is one the hot path answers and every check the SDK makes passes."""
        body = scope.get(JSONRPC_BODY)
        if body is None or scope["method"] != "POST":
            return None
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        version = next((value for name, value in headers if name == _VERSION_HEADER), None)
        if version is None or version.decode("latin-1") not in MODERN_PROTOCOL_VERSIONS or self._tracing():
            return None
        text = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in headers]
        if _accepts(_first(text, "accept")) != (True, True) or find_duplicated_routing_header(text) is not None:
            return None  # the SDK's 406, or its -32001 for a routing header sent twice
        return modern_request(pydantic_core.from_json(body), dict(text))

    def _param_headers_disagree(self, scope: Scope, request: HotRequest) -> bool:
        """The SDK's 400 for an `Mcp-Param-*` header that disagrees with the call's arguments."""
        arguments = request.params.get("arguments")
        if not arguments and not any(name.startswith(b"mcp-param-") for name, _ in scope["headers"]):
            return False
        toolset = self.webtools.tools_of(_endpoint(scope))
        name = request.params["name"]
        schema = toolset.input_schema(name)
        if schema is None:
            return False
        mirrors = toolset.param_headers.get(name)
        if mirrors is None:
            mirrors = toolset.param_headers[name] = bool(x_mcp_header_map(schema))
        # Every copy of each header: one sent twice is refused.
        return mirrors and validate_mcp_param_headers(schema, arguments or {}, Headers(scope=scope)) is not None


class _Call:
    """One 2026-07-28 tools/call on its POST: JSON when it ends silent, SSE from its first notification on."""

    def __init__(self, webtools: WebTools, request: HotRequest, origin: CallOrigin, receive: Receive, send: Send):
        self.webtools = webtools
        self.request = request
        self.origin = origin
        self.receive = receive
        self.send = send
        self.streaming = False  # committed to text/event-stream
        self.finished = False  # the answer is sent: a keep-alive still on its way is dropped
        self._lock = asyncio.Lock()  # one writer at a time: the call's progress, the keep-alive
        self._ping: asyncio.TimerHandle | None = None

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        watcher = loop.create_task(_drain(self.receive))  # someone waits for the disconnect (the HangUp)
        self._ping = loop.call_later(SSE_PING_SECONDS, self._keep_alive)
        progress = self._progress if self.request.progress_token is not None else None
        try:
            answer = await answer_call(self.webtools, self.request, self.origin, progress)
        finally:
            self._ping.cancel()
            watcher.cancel()
        failed = isinstance(answer, types.ErrorData)
        reply = _error(self.request.id, answer) if failed else _response(self.request.id, answer)
        async with self._lock:
            self.finished = True
            if self.streaming:
                await self.send({"type": "http.response.body", "body": _event(reply), "more_body": False})
            else:
                status = ERROR_CODE_HTTP_STATUS.get(answer.code, 200) if isinstance(answer, types.ErrorData) else 200
                await _send_json(self.send, status, reply)

    async def _progress(self, progress: float, total: float | None, message: str | None) -> None:
        token = self.request.progress_token
        assert token is not None
        await self._stream(progress_notification(token, progress, total, message))

    async def _stream(self, notification: dict[str, Any] | None) -> None:
        """Send a notification (None: a keep-alive comment), committing the answer to SSE first."""
        async with self._lock:
            if self.finished:
                return
            if not self.streaming:
                self.streaming = True
                await self.send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
            body = _PING if notification is None else _event(notification)
            await self.send({"type": "http.response.body", "body": body, "more_body": True})

    def _keep_alive(self) -> None:
        loop = asyncio.get_running_loop()
        loop.create_task(self._stream(None)).add_done_callback(_quietly)
        self._ping = loop.call_later(SSE_PING_SECONDS, self._keep_alive)


class SessionHotPath:
    """A handshake-era `tools/call`, `tools/list` or `ping` POST of a session, answered on its stream here;
    `__call__` says whether it answered (else the SDK's transport goes on with the POST)."""

    def __init__(self, webtools: WebTools, *, tracing: Tracing = lambda: False) -> None:
        self.webtools = webtools
        self._tracing = tracing

    async def __call__(self, transport: SessionTransport, scope: Scope, receive: Receive, send: Send) -> bool:
        body = scope.get(JSONRPC_BODY)
        if body is None or transport._event_store is None or self._tracing():  # noqa: SLF001
            return False
        decoded = pydantic_core.from_json(body)
        if isinstance(decoded, dict) and decoded.get("method") == "notifications/cancelled":
            _cancel(transport, decoded.get("params"))
            return False  # the SDK acknowledges it (202)
        text = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in scope["headers"]]
        if _accepts(_first(text, "accept")) != (True, True):
            return False  # the SDK's 406
        request = session_request(decoded, transport.connection)
        if request is None:
            return False
        header = _first(text, "mcp-protocol-version") or DEFAULT_NEGOTIATED_VERSION
        if request.method != "tools/call":
            shaped = prepared(self.webtools, _endpoint(scope), _caller(scope), request)
            if shaped is None:
                return False
            stream = await _SessionStream.open(transport, request, header, send)
            await stream.finish(types.JSONRPCResponse(jsonrpc="2.0", id=request.id, result=shaped))
            return True
        connection = transport.connection
        info = connection.client_params.client_info if connection and connection.client_params else None
        origin = _origin(scope, request, client_seen(info, _where(scope)))
        stream = await _SessionStream.open(transport, request, header, send)
        await _SessionCall(self.webtools, request, origin, stream, receive).run(transport)
        return True


class _SessionStream:
    """One POST's SSE stream in a session: every message stored in the session's events, then sent."""

    def __init__(self, transport: SessionTransport, stream_id: str, send: Send) -> None:
        self.transport = transport
        self.stream_id = stream_id
        self.send = send
        self.finished = False
        self.lock = asyncio.Lock()  # one writer at a time: the call's progress, the keep-alive

    @classmethod
    async def open(cls, transport: SessionTransport, request: HotRequest, header: str, send: Send) -> _SessionStream:
        stream = cls(transport, str(request.id), send)
        # Minted before anything else is stored for the stream, as the SDK does (storage order is wire order).
        priming = await transport._mint_priming_event(stream.stream_id, header)  # noqa: SLF001
        headers = [  # the SDK's, as sse-starlette puts them in order
            (b"cache-control", b"no-cache, no-transform"),
            (b"connection", b"keep-alive"),
            (b"content-type", b"text/event-stream"),
            (b"mcp-session-id", (transport.mcp_session_id or "").encode()),
            (b"x-accel-buffering", b"no"),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        if priming is not None:
            await send({"type": "http.response.body", "body": ensure_bytes(priming, _SEP), "more_body": True})
        return stream

    async def message(self, message: types.JSONRPCNotification) -> None:
        async with self.lock:
            if not self.finished:
                await self._write(message)

    async def ping(self) -> None:
        async with self.lock:
            if not self.finished:
                comment = ServerSentEvent(comment=f"ping - {datetime.now(UTC)}", sep=_SEP)
                await self.send({"type": "http.response.body", "body": comment.encode(), "more_body": True})

    async def finish(self, message: types.JSONRPCResponse | types.JSONRPCError) -> None:
        async with self.lock:
            self.finished = True
            await self._write(message)
            await self.send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _write(self, message: types.JSONRPCMessage) -> None:
        store = self.transport._event_store  # noqa: SLF001
        assert store is not None
        event_id = await store.store_event(self.stream_id, message)
        data = message.model_dump_json(by_alias=True, exclude_unset=True)
        event = {"id": event_id, "event": "message", "data": data} if event_id else {"event": "message", "data": data}
        await self.send({"type": "http.response.body", "body": ensure_bytes(event, _SEP), "more_body": True})


class _SessionCall:
    """One handshake-era tools/call on its session's stream."""

    def __init__(
        self, webtools: WebTools, request: HotRequest, origin: CallOrigin, stream: _SessionStream, receive: Receive
    ) -> None:
        self.webtools = webtools
        self.request = request
        self.origin = origin
        self.stream = stream
        self.receive = receive
        self._ping: asyncio.TimerHandle | None = None

    async def run(self, transport: SessionTransport) -> None:
        loop = asyncio.get_running_loop()
        watcher = loop.create_task(_drain(self.receive))  # someone waits for the disconnect (the HangUp)
        self._ping = loop.call_later(SSE_PING_SECONDS, self._keep_alive)
        calls = transport.hot_calls
        key = str(self.request.id)
        progress = self._progress if self.request.progress_token is not None else None
        reply: types.JSONRPCResponse | types.JSONRPCError
        try:
            with anyio.CancelScope() as cancel:
                calls[key] = cancel
                answer = await answer_call(self.webtools, self.request, self.origin, progress)
            if cancel.cancelled_caught:
                answer = types.ErrorData(code=REQUEST_CANCELLED, message="Request cancelled")
        finally:
            calls.pop(key, None)
            self._ping.cancel()
            watcher.cancel()
        if isinstance(answer, types.ErrorData):
            reply = types.JSONRPCError(jsonrpc="2.0", id=self.request.id, error=answer)
        else:
            reply = types.JSONRPCResponse(jsonrpc="2.0", id=self.request.id, result=answer)
        await self.stream.finish(reply)

    async def _progress(self, progress: float, total: float | None, message: str | None) -> None:
        token = self.request.progress_token
        assert token is not None
        notification = progress_notification(token, progress, total, message)
        await self.stream.message(types.JSONRPCNotification.model_validate(notification))

    def _keep_alive(self) -> None:
        loop = asyncio.get_running_loop()
        loop.create_task(self.stream.ping()).add_done_callback(_quietly)
        self._ping = loop.call_later(SSE_PING_SECONDS, self._keep_alive)


def _cancel(transport: SessionTransport, params: Any) -> None:
    """A `notifications/cancelled` for a call running on the hot path: cancel it (the SDK never saw it)."""
    request_id = params.get("requestId") if isinstance(params, dict) else None
    scope = transport.hot_calls.get(str(request_id)) if isinstance(request_id, str | int) else None
    if scope is not None:
        scope.cancel()


def _origin(scope: Scope, request: HotRequest, who: ClientSeen) -> CallOrigin:
    hang_up = scope.get(CLIENT_GONE)
    return CallOrigin(
        request.id,
        _endpoint(scope),
        _caller(scope),
        list(scope["headers"]),
        hang_up if isinstance(hang_up, HangUp) else None,
        who,
    )


def _caller(scope: Scope) -> Caller | None:
    caller = scope.get(AUTHENTICATED)
    return caller if isinstance(caller, Caller) else None


def _endpoint(scope: Scope) -> str | None:
    endpoint = scope.get(ENDPOINT)
    return endpoint if isinstance(endpoint, str) else None


def _where(scope: Scope) -> str:
    """"http" and the client's address, as the console shows where a call came from."""
    client = scope.get("client")
    return f"http {client[0]}" if client else "http"


def _first(headers: list[tuple[str, str]], name: str) -> str:
    """The first value of a header, as Starlette reads one; "" when absent."""
    return next((value for key, value in headers if key == name), "")


def _accepts(accept: str) -> tuple[bool, bool]:
    """(JSON, SSE) acceptable: the SDK's `check_accept_headers`, on the header's text."""
    kinds = [part.strip().split(";")[0].strip().lower() for part in accept.split(",")]
    anything = "*/*" in kinds
    json_ok = anything or any(kind in ("application/json", "application/*") for kind in kinds)
    sse_ok = anything or any(kind in ("text/event-stream", "text/*") for kind in kinds)
    return json_ok, sse_ok


def _quietly(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.debug("keep-alive not sent: %s", task.exception())


async def _drain(receive: Receive) -> None:
    """Read the request's messages until the disconnect (which the `HangUp` in the scope notes)."""
    message: Message = {"type": ""}
    while message["type"] != "http.disconnect":
        message = await receive()


def _response(request_id: str | int, result: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def _error(request_id: str | int, error: types.ErrorData) -> dict[str, Any]:
    dumped = error.model_dump(mode="json", by_alias=True, exclude_none=True)
    return {"jsonrpc": "2.0", "id": request_id, "error": dumped}


def _event(message: dict[str, Any]) -> bytes:
    data = json.dumps(message, separators=(",", ":"))
    return f"event: message\r\ndata: {data}\r\n\r\n".encode()


async def _send_json(send: Send, status: int, message: dict[str, Any]) -> None:
    body = json.dumps(message, separators=(",", ":")).encode()
    headers = [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
