"""The MCP server: wires `tools/list` and `tools/call` to the pipeline, nothing more.

    validate arguments -> build request -> send (under the tool's timeout) -> shape result

`WebTools` owns the current `Toolset` (one reference, swapped whole on reload) and the
`Executor`; the low-level `mcp.server.Server` it builds serves both protocol eras on any transport.
"""

from __future__ import annotations

import logging
import time

import anyio
import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.shared.exceptions import MCPError

from . import __version__
from .arguments import ArgumentError
from .executor import Executor, UpstreamError
from .requests import OutboundRequest, RequestBuildError, build_request
from .results import error_result, response_result
from .toolset import PreparedTool, Toolset

__all__ = ["SERVER_NAME", "PreparedCall", "WebTools"]

logger = logging.getLogger("mcp_webtools.calls")

SERVER_NAME = "mcp-webtools"
INSTRUCTIONS = (
    "Each tool calls an HTTP API configured by the operator. Tool errors say what went wrong "
    "(invalid arguments name each field; upstream failures give the HTTP status and body)."
)


class PreparedCall:
    """A call that passed validation: the tool and the exact request to send."""

    __slots__ = ("request", "tool")

    def __init__(self, tool: PreparedTool, request: OutboundRequest) -> None:
        self.tool = tool
        self.request = request


class WebTools:
    """The running service: current toolset, executor, and the MCP server wired to them."""

    def __init__(self, toolset: Toolset, executor: Executor) -> None:
        self.toolset = toolset
        self.executor = executor
        self.server: Server = Server(
            SERVER_NAME,
            version=__version__,
            instructions=INSTRUCTIONS,
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            # Modern-era HTTP calls look schemas up here instead of re-running tools/list.
            get_tool_input_schema=lambda name: self.toolset.input_schema(name),
        )

    def prepare(self, name: str, arguments: dict | None) -> PreparedCall | types.CallToolResult:
        """Validate and build; a `CallToolResult` means the call stops here with a tool error.

        Raises `MCPError` for an unknown tool (a protocol error, not a tool error).
        """
        toolset = self.toolset
        tool = toolset.get(name)
        if tool is None:
            raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown tool: {name}")
        try:
            filled = tool.validator.validate(arguments)
            return PreparedCall(tool, build_request(tool.template, filled))
        except ArgumentError as exc:
            lines = "\n".join(f"- {field}: {message}" for field, message in exc.problems)
            text = f"Invalid arguments for tool {name!r}; nothing was sent:\n{lines}"
        except RequestBuildError as exc:
            text = f"Invalid arguments for tool {name!r}; nothing was sent:\n- {exc.field}: {exc.message}"
        return error_result(text, toolset.redactor)

    async def execute(self, call: PreparedCall) -> types.CallToolResult:
        """Send the request and shape the answer, all under the tool's timeout."""
        tool, redactor = call.tool, self.toolset.redactor
        started = time.perf_counter()
        result: types.CallToolResult | None = None
        with anyio.move_on_after(tool.timeout):
            try:
                response = await self.executor.send(call.request, timeout=tool.timeout)
            except UpstreamError as exc:
                result = error_result(f"Calling {tool.name!r} failed: {exc}.", redactor)
            else:
                result = response_result(response, redactor)
        if result is None:
            result = error_result(f"Calling {tool.name!r} failed: timed out after {tool.timeout:g} s.", redactor)
        logger.info(
            "tool=%s method=%s url=%s error=%s elapsed_ms=%.1f",
            tool.name,
            tool.definition.method,
            tool.definition.url_template,
            result.is_error,
            (time.perf_counter() - started) * 1000,
        )
        return result

    async def call(self, name: str, arguments: dict | None) -> types.CallToolResult:
        prepared = self.prepare(name, arguments)
        if isinstance(prepared, types.CallToolResult):
            return prepared
        return await self.execute(prepared)

    async def _list_tools(
        self, ctx: ServerRequestContext, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return self.toolset.list_result

    async def _call_tool(self, ctx: ServerRequestContext, params: types.CallToolRequestParams) -> types.CallToolResult:
        return await self.call(params.name, params.arguments)
