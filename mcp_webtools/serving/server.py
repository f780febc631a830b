"""The MCP server: wires `tools/list` and `tools/call` to the pipeline, nothing more.

    validate arguments -> build request -> send (under the tool's timeout) -> shape result

`WebTools` owns the current `Toolset` (one reference, swapped whole on reload) and the
`Executor`; the low-level `mcp.server.Server` it builds serves both protocol eras on any transport.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import anyio
import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from .. import __version__
from ..errors import ArgumentError, Busy, RequestBuildError, SendError, ShuttingDown, UpstreamTimeout
from ..executor import AttemptCount, Executor, UpstreamResponse
from ..limits import CallLimits, InFlightCalls
from ..observe.audit import CallRecord, log_call
from ..observe.client_logs import set_level, spoken_sender
from ..observe.metrics import Metrics
from ..observe.telemetry import annotate_call, traced_send
from ..redaction import Redactor
from ..requests import OutboundRequest, build_request
from ..results import answer_outcome, error_result, response_result
from ..toolset import PreparedTool, Toolset
from ..voice import SendProgress
from .list_changed import ListChangedServer, ToolListNotifier
from .tasks import EXTENSION as TASKS_EXTENSION
from .tasks import TaskStore, caller_key

__all__ = ["CALLER", "CLIENT_GONE", "SERVER_NAME", "HangUp", "PreparedCall", "WebTools", "build_call", "problems_of"]

logger = logging.getLogger("mcp_webtools.calls")

SERVER_NAME = "mcp-webtools"
# ASGI scope key: the `HangUp` of a POST that may carry a call's answer.
CLIENT_GONE = "mcp_webtools.client_gone"
# Who is making the current call, for the observers that show it (the web console): the MCP
# request's context, or a label. Set per call; read only by observers that want it, so a call
# pays for one `set`, not for describing its client.
CALLER: ContextVar[ServerRequestContext | str | None] = ContextVar("mcp_webtools.caller", default=None)
INSTRUCTIONS = (
    "Each tool calls an HTTP API configured by the operator. Tool errors say what went wrong "
    "(invalid arguments name each field; upstream failures give the HTTP status and body)."
)


class PreparedCall:
    """A call that passed validation: the tool, the exact request to send, and the redactor.

    The redactor comes from the same toolset snapshot as the tool, so a reload that swaps the
    toolset mid-call can never leave this call's secrets unmasked in its result.
    """

    __slots__ = ("redactor", "request", "request_id", "tool")

    def __init__(
        self,
        tool: PreparedTool,
        request: OutboundRequest,
        redactor: Redactor | None = None,
        request_id: str | int | None = None,
    ) -> None:
        self.tool = tool
        self.request = request
        self.redactor = redactor or Redactor()
        self.request_id = request_id  # the MCP request's id, for the audit record

    def dry_run(self) -> str:
        """The exact HTTP request this call would send, as text, secrets shown as `***`."""
        return self.redactor(self.request.as_text())


def build_call(
    tool: PreparedTool, arguments: dict | None, redactor: Redactor, request_id: str | int | None = None
) -> PreparedCall:
    """Validate `arguments` and build the request; raises `ArgumentError` or `RequestBuildError`.

    Records nothing: `WebTools.prepare` does that for calls; the console also uses this to check
    arguments as they are typed.
    """
    filled = tool.validator.validate(arguments)
    return PreparedCall(tool, build_request(tool.template, filled), redactor, request_id)


def problems_of(exc: ArgumentError | RequestBuildError) -> list[tuple[str, str]]:
    """Each (field, message) an invalid call has wrong."""
    return exc.problems if isinstance(exc, ArgumentError) else [(exc.field, exc.message)]


class WebTools:
    """The running service: current toolset, executor, and the MCP server wired to them."""

    def __init__(
        self,
        toolset: Toolset,
        executor: Executor,
        limits: CallLimits | None = None,
        tasks: TaskStore | None = None,
    ) -> None:
        self.toolset = toolset
        self.executor = executor
        self.limits = limits or CallLimits()
        self.in_flight = InFlightCalls()
        # Every finished call's `CallRecord` goes to these: the audit log, the metrics, the trace span.
        self.metrics = Metrics(in_flight=lambda: len(self.in_flight), tools_loaded=lambda: len(self.toolset))
        self.observers = [log_call, self.metrics.observe_call, annotate_call]
        # tools/list_changed after a reload, to clients of both eras (list_changed.py).
        self.tool_list = ToolListNotifier()
        self.server: Server = ListChangedServer(
            SERVER_NAME,
            version=__version__,
            instructions=INSTRUCTIONS,
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_subscriptions_listen=self.tool_list.listeners,
            # Modern-era HTTP calls look schemas up here instead of re-running tools/list.
            get_tool_input_schema=lambda name: self.toolset.input_schema(name),
        )
        self.server.middleware.append(self.tool_list.track_connection)
        # Task-style calls (tasks.py), only when enabled: the SDK does not implement the extension yet.
        self.tasks = tasks
        if tasks is not None:
            self.server.extensions[TASKS_EXTENSION] = {}
            self.server.add_request_handler("tasks/get", types.GetTaskRequestParams, self._get_task)
        # The logging capability: spoken messages as log entries for clients that set a level (client_logs.py).
        self.server.add_request_handler("logging/setLevel", types.SetLevelRequestParams, set_level)

    def replace_toolset(self, toolset: Toolset) -> Toolset:
        """Serve `toolset` from now on; return the one it replaces.

        One reference swap: a call already prepared keeps its `PreparedCall` (tool, request and
        redactor from the old snapshot). Per-tool concurrency caps are adjusted at once, so
        callers queued under an old cap see the new one.
        """
        previous, self.toolset = self.toolset, toolset
        for tool in toolset:
            self.limits.tool_limiter(tool.name, tool.definition.max_concurrency)
        for tool in previous:
            if toolset.get(tool.name) is None:
                self.limits.tool_limiter(tool.name, None)
        return previous

    async def notify_tools_changed(self) -> int:
        """Send `notifications/tools/list_changed` to every client that can hear it, both eras."""
        return await self.tool_list.notify()

    def _current_cap(self, tool: PreparedTool) -> int | None:
        # A call prepared before a reload queues under the cap served now, not the one it was
        # prepared with (which would set the shared limiter back to the old value).
        current = self.toolset.get(tool.name)
        return (current or tool).definition.max_concurrency

    def prepare(
        self, name: str, arguments: dict | None, request_id: str | int | None = None
    ) -> PreparedCall | types.CallToolResult:
        """Validate and build; a `CallToolResult` means the call stops here with a tool error.

        Raises `MCPError` for an unknown tool (a protocol error, not a tool error, and no audit
        record: a name from the client must not become a metric label).
        """
        toolset = self.toolset
        tool = toolset.get(name)
        if tool is None:
            raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown tool: {toolset.redactor(name)}")
        started = time.perf_counter()
        try:
            return build_call(tool, arguments, toolset.redactor, request_id)
        except (ArgumentError, RequestBuildError) as exc:
            lines = "\n".join(f"- {field}: {message}" for field, message in problems_of(exc))
            text = f"Invalid arguments for tool {name!r}; nothing was sent:\n{lines}"
        self._observe(_record(tool, "invalid_arguments", started, request_id=request_id), toolset.redactor)
        return error_result(text, toolset.redactor)

    def _observe(self, record: CallRecord, redactor: Redactor) -> None:
        """Hand a finished call's record, redacted, to the audit log, the metrics and the trace."""
        record = record.redacted(redactor)
        for observe in self.observers:
            observe(record)

    async def execute(self, call: PreparedCall, send_progress: SendProgress | None = None) -> types.CallToolResult:
        """Wait for a slot, send, and shape the answer, all under the tool's timeout.

        With `send_progress`, the client hears the tool's spoken messages and heartbeats as
        progress notifications (see voice.py): start, delayed, then complete or failed.

        A shutdown that outlasts its grace period cancels the call; the caller still gets an
        answer (a tool error saying so). A cancellation from outside (the client cancelled or
        went away) propagates, and with it the upstream request is abandoned.
        """
        tool, redactor = call.tool, call.redactor
        progress = tool.progress(send_progress)
        started = time.perf_counter()
        # The executor works to a deadline a little inside ours, so that when time runs out it is
        # the executor that says what happened (attempts made, "a POST may have taken effect").
        deadline = anyio.current_time() + tool.timeout - min(0.1, tool.timeout / 10)
        result: types.CallToolResult | None = None
        response = None
        failure: str | None = None  # None: the deadline passed (the message is made only then)
        outcome = "busy"  # if the deadline passes now: still queued for a slot
        # Attempts sent so far, counted by the executor: when the call is cancelled or cut short by
        # the deadline or a shutdown mid-attempt, no response or error is left to say how many.
        count = AttemptCount()
        await progress.started()
        try:
            with self.in_flight.track() as shutdown_scope, anyio.move_on_after(tool.timeout):
                try:
                    async with self.limits.slot(tool.name, self._current_cap(tool)):
                        outcome = "timeout"  # from here on, the deadline passing means waiting on the upstream
                        response = await progress.while_waiting(
                            lambda: traced_send(
                                self.executor.send(call.request, tool.send_policy, deadline=deadline, count=count),
                                tool.definition.method,
                                tool.definition.url_template,
                                redactor,
                            )
                        )
                        result = response_result(response, redactor, tool.definition.shaping)
                        outcome = answer_outcome(response, result)
                except Busy as exc:
                    failure = f"busy, try again shortly ({exc})"
                except SendError as exc:
                    failure = str(exc)
                    outcome = "timeout" if isinstance(exc, UpstreamTimeout) else "upstream_error"
            if shutdown_scope.cancelled_caught:
                failure = f"mcp-webtools is shutting down and cancelled the call: {self.in_flight.cancel_reason}"
                outcome = "shutdown"
        except ShuttingDown as exc:
            failure, outcome = f"{exc}; try again shortly", "shutdown"
        except anyio.get_cancelled_exc_class():
            self._observe(_record(tool, "cancelled", started, call, response, count.sent), redactor)
            raise
        attempts = count.sent
        elapsed_ms = _ms_since(started)
        if result is None and failure is None:
            failure = f"timed out after {tool.timeout:g} s"
            if outcome == "busy":
                failure += " waiting for a free slot (busy, try again shortly)"
        if result is None:
            # No HTTP status to report, but how long we waited helps tell a slow upstream from a dead one.
            meta = {"elapsedMs": round(elapsed_ms, 3)}
            tries = ""
            if attempts > 1:
                meta["attempts"] = attempts
                tries = f" after {attempts} attempts"
            result = error_result(f"Calling {tool.name!r} failed{tries}: {failure}.", redactor, **meta)
        self._observe(_record(tool, outcome, started, call, response, attempts), redactor)
        await progress.finished(failed=bool(result.is_error))
        return result

    async def call(
        self,
        name: str,
        arguments: dict | None,
        send_progress: SendProgress | None = None,
        request_id: str | int | None = None,
    ) -> types.CallToolResult:
        """Run one tools/call. Raises `MCPError` only for an unknown tool.

        Any other exception is a bug of ours; it becomes a tool error here because the SDK
        would otherwise put the exception's own text, unredacted, on the wire (handshake era).
        `request_id` (the MCP request's id) goes into the call's audit record.
        """
        toolset = self.toolset
        redactor = toolset.redactor
        started = time.perf_counter()
        try:
            prepared = self.prepare(name, arguments, request_id)
            if isinstance(prepared, types.CallToolResult):
                return prepared
            redactor = prepared.redactor
            return await self.execute(prepared, send_progress)
        except MCPError:
            raise
        except Exception:
            logger.exception("tool=%s failed unexpectedly", name)
            tool = toolset.get(name)
            if tool is not None:
                self._observe(_record(tool, "internal_error", started, request_id=request_id), redactor)
            return error_result(
                f"Calling {name!r} failed: an unexpected error occurred in mcp-webtools "
                "(the server log has the details).",
                redactor,
            )

    async def _list_tools(self, ctx: ServerRequestContext, params: types.PaginatedRequestParams | None) -> dict:
        return self.toolset.list_wire  # dumped once per toolset: see Toolset.list_wire

    async def _call_tool(
        self, ctx: ServerRequestContext, params: types.CallToolRequestParams
    ) -> types.CallToolResult | dict:
        CALLER.set(ctx)  # this handler's own task (and a task it starts) sees it; the next call sets its own
        if self._wants_task(ctx):
            assert self.tasks is not None
            # Unknown tool: a protocol error, now; invalid arguments: nothing to run, so no task.
            prepared = self.prepare(params.name, params.arguments, ctx.request_id)
            if isinstance(prepared, types.CallToolResult):
                return prepared
            return self.tasks.start(
                caller_key(_http_scope(ctx)),
                lambda: self.call(params.name, params.arguments, request_id=ctx.request_id),
            )
        hang_up = _hang_up_of(ctx)
        send_progress = spoken_sender(ctx)  # progress (given a progress token) and log entries (given a level)
        if hang_up is None:
            return await self.call(params.name, params.arguments, send_progress, ctx.request_id)
        # A handshake-era HTTP call answers on its own POST, but runs in the session's task, so
        # the client hanging up does not cancel it by itself (a 2026-07-28 call runs in the
        # POST's own task, and a cancel notification is applied by the SDK). With no answer
        # stream left and no way to resume one, the call and its upstream request are abandoned.
        with hang_up.cancels():
            return await self.call(params.name, params.arguments, send_progress, ctx.request_id)
        logger.info("tool=%s cancelled: the client disconnected", params.name)
        return error_result(f"Calling {params.name!r} was cancelled: the client disconnected.", Redactor())

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
        return self.tasks.get(caller_key(_http_scope(ctx)), params.task_id)


