"""The optional shared store on Redis (`serve --state redis://host:6379/0`): what replicas must agree on.

Without it everything stays in the process. With it, the rate limits' buckets and the upstreams'
429 pauses (ratelimit.py) and the task handles (tasks.py) live in one Redis, so several replicas
(or `--workers`) hold one limit and answer `tasks/get` for a task any of them started.

Each bucket update is one Lua script (a token bucket over all the call's limits at once, on
Redis's own clock), so the limits hold to the request across replicas. Redis being down must never
stop or stall calls: every command has a short timeout and no retry; on a failure the store falls
back to this process's own buckets for a few seconds before trying Redis again, and says so in one
WARNING per minute (observe/logcap.py). A Redis URL may carry a password: it is shown as
`redis://host:port/db` only, and the password is hidden from the logs like any secret.

The client library is the optional extra `mcp-webtools[redis]` (redis-py's asyncio client).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

import anyio

from ..observe.logcap import CappedLog
from ..ratelimit import Bucket, MemoryStore, Refusal

__all__ = ["STATE_SCHEMES", "RedisState", "state_url_problem", "shown_url"]

logger = logging.getLogger("mcp_webtools.state")

T = TypeVar("T")
STATE_SCHEMES = ("redis", "rediss", "unix")
# Each Redis command must answer within this; a dead or unreachable Redis costs a call at most this much.
COMMAND_TIMEOUT_SECONDS = 0.5
# After a failure, calls use the in-process store this long before Redis is tried again.
RETRY_REDIS_AFTER_SECONDS = 5.0
PREFIX = "mcp-webtools:"

# KEYS: the buckets, then the pause; ARGV: capacity and rate of each bucket. Returns nil (taken
# from each) or {index (0-based; -1 the pause), seconds as a string} (taken from none).
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local n = #KEYS - 1
local paused = redis.call('PTTL', KEYS[n + 1])
if paused > 0 then return {-1, tostring(paused / 1000)} end
local counted = {}
for i = 1, n do
  local capacity, rate = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  local state = redis.call('HMGET', KEYS[i], 'tokens', 'stamp', 'capacity')
  local tokens, stamp, was = tonumber(state[1]), tonumber(state[2]), tonumber(state[3])
  if tokens == nil or stamp == nil then tokens, stamp, was = capacity, now, capacity end
  -- Resized by a reload: the calls already taken count against the new size.
  if was ~= nil then tokens = tokens + capacity - was end
  tokens = math.min(capacity, tokens + math.max(0, now - stamp) * rate)
  if tokens + 1e-9 < 1 then return {i - 1, tostring((1 - tokens) / rate)} end
  counted[i] = tokens
end
for i = 1, n do
  local capacity, rate = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  redis.call('HSET', KEYS[i], 'tokens', tostring(counted[i] - 1), 'stamp', tostring(now), 'capacity', ARGV[2 * i - 1])
  -- A bucket left alone this long is full again: forget it.
  redis.call('PEXPIRE', KEYS[i], math.ceil(capacity / rate * 1000) + 1000)
end
return false
"""
# KEYS[1]: the pause; ARGV[1]: its length in ms. A later end wins, never an earlier one.
_PAUSE = """
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
end
"""


def state_url_problem(url: str) -> str | None:
    """What is wrong with a `--state` URL, in words naming no secret; None when it is usable."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "is not a URL; use redis://host:6379/0"
    if parts.scheme not in STATE_SCHEMES:
        return "must be a redis:// (or rediss://, unix://) URL, e.g. redis://host:6379/0"
    if parts.scheme != "unix" and not parts.hostname:
        return "names no host; use redis://host:6379/0"
    return None


def shown_url(url: str) -> str:
    """The URL as logs may show it: scheme, host, port and database, never a user or password."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


