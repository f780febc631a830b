"""Resumable streams across replicas (`serve --state redis://...`): the events on the shared Redis.

Without `--state`, a session's events stay in its process (events.py). With it, every event of a
session's SSE streams goes to Redis instead, so that a client whose connection broke can reconnect
(`GET /mcp` with `Mcp-Session-Id` and `Last-Event-ID`) to whichever replica the load balancer
picks and still get what it missed:

- on the replica that holds the session, the SDK's transport replays from here and carries on live,
  as without Redis;
- on any other replica (`ResumableSessionManager` sends it here, the SDK would answer 404), the
  events stored after `Last-Event-ID` are sent, then the stream is followed on Redis as the
  session's replica adds to it (the call goes on there), until the answer of the request it carries
  has been sent, `POLL_SECONDS` pass with nothing new, or the client hangs up; the SSE `retry` field
  brings the client back for more (SEP-1699's polling).

What SDK 2.3 cannot do across processes, and this does not try: the session itself (its requests,
its server task, its calls) lives in the process that answered `initialize`. Another replica serves
only the reconnecting `GET`; a `POST` or `DELETE` of the session there is still 404 (route by
`Mcp-Session-Id`, docs/operations.md). Only events stored in Redis travel: while Redis is down, a
session's events are kept in its own process (events.py's store) and only that process can replay them.

Layout, all keys under `mcp-webtools:` with an expiry: `events:<session hash>:<stream hash>`, one
Redis stream (XADD) per SSE stream, capped at `MAX_EVENTS_PER_STREAM` entries and kept `TTL_SECONDS`
after its last event; `session:<session hash>`, who opened the session (client id and endpoint), kept
as long. Session ids and request ids appear only hashed (SHA-256) in key names: a session id is what
a client resumes with. An event id is `<stream hash>.<Redis entry id>`; a replay reads only the
asking session's keys, so another session's event id finds nothing. The owner check: a reconnect
on another replica must come from the client (token) that opened the session, on the same endpoint;
anything else is answered like an unknown session (404).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

import anyio
from mcp.server.streamable_http import EventCallback, EventId, EventMessage, StreamId
from mcp_types import JSONRPCMessage, jsonrpc_message_adapter
from sse_starlette import EventSourceResponse
from starlette.datastructures import Headers
from starlette.types import Receive, Scope, Send

from .events import MAX_EVENTS_PER_STREAM, NOBODY, RETRY_MS, TTL_SECONDS, Owner, SessionEvents
from .state import PREFIX, RedisState

__all__ = ["POLL_SECONDS", "SharedEvents"]

logger = logging.getLogger("mcp_webtools.streams")

# A reconnect served by another replica follows the stream this long without a new event, then ends
# (the client comes back after `retry`): no connection is held open indefinitely for a dead replica.
POLL_SECONDS = 30.0
# Sessions ended by their clients that this process remembers (`SharedEvents._ended`).
MAX_ENDED = 10_000
# Each wait for new events on Redis: short, within the store's command timeout (state.py).
_BLOCK_MS = 200

# What an event id of this store looks like; anything else a client sends is none of ours (and never reaches Redis).
_EVENT_ID = re.compile(r"[0-9a-f]{32}\.[0-9]{1,20}-[0-9]{1,20}")

# KEYS: the stream, the session record; ARGV: stream id, message JSON ("" for a priming event), the
# cap, the TTL in ms, the session record. Returns the entry id.
_STORE = """
local id = redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[3], '*', 's', ARGV[1], 'm', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('SET', KEYS[2], ARGV[5], 'PX', ARGV[4])
return id
"""


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


class SharedEvents:
    """The `events.Events` of every session of this process, on Redis (`state`), in-process while it is down."""

    def __init__(self, state: RedisState, local: SessionEvents | None = None) -> None:
        self.state = state
        self.local = local if local is not None else SessionEvents()  # while Redis cannot be reached
        self._store = state.redis.register_script(_STORE)
        # Sessions their clients ended (DELETE): what the SDK still stores for them while it winds them
        # down (an unanswered request's error) stays here, so that their record is not written again.
        self._ended: OrderedDict[str, None] = OrderedDict()

    # -- events.Events ---------------------------------------------------------------------------

    async def store_event(
        self, session: str, stream_id: StreamId, message: JSONRPCMessage | None, owner: Owner = NOBODY
    ) -> EventId:
        if session in self._ended:
            return self.local.store(session, stream_id, message)
        stream = _hash(str(stream_id))
        data = message.model_dump_json(by_alias=True, exclude_unset=True) if message is not None else ""
        record = json.dumps({"client": owner.client, "endpoint": owner.endpoint})
        keys = [self._stream_key(session, stream), self._session_key(session)]
        args = [str(stream_id), data, MAX_EVENTS_PER_STREAM, round(TTL_SECONDS * 1000), record]

        async def shared() -> EventId:
            return f"{stream}.{await self._store(keys=keys, args=args)}"

        return await self.state.shared_or_local(
            shared, lambda: self.local.store(session, stream_id, message), "resumable streams"
        )

    async def replay(self, session: str, last_event_id: EventId, send: EventCallback) -> StreamId | None:
        if not _EVENT_ID.fullmatch(last_event_id):  # kept in this process while Redis was down, or unknown
            return await self.local.replay(session, last_event_id, send)
        found = await self._after(session, last_event_id)
        if found is None:
            return None
        stream_id, entries = found
        for event_id, data in entries:
            if data:
                await send(EventMessage(jsonrpc_message_adapter.validate_json(data, by_name=False), event_id))
        return stream_id

    async def forget_session(self, session: str) -> None:
        """The client ended the session (DELETE): another replica no longer answers for it."""
        self._ended[session] = None
        if len(self._ended) > MAX_ENDED:
            self._ended.popitem(last=False)  # the oldest: long wound down

        async def shared() -> None:
            await self.state.redis.delete(self._session_key(session))

        await self.state.shared_or_local(shared, lambda: None, "resumable streams")

    # -- a reconnect that reached a replica without the session ----------------------------------

    async def resume_elsewhere(self, scope: Scope, receive: Receive, send: Send, caller: Owner) -> bool:
        """Serve a `GET` with `Last-Event-ID` for a session of another replica; False if it is not one.

        False (the SDK then answers 404 as for any unknown session) when Redis knows no such session,
        the event id is none of its events, or `caller` is not who opened it.
        """
        headers = Headers(scope=scope)
        session, last_event_id = headers.get("mcp-session-id", ""), headers.get("last-event-id", "")
        if not _EVENT_ID.fullmatch(last_event_id) or await self._owner(session) != caller:
            return False
        found = await self._after(session, last_event_id)
        if found is None:
            return False
        stream_id, entries = found
        # Worth a line: with sticky routing this is rare (the session's replica went away, or the
        # proxy does not route by Mcp-Session-Id). Names the client, never the session id.
        logger.info(
            "a reconnect (Last-Event-ID) for a session of another replica is served from %s: client %s, %s",
            self.state.url, caller.client or "(no token)", f"endpoint {caller.endpoint}" if caller.endpoint else "/mcp",
            extra={"event": "stream_resumed_elsewhere"},
        )  # fmt: skip
        response = EventSourceResponse(
            self._follow(session, last_event_id, stream_id, entries),
            headers={"Cache-Control": "no-cache, no-transform", "mcp-session-id": session},
        )
        await response(scope, receive, send)
        return True

    async def _follow(
        self, session: str, last_event_id: str, stream_id: str, entries: list[tuple[str, str]]
    ) -> AsyncIterator[dict[str, Any]]:
        """The SSE events: those already stored, then new ones as they come, until the request's answer."""
        stream = last_event_id.partition(".")[0]
        key = self._stream_key(session, stream)
        last = last_event_id
        quiet_since = anyio.current_time()
        while True:
            for event_id, data in entries:
                last = event_id
                if data:
                    yield {"event": "message", "data": data, "id": event_id, "retry": RETRY_MS}
                    if _answers(data, stream_id):
                        return
            if entries:
                quiet_since = anyio.current_time()
            elif anyio.current_time() - quiet_since > POLL_SECONDS:
                return
            entries = await self._next(key, stream, last.partition(".")[2])

    async def _next(self, key: str, stream: str, after: str) -> list[tuple[str, str]]:
        """Entries added after `after`, waiting up to `_BLOCK_MS` for one (nothing while Redis is down)."""

        async def shared() -> list[tuple[str, str]]:
            answer = await self.state.redis.xread({key: after}, block=_BLOCK_MS)
            return [(f"{stream}.{entry}", fields.get("m", "")) for _, rows in answer or () for entry, fields in rows]

        async def pause() -> list[tuple[str, str]]:
            await anyio.sleep(_BLOCK_MS / 1000)  # Redis is down: wait as a blocking read would, then look again
            return []

        found = await self.state.shared_or_local(shared, lambda: None, "resumable streams")
        return found if found is not None else await pause()

    async def _after(self, session: str, last_event_id: str) -> tuple[str, list[tuple[str, str]]] | None:
        """(the stream id, [(event id, message JSON or "")]) after `last_event_id`; None if it is not stored."""
        stream, _, entry = last_event_id.partition(".")
        key = self._stream_key(session, stream)

        async def shared() -> tuple[str, list[tuple[str, str]]] | None:
            async with self.state.redis.pipeline(transaction=True) as pipe:
                pipe.xrange(key, entry, entry, count=1)
                pipe.xrange(key, f"({entry}", "+")
                itself, later = await pipe.execute()
            if not itself:
                return None
            stream_id = itself[0][1].get("s", "")
            return stream_id, [(f"{stream}.{found}", fields.get("m", "")) for found, fields in later]

        return await self.state.shared_or_local(shared, lambda: None, "resumable streams")

    async def _owner(self, session: str) -> Owner | None:
        async def shared() -> Owner | None:
            text = await self.state.redis.get(self._session_key(session))
            record = json.loads(text) if text else None
            return Owner(record.get("client"), record.get("endpoint")) if isinstance(record, dict) else None

        return await self.state.shared_or_local(shared, lambda: None, "resumable streams")

    @staticmethod
    def _stream_key(session: str, stream: str) -> str:
        return f"{PREFIX}events:{_hash(session)}:{stream}"

    @staticmethod
    def _session_key(session: str) -> str:
        return f"{PREFIX}session:{_hash(session)}"


def _answers(data: str, stream_id: str) -> bool:
    """Whether this message (JSON) is the answer of the request whose stream it is on: then the stream ends."""
    try:
        message = json.loads(data)
    except ValueError:
        return False
    return (
        isinstance(message, dict)
        and str(message.get("id")) == stream_id
        and ("result" in message or "error" in message)
    )
