"""`notifications/tools/list_changed` for both protocol eras, sent after a reload, to the clients of
the endpoints whose tool list changed.

The two eras listen on different channels:

- 2026-07-28 clients open a `subscriptions/listen` stream; the SDK's `ListenHandler` serves it
  from an `InMemorySubscriptionBus`, and one publish reaches every stream.
- Handshake-era clients hear server-initiated messages on their connection (the stdio pipe, a
  legacy HTTP session's standalone GET stream, an `/sse` stream). mcp 2.3 keeps no registry
  of live connections, so a middleware remembers each one weakly as it sees its requests.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Collection
from typing import Any

import anyio
from mcp.server import InitializationOptions, NotificationOptions, Server, ServerRequestContext
from mcp.server.connection import Connection
from mcp.server.context import CallNext, HandlerResult
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler, ToolsListChanged
from mcp_types import SubscriptionsListenRequestParams
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

__all__ = ["ListChangedServer", "ToolListNotifier"]

logger = logging.getLogger("mcp_webtools.reload")

# How long one handshake-era connection may take to accept a tools/list_changed notification.
LIST_CHANGED_SEND_SECONDS = 5.0


class ListChangedServer(Server):
    """The SDK's low-level server, advertising `tools.listChanged` on every transport.

    The SDK builds the handshake's capabilities from `create_initialization_options()` called
    with no arguments in its HTTP session manager and legacy SSE paths, so the default is
    changed here rather than at each call site. (2026-07-28 derives the flag from
    `subscriptions/listen` being served.)
    """

    def create_initialization_options(
        self, notification_options: NotificationOptions | None = None, *args: Any, **kwargs: Any
    ) -> InitializationOptions:
        options = notification_options or NotificationOptions(tools_changed=True)
        return super().create_initialization_options(options, *args, **kwargs)


class ToolListNotifier:
    """Tells the clients that can hear it that their tool list changed, endpoint by endpoint.

    Give `listeners` to the server as `on_subscriptions_listen` and add `track_connection` to
    its middleware; then `notify(endpoints)` reaches both eras. Each endpoint (endpoints.py; None
    is `/mcp`) has its own subscription bus and its own connections, so a reload that changes one
    endpoint's tools tells only that endpoint's clients. `endpoint_of(ctx)` says which endpoint a
    request came to.
    """

    def __init__(self, endpoint_of: Callable[[ServerRequestContext], str | None] = lambda ctx: None) -> None:
        self._endpoint_of = endpoint_of
        self._listeners: dict[str | None, tuple[InMemorySubscriptionBus, ListenHandler]] = {}
        self._connections: weakref.WeakKeyDictionary[Connection, str | None] = weakref.WeakKeyDictionary()

    def _listener(self, endpoint: str | None) -> tuple[InMemorySubscriptionBus, ListenHandler]:
        found = self._listeners.get(endpoint)
        if found is None:
            bus = InMemorySubscriptionBus()
            found = self._listeners[endpoint] = (bus, ListenHandler(bus))
        return found

    async def listeners(self, ctx: ServerRequestContext, params: SubscriptionsListenRequestParams) -> Any:
        """`subscriptions/listen`: a stream on the bus of the endpoint the request came to."""
        _, handler = self._listener(self._endpoint_of(ctx))
        return await handler(ctx, params)

    async def track_connection(self, ctx: ServerRequestContext, call_next: CallNext) -> HandlerResult:
        """Middleware: remember each handshake-era connection that has a channel for notifications,
        with the endpoint it serves."""
        connection = getattr(ctx.session, "_connection", None)  # private in mcp 2.3
        if (
            isinstance(connection, Connection)
            and connection.protocol_version not in MODERN_PROTOCOL_VERSIONS
            and connection.has_standalone_channel
            and connection not in self._connections
        ):
            self._connections[connection] = self._endpoint_of(ctx)
        return await call_next(ctx)

    async def notify(self, endpoints: Collection[str | None] | None = None) -> int:
        """Send the notification to the clients of `endpoints` (all of them when None), best effort;
        returns how many handshake-era connections were sent it.

        2026-07-28 listeners are not counted: the bus never blocks (each stream has a buffer).
        """
        for endpoint, (bus, _) in list(self._listeners.items()):
            if endpoints is None or endpoint in endpoints:
                await bus.publish(ToolsListChanged())
        connections = [c for c, e in list(self._connections.items()) if endpoints is None or e in endpoints]
        async with anyio.create_task_group() as tg:
            for connection in connections:
                tg.start_soon(_send_list_changed, connection)
        return len(connections)

    def close(self) -> None:
        """End the 2026-07-28 listen streams cleanly (at shutdown, so they do not hold it up)."""
        for _, handler in self._listeners.values():
            handler.close()


async def _send_list_changed(connection: Connection) -> None:
    # A client that stopped reading its stream must not hold up the others, or the next reload.
    with anyio.move_on_after(LIST_CHANGED_SEND_SECONDS):
        try:
            await connection.send_tool_list_changed()  # drops it quietly if the stream is closed
        except Exception:  # noqa: BLE001 - best effort: the client refetches on its next tools/list
            logger.debug("could not send tools/list_changed to a connection", exc_info=True)
