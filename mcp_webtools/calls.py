"""A tool call, from the client's arguments to the result the model reads.

    prepare   validate the arguments -> build the request           -> `PreparedCall`, or a tool error
    execute   wait for a slot -> send through the sender chain -> shape the answer, all under the
              tool's timeout                                         -> `CallOutcome` -> the result

This is the application logic behind `tools/call`; serving/server.py only wires it to MCP.
`ToolCalls` owns the current `Toolset` (one reference, swapped whole on reload), the concurrency
limits and the calls in flight. It sends through a `sending.Sender` (the chain assembled in
`serving/runtime.open_webtools`, the executor innermost), and every call that ends leaves one
`CallRecord` (outcomes.py), handed to the observers given at assembly: the audit log, the
metrics, the trace span.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import anyio
import mcp_types as types
from mcp.shared.exceptions import MCPError

from .errors import (
    ArgumentError,
    Busy,
    RateLimited,
    RequestBuildError,
    SendError,
    ShuttingDown,
    TokenEndpointError,
    UpstreamTimeout,
)
from .limits import CallLimits, InFlightCalls
from .outcomes import CallObserver, CallRecord, Outcome
from .ratelimit import LimitKey, RateLimits
from .redaction import Redactor, call_secrets
from .requests import OutboundRequest, build_request
from .results import answer_outcome, error_result, response_result
from .sending import AttemptCount, Sender, UpstreamResponse
from .toolset import PreparedTool, Toolset
from .voice import CallProgress, SendProgress

__all__ = ["CallOutcome", "PreparedCall", "ToolCalls", "build_call", "problems_of"]

logger = logging.getLogger("mcp_webtools.calls")


class PreparedCall:
    """A call that passed validation: the tool, the exact request to send, and the redactor.

    The redactor comes from the same toolset snapshot as the tool, so a reload that swaps the
    toolset mid-call can never leave this call's secrets unmasked in its result.
    """

    __slots__ = ("client", "redactor", "request", "request_id", "tool")

    def __init__(
        self,
        tool: PreparedTool,
        request: OutboundRequest,
        redactor: Redactor | None = None,
        request_id: str | int | None = None,
        client: str | None = None,
    ) -> None:
        self.tool = tool
        self.request = request
        self.redactor = redactor if redactor is not None else Redactor()
        self.request_id = request_id  # the MCP request's id, for the audit record
        self.client = client  # the calling client's id, for the audit record

    def preview(self) -> OutboundRequest:
        """The request as it would go out, the tool's auth applied (for `call --dry-run`; never sent)."""
        auth = self.tool.send_policy.auth
        return auth.preview(self.request) if auth is not None else self.request

    def dry_run(self) -> str:
        """The exact HTTP request this call would send, as text, secrets shown as `***`.

        The one request printer: `call --dry-run` and the web console both show this.
        """
        return self.redactor(self.preview().as_text())


def build_call(
    tool: PreparedTool, arguments: dict | None, redactor: Redactor, request_id: str | int | None = None
) -> PreparedCall:
    """Validate `arguments` and build the request; raises `ArgumentError` or `RequestBuildError`.

    Records nothing: `ToolCalls.prepare` does that for calls; the console also uses this to check
    arguments as they are typed.
    """
    filled = tool.validator.validate(arguments)
    return PreparedCall(tool, build_request(tool.template, filled), redactor, request_id)


def problems_of(exc: ArgumentError | RequestBuildError) -> list[tuple[str, str]]:
    """Each (field, message) an invalid call has wrong."""
    return exc.problems if isinstance(exc, ArgumentError) else [(exc.field, exc.message)]


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """How one call ended, before anyone is shown it: what `ToolCalls.execute`'s helpers return.

    A call the upstream answered has its `response` and the `result` shaped from it; one that got
    no answer has `failure` instead, what went wrong in words the model can act on ("timed out
    after 10 s"). `attempts`: the requests sent, counted as they went out.
    """

    outcome: Outcome
    attempts: int = 0
    response: UpstreamResponse | None = None
    result: types.CallToolResult | None = None
    failure: str = ""