class HangUp:
    """Cancels the calls awaiting their answer on one HTTP request once its client disconnects.

    `http_app` puts one in the request's ASGI scope (under `CLIENT_GONE`) and calls it on the
    disconnect.
    """

    def __init__(self) -> None:
        self.happened = False
        self._scopes: set[anyio.CancelScope] = set()

    def __call__(self) -> None:
        self.happened = True
        for scope in self._scopes:
            scope.cancel()

    @contextmanager
    def cancels(self) -> Iterator[anyio.CancelScope]:
        scope = anyio.CancelScope()
        if self.happened:
            scope.cancel()
        self._scopes.add(scope)
        try:
            with scope:
                yield scope
        finally:
            self._scopes.discard(scope)


def _http_scope(ctx: ServerRequestContext) -> dict | None:
    scope = getattr(ctx.request, "scope", None)
    return scope if isinstance(scope, dict) else None


def _hang_up_of(ctx: ServerRequestContext) -> HangUp | None:
    scope = _http_scope(ctx)
    hang_up = scope.get(CLIENT_GONE) if scope is not None else None
    return hang_up if isinstance(hang_up, HangUp) else None


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _record(
    tool: PreparedTool,
    outcome: str,
    started: float,
    call: PreparedCall | None = None,
    response: UpstreamResponse | None = None,
    attempts: int = 0,
    request_id: str | int | None = None,
) -> CallRecord:
    """The audit record of a call to `tool` that began at `started` (a `time.perf_counter()`)."""
    return CallRecord(
        tool=tool.name,
        method=tool.definition.method,
        url_template=tool.definition.url_template,
        outcome=outcome,
        status=response.status if response is not None else None,
        attempts=attempts,
        duration_ms=_ms_since(started),
        request_bytes=len(call.request.body or b"") if call is not None else 0,
        response_bytes=len(response.body) if response is not None else 0,
        request_id=call.request_id if call is not None else request_id,
    )
