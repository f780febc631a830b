"""The console's memory of recent calls: a ring of audit records, and live updates to open pages.

`RecentCalls.observe` is an `audit.CallObserver` like the audit log, the metrics and the trace
span: it gets every finished call's `CallRecord`, already redacted by the call's own toolset
(exactly what the audit log line is made from), keeps its fields with when it ran and who called,
and passes it on to every page watching (`listen`). Only the last `capacity` calls are kept, in
this process's memory: with `serve --workers N` each worker has its own ring.

A page that cannot keep up (its buffer full) is dropped rather than slowing calls down; the page
notices the end of its stream, reconnects and reads the ring again.
"""

from __future__ import annotations

import itertools
import math
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ...observe.audit import CallRecord
from ...redaction import Redactor
from ..server import CALLER, ClientSeen

__all__ = ["DEFAULT_CAPACITY", "RecentCalls", "describe_caller"]

DEFAULT_CAPACITY = 500
# Events a watching page may have waiting before it is dropped (it then reconnects and re-reads).
LISTENER_BUFFER = 1000
MAX_CLIENT_CHARS = 120

Event = dict[str, Any]


class RecentCalls:
    """The last `capacity` calls, newest last, and the pages listening for the next ones.

    `redactor` gives what to hide beyond the record's own redaction (the inbound token, which the
    log filter hides from the audit log too).
    """

    def __init__(self, redactor: Callable[[], Redactor], capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self._redactor = redactor
        self._calls: deque[Event] = deque(maxlen=capacity)
        self._ids = itertools.count(1)
        self._listeners: set[MemoryObjectSendStream[Event]] = set()

    def observe(self, record: CallRecord) -> None:
        """Keep one finished call (an `audit.CallObserver`) and tell the pages watching."""
        ended = time.time()
        call: Event = {
            "id": next(self._ids),
            "started": round(ended - record.duration_ms / 1000, 3),
            "ended": round(ended, 3),
            **record.fields(),
            # Who called as the page shows it; the configured client's id (the audit record's `client`) in it.
            "client": describe_caller(CALLER.get(), record.client),
        }
        redactor = self._redactor()
        if redactor:
            call = redactor.redact_json(call)  # type: ignore[assignment]
        self._calls.append(call)
        self.publish({"type": "call", "call": call})

    def recent(self, limit: int | None = None) -> list[Event]:
        """The kept calls, newest first."""
        calls = list(reversed(self._calls))
        return calls if limit is None else calls[:limit]

    def publish(self, event: Event) -> None:
        """Send `event` to every listening page; a page whose buffer is full is dropped."""
        for listener in list(self._listeners):
            try:
                listener.send_nowait(event)
            except anyio.WouldBlock:
                listener.close()  # its page sees the stream end, reconnects and re-reads the ring
                self._listeners.discard(listener)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                self._listeners.discard(listener)

    @contextmanager
    def listen(self, buffer: int = LISTENER_BUFFER) -> Iterator[MemoryObjectReceiveStream[Event]]:
        """The events published while the block runs."""
        send, receive = anyio.create_memory_object_stream[Event](buffer if buffer else math.inf)
        self._listeners.add(send)
        try:
            with send, receive:
                yield receive
        finally:
            self._listeners.discard(send)


def describe_caller(caller: object, client: str | None = None) -> str:
    """Who made a call, as the Calls page shows it: `name version (stdio)` or `(http <peer address>)`,
    plus `, client <id>` for a configured client (endpoints.py).

    `caller` is what `server.CALLER` held during the call: an MCP request context, or a label.
    """
    if caller is None:
        return "unknown"
    if isinstance(caller, str):
        return caller[:MAX_CLIENT_CHARS]
    if isinstance(caller, ClientSeen):  # a call the hot path served (hot_path.py)
        who = f"{caller.name} {caller.version}" if caller.name is not None else "unnamed client"
        where = caller.where
    else:
        session = getattr(caller, "session", None)
        params = getattr(session, "client_params", None)
        info = getattr(params, "client_info", None)
        who = f"{info.name} {info.version}" if info is not None else "unnamed client"
        request = getattr(caller, "request", None)
        if request is None:
            where = "stdio"
        else:
            peer = getattr(getattr(request, "client", None), "host", None)
            where = f"http {peer}" if peer else "http"
    if client is not None:
        where += f", client {client}"
    return f"{who} ({where})"[:MAX_CLIENT_CHARS]
