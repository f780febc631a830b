"""Bounding in-flight upstream calls, globally and per tool, with a bounded wait queue.

Past the queue bound a call fails at once with `Busy` ("busy, try again"), so a burst costs a
clear error instead of unbounded memory. Waiting in the queue counts against the tool's deadline,
which the caller enforces around `CallLimits.slot`.

`InFlightCalls` knows every call running now, so a shutdown can refuse new ones, wait for the
running ones, and cancel whatever is left when the grace period ends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager

import anyio

from .errors import Busy, ShuttingDown

__all__ = ["DEFAULT_MAX_CONCURRENCY", "DEFAULT_MAX_QUEUE", "BoundedLimiter", "CallLimits", "InFlightCalls"]

# Upstream calls in flight at once, all tools together (`--max-concurrency`; the HTTP pool is sized
# to it), and calls that may wait for a slot before the next is refused as busy (`--max-queue`).
DEFAULT_MAX_CONCURRENCY = 64
DEFAULT_MAX_QUEUE = 256
# How long cancelled calls get to unwind (close their upstream connection, shape their error).
UNWIND_SECONDS = 5.0
FORCE_POLL_SECONDS = 0.1


class BoundedLimiter:
    """At most `limit` holders, first come first served; at most `max_waiting` callers queued."""

    def __init__(self, limit: int, max_waiting: int, name: str) -> None:
        self._limiter = anyio.CapacityLimiter(limit)
        self.max_waiting = max_waiting
        self.name = name

    @property
    def limit(self) -> int:
        return int(self._limiter.total_tokens)

    @limit.setter
    def limit(self, value: int) -> None:
        # Changed in place, so calls already holding a slot still count: raising it admits
        # waiters at once, lowering it admits nobody new until enough holders have left.
        self._limiter.total_tokens = value

    @property
    def in_use(self) -> int:
        return self._limiter.borrowed_tokens

    @property
    def waiting(self) -> int:
        return self._limiter.statistics().tasks_waiting

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        # A fresh borrower per holder: one task may hold several limiters, or this one twice.
        borrower = object()
        try:
            self._limiter.acquire_on_behalf_of_nowait(borrower)
        except anyio.WouldBlock:
            # Only callers really queued count against the bound (not ones admitted a moment ago).
            if self.waiting >= self.max_waiting:
                raise Busy(self._busy_message()) from None
            await self._limiter.acquire_on_behalf_of(borrower)
        try:
            yield
        finally:
            self._limiter.release_on_behalf_of(borrower)

    def _busy_message(self) -> str:
        calls = "1 call" if self.limit == 1 else f"{self.limit} calls"
        return f"{self.name} already has {calls} in flight, its limit, and {self.waiting} waiting"


class CallLimits:
    """The global limiter plus one per tool that asks for a cap of its own.

    Per-tool limiters are kept by tool name across toolset reloads: a reload that changes a
    tool's `maxConcurrency` adjusts the same limiter, so calls in flight from before the reload
    still count against the new cap.
    """

    def __init__(self, global_limit: int = DEFAULT_MAX_CONCURRENCY, max_waiting: int = DEFAULT_MAX_QUEUE) -> None:
        self.global_limiter = BoundedLimiter(global_limit, max_waiting, "the server")
        self.max_waiting = max_waiting
        self._per_tool: dict[str, BoundedLimiter] = {}

    def tool_limiter(self, tool: str, limit: int | None) -> BoundedLimiter | None:
        """The limiter for `tool` with cap `limit` (None: the tool has no cap of its own)."""
        if limit is None:
            # Holders of a cap the tool no longer has finish against the old limiter.
            self._per_tool.pop(tool, None)
            return None
        limiter = self._per_tool.get(tool)
        if limiter is None:
            limiter = self._per_tool[tool] = BoundedLimiter(limit, self.max_waiting, f"tool {tool!r}")
        elif limiter.limit != limit:
            limiter.limit = limit
        return limiter

    @asynccontextmanager
    async def slot(self, tool: str, tool_limit: int | None = None) -> AsyncIterator[None]:
        """Hold the tool's slot (if it has a cap), then a global one.

        Tool first: a call waiting for its own tool's cap must not sit on a global slot that
        calls to other tools could use.
        """
        limiter = self.tool_limiter(tool, tool_limit)
        if limiter is None:
            async with self.global_limiter.hold():
                yield
            return
        async with limiter.hold(), self.global_limiter.hold():
            yield

    @property
    def in_flight(self) -> int:
        return self.global_limiter.in_use


class InFlightCalls:
    """The calls running now, each in a cancel scope a shutdown can cancel."""

    def __init__(self) -> None:
        self._scopes: set[anyio.CancelScope] = set()
        # Created on first use: an anyio.Event needs a running event loop.
        self._idle: anyio.Event | None = None
        self._closing: anyio.Event | None = None
        self.closing = False
        self.cancel_reason = ""  # why `drain` cancelled the calls it cancelled

    def __len__(self) -> int:
        return len(self._scopes)

    @contextmanager
    def track(self) -> Iterator[anyio.CancelScope]:
        """Run the body as one call; `drain` may cancel it (see the scope's `cancelled_caught`).

        Raises `ShuttingDown` once draining has started.
        """
        if self.closing:
            raise ShuttingDown("mcp-webtools is shutting down")
        scope = anyio.CancelScope()
        self._scopes.add(scope)
        try:
            with scope:
                yield scope
        finally:
            self._scopes.discard(scope)
            if not self._scopes and self._idle is not None:
                self._idle.set()

    async def wait_closing(self) -> None:
        """Return once draining has started."""
        if self._closing is None:
            self._closing = anyio.Event()
            if self.closing:
                self._closing.set()
        await self._closing.wait()

    async def drain(self, grace_seconds: float, *, forced: Callable[[], bool] = lambda: False) -> int:
        """Refuse new calls, wait up to `grace_seconds` for the running ones, then cancel the rest.

        `forced()` turning true (a second Ctrl-C) ends the wait early. Returns how many calls were
        cancelled. A cancelled call still answers its caller (with a tool error that says so),
        and cancelling it closes its upstream request.
        """
        self.closing = True
        if self._closing is not None:
            self._closing.set()
        with anyio.move_on_after(grace_seconds):
            async with anyio.create_task_group() as tg:

                async def stop_when_forced() -> None:
                    # Polled, as uvicorn polls it: a signal handler sets it.
                    while not forced():
                        await anyio.sleep(FORCE_POLL_SECONDS)
                    tg.cancel_scope.cancel()

                tg.start_soon(stop_when_forced)
                await self._wait_idle()
                tg.cancel_scope.cancel()
        if forced():
            self.cancel_reason = "the shutdown was forced"
        else:
            self.cancel_reason = f"it was still running after the {grace_seconds:g} s grace period"
        cancelled = len(self._scopes)
        for scope in list(self._scopes):
            scope.cancel()
        with anyio.move_on_after(UNWIND_SECONDS):
            await self._wait_idle()
        return cancelled

    async def _wait_idle(self) -> None:
        while self._scopes:
            self._idle = anyio.Event()
            await self._idle.wait()
