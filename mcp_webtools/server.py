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

import anyio
import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from . import __version__
from .arguments import ArgumentError
from .executor import Executor, UpstreamError
from .limits import Busy, CallLimits, InFlightCalls, ShuttingDown
from .redaction import Redactor
from .requests import OutboundRequest, RequestBuildError, build_request
from .results import error_result, response_result
from .tasks import EXTENSION as TASKS_EXTENSION
from .tasks import TaskStore, caller_key
from .toolset import PreparedTool, Toolset
from .voice import SendProgress

__all__ = ["CLIENT_GONE", "SERVER_NAME", "HangUp", "PreparedCall", "WebTools"]

logger = logging.getLogger("mcp_webtools.calls")

SERVER_NAME = "mcp-webtools"
# ASGI scope key: the `HangUp` of a POST that may carry a call's answer.
CLIENT_GONE = "mcp_webtools.client_gone"
INSTRUCTIONS = (
    "Each tool calls an HTTP API configured by the operator. Tool errors say what went wrong "
    "(invalid arguments name each field; upstream failures give the HTTP status and body)."
)


class PreparedCall:
    """A call that passed validation: the tool, the exact request to send, and the redactor.

    The redactor comes from the same toolset snapshot as the tool, so a reload that swaps the
    toolset mid-call can never leave this call's secrets unmasked in its result.
    """

    __slots__ = ("redactor", "request", "tool")

    def __init__(self, tool: PreparedTool, request: OutboundRequest, redactor: Redactor | None = None) -> None:
        self.tool = tool
        self.request = request
        self.redactor = redactor or Redactor()


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
        self.server: Server = Server(
            SERVER_NAME,
            version=__version__,
            instructions=INSTRUCTIONS,
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            # Modern-era HTTP calls look schemas up here instead of re-running tools/list.
            get_tool_input_schema=lambda name: self.toolset.input_schema(name),
        )
        # Task-style calls (tasks.py), only when enabled: the SDK does not implement the extension yet.
        self.tasks = tasks
        if tasks is not None:
            self.server.extensions[TASKS_EXTENSION] = {}
            self.server.add_request_handler("tasks/get", types.GetTaskRequestParams, self._get_task)

    def prepare(self, name: str, arguments: dict | None) -> PreparedCall | types.CallToolResult:
        """Validate and build; a `CallToolResult` means the call stops here with a tool error.

        Raises `MCPError` for an unknown tool (a protocol error, not a tool error).
        """
        toolset = self.toolset
        tool = toolset.get(name)
        if tool is None:
            raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown tool: {toolset.redactor(name)}")
        try:
            filled = tool.validator.validate(arguments)
            return PreparedCall(tool, build_request(tool.template, filled), toolset.redactor)
        except ArgumentError as exc:
            lines = "\n".join(f"- {field}: {message}" for field, message in exc.problems)
            text = f"Invalid arguments for tool {name!r}; nothing was sent:\n{lines}"
        except RequestBuildError as exc:
            text = f"Invalid arguments for tool {name!r}; nothing was sent:\n- {exc.field}: {exc.message}"
        return error_result(text, toolset.redactor)

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
        # What to say if the deadline passes: still queued for a slot, or waiting on the upstream.
        failure = f"timed out after {tool.timeout:g} s waiting for a free slot (busy, try again shortly)"
        attempts = 0
        await progress.started()
        try:
            with self.in_flight.track() as shutdown_scope, anyio.move_on_after(tool.timeout):
                try:
                    async with self.limits.slot(tool.name, tool.definition.max_concurrency):
                        failure = f"timed out after {tool.timeout:g} s"
                        response = await progress.while_waiting(
                            lambda: self.executor.send(call.request, tool.send_policy, deadline=deadline)
                        )
                        result = response_result(response, redactor, tool.definition.shaping)
                        attempts = response.attempts
                except Busy as exc:
                    failure = f"busy, try again shortly ({exc})"
                except UpstreamError as exc:
                    failure, attempts = str(exc), exc.attempts
            if shutdown_scope.cancelled_caught:
                failure = f"mcp-webtools is shutting down and cancelled the call: {self.in_flight.cancel_reason}"
        except ShuttingDown as exc:
            failure = f"{exc}; try again shortly"
        except anyio.get_cancelled_exc_class():
            logger.info("tool=%s cancelled by the client after %.1f ms", tool.name, _ms_since(started))
            raise
        elapsed_ms = _ms_since(started)
        if result is None:
            # No HTTP status to report, but how long we waited helps tell a slow upstream from a dead one.
            meta = {"elapsedMs": round(elapsed_ms, 3)}
            tries = ""
            if attempts > 1:
                meta["attempts"] = attempts
                tries = f" after {attempts} attempts"
            result = error_result(f"Calling {tool.name!r} failed{tries}: {failure}.", redactor, **meta)
        logger.info(
            "tool=%s method=%s url=%s error=%s attempts=%d elapsed_ms=%.1f",
            tool.name,
            tool.definition.method,
            tool.definition.url_template,
            result.is_error,
            attempts,
            elapsed_ms,
        )
        await progress.finished(failed=bool(result.is_error))
        return result

    async def call(
        self, name: str, arguments: dict | None, send_progress: SendProgress | None = None
    ) -> types.CallToolResult:
        """Run one tools/call. Raises `MCPError` only for an unknown tool.

        Any other exception is a bug of ours; it becomes a tool error here because the SDK
        would otherwise put the exception's own text, unredacted, on the wire (handshake era).
        """
        redactor = self.toolset.redactor
        try:
            prepared = self.prepare(name, arguments)
            if isinstance(prepared, types.CallToolResult):
                return prepared
            redactor = prepared.redactor
            return await self.execute(prepared, send_progress)
        except MCPError:
            raise
        except Exception:
            logger.exception("tool=%s failed unexpectedly", name)
            return error_result(
                f"Calling {name!r} failed: an unexpected error occurred in mcp-webtools "
                "(the server log has the details).",
                redactor,
            )

    async def _list_tools(
        self, ctx: ServerRequestContext, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return self.toolset.list_result

    async def _call_tool(
        self, ctx: ServerRequestContext, params: types.CallToolRequestParams
    ) -> types.CallToolResult | dict:
        if self._wants_task(ctx):
            assert self.tasks is not None
            prepared = self.prepare(params.name, params.arguments)  # unknown tool: a protocol error, now
            if isinstance(prepared, types.CallToolResult):
                return prepared  # invalid arguments: nothing to run, so no task
            return self.tasks.start(caller_key(_http_scope(ctx)), lambda: self.call(params.name, params.arguments))
        hang_up = _hang_up_of(ctx)
        send_progress = ctx.session.report_progress  # a no-op unless the client sent a progress token
        if hang_up is None:
            return await self.call(params.name, params.arguments, send_progress)
        # A handshake-era HTTP call answers on its own POST, but runs in the session's task, so
        # the client hanging up does not cancel it by itself (a 2026-07-28 call runs in the
        # POST's own task, and a cancel notification is applied by the SDK). With no answer
        # stream left and no way to resume one, the call and its upstream request are abandoned.
        with hang_up.cancels():
            return await self.call(params.name, params.arguments, send_progress)
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
