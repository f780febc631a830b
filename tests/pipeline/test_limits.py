"""Concurrency limits: a global cap and per-tool caps on calls in flight, each with a bounded queue.

Past the queue a call is answered at once with "busy, try again"; time spent queued counts
against the tool's timeout. The upstream here holds every request until the test releases it, so
the tests can say exactly how many requests it held at once and which calls were turned away.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from support import ERAS, Recorded, Reply, Upstream, hamsa_tool, serve_asgi, write_tools

from mcp_webtools.cli.options import limit_options
from mcp_webtools.errors import Busy, ShuttingDown
from mcp_webtools.limits import DEFAULT_MAX_CONCURRENCY, DEFAULT_MAX_QUEUE, BoundedLimiter, CallLimits, InFlightCalls
from mcp_webtools.serving.http_app import HttpSettings, build_http_app
from mcp_webtools.serving.runtime import ServerOptions, open_webtools
from mcp_webtools.serving.server import WebTools

pytestmark = pytest.mark.anyio

BOUND = 30  # seconds: every wait is bounded, so a broken guarantee fails instead of hanging
N_PARAM = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}


def tool(name: str, url: str, *, max_concurrency: int | None = None, **settings: object) -> dict:
    """A Hamsa-shaped tool without retries; `retry` and `maxConcurrency` are our top-level settings."""
    definition = {**hamsa_tool(name, url, **settings), "retry": {"retries": 0}}
    if max_concurrency is not None:
        definition["maxConcurrency"] = max_concurrency
    return definition


async def until(condition: Callable[[], bool]) -> None:
    """Wait for a condition the server exposes no event for (e.g. a call entering a queue)."""
    with anyio.fail_after(BOUND):
        while not condition():
            await anyio.sleep(0.005)


# -- the limiters on their own -------------------------------------------------------------------


async def test_only_callers_really_queued_count_against_the_queue_bound():
    """Limit 1, queue 1: the first holds, the second waits, the third is busy, however they interleave.

    (The first version counted a caller admitted at once as "waiting" until it next yielded, so
    the second caller of a burst was turned away with an empty queue.)
    """
    limiter = BoundedLimiter(1, max_waiting=1, name="the server")
    release, log = anyio.Event(), []

    async def caller(name: str) -> None:
        try:
            async with limiter.hold():
                log.append(f"{name} in")
                await release.wait()
        except Busy as exc:
            log.append(f"{name} busy: {exc}")

    with anyio.fail_after(BOUND):
        async with anyio.create_task_group() as tg:
            for name in ("a", "b", "c"):
                tg.start_soon(caller, name)
            await until(lambda: len(log) == 2)
            assert (limiter.in_use, limiter.waiting) == (1, 1)
            release.set()
    assert log == ["a in", "c busy: the server already has 1 call in flight, its limit, and 1 waiting", "b in"]
    assert (limiter.in_use, limiter.waiting) == (0, 0)


async def test_waiters_are_admitted_first_come_first_served():
    limiter = BoundedLimiter(1, max_waiting=10, name="the server")
    gates = [anyio.Event() for _ in range(4)]
    order: list[int] = []

    async def caller(i: int) -> None:
        async with limiter.hold():
            order.append(i)
            await gates[i].wait()

    with anyio.fail_after(BOUND):
        async with anyio.create_task_group() as tg:
            for i in range(4):
                tg.start_soon(caller, i)
                await until(lambda i=i: limiter.in_use + limiter.waiting == i + 1)
            for gate in gates:
                gate.set()
    assert order == [0, 1, 2, 3]


async def test_a_call_waiting_for_its_tool_holds_no_global_slot():
    limits = CallLimits(global_limit=2, max_waiting=5)
    release = anyio.Event()
    entered: list[str] = []

    async def call(tool: str, cap: int | None, label: str) -> None:
        async with limits.slot(tool, cap):
            entered.append(label)
            await release.wait()

    with anyio.fail_after(BOUND):
        async with anyio.create_task_group() as tg:
            tg.start_soon(call, "capped", 1, "capped-1")
            await until(lambda: entered == ["capped-1"])
            tg.start_soon(call, "capped", 1, "capped-2")
            await until(lambda: limits.tool_limiter("capped", 1).waiting == 1)
            tg.start_soon(call, "other", None, "other-1")
            await until(lambda: len(entered) == 2)
            assert entered == ["capped-1", "other-1"] and limits.in_flight == 2
            release.set()
    assert entered == ["capped-1", "other-1", "capped-2"] and limits.in_flight == 0


async def test_a_reload_changes_a_tools_cap_in_place():
    """Calls admitted under the old cap still count against the new one."""
    limits = CallLimits(global_limit=10, max_waiting=5)
    limiter = limits.tool_limiter("t", 2)
    release = anyio.Event()
    entered: list[str] = []

    async def call(cap: int, label: str) -> None:
        async with limits.slot("t", cap):
            entered.append(label)
            await release.wait()

    with anyio.fail_after(BOUND):
        async with anyio.create_task_group() as tg:
            tg.start_soon(call, 2, "old-1")
            tg.start_soon(call, 2, "old-2")
            await until(lambda: len(entered) == 2)
            tg.start_soon(call, 1, "new-1")  # the cap is now 1, with 2 still in flight: it waits
            await until(lambda: limiter.waiting == 1)
            assert limits.tool_limiter("t", 1) is limiter and (limiter.limit, limiter.in_use) == (1, 2)
            limiter.limit = 3  # raised again: the waiter is admitted at once
            await until(lambda: len(entered) == 3)
            release.set()
    assert entered == ["old-1", "old-2", "new-1"] and limiter.in_use == 0
    assert limits.tool_limiter("t", None) is None  # the cap removed: the tool shares the global one
    assert limits.tool_limiter("t", 1) is not limiter


async def test_drain_waits_for_running_calls_then_cancels_the_rest():
    in_flight = InFlightCalls()
    quick, outcome = anyio.Event(), {}

    async def call(name: str, until_set: anyio.Event | None) -> None:
        with in_flight.track() as scope:
            await (until_set.wait() if until_set else anyio.sleep_forever())
        outcome[name] = "cancelled" if scope.cancelled_caught else "finished"

    with anyio.fail_after(BOUND):
        async with anyio.create_task_group() as tg:
            tg.start_soon(call, "quick", quick)
            tg.start_soon(call, "stuck", None)
            await until(lambda: len(in_flight) == 2)
            closing = anyio.Event()

            async def note_closing() -> None:
                await in_flight.wait_closing()
                closing.set()

            tg.start_soon(note_closing)

            async def drain() -> None:
                outcome["cancelled"] = await in_flight.drain(1.0)  # the grace is the point here
                outcome["reason"] = in_flight.cancel_reason

            tg.start_soon(drain)
            await closing.wait()
            with pytest.raises(ShuttingDown, match="^mcp-webtools is shutting down$"):
                with in_flight.track():
                    pass
            quick.set()
    assert outcome == {
        "quick": "finished",
        "stuck": "cancelled",
        "cancelled": 1,
        "reason": "it was still running after the 1 s grace period",
    }
    assert len(in_flight) == 0


async def test_a_forced_drain_cancels_at_once():
    in_flight, forced = InFlightCalls(), []
    scopes: list[anyio.CancelScope] = []

    async def call() -> None:
        with in_flight.track() as scope:
            scopes.append(scope)
            await anyio.sleep_forever()

    with anyio.fail_after(BOUND):  # far less than the 600 s grace
        async with anyio.create_task_group() as tg:
            tg.start_soon(call)
            await until(lambda: len(in_flight) == 1)
            tg.start_soon(lambda: in_flight.drain(600, forced=lambda: bool(forced)))
            await until(lambda: in_flight.closing)
            forced.append(True)
    assert scopes[0].cancelled_caught and in_flight.cancel_reason == "the shutdown was forced"


# -- over MCP, with a real upstream --------------------------------------------------------------


class Gate:
    """An upstream handler that holds each request until the test releases its `n`."""

    def __init__(self) -> None:
        self.held: Counter[str] = Counter()  # path -> requests held right now
        self.most: Counter[str] = Counter()  # path -> most requests held at once
        self.seen: list[tuple[str, int]] = []
        self._release: dict[int, anyio.Event] = {}

    def release(self, *ns: int) -> None:
        for n in ns:
            self._release.setdefault(n, anyio.Event()).set()

    @property
    def holding(self) -> int:
        return sum(self.held.values())

    async def __call__(self, request: Recorded) -> Reply:
        path, n = request.raw_path, int(dict(request.query_pairs)["n"])
        self.seen.append((path, n))
        self.held[path] += 1
        self.most[path] = max(self.most[path], self.held[path])
        self.most["all"] = max(self.most["all"], self.holding)
        try:
            with anyio.fail_after(BOUND):
                await self._release.setdefault(n, anyio.Event()).wait()
        finally:
            self.held[path] -= 1
        return Reply(200, json.dumps({"n": n}).encode(), [("content-type", "application/json")])


@pytest.fixture
def gate(upstream: Upstream) -> Gate:
    gate = Gate()
    for path in ("/slow", "/capped", "/queued"):
        upstream.reply("GET", path, gate)
    return gate


def tools(tmp_path: Path, url: str) -> Path:
    return write_tools(
        tmp_path,
        [
            tool("Slow", f"{url}/slow", params=N_PARAM),
            tool("Capped", f"{url}/capped", params=N_PARAM, max_concurrency=1),
            # A 1 s timeout, because timing out in the queue is the point.
            tool("Queued", f"{url}/queued", params=N_PARAM, timeOut=1),
        ],
    )


@asynccontextmanager
async def limited_client(config: Path, era: str, **options: int) -> AsyncIterator[tuple[Client, WebTools]]:
    webtools = open_webtools([str(config)], options=ServerOptions(**options))
    async with serve_asgi(build_http_app(webtools, HttpSettings())) as base:
        http = httpx2.AsyncClient(timeout=httpx2.Timeout(30, read=60))
        async with http, Client(streamable_http_client(f"{base}/mcp", http_client=http), mode=era) as client:
            await client.list_tools()
            yield client, webtools


class Calls:
    """Tool calls started in the background, their results collected by label."""

    def __init__(self, client: Client, tg: anyio.abc.TaskGroup) -> None:
        self.client, self.tg = client, tg
        self.results: dict[str, types.CallToolResult] = {}

    def start(self, name: str, n: int) -> None:
        async def call() -> None:
            self.results[f"{name} {n}"] = await self.client.call_tool(name, {"n": n})

        self.tg.start_soon(call)

    def texts(self) -> dict[str, str]:
        return {label: result.content[0].text for label, result in sorted(self.results.items())}


@pytest.mark.parametrize("era", ERAS)
async def test_past_the_global_cap_and_queue_calls_are_busy_at_once(upstream, gate, tmp_path, era):
    config = tools(tmp_path, upstream.url)
    async with limited_client(config, era, max_concurrency=2, max_queue=1) as (client, webtools):
        limiter = webtools.calls.limits.global_limiter
        with anyio.fail_after(BOUND):
            async with anyio.create_task_group() as tg:
                calls = Calls(client, tg)
                calls.start("slow", 1)
                await until(lambda: gate.holding == 1)
                calls.start("slow", 2)
                await until(lambda: gate.holding == 2)
                calls.start("slow", 3)
                await until(lambda: limiter.waiting == 1)
                # Answered while the other three are still held: no waiting for a busy answer.
                busy = await client.call_tool("slow", {"n": 4})
                assert busy.is_error is True and busy.content[0].text == (
                    "Calling 'slow' failed: busy, try again shortly "
                    "(the server already has 2 calls in flight, its limit, and 1 waiting)."
                )
                assert gate.seen == [("/slow", 1), ("/slow", 2)]
                gate.release(1)
                await until(lambda: len(gate.seen) == 3)
                gate.release(2, 3)
    assert calls.texts() == {"slow 1": '{"n":1}', "slow 2": '{"n":2}', "slow 3": '{"n":3}'}
    assert gate.seen == [("/slow", 1), ("/slow", 2), ("/slow", 3)] and gate.most["all"] == 2
    assert (limiter.in_use, limiter.waiting) == (0, 0)


@pytest.mark.parametrize("era", ERAS)
async def test_a_tools_own_cap_and_the_global_cap_together(upstream, gate, tmp_path, era):
    config = tools(tmp_path, upstream.url)
    async with limited_client(config, era, max_concurrency=2, max_queue=1) as (client, webtools):
        tool_limiter = webtools.calls.limits.tool_limiter("capped", 1)
        with anyio.fail_after(BOUND):
            async with anyio.create_task_group() as tg:
                calls = Calls(client, tg)
                calls.start("capped", 1)
                await until(lambda: gate.holding == 1)
                calls.start("capped", 2)  # waits for the tool's slot ...
                await until(lambda: tool_limiter.waiting == 1)
                capped_busy = await client.call_tool("capped", {"n": 3})
                calls.start("slow", 10)  # ... without taking the global slot this call needs
                await until(lambda: gate.holding == 2)
                calls.start("slow", 11)
                await until(lambda: webtools.calls.limits.global_limiter.waiting == 1)
                server_busy = await client.call_tool("slow", {"n": 12})
                gate.release(1, 2, 10, 11)
    assert capped_busy.content[0].text == (
        "Calling 'capped' failed: busy, try again shortly (tool 'capped' already has 1 call in flight, its limit, "
        "and 1 waiting)."
    )
    assert server_busy.content[0].text == (
        "Calling 'slow' failed: busy, try again shortly (the server already has 2 calls in flight, its limit, "
        "and 1 waiting)."
    )
    assert calls.texts() == {
        f"{t} {n}": f'{{"n":{n}}}' for t, n in [("capped", 1), ("capped", 2), ("slow", 10), ("slow", 11)]
    }
    assert sorted(gate.seen) == [("/capped", 1), ("/capped", 2), ("/slow", 10), ("/slow", 11)]
    assert (gate.most["/capped"], gate.most["all"]) == (1, 2)


async def test_time_in_the_queue_counts_against_the_tools_timeout(upstream, gate, tmp_path):
    config = tools(tmp_path, upstream.url)
    async with limited_client(config, "legacy", max_concurrency=1, max_queue=1) as (client, webtools):
        with anyio.fail_after(BOUND):
            async with anyio.create_task_group() as tg:
                calls = Calls(client, tg)
                calls.start("slow", 1)
                await until(lambda: gate.holding == 1)
                timed_out = await client.call_tool("queued", {"n": 2})
                assert webtools.calls.limits.global_limiter.waiting == 0  # it left the queue when it gave up
                gate.release(1)
    assert timed_out.is_error is True and timed_out.content[0].text == (
        "Calling 'queued' failed: timed out after 1 s waiting for a free slot (busy, try again shortly)."
    )
    assert set(timed_out.meta["mcp-webtools/http"]) == {"elapsedMs"}
    assert calls.texts() == {"slow 1": '{"n":1}'}
    assert gate.seen == [("/slow", 1)]  # the queued call never reached the upstream


def test_the_concurrency_defaults_have_one_home():
    """limits.py's constants are what CallLimits, ServerOptions and the CLI use (the help: test_cli.py)."""
    defaults = (DEFAULT_MAX_CONCURRENCY, DEFAULT_MAX_QUEUE)
    limits = CallLimits()
    assert (limits.global_limiter.limit, limits.max_waiting) == defaults
    assert (ServerOptions().max_concurrency, ServerOptions().max_queue) == defaults
    parser = argparse.ArgumentParser()
    limit_options(parser)
    parsed = parser.parse_args([])
    assert (parsed.max_concurrency, parsed.max_queue) == defaults
