"""The hot path: the requests nearly every agent sends, answered without the SDK's per-request machinery.

`tools/call` and `tools/list` are nearly all the traffic, and `ping` is how a client keeps a long
session (a voice call) checked. The SDK serves each through a request runner, a session object and a
request context, a middleware chain, and pydantic models built, validated and dumped for every
message; over Streamable HTTP add a Starlette `Request`, a task group and memory streams per POST,
and for a session the hops from the POST to the session's task and back. That is most of what a call
costs us (bench/compare.py). The transports hand these methods to the hot path first: hot_http.py (a
2026-07-28 POST; a handshake-era session's POST) and stdio.py (a line, in either era). This module
is what they share, free of any transport:

- A request is taken only when every check the SDK makes passes, made with the SDK's own functions
  and in its order (`modern_request`: the envelope and the routing headers, `classify_inbound_request`;
  `session_request`: the handshake done, no 2026-07-28 envelope on a handshake connection; both: the
  params valid for the version, `validate_client_request`). A request any check refuses is left to
  the SDK, which answers it exactly as it always did; so is anything this path does not own: a call
  asking for log entries, a possible task-style call (tasks.py), a listing of an OAuth caller whose
  scopes narrow it, a listing the SDK has not shaped once yet for that view and version
  (`WebTools._list_once` keeps what it shaped), and every request while OpenTelemetry tracing is
  configured (the SDK's server span is the parent of ours).
- `initialize` and the notifications stay with the SDK: the handshake makes the SDK's session, whose
  state every request it serves later reads, and a notification goes through the server's
  middleware (list_changed.py, the connection trackers). The handshake and `initialized` come once
  a session, the others seldom (a `notifications/cancelled` for a call running here is acted on
  here as well). `ping` exists only in the handshake era (2026-07-28 has no such method: the SDK
  answers it "Method not found").
- A call runs through `WebTools.call`, the same entrance the SDK's handler uses, and its result is
  shaped as the SDK's runner shapes it: sieved by the version's schema (`serialize_server_result`),
  plus, in the 2026-07-28 era, `resultType` and the `serverInfo` stamp.

The transports frame the answer as the SDK does (tests/serving/test_hot_path.py and
tests/serving/test_stdio_hot_path.py compare the bytes with the SDK's); `serve --no-hot-path`
(`MCP_WEBTOOLS_HOT_PATH=off`) leaves every request to the SDK.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import mcp_types as types
from mcp.server.connection import Connection
from mcp.server.runner import modern_error_data
from mcp.shared.exceptions import MCPError
from mcp.shared.inbound import InboundLadderRejection, classify_inbound_request
from mcp_types import methods
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError

from ..observe.client_logs import level_set
from ..voice import SendProgress
from .http_scope import Caller
from .server import CallOrigin, ClientSeen, WebTools

__all__ = [
    "HOT_METHODS",
    "HotRequest",
    "answer_call",
    "client_seen",
    "leaves_to_sdk",
    "prepared",
    "modern_request",
    "progress_notification",
    "session_request",
]

logger = logging.getLogger("mcp_webtools.protocol")

HOT_METHODS: Final = frozenset({"tools/call", "tools/list", "ping"})
_ENVELOPE_PREFIX: Final = "io.modelcontextprotocol/"


@dataclass(frozen=True, slots=True)
class HotRequest:
    """A request the hot path answers (one of `HOT_METHODS`): its id, params and protocol version."""

    id: str | int
    method: str
    params: dict[str, Any]
    version: str

    @property
    def meta(self) -> Mapping[str, Any]:
        meta = self.params.get("_meta")
        return meta if isinstance(meta, Mapping) else {}

    @property
    def progress_token(self) -> str | int | None:
        """The SDK's `progress_token_from_params`: a string or an integer, never a bool."""
        token = self.meta.get("progressToken")
        return token if isinstance(token, str | int) and not isinstance(token, bool) else None


def modern_request(decoded: Any, headers: Mapping[str, str] | None) -> HotRequest | None:
    """A 2026-07-28 request (its envelope in `_meta`; over HTTP, `headers` agreeing with it)."""
    method = _hot_method(decoded)
    if method is None:
        return None
    verdict = classify_inbound_request(decoded, headers=headers)
    if isinstance(verdict, InboundLadderRejection):
        return None
    return _valid(decoded, method, verdict.protocol_version)


