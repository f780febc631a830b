"""Resumable Streamable HTTP streams: the SDK's `EventStore`, kept in memory, one view per session.

A handshake-era client of 2025-11-25 or later gets a priming event (an id, no data, and a `retry`
hint) first on every SSE stream of its session; when its connection drops it reconnects with
`GET /mcp` and `Last-Event-ID`, and the SDK's transport replays what it missed from here, then
carries on live. So a call whose POST stream broke still answers: it goes on running (within its
tool's timeout) and its result waits here for the reconnect (http_app leaves such calls running).

The SDK hands one store to every session and names streams by JSON-RPC request id, which every
session reuses ("1", "2", ...). The session manager (`ResumableSessionManager`) gives each new
session its own view of the sessions' `Events`, so a `Last-Event-ID` only ever replays events of
the session that asks. `SessionEvents`' event ids are random, so they cannot be guessed either.

`SessionEvents` keeps them in this process, bounded: at most `MAX_EVENTS_PER_STREAM` events per
stream, `MAX_STREAMS` streams and `MAX_BYTES` of messages in all (the oldest go first: a tool
result can be a megabyte), each stream forgotten `TTL_SECONDS` after its last event. With
`serve --state`, shared_events.py keeps them on Redis instead, with the same per-stream cap and
TTL, so that a reconnect reaching another replica is served too (docs/operations.md, "Running past
one machine"); the session itself still lives in one process (SDK 2.3).
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import anyio
from mcp.server import Server, ServerRequestContext
from mcp.server.auth.middleware.bearer_auth import AuthorizationContext
from mcp.server.connection import Connection
from mcp.server.context import CallNext, HandlerResult
from mcp.server.streamable_http import (
    EventCallback,
    EventId,
    EventMessage,
    EventStore,
    SSEEvent,
    StreamableHTTPServerTransport,
    StreamId,
)
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.inbound import MCP_PROTOCOL_VERSION_HEADER
from mcp.shared.message import SessionMessage
from mcp_types import JSONRPCMessage, JSONRPCRequest, JSONRPCResponse, RequestId
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, is_version_at_least
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from .http_scope import AUTHENTICATED, ENDPOINT

__all__ = [
    "MAX_BYTES",
    "MAX_EVENTS_PER_STREAM",
    "MAX_STREAMS",
    "NOBODY",
    "RETRY_MS",
    "TTL_SECONDS",
    "ElsewhereEvents",
    "Events",
    "HotSessionPath",
    "Owner",
    "ResumableSessionManager",
    "SessionEvents",
    "SessionTransport",
    "owner_of",
    "resumable",
]

MAX_EVENTS_PER_STREAM = 1000
MAX_STREAMS = 10_000
MAX_BYTES = 64 * 2**20
TTL_SECONDS = 600.0
# How soon a client should reconnect after its stream ends (the SSE `retry` field), in milliseconds.
RETRY_MS = 1000
RESUMABLE_FROM = "2025-11-25"  # the first protocol version with priming events (SEP-1699)


class HotSessionPath(Protocol):
    """What answers a session's common requests without the SDK (hot_path.SessionHotPath); True if it did."""

    async def __call__(self, transport: SessionTransport, scope: Scope, receive: Receive, send: Send) -> bool: ...


@dataclass(frozen=True)
class Owner:
    """Who opened a session: its client's id (None without tokens) and the endpoint it was opened on."""

    client: str | None = None
    endpoint: str | None = None


NOBODY = Owner()  # no tokens, no endpoints: what a session of a token-less `/mcp` records


class Events(Protocol):
    """Where sessions' events are kept: this process (`SessionEvents`) or Redis (shared_events.py)."""

    async def store_event(
        self, session: str, stream_id: StreamId, message: JSONRPCMessage | None, owner: Owner = NOBODY
    ) -> EventId: ...

    async def replay(self, session: str, last_event_id: EventId, send: EventCallback) -> StreamId | None: ...