class RedisState:
    """The shared store: a `ratelimit.LimitStore` for the buckets and pauses, and the task board."""

    def __init__(
        self, url: str, *, timeout: float = COMMAND_TIMEOUT_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        try:
            from redis.asyncio import Redis
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff
        except ImportError:
            raise RuntimeError("--state needs the Redis client: pip install 'mcp-webtools[redis]'") from None
        self.url = shown_url(url)
        self.timeout = timeout
        self.redis = Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),  # no retry: a dead Redis must cost one timeout at most
            decode_responses=True,
        )
        self._take = self.redis.register_script(_TAKE)
        self._pause = self.redis.register_script(_PAUSE)
        # The buckets and pauses of this process, used while Redis cannot be reached.
        self.fallback = MemoryStore(clock)
        self._clock = clock
        self._down_until = float("-inf")
        self._warnings = CappedLog(logger, "Redis failure warnings", lines=1, window=60.0, clock=clock)

    async def aclose(self) -> None:
        await self.redis.aclose()

    async def check(self) -> bool:
        """At start: say whether Redis answers (an unreachable one is the usual capped WARNING)."""

        async def ping() -> bool:
            return bool(await self.redis.ping())

        reachable = await self.shared_or_local(ping, lambda: False, "rate limits, 429 pauses and task handles")
        if reachable:
            logger.info("the shared state at %s answers", self.url)
        return reachable

    # -- ratelimit.LimitStore ------------------------------------------------------------------

    async def take(self, buckets: Sequence[Bucket], pause: str) -> Refusal | None:
        keys = [PREFIX + bucket.id for bucket in buckets] + [PREFIX + (pause or "pause:")]
        args = [repr(number) for bucket in buckets for number in (bucket.capacity, bucket.rate)]

        async def shared() -> Refusal | None:
            answer = await self._take(keys=keys, args=args)
            return None if answer is None else Refusal(int(answer[0]), float(answer[1]))

        return await self.shared_or_local(shared, lambda: self.fallback.take_now(buckets, pause), "rate limits")

    async def pause(self, key: str, seconds: float) -> None:
        self.fallback.pause_now(key, seconds)  # this process obeys it even if Redis cannot be told

        async def shared() -> None:
            await self._pause(keys=[PREFIX + key], args=[max(1, round(seconds * 1000))])

        await self.shared_or_local(shared, lambda: None, "an upstream's pause")

    async def paused_for(self, key: str) -> float:
        local = await self.fallback.paused_for(key)

        async def shared() -> float:
            left = await self.redis.pttl(PREFIX + key)
            return max(local, left / 1000 if left > 0 else 0.0)

        return await self.shared_or_local(shared, lambda: local, "an upstream's pause")

    # -- the task board (tasks.py) -----------------------------------------------------------

    async def put_task(self, task_id: str, record: dict[str, Any], ttl_seconds: float) -> None:
        """Publish a task's state for every replica, until it expires."""

        async def shared() -> None:
            await self.redis.set(PREFIX + "task:" + task_id, json.dumps(record), px=max(1, round(ttl_seconds * 1000)))

        await self.shared_or_local(shared, lambda: None, "task handles")

    async def get_task(self, task_id: str) -> dict[str, Any] | None:
        """A task's state as some replica published it; None if unknown, expired or Redis is down."""

        async def shared() -> dict[str, Any] | None:
            text = await self.redis.get(PREFIX + "task:" + task_id)
            return json.loads(text) if text else None

        return await self.shared_or_local(shared, lambda: None, "task handles")

    # -- failures ------------------------------------------------------------------------------

    async def shared_or_local(self, shared: Callable[[], Awaitable[T]], local: Callable[[], T], what: str) -> T:
        """`shared()` on Redis, bounded; while Redis is failing, `local()` and a capped WARNING."""
        from redis.exceptions import RedisError

        if self._clock() < self._down_until:
            return local()
        try:
            with anyio.fail_after(self.timeout * 2):  # the client's own timeouts, and a bound on the whole
                return await shared()
        except (RedisError, OSError, TimeoutError) as exc:
            self._down_until = self._clock() + RETRY_REDIS_AFTER_SECONDS
            self._warnings.warning(
                "the shared state at %s cannot be reached (%s); %s are per process until it is back",
                self.url,
                type(exc).__name__,
                what,
                extra={"event": "state_unavailable"},
            )
            return local()
