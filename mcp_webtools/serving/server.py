"""The MCP server: wires `tools/list` and `tools/call` to the tool calls (calls.py), nothing more.

`WebTools` holds the `ToolCalls` (the current toolset, limits, calls in flight, the sender chain),
the executor whose connection pool the transports open and close, and the low-level
`mcp.server.Server` it builds, which serves both protocol eras on any transport. What a call's
HTTP request says (a hang-up, who is calling) it asks the HTTP layer (http_scope.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.server.connection import Connection
from mcp.server.context import CallNext, HandlerResult
from mcp.shared.exceptions import MCPError
from mcp_types.methods import serialize_server_result, validate_client_request
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError

from .. import __version__
from ..calls import ToolCalls
from ..executor import Executor
from ..forwarding import INBOUND_HEADERS
from ..limits import InFlightCalls
from ..observe.client_logs import set_level, spoken_sender
from ..ratelimit import LimitKey, RateLimit
from ..redaction import Redactor
from ..results import error_result
from ..toolset import Toolset
from ..voice import SendProgress
from .http_scope import (
    NO_ENDPOINT,
    REQUEST_ENDPOINT,
    Caller,
    HangUp,
    caller_key,
    caller_of,
    endpoint_of,
    hang_up_of,
    inbound_headers,
)
from .list_changed import ListChangedServer, ToolListNotifier
from .state import RedisState
from .tasks import EXTENSION as TASKS_EXTENSION
from .tasks import TaskStore

if TYPE_CHECKING:
    from ..observe.metrics import Metrics  # prometheus-client: loaded only where metrics can be read

__all__ = ["CALLER", "SERVER_NAME", "CallOrigin", "ClientSeen", "WebTools"]

logger = logging.getLogger("mcp_webtools.calls")

SERVER_NAME = "mcp-webtools"
# Who is making the current call, for the observers that show it (the web console): the MCP
# request's context, or a label. Set per call; read only by observers that want it, so a call
# pays for one `set`, not for describing its client.
CALLER: ContextVar[ServerRequestContext | ClientSeen | str | None] = ContextVar("mcp_webtools.caller", default=None)
INSTRUCTIONS = (
    "Each tool calls an HTTP API configured by the operator. Tool errors say what went wrong "
    "(invalid arguments name each field; upstream failures give the HTTP status and body)."
)


@dataclass(frozen=True, slots=True)
class ClientSeen:
    """Who made a call, for the observers that show it, where no request context says it (hot_path.py)."""

    name: str | None  # the client's name and version, as its request's or its handshake's `clientInfo` says
    version: str | None
    where: str  # "stdio", or "http" and the HTTP client's address


@dataclass(frozen=True, slots=True)
class CallOrigin:
    """Where a tools/call came from, as the server needs to know it: the MCP request's id, the
    endpoint it came to (None: every tool), who is calling, the HTTP request's headers (None over
    stdio), the `HangUp` of the POST awaiting its answer, and who to show as the caller."""

    request_id: str | int | None
    endpoint: str | None
    caller: Caller | None
    headers: list[tuple[bytes, bytes]] | None
    hang_up: HangUp | None
    who: ServerRequestContext | ClientSeen | str | None


class WebTools:
    """The running service: the tool calls, the executor, and the MCP server wired to them.

    `serving/runtime.open_webtools` assembles one (the sender chain, the observers, the metrics).
    """

    def __init__(
        self,
        calls: ToolCalls,
        executor: Executor,
        metrics: Metrics | None,
        tasks: TaskStore | None = None,
        endpoint: str | None = None,
        shared: RedisState | None = None,
    ) -> None:
        self.calls = calls
        self.shared = shared  # `serve --state`: the store replicas share (state.py), for the HTTP layer's events
        self.executor = executor  # its connection pool is opened and closed with the transport
        self.metrics = metrics  # None over stdio: nothing could read them (runtime.open_webtools)
        # The endpoint served where no HTTP request says one (`serve --endpoint NAME` over stdio);
        # None: every tool, as `/mcp` serves them.
        self.endpoint = endpoint
        # tools/list_changed after a reload, to clients of both eras, endpoint by endpoint (list_changed.py).
        self.tool_list = ToolListNotifier(self.endpoint_of)
        self.server: Server = ListChangedServer(
            SERVER_NAME,
            version=__version__,
            instructions=INSTRUCTIONS,
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_subscriptions_listen=self.tool_list.listeners,
            # Modern-era HTTP calls look schemas up here instead of re-running tools/list.
            # It is given no context: the HTTP layer says the request's endpoint in `REQUEST_ENDPOINT`.
            get_tool_input_schema=lambda name: self.tools_of(REQUEST_ENDPOINT.get()).input_schema(name),
        )
        # The `serverInfo` stamp of 2026-07-28 results, for the hot path (hot_path.py): made once, never
        # changed (the SDK's `server_info_stamp` deep-copies it for each result).
        self.server_info = self.server.server_info_stamp
        self.server.middleware.append(self.tool_list.track_connection)
        self.server.middleware.append(self._list_once)
        # Task-style calls (tasks.py), only when enabled: the SDK does not implement the extension yet.
        self.tasks = tasks
        if tasks is not None:
            self.server.extensions[TASKS_EXTENSION] = {}
            self.server.add_request_handler("tasks/get", types.GetTaskRequestParams, self._get_task)
        # The logging capability: spoken messages as log entries for clients that set a level (client_logs.py).
        self.server.add_request_handler("logging/setLevel", types.SetLevelRequestParams, set_level)
        # The rate limits of who is calling (their endpoint's, their client's), held with the tool's own.
        self.caller_limits: Callable[[Caller | None, str | None], Sequence[LimitKey]] = self.configured_limits

    def configured_limits(self, caller: Caller | None, endpoint: str | None) -> list[LimitKey]:
        """The `rateLimit`s of the endpoint a call came to and of the client that sent it, as configured now."""
        config = self.toolset.endpoints
        keys: list[LimitKey] = []
        found = config.endpoints.get(endpoint) if endpoint is not None else None
        if found is not None and isinstance(found.rate_limit, RateLimit):
            keys.append(LimitKey("endpoint", found.name, found.rate_limit))
        client = config.clients.get(caller.id) if caller is not None else None
        if client is not None and isinstance(client.rate_limit, RateLimit):
            keys.append(LimitKey("client", client.id, client.rate_limit))
        return keys

    @property
    def toolset(self) -> Toolset:
        """The toolset served now."""
        return self.calls.toolset

    @property
    def in_flight(self) -> InFlightCalls:
        """The calls running now, for a graceful shutdown and the readiness probe."""
        return self.calls.in_flight

    def endpoint_of(self, ctx: ServerRequestContext) -> str | None:
        """The endpoint a request is served from: its HTTP request's, else this process's own."""
        endpoint = endpoint_of(ctx)
        return self.endpoint if endpoint is NO_ENDPOINT else endpoint  # type: ignore[return-value]

    def tools_of(self, endpoint: str | None) -> Toolset:
        """The tools `endpoint` serves now (see `Toolset.view`); none for an endpoint no longer configured."""
        toolset = self.toolset
        view = toolset.view(endpoint)
        return view if view is not None else Toolset((), toolset.redactor)

    def replace_toolset(self, toolset: Toolset) -> Toolset:
        """Serve `toolset` from now on; return the one it replaces (see `ToolCalls.replace_toolset`)."""
        return self.calls.replace_toolset(toolset)

    async def notify_tools_changed(self, endpoints: Collection[str | None] | None = None) -> int:
        """Send `notifications/tools/list_changed` to every client of `endpoints` (None: all) that can
        hear it, both eras."""
        return await self.tool_list.notify(endpoints)

    async def _list_tools(self, ctx: ServerRequestContext, params: types.PaginatedRequestParams | None) -> dict:
        toolset = self.tools_of(self.endpoint_of(ctx))
        wire = toolset.list_wire  # dumped once per view: see Toolset.list_wire
        caller = caller_of(ctx)
        if caller is None or caller.scopes is None:
            return wire
        # An OAuth caller sees only the tools its token's scopes allow it to call (http_app answers 403 to the rest).
        return {**wire, "tools": [entry for entry in wire["tools"] if _allowed(toolset, entry["name"], caller.scopes)]}

    async def _list_once(self, ctx: ServerRequestContext, call_next: CallNext) -> HandlerResult:
        """Middleware: a tools/list answered with the wire form the SDK shaped for the same toolset view
        and protocol version before.

        The SDK validates and re-dumps every spec result against its protocol version's schema (the
        "sieve"), on top of our handler's dict: for a thousand tools that is most of a tools/list
        (about 10 of 15 ms of server CPU). The first request per view and version goes the whole way
        and its answer is kept on the view (`Toolset.shaped_lists`; a reload makes new views); later
        ones get it after the checks the SDK would make first: the handshake done, the params valid
        for that version. Anything else (another method, a caller whose token's scopes narrow the
        list, a request the SDK would refuse) goes the SDK's way, which answers it as before.
        """
        if ctx.method != "tools/list":
            return await call_next(ctx)
        caller = caller_of(ctx)
        connection = getattr(ctx.session, "_connection", None)  # private in mcp 2.3 (see list_changed.py)
        if (caller is not None and caller.scopes is not None) or not (
            isinstance(connection, Connection) and connection.initialize_accepted
        ):
            return await call_next(ctx)
        try:
            validate_client_request(ctx.method, ctx.protocol_version, ctx.params)
        except (KeyError, ValueError, ValidationError):
            return await call_next(ctx)  # the SDK's own error answer
        toolset = self.tools_of(self.endpoint_of(ctx))
        shaped = toolset.shaped_lists.get(ctx.protocol_version)
        if shaped is None:
            shaped = self._shaped_list(toolset, ctx.protocol_version) or await call_next(ctx)
            toolset.shaped_lists[ctx.protocol_version] = shaped
        return shaped

    def _shaped_list(self, toolset: Toolset, version: str) -> dict[str, Any] | None:
        """`toolset`'s tools/list answer as the SDK's runner shapes our handler's `list_wire` (its
        `_serialize`), but sieved tool by tool: the SDK validates and dumps the whole list at once,
        which for a thousand tools holds a second and a third copy of every schema at the same time
        (about 4 of the 6 MiB a first listing adds to the resident size). Each tool's entry is sieved
        in the list's own frame, so it meets the same model as in the whole list, and the frame once.
        tests/serving/test_list_once.py pins the answer to the runner's for every protocol version.

        None (the SDK's way, which answers as before) when the runner would do more than sieve and
        stamp: cache hints configured for tools/list, or a result it refuses (it logs and answers an
        internal error).
        """
        if self.server.cache_hints.get("tools/list") is not None:
            return None
        wire = toolset.list_wire
        frame = {key: value for key, value in wire.items() if key != "tools"}
        try:
            shaped = serialize_server_result("tools/list", version, {**frame, "tools": []})
            shaped["tools"] = [
                serialize_server_result("tools/list", version, {**frame, "tools": [entry]})["tools"][0]
                for entry in wire["tools"]
            ]
        except ValidationError:
            return None
        return self.stamped(shaped) if version in MODERN_PROTOCOL_VERSIONS else shaped

    def stamped(self, result: dict[str, Any]) -> dict[str, Any]:
        """`resultType` and the `serverInfo` stamp, as the SDK's runner puts them on a 2026-07-28 result."""
        if result.get("resultType") is None:
            result["resultType"] = "complete"
        meta = result.get("_meta")
        stamp = self.server_info  # the SDK's stamp, made once (its property deep-copies it each time)
        if meta is None:
            result["_meta"] = {types.SERVER_INFO_META_KEY: stamp}
        elif isinstance(meta, Mapping) and meta.get(types.SERVER_INFO_META_KEY) is None:
            result["_meta"] = {**meta, types.SERVER_INFO_META_KEY: stamp}
        return result

    async def _call_tool(
        self, ctx: ServerRequestContext, params: types.CallToolRequestParams
    ) -> types.CallToolResult | dict:
        origin = CallOrigin(
            ctx.request_id, self.endpoint_of(ctx), caller_of(ctx), inbound_headers(ctx), hang_up_of(ctx), ctx
        )
        if self._wants_task(ctx):
            assert self.tasks is not None
            toolset, client, limits = self._scope_of(origin)
            # Unknown tool: a protocol error, now; invalid arguments: nothing to run, so no task.
            prepared = self.calls.prepare(params.name, params.arguments, ctx.request_id, toolset=toolset, client=client)
            if isinstance(prepared, types.CallToolResult):
                return prepared
            _enter(origin)
            return await self.tasks.start(
                caller_key(ctx),
                lambda: self.calls.call(
                    params.name, params.arguments, request_id=ctx.request_id,
                    toolset=toolset, client=client, limits=limits,
                ),  # fmt: skip
            )
        # Progress (given a progress token) and log entries (given a level).
        return await self.call(params.name, params.arguments, origin, spoken_sender(ctx))

    async def call(
        self, name: str, arguments: dict | None, origin: CallOrigin, send_progress: SendProgress | None = None
    ) -> types.CallToolResult:
        """Run one tools/call that came from `origin`: the SDK's handler above, or the HTTP hot path
        (hot_path.py), which reads the same facts off the HTTP request without a request context.

        Raises `MCPError` only for an unknown tool (see `ToolCalls.call`).
        """
        _enter(origin)
        toolset, client, limits = self._scope_of(origin)
        if origin.hang_up is None:
            return await self.calls.call(
                name, arguments, send_progress, origin.request_id, toolset=toolset, client=client, limits=limits
            )
        # A handshake-era HTTP call answers on its own POST, but runs in the session's task, so
        # the client hanging up does not cancel it by itself (a 2026-07-28 call runs in the
        # POST's own task, and a cancel notification is applied by the SDK). With no answer
        # stream left and no way to resume one, the call and its upstream request are abandoned.
        with origin.hang_up.cancels():
            return await self.calls.call(
                name, arguments, send_progress, origin.request_id, toolset=toolset, client=client, limits=limits
            )
        logger.info("tool=%s cancelled: the client disconnected", name)
        return error_result(f"Calling {name!r} was cancelled: the client disconnected.", Redactor())

    def _scope_of(self, origin: CallOrigin) -> tuple[Toolset, str | None, Sequence[LimitKey]]:
        """What a call from `origin` may use: its endpoint's tools, its client id (for the audit record),
        and its rate limits (its endpoint's, its client's), held together with the tool's own."""
        # Only the caller's endpoint's tools: any other name is "unknown tool", as for one that does not exist.
        toolset = self.tools_of(origin.endpoint)
        client = origin.caller.id if origin.caller is not None else None
        return toolset, client, self.caller_limits(origin.caller, origin.endpoint)

    def _wants_task(self, ctx: ServerRequestContext) -> bool:
        """Enabled and running, a 2026-07-28 call, and the client declared the tasks extension."""
        if self.tasks is None or not self.tasks.available:
            return False
        if ctx.session.protocol_version not in MODERN_PROTOCOL_VERSIONS:
            return False
        capabilities = ctx.session.client_capabilities
        return bool(capabilities and capabilities.extensions and TASKS_EXTENSION in capabilities.extensions)

    async def _get_task(self, ctx: ServerRequestContext, params: types.GetTaskRequestParams) -> dict:
        if self.tasks is None:  # never registered then; kept for the type checker
            raise MCPError(code=types.METHOD_NOT_FOUND, message="Method not found")
        return await self.tasks.get(caller_key(ctx), params.task_id)


def _enter(origin: CallOrigin) -> None:
    """What this task (and a task it starts) knows of the call it runs; the next call sets its own."""
    CALLER.set(origin.who)
    # What a `forwardCaller` tool reads its caller's credential from: this call's HTTP request, or none.
    INBOUND_HEADERS.set(origin.headers)


def _allowed(toolset: Toolset, name: str, scopes: frozenset[str]) -> bool:
    tool = toolset.get(name)
    return tool is None or set(tool.definition.required_scopes) <= scopes