def session_request(decoded: Any, connection: Connection | None) -> HotRequest | None:
    """A request on a handshake-era connection whose `initialize` was answered (HTTP session, stdio)."""
    method = _hot_method(decoded)
    if method is None or connection is None or not connection.initialize_accepted:
        return None
    version = connection.protocol_version
    if version in MODERN_PROTOCOL_VERSIONS or level_set(connection.state):
        return None  # spoken messages as log entries (client_logs.py): the SDK's session sends them
    meta = (decoded.get("params") or {}).get("_meta") if isinstance(decoded.get("params"), dict) else None
    if isinstance(meta, dict) and any(key.startswith(_ENVELOPE_PREFIX) for key in meta):
        return None  # the 2026-07-28 envelope on a handshake connection: the SDK refuses it
    return _valid(decoded, method, version)


def leaves_to_sdk(webtools: WebTools, request: HotRequest) -> bool:
    """A 2026-07-28 call that asked for log entries, or may be a task-style call: the SDK's."""
    meta = request.meta
    if types.LOG_LEVEL_META_KEY in meta:
        return True
    if webtools.tasks is not None and webtools.tasks.available:
        capabilities = meta.get(types.CLIENT_CAPABILITIES_META_KEY)
        extensions = capabilities.get("extensions") if isinstance(capabilities, dict) else None
        return isinstance(extensions, dict) and bool(extensions)
    return False


def prepared(webtools: WebTools, endpoint: str | None, caller: Caller | None, request: HotRequest) -> dict | None:
    """The result of a request that runs nothing, when the hot path has it: a `ping`'s (`{}`, as the
    SDK's `EmptyResult` is sent), or a `tools/list`'s, the one the SDK shaped before. None: the SDK's to answer."""
    if request.method == "ping":
        return {}
    return _listing(webtools, endpoint, caller, request)


def _listing(webtools: WebTools, endpoint: str | None, caller: Caller | None, request: HotRequest) -> dict | None:
    """The tools/list result the SDK shaped for this view and version before (`WebTools._list_once`)."""
    if (caller is not None and caller.scopes is not None) or request.params.get("cursor") is not None:
        return None  # an OAuth caller's list is narrowed by its scopes; a cursor: the SDK's way
    return webtools.tools_of(endpoint).shaped_lists.get(request.version)


async def answer_call(
    webtools: WebTools, request: HotRequest, origin: CallOrigin, send_progress: SendProgress | None
) -> dict[str, Any] | types.ErrorData:
    """Run the call; its result in wire form for the request's version, or the error it is answered with."""
    params = request.params
    try:
        result = await webtools.call(params["name"], params.get("arguments"), origin, send_progress)
        shaped = methods.serialize_server_result(
            "tools/call", request.version, result.model_dump(by_alias=True, mode="json", exclude_none=True)
        )
    except (MCPError, ValidationError) as exc:  # an unknown tool; the SDK maps them so
        return modern_error_data(exc)
    except Exception:  # a fault of ours: the SDK's answer, and the traceback in our log
        logger.exception("tools/call %r failed unexpectedly", params.get("name"))
        return types.ErrorData(code=types.INTERNAL_ERROR, message="Internal server error")
    if request.version in MODERN_PROTOCOL_VERSIONS:
        return webtools.stamped(shaped)
    return shaped


def progress_notification(token: str | int, progress: float, total: float | None, message: str | None) -> dict:
    """`notifications/progress` as the SDK's dispatchers send it."""
    params: dict[str, Any] = {"progressToken": token, "progress": progress}
    if total is not None:
        params["total"] = total
    if message is not None:
        params["message"] = message
    return {"jsonrpc": "2.0", "method": "notifications/progress", "params": params}


def client_seen(info: Any, where: str) -> ClientSeen:
    """Who is calling, for the console: `clientInfo` as the request or the handshake gave it, and
    `where` ("stdio", "http 10.0.0.7") as the console shows a call the SDK served."""
    if isinstance(info, types.Implementation):
        return ClientSeen(info.name, info.version, where)
    if isinstance(info, Mapping) and isinstance(info.get("name"), str) and isinstance(info.get("version"), str):
        return ClientSeen(info["name"], info["version"], where)
    return ClientSeen(None, None, where)


def _hot_method(decoded: Any) -> str | None:
    if not isinstance(decoded, dict) or "id" not in decoded:
        return None
    method = decoded.get("method")
    return method if method in HOT_METHODS else None


def _valid(decoded: dict[str, Any], method: str, version: str) -> HotRequest | None:
    params = decoded.get("params")
    try:
        methods.validate_client_request(method, version, params)
    except (KeyError, ValueError, ValidationError):
        return None  # the SDK's own error answer
    return HotRequest(decoded["id"], method, params or {}, version)
