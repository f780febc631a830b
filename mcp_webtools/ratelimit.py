"""Rate limits (token buckets on a tool, an endpoint or a client) and the pauses an upstream asks for.

A `rateLimit: {requests: 60, per: minute, burst: 10}` is a token bucket: it holds `burst` tokens
(`requests` when no burst is given), refills at `requests` per `per`, and every call takes one.
A reload that changes a limit keeps its bucket: the calls already taken count against the new size.
All the limits that apply to a call hold together: `RateLimits.acquire` takes one token from each
bucket or, when any is empty, from none (a refusal by one limit must not use up the others).

An upstream that answers `429` with `Retry-After` pauses its tool for every caller until then
(the executor records the pause and waits it out before any retry): a quota is not hammered by
the next callers. A call in a pause is refused like a call over a limit, nothing sent.

The state lives in a `LimitStore`: `MemoryStore` in this process (the default), or a shared one
(serving/state.py, on Redis) so that limits hold across replicas. Either is atomic per call.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .errors import RateLimited

__all__ = [
    "MAX_PAUSE_SECONDS",
    "PERIODS",
    "Bucket",
    "LimitKey",
    "LimitStore",
    "MemoryStore",
    "Pauses",
    "RateLimit",
    "RateLimits",
    "Refusal",
]

PERIODS = {"second": 1, "minute": 60, "hour": 3600}
# The longest pause an upstream's Retry-After can impose: a misbehaving upstream (or a date far in
# the future) must not switch a tool off until the next restart.
MAX_PAUSE_SECONDS = 3600.0
# A bucket this close to a whole token has one: float refill must not turn "exactly 1" into "not yet".
_EPSILON = 1e-9


class RateLimit(BaseModel):
    """One `rateLimit` block as written (on a tool, an endpoint or a client)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    requests: int = Field(ge=1, le=1_000_000)
    per: str
    burst: int | None = Field(default=None, ge=1, le=1_000_000)

    @field_validator("per")
    @classmethod
    def _period(cls, value: str) -> str:
        if value not in PERIODS:
            raise ValueError("must be one of second, minute, hour")
        return value

    @property
    def capacity(self) -> int:
        """Calls that may go at once after a quiet spell: `burst`, else a whole period's `requests`."""
        return self.burst if self.burst is not None else self.requests

    @property
    def rate(self) -> float:
        """Tokens added per second."""
        return self.requests / PERIODS[self.per]

    def describe(self) -> str:
        burst = f", burst {self.burst}" if self.burst is not None else ""
        return f"{self.requests} per {self.per}{burst}"


class LimitKey(NamedTuple):
    """One limit that applies to a call: `kind` is tool, endpoint or client; `name` whose it is."""

    kind: str
    name: str
    limit: RateLimit

    @property
    def bucket(self) -> Bucket:
        return Bucket(f"{self.kind}:{self.name}", float(self.limit.capacity), self.limit.rate)


class Bucket(NamedTuple):
    """What a store needs of a limit: the bucket's id, its capacity, its refill per second."""

    id: str
    capacity: float
    rate: float


class Refusal(NamedTuple):
    """Why a store refused: the index of the empty bucket (-1: the upstream's pause), and for how long."""

    index: int
    seconds: float


class LimitStore(Protocol):
    """Where buckets and pauses live. `take` is atomic: one token from each bucket, or none."""

    async def take(self, buckets: Sequence[Bucket], pause: str) -> Refusal | None: ...

    async def pause(self, key: str, seconds: float) -> None: ...

    async def paused_for(self, key: str) -> float: ...


class Pauses(Protocol):
    """What the executor needs: record an upstream's pause, and ask how long one has left."""

    async def pause(self, upstream: str, seconds: float) -> None: ...

    async def paused_for(self, upstream: str) -> float: ...