class ToolCalls:
    """Runs tool calls against the current toolset, through `sender`, within `limits`."""

    def __init__(
        self,
        toolset: Toolset,
        sender: Sender,
        limits: CallLimits | None = None,
        observers: Iterable[CallObserver] = (),
        rate_limits: RateLimits | None = None,
    ) -> None:
        self.toolset = toolset
        self.sender = sender
        self.limits = limits or CallLimits()
        # Token buckets and upstream pauses (ratelimit.py); the executor records the pauses in the same.
        self.rate_limits = rate_limits or RateLimits()
        self.in_flight = InFlightCalls()
        self.observers = list(observers)

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

    def _current_cap(self, tool: PreparedTool) -> int | None:
        # A call prepared before a reload queues under the cap served now, not the one it was
        # prepared with (which would set the shared limiter back to the old value).
        current = self.toolset.get(tool.name)
        return (current or tool).definition.max_concurrency

    def prepare(
        self,
        name: str,
        arguments: dict | None,
        request_id: str | int | None = None,
        *,
        toolset: Toolset | None = None,
        client: str | None = None,
    ) -> PreparedCall | types.CallToolResult:
        """Validate and build; a `CallToolResult` means the call stops here with a tool error.

        `toolset`: the tools the caller may call (its endpoint's view), all of them by default;
        `client`: who calls, for the audit record. Raises `MCPError` for a tool not in `toolset`
        (a protocol error, not a tool error, and no audit record: a name from the client must not
        become a metric label), the same for a tool of another endpoint as for none at all.
        """
        toolset = toolset if toolset is not None else self.toolset
        tool = toolset.get(name)
        if tool is None:
            raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown tool: {toolset.redactor(name)}")
        started = time.perf_counter()
        try:
            call = build_call(tool, arguments, toolset.redactor, request_id)
            call.client = client
            return call
        except (ArgumentError, RequestBuildError) as exc:
            lines = "\n".join(f"- {field}: {message}" for field, message in problems_of(exc))
            text = f"Invalid arguments for tool {name!r}; nothing was sent:\n{lines}"
        record = _record(tool, Outcome.INVALID_ARGUMENTS, started, request_id=request_id, client=client)
        self._observe(record, toolset.redactor)
        return error_result(text, toolset.redactor)

    def _observe(self, record: CallRecord, redactor: Redactor) -> None:
        """Hand a finished call's record, redacted, to the observers (audit log, metrics, trace)."""
        record = record.redacted(redactor)
        for observe in self.observers:
            observe(record)

    async def execute(
        self,
        call: PreparedCall,
        send_progress: SendProgress | None = None,
        limits: Sequence[LimitKey] = (),
    ) -> types.CallToolResult:
        """Pass the rate limits, wait for a slot, send, and shape the answer, all under the tool's timeout.

        `limits`: the rate limits of who is calling (endpoint, client), held together with the
        tool's own; over any of them the call ends at once with a tool error that says which and
        when to try again (`retryAfterSeconds` in `_meta`), nothing sent.

        With `send_progress`, the client hears the tool's spoken messages and heartbeats as
        progress notifications (see voice.py): start, delayed, then complete or failed.

        A shutdown that outlasts its grace period cancels the call; the caller still gets an
        answer (a tool error saying so). A cancellation from outside (the client cancelled or
        went away) propagates, and with it the upstream request is abandoned.
        """
        tool, redactor = call.tool, call.redactor
        started = time.perf_counter()
        refused = await self._rate_limited(tool, limits)
        if refused is not None:
            self._observe(_record(tool, Outcome.RATE_LIMITED, started, call), redactor)
            text = f"Calling {tool.name!r} was refused, nothing was sent: {refused}."
            return error_result(text, redactor, retryAfterSeconds=refused.retry_after, limit=refused.limit)
        progress = tool.progress(send_progress)
        # Requests sent so far, counted by the sender chain as they go out: when the call is
        # cancelled mid-attempt, no response or error is left to say how many.
        count = AttemptCount()
        # This call's own secrets (a caller's forwarded credential) are hidden in all it shows, to its end.
        with call_secrets():
            await progress.started()
            try:
                ended = await self._run(call, progress, count)
            except anyio.get_cancelled_exc_class():
                self._observe(_record(tool, Outcome.CANCELLED, started, call, attempts=count.sent), redactor)
                raise
            result = ended.result
            if result is None:
                result = _failed(tool, ended, _ms_since(started), redactor)
            self._observe(_record(tool, ended.outcome, started, call, ended.response, ended.attempts), redactor)
            await progress.finished(failed=bool(result.is_error))
            return result

    async def _rate_limited(self, tool: PreparedTool, limits: Sequence[LimitKey]) -> RateLimited | None:
        """Take a token from the tool's limit and each of `limits` (all or none); the refusal, if any."""
        # The limit served now: a call prepared before a reload is held to the current one.
        current = (self.toolset.get(tool.name) or tool).definition.rate_limit
        keys = [LimitKey("tool", tool.name, current), *limits] if current is not None else list(limits)
        try:
            await self.rate_limits.acquire(keys, upstream=tool.name)
        except RateLimited as exc:
            return exc
        return None

    async def _run(self, call: PreparedCall, progress: CallProgress, count: AttemptCount) -> CallOutcome:
        """Wait for a slot and send, under the tool's timeout: every way that can end, as a `CallOutcome`."""
        tool = call.tool
        # The sender chain works to a deadline a little inside ours, so that when time runs out it
        # is the executor that says what happened (attempts made, "a POST may have taken effect").
        deadline = anyio.current_time() + tool.timeout - min(0.1, tool.timeout / 10)
        waiting = Outcome.BUSY  # what the timeout passing now would mean: still queued for a slot
        try:
            with self.in_flight.track() as shutdown_scope, anyio.move_on_after(tool.timeout):
                try:
                    async with self.limits.slot(tool.name, self._current_cap(tool)):
                        waiting = Outcome.TIMEOUT  # from here on: waiting on the upstream
                        response = await progress.while_waiting(
                            lambda: self.sender.send(call.request, tool.send_policy, deadline=deadline, count=count)
                        )
                        result = response_result(response, call.redactor, tool.shaping)
                        return CallOutcome(answer_outcome(response, result), count.sent, response, result)
                except Busy as exc:
                    return CallOutcome(Outcome.BUSY, count.sent, failure=f"busy, try again shortly ({exc})")
                except SendError as exc:
                    outcome = (
                        Outcome.AUTH_ERROR
                        if isinstance(exc, TokenEndpointError)
                        else Outcome.TIMEOUT
                        if isinstance(exc, UpstreamTimeout)
                        else Outcome.UPSTREAM_ERROR
                    )
                    return CallOutcome(outcome, count.sent, failure=str(exc))
        except ShuttingDown as exc:
            return CallOutcome(Outcome.SHUTDOWN, count.sent, failure=f"{exc}; try again shortly")
        if shutdown_scope.cancelled_caught:
            failure = f"mcp-webtools is shutting down and cancelled the call: {self.in_flight.cancel_reason}"
            return CallOutcome(Outcome.SHUTDOWN, count.sent, failure=failure)
        failure = f"timed out after {tool.timeout:g} s"
        if waiting is Outcome.BUSY:
            failure += " waiting for a free slot (busy, try again shortly)"
        return CallOutcome(waiting, count.sent, failure=failure)

    async def call(
        self,
        name: str,
        arguments: dict | None,
        send_progress: SendProgress | None = None,
        request_id: str | int | None = None,
        *,
        toolset: Toolset | None = None,
        client: str | None = None,
        limits: Sequence[LimitKey] = (),
    ) -> types.CallToolResult:
        """Run one tools/call. Raises `MCPError` only for an unknown tool.

        `limits`: the caller's rate limits (endpoint, client), held with the tool's (see `execute`).

        Any other exception is a bug of ours; it becomes a tool error here because the SDK
        would otherwise put the exception's own text, unredacted, on the wire (handshake era).
        `request_id` (the MCP request's id) and `client` go into the call's audit record;
        `toolset`: the caller's endpoint's view (see `prepare`).
        """
        toolset = toolset if toolset is not None else self.toolset
        redactor = toolset.redactor
        started = time.perf_counter()
        # Opened here too, not only in `execute`: the unexpected-error log line below still hides them.
        with call_secrets():
            try:
                prepared = self.prepare(name, arguments, request_id, toolset=toolset, client=client)
                if isinstance(prepared, types.CallToolResult):
                    return prepared
                redactor = prepared.redactor
                return await self.execute(prepared, send_progress, limits)
            except MCPError:
                raise
            except Exception:
                logger.exception("tool=%s failed unexpectedly", name)
                tool = toolset.get(name)
                if tool is not None:
                    record = _record(tool, Outcome.INTERNAL_ERROR, started, request_id=request_id, client=client)
                    self._observe(record, redactor)
                return error_result(
                    f"Calling {name!r} failed: an unexpected error occurred in mcp-webtools "
                    "(the server log has the details).",
                    redactor,
                )


def _failed(tool: PreparedTool, ended: CallOutcome, elapsed_ms: float, redactor: Redactor) -> types.CallToolResult:
    """The tool error for a call that got no answer from the upstream."""
    # No HTTP status to report, but how long we waited helps tell a slow upstream from a dead one.
    meta: dict[str, float | int] = {"elapsedMs": round(elapsed_ms, 3)}
    tries = ""
    if ended.attempts > 1:
        meta["attempts"] = ended.attempts
        tries = f" after {ended.attempts} attempts"
    return error_result(f"Calling {tool.name!r} failed{tries}: {ended.failure}.", redactor, **meta)


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _record(
    tool: PreparedTool,
    outcome: Outcome,
    started: float,
    call: PreparedCall | None = None,
    response: UpstreamResponse | None = None,
    attempts: int = 0,
    request_id: str | int | None = None,
    client: str | None = None,
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
        client=call.client if call is not None else client,
    )
