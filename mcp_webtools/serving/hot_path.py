"""The common 2026-07-28 requests over Streamable HTTP, answered without the SDK's per-request machinery.

A 2026-07-28 request is one self-contained POST: no session, its protocol version and the client's
capabilities in its own `_meta`. The SDK serves it well but at a cost per request that is most of
ours (bench/compare.py): a Starlette `Request`, a task group with a disconnect watcher and a memory
stream per POST, a `ServerRunner`, a `ServerSession` and a request context, its middleware chain,
pydantic models built and dumped for every message, a `Response` object. `tools/call` and
`tools/list` are nearly every request an agent sends, so `HotPath` answers those itself, as
`stdio.py` owns the stdio transport:

- Every check the SDK makes is made, with the SDK's own functions, in the SDK's order: the Accept
  header, duplicated routing headers, the envelope and the `Mcp-Method`/`Mcp-Name` headers
  (`classify_inbound_request`), the params for the version (`validate_client_request`), the
  `Mcp-Param-*` headers against the tool's schema. A request any of them refuses is handed to the
  SDK, which refuses it exactly as before; so is anything not listed below.
- The result is shaped as the SDK shapes it (`serialize_server_result` for the version, the
  `resultType`, the `serverInfo` stamp), and sent as the SDK sends it: `application/json` when the
  call finishes without a notification, else `text/event-stream` from the first progress
  notification on, with a keep-alive comment every `SSE_PING_SECONDS` once committed, or when a
  call runs that long in silence.
- A client that hangs up cancels its call (the `HangUp` that `StreamableHttpLifecycle` put in the
  scope), as the SDK's disconnect watcher does.

What still goes to the SDK: every handshake-era request (its sessions, resumable streams and
standalone stream are the SDK's), `server/discover`, `subscriptions/listen`, notifications, a
task-style call (tasks.py), a call that asked for log entries (`_meta` log level), a tools/list of
an OAuth caller whose scopes narrow the list or of a view not listed once by the SDK yet, and every
request while OpenTelemetry tracing is configured (the SDK's server span is the parent of ours).
`HttpSettings.hot_path` (`MCP_WEBTOOLS_HOT_PATH=off`) sends everything to the SDK.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import anyio
import mcp_types as types
import pydantic_core
from mcp.server.runner import modern_error_data
from mcp.server.streamable_http import DEFAULT_NEGOTIATED_VERSION, REQUEST_CANCELLED
from mcp.shared.exceptions import MCPError
from mcp.shared.inbound import (
    ERROR_CODE_HTTP_STATUS,
    InboundLadderRejection,
    classify_inbound_request,
    find_duplicated_routing_header,
    validate_mcp_param_headers,
)
from mcp_types import methods
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError
from sse_starlette.event import ServerSentEvent, ensure_bytes
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..observe.client_logs import level_set
from .http_scope import AUTHENTICATED, CLIENT_GONE, ENDPOINT, Caller, HangUp
from .server import CallOrigin, ClientSeen, WebTools

if TYPE_CHECKING:
    from .events import SessionTransport

__all__ = ["JSONRPC_BODY", "SSE_PING_SECONDS", "HotPath", "SessionHotPath"]

logger = logging.getLogger("mcp_webtools.protocol")

# ASGI scope key: the POST body `JsonRpcBodyCheck` read whole and found to be one valid message.
JSONRPC_BODY = "mcp_webtools.jsonrpc_body"
# The SDK's `_SSE_PING_INTERVAL`: how long a call may run silent before its answer commits to SSE,
# and the keep-alive comment's period then (so that a proxy's idle-read timeout never closes it).
SSE_PING_SECONDS = 15.0

_HOT_METHODS: Final = frozenset({"tools/call", "tools/list"})
_VERSION_HEADER: Final = b"mcp-protocol-version"
_PARAM_PREFIX: Final = b"mcp-param-"
_JSON_HEADERS: Final = [(b"content-type", b"application/json")]
_SSE_HEADERS: Final = [  # the SDK's, in its order
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache, no-transform"),
    (b"connection", b"keep-alive"),
    (b"x-accel-buffering", b"no"),
]
_PING: Final = b": ping\r\n\r\n"
_SEP: Final = "\r\n"  # sse-starlette's, as the SDK's handshake-era streams use it

Tracing = Callable[[], bool]


class HotPath:
    """ASGI: a 2026-07-28 `tools/call` or `tools/list` POST answered here; anything else to `app`."""

    def __init__(self, app: ASGIApp, webtools: WebTools, *, tracing: Tracing = lambda: False) -> None:
        self.app = app
        self.webtools = webtools
        self._tracing = tracing  # whether OpenTelemetry tracing is configured now (then: the SDK's way)
        server = webtools.server
        self._list_hint = server.cache_hints.get("tools/list")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        exchange = self._exchange(scope)
        if exchange is None:
            await self.app(scope, receive, send)
            return
        if exchange.method == "tools/list":
            shaped = self._listing(scope, exchange)
            if shaped is None:
                await self.app(scope, receive, send)
                return
            await _send_json(send, 200, _response(exchange.id, shaped))
            return
        origin = self._origin(scope, exchange)
        if origin is None:
            await self.app(scope, receive, send)
            return
        await _Call(self.webtools, exchange, origin, receive, send).run()

    def _exchange(self, scope: Scope) -> _Exchange | None:
        """The request, when it is one this path answers and every check the SDK makes passes."""
        body = scope.get(JSONRPC_BODY)
        if body is None or scope["method"] != "POST":
            return None
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        version = next((value for name, value in headers if name == _VERSION_HEADER), None)
        if version is None or version.decode("latin-1") not in MODERN_PROTOCOL_VERSIONS or self._tracing():
            return None
        decoded = pydantic_core.from_json(body)
        method = decoded.get("method")
        if method not in _HOT_METHODS or "id" not in decoded:
            return None
        text = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in headers]
        accept = next((value for name, value in text if name == "accept"), "")  # the first, as Starlette reads it
        has_json, has_sse = _accepts(accept)
        if not (has_json and has_sse) or find_duplicated_routing_header(text) is not None:
            return None  # the SDK's 406, or its -32001 for a header sent twice
        verdict = classify_inbound_request(decoded, headers=dict(text))
        if isinstance(verdict, InboundLadderRejection):
            return None
        params = decoded.get("params")
        try:
            methods.validate_client_request(method, verdict.protocol_version, params)
        except (KeyError, ValueError, ValidationError):
            return None
        return _Exchange(decoded["id"], method, params or {}, verdict.protocol_version, text)

    def _listing(self, scope: Scope, exchange: _Exchange) -> dict[str, Any] | None:
        """The tools/list answer the SDK shaped for this view and version before (`WebTools._list_once`)."""
        caller = scope.get(AUTHENTICATED)
        if isinstance(caller, Caller) and caller.scopes is not None:
            return None  # an OAuth caller's list is narrowed by its scopes: the SDK's way
        if exchange.params.get("cursor") is not None:
            return None
        toolset = self.webtools.tools_of(_endpoint(scope))
        return toolset.shaped_lists.get(exchange.version)

    def _origin(self, scope: Scope, exchange: _Exchange) -> CallOrigin | None:
        """Where the call comes from; None for a call this path leaves to the SDK."""
        meta = exchange.params.get("_meta") or {}
        if types.LOG_LEVEL_META_KEY in meta:
            return None  # spoken messages as log entries (client_logs.py): the SDK's session sends them
        if self.webtools.tasks is not None and self.webtools.tasks.available:
            capabilities = meta.get(types.CLIENT_CAPABILITIES_META_KEY)
            extensions = capabilities.get("extensions") if isinstance(capabilities, dict) else None
            if isinstance(extensions, dict) and extensions:
                return None  # maybe a task-style call (tasks.py)
        arguments = exchange.params.get("arguments")
        mentions_params = any(name.startswith("mcp-param-") for name, _ in exchange.headers)
        if arguments or mentions_params:
            schema = self.webtools.tools_of(_endpoint(scope)).input_schema(exchange.params["name"])
            sent = Headers(scope=scope)  # every copy of a header: one sent twice is refused
            if schema is not None and validate_mcp_param_headers(schema, arguments or {}, sent):
                return None  # the SDK's 400 for an `Mcp-Param-*` header that disagrees with the arguments
        return _origin(scope, exchange, _client_seen(meta, scope))


class _Exchange:
    __slots__ = ("headers", "id", "method", "params", "version")

    def __init__(
        self, request_id: str | int, method: str, params: dict, version: str, headers: list[tuple[str, str]]
    ) -> None:
        self.id = request_id
        self.method = method
        self.params = params
        self.version = version
        self.headers = headers  # lower-case names, latin-1 text


class _Call:
    """One tools/call on its POST: JSON when it ends silent, SSE from its first notification on."""

    def __init__(
        self, webtools: WebTools, exchange: _Exchange, origin: CallOrigin, receive: Receive, send: Send
    ) -> None:
        self.webtools = webtools
        self.exchange = exchange
        self.origin = origin
        self.receive = receive
        self.send = send
        meta = exchange.params.get("_meta") or {}
        token = meta.get("progressToken")
        self.progress_token = token if isinstance(token, str | int) and not isinstance(token, bool) else None
        self.streaming = False  # committed to text/event-stream
        self.finished = False  # the answer is sent: a keep-alive still on its way is dropped
        self._lock = asyncio.Lock()  # one writer at a time: the call's progress, the keep-alive
        self._ping: asyncio.TimerHandle | None = None

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        # Someone must wait on `receive` for the disconnect that cancels the call (the HangUp).
        watcher = loop.create_task(_drain(self.receive))
        self._ping = loop.call_later(SSE_PING_SECONDS, self._keep_alive)
        try:
            reply = await self._reply()
        finally:
            self._ping.cancel()
            watcher.cancel()
        async with self._lock:
            self.finished = True
            if self.streaming:
                await self.send({"type": "http.response.body", "body": _event(reply), "more_body": False})
            else:
                status = 200 if "error" not in reply else ERROR_CODE_HTTP_STATUS.get(reply["error"]["code"], 200)
                await _send_json(self.send, status, reply)

    async def _reply(self) -> dict[str, Any]:
        exchange = self.exchange
        params = exchange.params
        send_progress = self._progress if self.progress_token is not None else None
        try:
            result = await self.webtools.call(params["name"], params.get("arguments"), self.origin, send_progress)
            shaped = methods.serialize_server_result(
                "tools/call", exchange.version, result.model_dump(by_alias=True, mode="json", exclude_none=True)
            )
        except (MCPError, ValidationError) as exc:  # an unknown tool; the SDK maps them so
            return _error(exchange.id, modern_error_data(exc))
        except Exception:  # a fault of ours: the SDK's answer, and the traceback in our log
            logger.exception("tools/call %r failed unexpectedly", params.get("name"))
            return _error(exchange.id, types.ErrorData(code=types.INTERNAL_ERROR, message="Internal server error"))
        return _response(exchange.id, _stamped(self.webtools, shaped))

    async def _progress(self, progress: float, total: float | None, message: str | None) -> None:
        params: dict[str, Any] = {"progressToken": self.progress_token, "progress": progress}
        if total is not None:
            params["total"] = total
        if message is not None:
            params["message"] = message
        await self._stream({"jsonrpc": "2.0", "method": "notifications/progress", "params": params})

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
        """Every `SSE_PING_SECONDS` of the call: a comment line (committing to SSE, as the SDK does)."""
        loop = asyncio.get_running_loop()
        task = loop.create_task(self._stream(None))
        task.add_done_callback(_quietly)
        self._ping = loop.call_later(SSE_PING_SECONDS, self._keep_alive)


class SessionHotPath:
    """A handshake-era `tools/call` or `tools/list` POST of a session, answered on its stream here.

    Called by the session's transport (`events.SessionTransport`) once the SDK's own checks of the
    POST have passed (Host and Origin, the session, its idle clock); says whether it answered. Only
    a session whose `Connection` a request the SDK served has shown (`remember_connection`) and
    whose handshake is done: its negotiated version decides how requests are checked and results
    shaped, as in the SDK's runner. The answer is the SDK's SSE stream: the priming event (2025-11-25
    on), each message stored in the session's `EventStore` (a reconnect with `Last-Event-ID` replays
    them) and sent with its event id. A `notifications/cancelled` for a call running here cancels it,
    and it is answered `-32800`, as the SDK answers a cancelled request on this wire.
    """

    def __init__(self, webtools: WebTools, *, tracing: Tracing = lambda: False) -> None:
        self.webtools = webtools
        self._tracing = tracing

    async def __call__(self, transport: SessionTransport, scope: Scope, receive: Receive, send: Send) -> bool:
        body = scope.get(JSONRPC_BODY)
        connection = transport.connection
        if body is None or connection is None or transport._event_store is None or self._tracing():  # noqa: SLF001
            return False
        decoded = pydantic_core.from_json(body)
        method = decoded.get("method")
        if method == "notifications/cancelled":
            _cancel(transport, decoded.get("params"))
            return False  # the SDK acknowledges it (202)
        if method not in _HOT_METHODS or "id" not in decoded:
            return False
        version = connection.protocol_version
        if not connection.initialize_accepted or version in MODERN_PROTOCOL_VERSIONS:
            return False
        if level_set(connection.state):
            return False  # spoken messages as log entries (client_logs.py): the SDK's session sends them
        text = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in scope["headers"]]
        accept = next((value for name, value in text if name == "accept"), "")
        if _accepts(accept) != (True, True):
            return False  # the SDK's 406
        params = decoded.get("params")
        meta = (params or {}).get("_meta")
        if isinstance(meta, dict) and any(key.startswith("io.modelcontextprotocol/") for key in meta):
            return False  # the 2026-07-28 envelope on a handshake session: the SDK refuses it
        try:
            methods.validate_client_request(method, version, params)
        except (KeyError, ValueError, ValidationError):
            return False
        exchange = _Exchange(decoded["id"], method, params or {}, version, text)
        header = next((value for name, value in text if name == "mcp-protocol-version"), DEFAULT_NEGOTIATED_VERSION)
        if method == "tools/list":
            caller = scope.get(AUTHENTICATED)
            if (isinstance(caller, Caller) and caller.scopes is not None) or exchange.params.get("cursor") is not None:
                return False
            shaped = self.webtools.tools_of(_endpoint(scope)).shaped_lists.get(version)
            if shaped is None:
                return False
            stream = await _SessionStream.open(transport, exchange, header, send)
            await stream.finish(types.JSONRPCResponse(jsonrpc="2.0", id=exchange.id, result=shaped))
            return True
        info = connection.client_params.client_info if connection.client_params is not None else None
        who = ClientSeen(info.name, info.version, _peer(scope)) if info is not None else ClientSeen(None, None, None)
        stream = await _SessionStream.open(transport, exchange, header, send)
        await _SessionCall(self.webtools, exchange, _origin(scope, exchange, who), stream, receive).run(transport)
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
    async def open(cls, transport: SessionTransport, exchange: _Exchange, header: str, send: Send) -> _SessionStream:
        stream = cls(transport, str(exchange.id), send)
        # Minted before anything else is stored for the stream, as the SDK does (storage order is wire order).
        priming = await transport._mint_priming_event(stream.stream_id, header)  # noqa: SLF001
        headers = [
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
                await self._write(message, more=True)

    async def ping(self) -> None:
        async with self.lock:
            if not self.finished:
                comment = ServerSentEvent(comment=f"ping - {datetime.now(UTC)}", sep=_SEP)
                await self.send({"type": "http.response.body", "body": comment.encode(), "more_body": True})

    async def finish(self, message: types.JSONRPCResponse | types.JSONRPCError) -> None:
        async with self.lock:
            self.finished = True
            await self._write(message, more=True)
            await self.send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _write(self, message: types.JSONRPCMessage, *, more: bool) -> None:
        store = self.transport._event_store  # noqa: SLF001
        assert store is not None
        event_id = await store.store_event(self.stream_id, message)
        data = message.model_dump_json(by_alias=True, exclude_unset=True)
        event = {"id": event_id, "event": "message", "data": data} if event_id else {"event": "message", "data": data}
        await self.send({"type": "http.response.body", "body": ensure_bytes(event, _SEP), "more_body": more})


class _SessionCall:
    """One handshake-era tools/call on its session's stream."""

    def __init__(
        self, webtools: WebTools, exchange: _Exchange, origin: CallOrigin, stream: _SessionStream, receive: Receive
    ) -> None:
        self.webtools = webtools
        self.exchange = exchange
        self.origin = origin
        self.stream = stream
        self.receive = receive
        token = (exchange.params.get("_meta") or {}).get("progressToken")
        self.progress_token = token if isinstance(token, str | int) and not isinstance(token, bool) else None
        self._ping: asyncio.TimerHandle | None = None

    async def run(self, transport: SessionTransport) -> None:
        loop = asyncio.get_running_loop()
        watcher = loop.create_task(_drain(self.receive))  # for the HangUp, as on the 2026-07-28 path
        self._ping = loop.call_later(SSE_PING_SECONDS, self._keep_alive)
        calls = transport.hot_calls
        key = str(self.exchange.id)
        reply: types.JSONRPCResponse | types.JSONRPCError
        try:
            with anyio.CancelScope() as cancel:
                calls[key] = cancel
                reply = await self._reply()
            if cancel.cancelled_caught:
                error = types.ErrorData(code=REQUEST_CANCELLED, message="Request cancelled")
                reply = types.JSONRPCError(jsonrpc="2.0", id=self.exchange.id, error=error)
        finally:
            calls.pop(key, None)
            self._ping.cancel()
            watcher.cancel()
        await self.stream.finish(reply)

    async def _reply(self) -> types.JSONRPCResponse | types.JSONRPCError:
        exchange = self.exchange
        params = exchange.params
        send_progress = self._progress if self.progress_token is not None else None
        try:
            result = await self.webtools.call(params["name"], params.get("arguments"), self.origin, send_progress)
            shaped = methods.serialize_server_result(
                "tools/call", exchange.version, result.model_dump(by_alias=True, mode="json", exclude_none=True)
            )
        except (MCPError, ValidationError) as exc:  # an unknown tool; the SDK maps them so
            return types.JSONRPCError(jsonrpc="2.0", id=exchange.id, error=modern_error_data(exc))
        except Exception:  # a fault of ours: the traceback in our log
            logger.exception("tools/call %r failed unexpectedly", params.get("name"))
            error = types.ErrorData(code=types.INTERNAL_ERROR, message="Internal server error")
            return types.JSONRPCError(jsonrpc="2.0", id=exchange.id, error=error)
        return types.JSONRPCResponse(jsonrpc="2.0", id=exchange.id, result=shaped)

    async def _progress(self, progress: float, total: float | None, message: str | None) -> None:
        params: dict[str, Any] = {"progressToken": self.progress_token, "progress": progress}
        if total is not None:
            params["total"] = total
        if message is not None:
            params["message"] = message
        notification = types.JSONRPCNotification(jsonrpc="2.0", method="notifications/progress", params=params)
        await self.stream.message(notification)

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


