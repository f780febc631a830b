"""Spoken messages and progress: what a call tells the client while it runs.

A tool's `messages` are written in Hamsa's API vocabulary (`request-start`) or the guide's
(`Request Start`); both normalise to one vocabulary (`SPOKEN_TYPES`). While a call runs it sends
MCP progress notifications (only to a client that sent a progress token; the SDK drops them
otherwise), in both protocol eras:

    start     before the upstream is called                       message = request-start text
    delayed   once, after `delayedMessageSeconds` still waiting   message = request-response-delayed text
    heartbeat every `progressIntervalSeconds` while waiting       no message
    end       when the answer is ready, before the result         message = request-complete/-failed text

A notification that carries a `message` is always one of the tool's spoken messages, so a client
that speaks can voice every message it gets and nothing else. Clients that asked for MCP logs also
get each message as a log notification (observe/client_logs.py wraps the `send` given here).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio

from .definitions import COMPLETE, DELAYED, FAILED, SPOKEN_TYPES, START, canonical_type

__all__ = [
    "DEFAULT_ASYNC_PROGRESS_SECONDS",
    "DEFAULT_DELAYED_MESSAGE_SECONDS",
    "SPOKEN_TYPES",
    "CallProgress",
    "SendProgress",
    "SpokenMessages",
    "canonical_type",
]

logger = logging.getLogger("mcp_webtools.calls")

T = TypeVar("T")
# `await send(progress, total, message)`: `ServerSession.report_progress`, a no-op without a token.
SendProgress = Callable[[float, float | None, str | None], Awaitable[None]]

DEFAULT_ASYNC_PROGRESS_SECONDS = 2.0
DEFAULT_DELAYED_MESSAGE_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class SpokenMessages:
    """The text for each moment of a call, or None where the tool has none."""

    start: str | None = None
    complete: str | None = None
    failed: str | None = None
    delayed: str | None = None

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, str]]) -> SpokenMessages:
        """From `(type, content)` pairs in any accepted form; the first of a type wins."""
        texts: dict[str, str] = {}
        for message_type, content in pairs:
            texts.setdefault(canonical_type(message_type), content)
        return cls(texts.get(START), texts.get(COMPLETE), texts.get(FAILED), texts.get(DELAYED))

    def __bool__(self) -> bool:
        return any((self.start, self.complete, self.failed, self.delayed))


def published_messages(pairs: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
    """The `_meta` form: `[{type, content}]` in the order written, spoken types normalised."""
    return [{"type": canonical_type(message_type), "content": content} for message_type, content in pairs]


class CallProgress:
    """Sends one call's progress notifications; never lets a failed send fail the call."""

    def __init__(
        self,
        send: SendProgress | None,
        spoken: SpokenMessages,
        *,
        interval: float | None,
        delayed_after: float,
    ) -> None:
        self._send = send
        self.spoken = spoken
        self.interval = interval
        self.delayed_after = delayed_after
        self._step = 0
        # Delays count from the start of the call, time queued for a slot included (read only
        # when there is something to time, so a silent progress needs no event loop).
        self._started = anyio.current_time() if self.active else 0.0

    @property
    def active(self) -> bool:
        """Whether this call has anything to send at all (else no helper task is started)."""
        return self._send is not None and (bool(self.spoken) or self.interval is not None)

    async def notify(self, message: str | None, *, done: bool = False) -> None:
        """One notification; `progress` counts up (the spec wants it to increase), `total` ends it."""
        if self._send is None:
            return
        self._step += 1
        try:
            await self._send(float(self._step), float(self._step) if done else None, message)
        except Exception as exc:  # a client that went away must not turn a good answer into an error
            logger.debug("progress notification not sent: %s", type(exc).__name__)

    async def started(self) -> None:
        if self.spoken.start:
            await self.notify(self.spoken.start)

    async def finished(self, failed: bool) -> None:
        message = self.spoken.failed if failed else self.spoken.complete
        if message:
            await self.notify(message, done=True)

    async def while_waiting(self, work: Callable[[], Awaitable[T]]) -> T:
        """`await work()`, with heartbeats and the delayed message alongside it.

        The work's own exceptions come out as they are (not wrapped in an exception group), and
        a cancellation from outside cancels the helper task with the work.
        """
        if not self.active or (self.interval is None and not self.spoken.delayed):
            return await work()
        error: Exception | None = None
        result: T | None = None
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._keep_talking)
            try:
                result = await work()
            except Exception as exc:
                error = exc
            tg.cancel_scope.cancel()
        if error is not None:
            raise error
        return result  # type: ignore[return-value]

    async def _keep_talking(self) -> None:
        started = self._started
        next_beat = anyio.current_time() + self.interval if self.interval is not None else None
        delayed_at = started + self.delayed_after if self.spoken.delayed else None
        while next_beat is not None or delayed_at is not None:
            wake = min(t for t in (next_beat, delayed_at) if t is not None)
            await anyio.sleep_until(wake)
            if delayed_at is not None and anyio.current_time() >= delayed_at:
                delayed_at = None
                await self.notify(self.spoken.delayed)
                if next_beat is not None and next_beat <= anyio.current_time():
                    next_beat += self.interval  # type: ignore[operator]  # the message counts as this beat
                continue
            if next_beat is not None:
                await self.notify(None)
                next_beat += self.interval  # type: ignore[operator]
