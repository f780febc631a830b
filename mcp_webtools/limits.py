"""Bounding in-flight upstream calls, globally and per tool, with a bounded wait queue.

Past the queue bound a call fails at once with `Busy` ("busy, try again"), so a burst costs a
clear error instead of unbounded memory. Waiting in the queue counts against the tool's deadline,
which the caller enforces around `acquire`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import anyio

__all__ = ["Busy", "BoundedLimiter", "CallLimits"]


class Busy(Exception):
    """Too many calls are already waiting; the message is safe to show the model."""


class BoundedLimiter:
    """At most `limit` holders; at most `max_waiting` callers queued behind them."""

    def __init__(self, limit: int, max_waiting: int, name: str) -> None:
        self._limiter = anyio.CapacityLimiter(limit)
        self.max_waiting = max_waiting
        self.name = name
        self.waiting = 0

    @property
    def in_use(self) -> int:
        return int(self._limiter.borrowed_tokens)

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        if self._limiter.available_tokens < 1:
            if self.waiting >= self.max_waiting:
                raise Busy(f"{self.name} is at its limit of {int(self._limiter.total_tokens)} calls in flight")
        # A fresh token object per holder: the same task may hold two different limiters.
        token = object()
        self.waiting += 1
        try:
            await self._limiter.acquire_on_behalf_of(token)
        finally:
            self.waiting -= 1
        try:
            yield
        finally:
            self._limiter.release_on_behalf_of(token)


class CallLimits:
    """The global limiter plus one per tool that asks for a cap of its own."""

    def __init__(self, global_limit: int = 64, max_waiting: int = 256) -> None:
        self.global_limiter = BoundedLimiter(global_limit, max_waiting, "the server")
        self.max_waiting = max_waiting
        self._per_tool: dict[str, BoundedLimiter] = {}

    def tool_limiter(self, tool: str, limit: int | None) -> BoundedLimiter | None:
        if limit is None:
            return None
        limiter = self._per_tool.get(tool)
        if limiter is None or int(limiter._limiter.total_tokens) != limit:
            limiter = self._per_tool[tool] = BoundedLimiter(limit, self.max_waiting, f"tool {tool!r}")
        return limiter

    @asynccontextmanager
    async def slot(self, tool: str, tool_limit: int | None = None) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            limiter = self.tool_limiter(tool, tool_limit)
            if limiter is not None:
                await stack.enter_async_context(limiter.hold())
            await stack.enter_async_context(self.global_limiter.hold())
            yield

    @property
    def in_flight(self) -> int:
        return self.global_limiter.in_use
