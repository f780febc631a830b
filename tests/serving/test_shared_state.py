"""The shared store on a real redis-server (`serve --state redis://...`): one limit across replicas,
429 pauses shared, task handles readable on any replica, and Redis going down costs no call.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.extension import ClaimContext, ClientExtension, ResultClaim
from mcp.client.streamable_http import streamable_http_client
from support import (
    REPO,
    ManualClock,
    RedisServer,
    Reply,
    ServerProcess,
    TaskHandle,
    free_port,
    get_task,
    hamsa_tool,
    http_server_process,
    secret,
    text_of,
    write_tools,
)

from mcp_webtools.ratelimit import Bucket, RateLimits
from mcp_webtools.results import META_HTTP
from mcp_webtools.serving.state import RedisState, shown_url, state_url_problem
from mcp_webtools.serving.tasks import EXTENSION

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]  # every test starts redis-server

BOUND = 60
JSON = [("content-type", "application/json")]


def limited_tool(url: str, rate_limit: dict) -> dict:
    return {**hamsa_tool("Orders", url, timeOut=20), "retry": {"retries": 0}, "rateLimit": rate_limit}


async def url_of(server: ServerProcess) -> str:
    match = await server.wait_for_log(r"serving MCP at (http://127\.0\.0\.1:\d+)/mcp")
    return match.group(1)


@asynccontextmanager
async def mcp_http(url: str, era: str = "auto", extensions: list | None = None) -> AsyncIterator[Client]:
    http = httpx2.AsyncClient(headers={"Authorization": "Bearer same-caller"}, timeout=httpx2.Timeout(30, read=60))
    streams = streamable_http_client(f"{url}/mcp", http_client=http)
    async with http, Client(streams, mode=era, extensions=extensions) as client:
        yield client


# -- the store on its own ------------------------------------------------------------------------


async def test_two_stores_on_one_redis_hold_one_bucket_all_or_none(redis: RedisServer):
    one, two = RedisState(redis.url), RedisState(redis.url)
    tool = Bucket("tool:orders", 3.0, 3 / 3600)
    client_a = Bucket("client:a", 1.0, 1 / 3600)
    client_b = Bucket("client:b", 5.0, 5 / 3600)
    try:
        assert await one.take([tool, client_a], "pause:orders") is None
        refused = await two.take([tool, client_a], "pause:orders")  # the other replica sees a's bucket empty
        assert refused is not None and refused.index == 1 and 3590 < refused.seconds <= 3600
        assert await two.take([tool, client_b], "pause:orders") is None  # the refusal took no tool token
        assert await one.take([tool, client_b], "pause:orders") is None
        refused = await two.take([tool, client_b], "pause:orders")
        assert refused is not None and refused.index == 0 and 1190 < refused.seconds <= 1200
        # Thirty at once over both stores, a bucket of ten: exactly ten get through.
        ten = Bucket("tool:ten", 10.0, 10 / 3600)
        taken: list[bool] = []

        async def take(store: RedisState) -> None:
            taken.append(await store.take([ten], "pause:ten") is None)

        async with anyio.create_task_group() as tg:
            for n in range(30):
                tg.start_soon(take, (one, two)[n % 2])
        assert sorted(taken) == [False] * 20 + [True] * 10
    finally:
        await one.aclose()
        await two.aclose()


async def test_a_resized_bucket_counts_the_calls_already_taken(redis: RedisServer):
    """A reload on one replica changes a limit: the calls taken under the old size still count."""
    state = RedisState(redis.url)
    try:
        assert await state.take([Bucket("tool:orders", 1.0, 1 / 3600)], "pause:orders") is None
        resized = Bucket("tool:orders", 3.0, 3 / 3600)
        assert [await state.take([resized], "pause:orders") is None for _ in range(3)] == [True, True, False]
    finally:
        await state.aclose()


async def test_a_pause_set_on_one_replica_refuses_on_the_other(redis: RedisServer):
    one, two = RateLimits(RedisState(redis.url)), RateLimits(RedisState(redis.url))
    try:
        await one.pause("orders", 30)
        assert 29 < await two.paused_for("orders") <= 30
        with pytest.raises(Exception, match=r"asked to wait \(HTTP 429 with Retry-After\); try again in") as caught:
            await two.acquire([], upstream="orders")
        assert caught.value.limit == "the upstream of tool 'orders'" and 29 < caught.value.retry_after <= 30
        await two.acquire([], upstream="other")  # other tools are not paused
    finally:
        await one.store.aclose()
        await two.store.aclose()


async def test_redis_down_falls_back_to_this_process_with_one_warning_a_minute(redis: RedisServer, caplog):
    clock = ManualClock()
    state = RedisState(redis.url, clock=clock)
    bucket = Bucket("tool:orders", 2.0, 2 / 3600)
    caplog.set_level(logging.WARNING, "mcp_webtools.state")
    try:
        assert await state.take([bucket], "pause:orders") is None  # on Redis
        redis.kill()
        await redis.process.wait()
        with anyio.fail_after(5):  # never a hang: each command is bounded
            answers = [await state.take([bucket], "pause:orders") for _ in range(3)]
        # Per process from here: a fresh local bucket of two, so the third call is refused.
        assert [answer is None for answer in answers] == [True, True, False]
        clock.now += 30  # Redis is tried again after a few seconds, still down: no second line yet
        await state.take([bucket], "pause:orders")
        warnings = [r.getMessage() for r in caplog.records if r.name == "mcp_webtools.state"]
        assert len(warnings) == 1
        assert re.fullmatch(
            rf"the shared state at {re.escape(redis.url)} cannot be reached \(\w+\); rate limits are per process "
            r"until it is back \(1 such line within 60 s: more Redis failure warnings are left out for now\)",
            warnings[0],
        )
        clock.now += 31  # a minute on: one more line, after the count of those left out
        await state.take([bucket], "pause:orders")
        warnings = [r.getMessage() for r in caplog.records if r.name == "mcp_webtools.state"]
        assert len(warnings) == 3
        assert warnings[1] == "1 more Redis failure warnings were not logged (at most 1 line per 60 s)"
        assert warnings[2].startswith(f"the shared state at {redis.url} cannot be reached (")
    finally:
        await state.aclose()


def test_state_urls_are_checked_and_shown_without_credentials():
    assert state_url_problem("redis://cache:6379/0") is None
    assert state_url_problem("http://cache:6379") == (
        "must be a redis:// (or rediss://, unix://) URL, e.g. redis://host:6379/0"
    )
    assert state_url_problem("redis:///0") == "names no host; use redis://host:6379/0"
    assert shown_url(f"redis://user:{secret('hunter2-pass')}@cache:6380/2") == "redis://cache:6380/2"


# -- serve processes sharing one Redis -------------------------------------------------------------


async def test_two_serve_processes_sharing_redis_hold_one_limit_to_the_request(upstream, tmp_path, redis):
    upstream.reply_json("GET", "/orders", {"ok": True})
    config = write_tools(tmp_path, [limited_tool(f"{upstream.url}/orders", {"requests": 10, "per": "hour"})])
    flags = ("--stateless", "--state", redis.url)
    results: list[types.CallToolResult] = []
    async with http_server_process(config, *flags) as one, http_server_process(config, *flags) as two:
        urls = [await url_of(one), await url_of(two)]
        for server in (one, two):  # checked at start, not at the first call
            await server.wait_for_log(rf"INFO mcp_webtools\.state: the shared state at {re.escape(redis.url)} answers")
        async with mcp_http(urls[0]) as first, mcp_http(urls[1]) as second:

            async def call(client: Client) -> None:
                results.append(await client.call_tool("orders", {}))

            async with anyio.create_task_group() as tg:
                for n in range(30):
                    tg.start_soon(call, (first, second)[n % 2])
    assert len(upstream.requests) == 10
    refused = [r for r in results if r.is_error]
    assert len(refused) == 20
    for result in refused:
        wait = result.meta[META_HTTP]["retryAfterSeconds"]
        assert 0 < wait <= 360
        assert text_of(result) == (
            "Calling 'orders' was refused, nothing was sent: the rate limit of tool 'orders' (10 per hour) "
            f"is reached; try again in {wait:g} s."
        )


async def test_a_429_pause_reaches_the_other_replica(upstream, tmp_path, redis):
    upstream.reply("GET", "/orders", Reply(429, b"quota", [("retry-after", "300")]))
    config = write_tools(tmp_path, [limited_tool(f"{upstream.url}/orders", {"requests": 100, "per": "second"})])
    flags = ("--stateless", "--state", redis.url)
    async with http_server_process(config, *flags) as one, http_server_process(config, *flags) as two:
        async with mcp_http(await url_of(one)) as first, mcp_http(await url_of(two)) as second:
            answered = await first.call_tool("orders", {})
            paused = await second.call_tool("orders", {})
    assert text_of(answered).startswith("The upstream API answered HTTP 429 Too Many Requests.")
    assert len(upstream.requests) == 1
    assert text_of(paused).startswith(
        "Calling 'orders' was refused, nothing was sent: the upstream API of tool 'orders' asked to wait"
    )
    assert 290 < paused.meta[META_HTTP]["retryAfterSeconds"] <= 300


class ReadElsewhere(ClientExtension):
    """Takes the task handle from one replica and polls `tasks/get` on another until the task ends."""

    identifier = EXTENSION

    def __init__(self, elsewhere: Client, release: anyio.Event) -> None:
        self.elsewhere, self.release = elsewhere, release
        self.handles: list[TaskHandle] = []
        self.states: list[str] = []

    def claims(self) -> list[ResultClaim[Any]]:
        return [ResultClaim(result_type="task", model=TaskHandle, resolve=self._poll)]

    async def _poll(self, handle: TaskHandle, ctx: ClaimContext) -> types.CallToolResult:
        self.handles.append(handle)
        while True:
            state = await get_task(self.elsewhere.session, handle.task_id)
            self.states.append(state.status)
            if state.status == "working":
                self.release.set()  # the other replica saw it running: now let the upstream answer
                await anyio.sleep(0.01)  # the poll interval, not synchronisation
                continue
            assert state.status == "completed" and state.result is not None, state
            return types.CallToolResult.model_validate(state.result)


async def test_a_task_started_on_one_replica_is_read_on_the_other(upstream, tmp_path, redis):
    release = anyio.Event()
    upstream.reply("GET", "/orders", Reply(200, b'{"id": 7}', JSON, wait=release))
    config = write_tools(tmp_path, [hamsa_tool("Orders", f"{upstream.url}/orders", timeOut=20)])
    flags = ("--stateless", "--tasks", "--state", redis.url)
    async with http_server_process(config, *flags) as one, http_server_process(config, *flags) as two:
        url_one, url_two = await url_of(one), await url_of(two)
        async with mcp_http(url_two) as elsewhere:
            extension = ReadElsewhere(elsewhere, release)
            async with mcp_http(url_one, extensions=[extension]) as starter:
                with anyio.fail_after(BOUND):
                    result = await starter.call_tool("orders", {})
            # Another caller (another token) cannot read it, on either replica.
            http = httpx2.AsyncClient(headers={"Authorization": "Bearer other-caller"}, timeout=30)
            async with http, Client(streamable_http_client(f"{url_two}/mcp", http_client=http)) as stranger:
                with pytest.raises(Exception, match="Unknown or expired task"):
                    await get_task(stranger.session, extension.handles[0].task_id)
    assert result.is_error is False and text_of(result) == '{"id":7}'
    assert extension.states[0] == "working" and extension.states[-1] == "completed"
    assert len(upstream.requests) == 1


async def test_redis_killed_mid_run_calls_go_on_with_one_warning(upstream, tmp_path, redis):
    upstream.reply_json("GET", "/orders", {"ok": True})
    config = write_tools(tmp_path, [limited_tool(f"{upstream.url}/orders", {"requests": 3, "per": "hour"})])
    async with http_server_process(config, "--stateless", "--state", redis.url) as server:
        async with mcp_http(await url_of(server)) as client:
            assert (await client.call_tool("orders", {})).is_error is False  # on Redis
            redis.kill()
            await redis.process.wait()
            with anyio.fail_after(BOUND):
                results = [await client.call_tool("orders", {}) for _ in range(4)]
        log = await server.wait_for_log(r"cannot be reached")
    # Per process now: a fresh bucket of three, so the fourth call after the kill is refused.
    assert [r.is_error for r in results] == [False, False, False, True]
    assert len(upstream.requests) == 4
    warnings = re.findall(r"WARNING.*the shared state at .* cannot be reached", server.log)
    assert len(warnings) == 1, server.log
    assert re.search(rf"the shared state at {re.escape(redis.url)} cannot be reached \(\w+\)", log.string)


async def test_a_redis_down_at_start_is_one_warning_and_calls_go_on(upstream, tmp_path):
    upstream.reply_json("GET", "/orders", {"ok": True})
    config = write_tools(tmp_path, [limited_tool(f"{upstream.url}/orders", {"requests": 2, "per": "hour"})])
    nobody = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    async with http_server_process(config, "--stateless", "--state", nobody) as server:
        url = await url_of(server)
        await server.wait_for_log(r"WARNING mcp_webtools\.state: the shared state at .* cannot be reached")
        async with mcp_http(url) as client:
            with anyio.fail_after(BOUND):
                results = [await client.call_tool("orders", {}) for _ in range(3)]
    assert [r.is_error for r in results] == [False, False, True] and len(upstream.requests) == 2
    assert len(re.findall(r"WARNING.*the shared state at .* cannot be reached", server.log)) == 1


async def test_workers_with_tasks_are_allowed_with_a_shared_state(tmp_path, redis):
    config = write_tools(tmp_path, [hamsa_tool("Orders", "http://127.0.0.1:9/orders")])
    flags = ("--workers", "2", "--stateless", "--tasks", "--state", redis.url)
    async with http_server_process(config, *flags) as server:
        served = await server.wait_for_logs(r"serving MCP at (http://127\.0\.0\.1:\d+)/mcp", 2)
    assert len(served) == 2


async def test_a_bad_state_url_is_a_usage_error_that_shows_no_password(tmp_path):
    config = write_tools(tmp_path, [hamsa_tool("Orders", "http://127.0.0.1:9/orders")])
    command = [sys.executable, "-m", "mcp_webtools", "serve", "--config", str(config)]
    url = f"http://user:{secret('s3cret-pw')}@cache:6379"
    result = await anyio.run_process([*command, "--state", url], cwd=REPO, check=False)
    stderr = result.stderr.decode()
    assert result.returncode == 2 and "s3cret-pw" not in stderr
    assert stderr.strip().endswith(
        "argument --state: must be a redis:// (or rediss://, unix://) URL, e.g. redis://host:6379/0"
    )