def _origin(scope: Scope, exchange: _Exchange, who: ClientSeen) -> CallOrigin:
    caller = scope.get(AUTHENTICATED)
    hang_up = scope.get(CLIENT_GONE)
    return CallOrigin(
        exchange.id,
        _endpoint(scope),
        caller if isinstance(caller, Caller) else None,
        list(scope["headers"]),
        hang_up if isinstance(hang_up, HangUp) else None,
        who,
    )


def _peer(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


def _quietly(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.debug("keep-alive not sent: %s", task.exception())


async def _drain(receive: Receive) -> None:
    """Read the request's messages until the disconnect (which the `HangUp` in the scope notes)."""
    message: Message = {"type": ""}
    while message["type"] != "http.disconnect":
        message = await receive()


def _stamped(webtools: WebTools, result: dict[str, Any]) -> dict[str, Any]:
    """`resultType` and the `serverInfo` stamp, as the SDK's runner puts them on a 2026-07-28 result."""
    if result.get("resultType") is None:
        result["resultType"] = "complete"
    meta = result.get("_meta")
    stamp = webtools.server.server_info_stamp
    if meta is None:
        result["_meta"] = {types.SERVER_INFO_META_KEY: stamp}
    elif isinstance(meta, Mapping) and meta.get(types.SERVER_INFO_META_KEY) is None:
        result["_meta"] = {**meta, types.SERVER_INFO_META_KEY: stamp}
    return result


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
    headers = [(b"content-length", str(len(body)).encode()), *_JSON_HEADERS]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _accepts(accept: str) -> tuple[bool, bool]:
    """(JSON, SSE) acceptable: the SDK's `check_accept_headers`, on the header's text."""
    kinds = [part.strip().split(";")[0].strip().lower() for part in accept.split(",")]
    anything = "*/*" in kinds
    json_ok = anything or any(kind in ("application/json", "application/*") for kind in kinds)
    sse_ok = anything or any(kind in ("text/event-stream", "text/*") for kind in kinds)
    return json_ok, sse_ok


def _endpoint(scope: Scope) -> str | None:
    endpoint = scope.get(ENDPOINT)
    return endpoint if isinstance(endpoint, str) else None


def _client_seen(meta: Mapping[str, Any], scope: Scope) -> ClientSeen:
    info = meta.get(types.CLIENT_INFO_META_KEY)
    peer = _peer(scope)
    if isinstance(info, dict) and isinstance(info.get("name"), str) and isinstance(info.get("version"), str):
        return ClientSeen(info["name"], info["version"], peer)
    return ClientSeen(None, None, peer)