class MemoryStore:
    """Buckets and pauses in this process. `clock` (seconds, monotonic) is injectable for tests.

    Nothing in `take` awaits, so on one event loop it is atomic without a lock.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._buckets: dict[str, tuple[float, float, float]] = {}  # id -> (tokens, when counted, capacity)
        self._pauses: dict[str, float] = {}  # key -> until (clock)

    async def take(self, buckets: Sequence[Bucket], pause: str) -> Refusal | None:
        return self.take_now(buckets, pause)

    def take_now(self, buckets: Sequence[Bucket], pause: str) -> Refusal | None:
        """`take`, synchronously (a shared store falls back to this when it cannot be reached)."""
        now = self.clock()
        left = self._left(pause, now)
        if left > 0:
            return Refusal(-1, left)
        counted = []
        for index, bucket in enumerate(buckets):
            tokens, stamp, capacity = self._buckets.get(bucket.id, (bucket.capacity, now, bucket.capacity))
            # A reload that resized the bucket: the calls already taken still count against the new size.
            tokens += bucket.capacity - capacity
            tokens = min(bucket.capacity, tokens + max(0.0, now - stamp) * bucket.rate)
            if tokens + _EPSILON < 1:
                return Refusal(index, (1 - tokens) / bucket.rate)
            counted.append(tokens)
        for bucket, tokens in zip(buckets, counted, strict=True):
            self._buckets[bucket.id] = (tokens - 1, now, bucket.capacity)
        return None

    async def pause(self, key: str, seconds: float) -> None:
        self.pause_now(key, seconds)

    def pause_now(self, key: str, seconds: float) -> None:
        until = self.clock() + seconds
        # Two 429s close together: the later end wins, never an earlier one.
        self._pauses[key] = max(until, self._pauses.get(key, until))

    async def paused_for(self, key: str) -> float:
        return self._left(key, self.clock())

    def _left(self, key: str, now: float) -> float:
        until = self._pauses.get(key)
        if until is None:
            return 0.0
        if until <= now:
            del self._pauses[key]
            return 0.0
        return until - now


class RateLimits:
    """The rate limits of every call and the upstreams' pauses, over one `LimitStore`."""

    def __init__(self, store: LimitStore | None = None) -> None:
        self.store: LimitStore = store if store is not None else MemoryStore()

    async def acquire(self, keys: Sequence[LimitKey | tuple[str, str, RateLimit]], *, upstream: str = "") -> None:
        """Take one token from each limit in `keys`, or raise `RateLimited` having taken none.

        `upstream`: the tool whose upstream's 429 pause also refuses the call (checked first, in
        the same atomic step).
        """
        keys = [LimitKey(*key) for key in keys]
        refusal = await self.store.take([key.bucket for key in keys], _pause_key(upstream) if upstream else "")
        if refusal is None:
            return
        wait = _seconds(refusal.seconds)
        if refusal.index < 0:
            limit = f"the upstream of tool {upstream!r}"
            text = f"the upstream API of tool {upstream!r} asked to wait (HTTP 429 with Retry-After)"
        else:
            kind, name, rate_limit = keys[refusal.index]
            limit = f"{kind} {name!r}"
            text = f"the rate limit of {limit} ({rate_limit.describe()}) is reached"
        raise RateLimited(f"{text}; try again in {wait:g} s", limit=limit, retry_after=wait)

    async def pause(self, upstream: str, seconds: float) -> None:
        """Refuse calls to `upstream`'s tool for `seconds` (at most `MAX_PAUSE_SECONDS`)."""
        if seconds > 0:
            await self.store.pause(_pause_key(upstream), min(seconds, MAX_PAUSE_SECONDS))

    async def paused_for(self, upstream: str) -> float:
        """Seconds left in `upstream`'s pause; 0 when there is none."""
        return await self.store.paused_for(_pause_key(upstream))


def _pause_key(upstream: str) -> str:
    return f"pause:{upstream}"


def _seconds(wait: float) -> float:
    """A wait rounded up to the millisecond: "try again in" must never be too early."""
    return max(0.001, math.ceil(wait * 1000 - 1e-6) / 1000)