@runtime_checkable
class ElsewhereEvents(Events, Protocol):
    """An `Events` that can also serve a reconnect reaching a process without the session (shared_events.py)."""

    async def resume_elsewhere(self, scope: Scope, receive: Receive, send: Send, caller: Owner) -> bool: ...

    async def forget_session(self, session: str) -> None: ...


@dataclass
class _Stream:
    session: str
    stream_id: StreamId
    events: OrderedDict[EventId, tuple[JSONRPCMessage | None, int]] = field(default_factory=OrderedDict)
    touched: float = 0.0


class SessionEvents:
    """Every session's events, in this process; `for_session(id)` is the `EventStore` of one session."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._streams: OrderedDict[tuple[str, StreamId], _Stream] = OrderedDict()  # oldest first
        self._where: dict[EventId, tuple[str, StreamId]] = {}
        self.bytes = 0  # the messages held, as JSON

    def for_session(self, session: str) -> EventStore:
        return _SessionView(self, session)

    def __len__(self) -> int:
        """Events held now, all sessions together."""
        return len(self._where)

    async def store_event(
        self, session: str, stream_id: StreamId, message: JSONRPCMessage | None, owner: Owner = NOBODY
    ) -> EventId:
        return self.store(session, stream_id, message)  # in one process: the owner is the SDK's to check

    def store(self, session: str, stream_id: StreamId, message: JSONRPCMessage | None) -> EventId:
        now = self.clock()
        self._expire(now)
        key = (session, stream_id)
        stream = self._streams.pop(key, None) or _Stream(session, stream_id)
        self._streams[key] = stream  # now the most recently used
        event_id = secrets.token_urlsafe(16)
        size = len(message.model_dump_json(by_alias=True, exclude_none=True)) if message is not None else 0
        stream.events[event_id] = (message, size)
        stream.touched = now
        self._where[event_id] = key
        self.bytes += size
        # Other streams go first, oldest first; then this stream's own oldest events.
        while len(self._streams) > MAX_STREAMS or (self.bytes > MAX_BYTES and len(self._streams) > 1):
            self._forget(next(iter(self._streams)))
        while stream.events and (len(stream.events) > MAX_EVENTS_PER_STREAM or self.bytes > MAX_BYTES):
            self._drop_oldest(stream)
        return event_id

    async def replay(self, session: str, last_event_id: EventId, send: EventCallback) -> StreamId | None:
        self._expire(self.clock())
        key = self._where.get(last_event_id)
        if key is None or key[0] != session:  # unknown, forgotten, or another session's: nothing
            return None
        stream = self._streams[key]
        after = False
        for event_id, (message, _) in list(stream.events.items()):
            if after and message is not None:  # priming events carry nothing to replay
                await send(EventMessage(message, event_id))
            after = after or event_id == last_event_id
        return stream.stream_id

    def _expire(self, now: float) -> None:
        while self._streams:
            key, stream = next(iter(self._streams.items()))
            if now - stream.touched < TTL_SECONDS:
                return
            self._forget(key)

    def _forget(self, key: tuple[str, StreamId]) -> None:
        stream = self._streams.pop(key)
        for event_id, (_, size) in stream.events.items():
            self._where.pop(event_id, None)
            self.bytes -= size

    def _drop_oldest(self, stream: _Stream) -> None:
        event_id, (_, size) = stream.events.popitem(last=False)
        del self._where[event_id]
        self.bytes -= size


class _SessionView(EventStore):
    """One session's `EventStore`: what the SDK's transport of that session calls.

    It also notes the protocol version the session's `initialize` negotiated (its answer passes
    through here before it reaches the client), for `SessionTransport`.
    """

    def __init__(self, events: Events, session: str) -> None:
        self.events = events
        self.session = session
        self.negotiated: str | None = None
        self.owner = NOBODY  # who opened the session (set when it opens; shared_events.py records it)

    async def store_event(self, stream_id: StreamId, message: JSONRPCMessage | None) -> EventId:
        if self.negotiated is None and isinstance(message, JSONRPCResponse):
            self.negotiated = _negotiated_version(message)
        return await self.events.store_event(self.session, stream_id, message, self.owner)

    async def replay_events_after(self, last_event_id: EventId, send_callback: EventCallback) -> StreamId | None:
        return await self.events.replay(self.session, last_event_id, send_callback)


class SessionTransport(StreamableHTTPServerTransport):
    """The SDK's transport of one session, deciding resumability by the session's negotiated version.

    The SDK decides per POST, by its `MCP-Protocol-Version` header, whether to send the priming
    event and to offer the call a way to close its stream early. Here the version the session's
    `initialize` negotiated decides once it is known, as the spec allows (2025-11-25, Transports,
    "Protocol Version Header"): "The protocol version sent by the client SHOULD be the one
    negotiated during initialization", a client's duty, not a server's gate, and the server may
    identify the version "by relying on the protocol version negotiated during initialization".
    A client that negotiated 2025-11-25 or later reads priming events, whatever a later header
    says, and for it the 2025-11-25 transport's rule holds: "The server SHOULD immediately send an
    SSE event consisting of an event ID and an empty data field in order to prime the client to
    reconnect". The conformance suite's `server-sse-polling` initializes at 2025-11-25, then posts
    with a 2025-03-26 header. A session negotiated before 2025-11-25 still gets no priming event
    (its client could not read one), whatever its header says; until `initialize` is answered,
    the header (or the request's `protocolVersion`) decides, as in the SDK.
    """

    # Set on the class for every session (the SDK builds the instance; see `_admit_session`):
    connection: Connection | None = None  # the session's, once a request the SDK served shows it
    hot: HotSessionPath | None = None  # answers the common requests itself (hot_path.SessionHotPath)

    @property
    def hot_calls(self) -> dict[str, anyio.CancelScope]:
        """The calls the hot path runs for this session, by request id (a cancel notification finds them)."""
        calls: dict[str, anyio.CancelScope] | None = self.__dict__.get("_hot_calls")
        if calls is None:
            calls = self.__dict__["_hot_calls"] = {}
        return calls

    async def _handle_post_request(self, scope: Scope, request: Request, receive: Receive, send: Send) -> None:
        if self.hot is not None and await self.hot(self, scope, receive, send):
            return
        await super()._handle_post_request(scope, request, receive, send)

    def session_version(self, header: str | None) -> str | None:
        """The version that decides resumability: the negotiated one once known, else `header`."""
        store = self._event_store
        negotiated = store.negotiated if isinstance(store, _SessionView) else None
        return negotiated or header

    async def _handle_delete_request(self, request: Request, send: Send) -> None:
        # The client ends its session: no other replica may replay its events from now on, so this
        # happens before the answer. (A shutdown, an idle timeout or a crash leaves them readable,
        # until their TTL, from any replica: a call drained on the way down still reaches its client.)
        store = self._event_store
        if isinstance(store, _SessionView) and isinstance(store.events, ElsewhereEvents):
            await store.events.forget_session(store.session)
        await super()._handle_delete_request(request, send)

    async def _mint_priming_event(self, stream_id: StreamId, protocol_version: str) -> SSEEvent | None:
        return await super()._mint_priming_event(stream_id, self.session_version(protocol_version) or protocol_version)

    def _create_session_message(
        self, message: JSONRPCRequest, request: Request, request_id: RequestId, protocol_version: str
    ) -> SessionMessage:
        version = self.session_version(protocol_version) or protocol_version
        return super()._create_session_message(message, request, request_id, version)


class ResumableSessionManager(StreamableHTTPSessionManager):
    """The SDK's session manager, with resumable streams: each new session gets its own view of
    `events` as its `EventStore` (see the module docstring), and its streams a `retry` hint.

    With events on Redis (shared_events.py), a reconnect (`GET` with `Last-Event-ID`) of a session
    this process does not hold is served from there rather than answered 404.
    """

    def __init__(self, app: Server, *, events: Events, hot: HotSessionPath | None = None, **settings: Any) -> None:
        super().__init__(app, retry_interval=RETRY_MS, **settings)
        self.events = events
        self.hot = hot  # given to each session's transport (SessionTransport.hot)

    async def remember_connection(self, ctx: ServerRequestContext, call_next: CallNext) -> HandlerResult:
        """Server middleware: note each session's `Connection` on its transport, for the hot path."""
        request = ctx.request
        session = request.headers.get("mcp-session-id") if isinstance(request, Request) else None
        transport = self._server_instances.get(session) if session is not None else None
        if isinstance(transport, SessionTransport) and transport.connection is None:
            connection = getattr(ctx.session, "_connection", None)  # private in mcp 2.3 (see list_changed.py)
            if isinstance(connection, Connection):
                transport.connection = connection
        return await call_next(ctx)

    def _admit_session(self, requestor: AuthorizationContext | None) -> StreamableHTTPServerTransport | None:
        transport = super()._admit_session(requestor)
        if transport is not None and transport.mcp_session_id is not None:
            transport._event_store = _SessionView(self.events, transport.mcp_session_id)  # noqa: SLF001
            # The SDK builds the transport itself; SessionTransport only adds methods (no state of
            # its own to initialise), so the instance can take its class.
            transport.__class__ = SessionTransport
            transport.hot = self.hot
        return transport

    async def _serve_opening_request(
        self, http_transport: StreamableHTTPServerTransport, scope: Scope, receive: Receive, send: Send
    ) -> None:
        store = http_transport._event_store  # noqa: SLF001
        if isinstance(store, _SessionView):
            store.owner = owner_of(scope)
        await super()._serve_opening_request(http_transport, scope, receive, send)

    async def _handle_stateful_request(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        session = headers.get("mcp-session-id")
        if (
            scope["method"] == "GET"
            and session is not None
            and session not in self._server_instances
            and "last-event-id" in headers
            and "text/event-stream" in headers.get("accept", "")
            and isinstance(self.events, ElsewhereEvents)
        ):
            if await self.events.resume_elsewhere(scope, receive, send, owner_of(scope)):
                return
        await super()._handle_stateful_request(scope, receive, send)

    def resumes(self, scope: Scope) -> bool:
        """Whether the client of this POST can resume its stream if it drops (see `SessionTransport`).

        Its session's negotiated version decides once known; a request of no (known) session, by its header.
        """
        headers = Headers(scope=scope)
        header = headers.get(MCP_PROTOCOL_VERSION_HEADER)
        transport = self._server_instances.get(headers.get("mcp-session-id", ""))
        if isinstance(transport, SessionTransport):
            return resumable(transport.session_version(header))
        return resumable(header)


def owner_of(scope: Scope) -> Owner:
    """Who sends this request: the client its token names (None without tokens), and the endpoint it is for."""
    caller = scope.get(AUTHENTICATED)
    return Owner(getattr(caller, "id", None), scope.get(ENDPOINT))


def _negotiated_version(message: JSONRPCResponse) -> str | None:
    """The protocol version of an answer to `initialize` (the only result naming one and the server); else None."""
    result = message.result
    if isinstance(result, dict) and "serverInfo" in result and "capabilities" in result:
        version = result.get("protocolVersion")
        return version if isinstance(version, str) else None
    return None


def resumable(protocol_version: str | None) -> bool:
    """Whether a handshake-era client of this version can resume a broken stream (2025-11-25 on).

    Older clients cannot read the priming event, so the SDK sends them none; 2026-07-28 clients have
    no sessions and no event store.
    """
    return (
        protocol_version is not None
        and protocol_version in HANDSHAKE_PROTOCOL_VERSIONS
        and is_version_at_least(protocol_version, RESUMABLE_FROM)
    )
