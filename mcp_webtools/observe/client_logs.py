"""MCP log notifications: a call's spoken messages, for clients that asked for logs.

MCP's logging utility (`logging/setLevel`, `notifications/message`) is how a client sees what a
server is doing. mcp-webtools sends one kind of entry: each spoken message of a running call
(start, delayed, complete or failed; see voice.py), at level `info`, with the tool's MCP name as
`logger`, on the stream of the call it belongs to. Operational logs stay on stderr.

Who gets them, in each protocol era:

    2025 handshake era   a connection whose client called `logging/setLevel` with `info` or a
                         lower level (the server does the filtering in this era)
    2026-07-28           a request whose `_meta` carries `io.modelcontextprotocol/logLevel` at
                         `info` or lower (`logging/setLevel` is gone)

A client that never asked gets none, so nothing changes for clients that do not show logs.
"""

from __future__ import annotations

from typing import Any, get_args

import mcp_types as types
from mcp.server import ServerRequestContext
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from ..voice import SendProgress

__all__ = ["LEVEL", "level_set", "set_level", "spoken_sender"]

LEVEL: types.LoggingLevel = "info"
_SEVERITY = {level: rank for rank, level in enumerate(get_args(types.LoggingLevel))}  # debug=0 ... emergency=7
_STATE_KEY = "mcp_webtools.log_level"


def level_set(state: dict[str, Any]) -> bool:
    """Whether a handshake-era connection (its `Connection.state`) asked for log entries at all."""
    return state.get(_STATE_KEY) is not None


async def set_level(ctx: ServerRequestContext, params: types.SetLevelRequestParams) -> types.EmptyResult:
    """`logging/setLevel`: remember the level for this connection (handshake era only)."""
    state = _connection_state(ctx)
    if state is not None:
        state[_STATE_KEY] = params.level
    return types.EmptyResult()


def spoken_sender(ctx: ServerRequestContext) -> SendProgress:
    """What a tools/call handler gives `execute`: progress as always, plus a log entry per spoken
    message when this client asked for `info` logs. Progress is a no-op without a progress token;
    a log entry does not need one.
    """
    report_progress = ctx.session.report_progress
    if not _wants_info(ctx):
        return report_progress
    session, request_id = ctx.session, ctx.request_id
    tool = (ctx.params or {}).get("name")

    async def send(progress: float, total: float | None, message: str | None) -> None:
        await report_progress(progress, total, message)
        if message:
            notification = types.LoggingMessageNotification(
                params=types.LoggingMessageNotificationParams(
                    level=LEVEL, data=message, logger=tool if isinstance(tool, str) else None
                )
            )
            # Related to the call: on Streamable HTTP it rides the call's own response stream.
            await session.send_notification(notification, related_request_id=request_id)

    return send


def _wants_info(ctx: ServerRequestContext) -> bool:
    if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
        requested: Any = (ctx.meta or {}).get(types.LOG_LEVEL_META_KEY)
    else:
        state = _connection_state(ctx)
        requested = state.get(_STATE_KEY) if state is not None else None
    return requested in _SEVERITY and _SEVERITY[requested] <= _SEVERITY[LEVEL]


def _connection_state(ctx: ServerRequestContext) -> dict[str, Any] | None:
    # The per-connection scratch dict (`Connection.state`, public); 2.3.0 reaches the connection
    # from a low-level handler only through the session's private attribute.
    connection = getattr(ctx.session, "_connection", None)
    state = getattr(connection, "state", None)
    return state if isinstance(state, dict) else None
