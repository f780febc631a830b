"""Task-style calls (`serve --tasks`): 2026-07-28 clients that declare `io.modelcontextprotocol/tasks`
get a task handle from `tools/call` and poll `tasks/get`; everyone else gets the ordinary answer.

Task ids are random, expire, and are bound to the caller (the inbound `Authorization` header).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.extension import ClaimContext, ClientExtension, ResultClaim
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from support import Reply, TaskHandle, TaskState, Upstream, get_task, hamsa_tool, secret, serve_asgi, write_tools

from mcp_webtools.serving.http_app import HttpSettings, build_http_app
from mcp_webtools.serving.runtime import ServerOptions, open_webtools, running_tasks
from mcp_webtools.serving.server import WebTools
from mcp_webtools.serving.tasks import EXTENSION

pytestmark = pytest.mark.anyio


class TasksExtension(ClientExtension):
    """Polls `tasks/get` until the task ends; records every handle and state it saw."""

    identifier = EXTENSION

    def __init__(self) -> None:
        self.handles: list[TaskHandle] = []
        self.polled: list[TaskState] = []
        self.first_poll: anyio.Event | None = None  # set after the first poll, when given

    def claims(self) -> list[ResultClaim[Any]]:
        return [ResultClaim(result_type="task", model=TaskHandle, resolve=self._poll)]

    async def _poll(self, handle: TaskHandle, ctx: ClaimContext) -> types.CallToolResult:
        self.handles.append(handle)
        while True:
            state = await get_task(ctx.session, handle.task_id)
            self.polled.append(state)
            if self.first_poll is not None:
                self.first_poll.set()
            if state.status != "working":
                assert state.status == "completed" and state.result is not None, state
                return types.CallToolResult.model_validate(state.result)
            await anyio.sleep(0.01)  # the poll interval, not synchronisation


@asynccontextmanager
async def served(config: Path, *, tasks: bool = True) -> AsyncIterator[tuple[WebTools, str]]:
    webtools = open_webtools([str(config)], environ=os.environ, options=ServerOptions(tasks=tasks))
    async with running_tasks(webtools), serve_asgi(build_http_app(webtools, HttpSettings())) as base:
        yield webtools, base


@asynccontextmanager
async def connect(
    base: str,
    era: str = "auto",
    extension: ClientExtension | None = None,
    token: str = "caller-a-token",
    headers: dict[str, str] | None = None,
) -> AsyncIterator[Client]:
    sent = {"Authorization": f"Bearer {token}", **(headers or {})}
    http = httpx2.AsyncClient(headers=sent, timeout=httpx2.Timeout(30, read=60))
    extensions = [extension] if extension else None
    async with (
        http,
        Client(streamable_http_client(f"{base}/mcp", http_client=http), mode=era, extensions=extensions) as client,
    ):
        yield client


@pytest.fixture
def config(tmp_path: Path, upstream: Upstream) -> Path:
    upstream.reply_json("GET", "/order", {"id": 7, "state": "shipped"})
    return write_tools(tmp_path, [hamsa_tool("get_order", f"{upstream.url}/order")])


ORDER_TEXT = '{"id":7,"state":"shipped"}'  # the upstream's JSON, as the tool's text


def text_of(result: types.CallToolResult) -> str:
    assert len(result.content) == 1 and isinstance(result.content[0], types.TextContent), result.content
    return result.content[0].text


async def test_a_declaring_modern_client_gets_a_task_and_polls_it_to_the_result(
    config: Path, upstream: Upstream
) -> None:
    release = anyio.Event()
    upstream.reply("GET", "/order", Reply(200, ORDER_TEXT.encode(), [("content-type", "application/json")], release))
    extension = TasksExtension()
    extension.first_poll = anyio.Event()
    async with served(config) as (_, base), connect(base, extension=extension) as client:
        async with anyio.create_task_group() as group:
            results: list[types.CallToolResult] = []

            async def call() -> None:
                results.append(await client.call_tool("get_order", {}))

            group.start_soon(call)
            with anyio.fail_after(30):
                await extension.first_poll.wait()  # the handle came back while the upstream still hangs
            release.set()
        assert client.session.server_capabilities.extensions == {EXTENSION: {}}
    [handle] = extension.handles
    assert handle.status == "working" and handle.ttl_ms == 3_600_000 and handle.poll_interval_ms == 1000
    assert len(handle.task_id) >= 32
    assert extension.polled[0].status == "working" and extension.polled[-1].status == "completed"
    assert {state.task_id for state in extension.polled} == {handle.task_id}
    [result] = results
    assert not result.is_error and text_of(result) == ORDER_TEXT
    assert [(r.method, r.raw_path) for r in upstream.requests] == [("GET", "/order")]


@pytest.mark.parametrize(
    ("era", "declares", "enabled"),
    [("legacy", True, True), ("auto", False, True), ("auto", True, False)],
    ids=["legacy-client", "modern-without-extension", "setting-off"],
)
async def test_everyone_else_gets_the_ordinary_inline_answer(
    config: Path, upstream: Upstream, era: str, declares: bool, enabled: bool
) -> None:
    extension = TasksExtension() if declares else None
    async with served(config, tasks=enabled) as (_, base), connect(base, era, extension) as client:
        result = await client.call_tool("get_order", {})
        caps = client.session.server_capabilities
    assert not result.is_error and text_of(result) == ORDER_TEXT
    assert extension is None or extension.handles == []
    assert (caps.extensions or {}).get(EXTENSION) == ({} if enabled and era == "auto" else None)
    assert len(upstream.requests) == 1


async def test_invalid_arguments_answer_inline_without_a_task(tmp_path: Path, upstream: Upstream) -> None:
    params = {"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]}
    config = write_tools(tmp_path, [hamsa_tool("get_order", f"{upstream.url}/order", params=params)])
    extension = TasksExtension()
    async with served(config) as (_, base), connect(base, extension=extension) as client:
        result = await client.call_tool("get_order", {})
    assert result.is_error and extension.handles == []
    assert "nothing was sent" in text_of(result) and upstream.requests == []


async def finished_task(base: str) -> str:
    extension = TasksExtension()
    async with connect(base, extension=extension) as client:
        await client.call_tool("get_order", {})
    return extension.handles[0].task_id


async def test_unknown_expired_and_other_callers_task_ids_are_one_error(config: Path) -> None:
    async with served(config) as (webtools, base):
        task_id = await finished_task(base)
        async with connect(base, extension=TasksExtension()) as same, connect(base, token="caller-b-token") as other:
            assert (await get_task(same.session, task_id)).status == "completed"  # the owner, on a new connection
            for session, asked in [(same.session, "no-such-task"), (other.session, task_id)]:
                with pytest.raises(MCPError) as caught:
                    await get_task(session, asked)
                assert (caught.value.error.code, caught.value.error.message) == (
                    types.INVALID_PARAMS,
                    "Unknown or expired task",
                )
            assert webtools.tasks is not None
            now = webtools.tasks.clock()
            webtools.tasks.clock = lambda: now + webtools.tasks.ttl_seconds  # type: ignore[union-attr]
            with pytest.raises(MCPError, match="Unknown or expired task"):
                await get_task(same.session, task_id)


async def test_two_tasks_get_different_random_ids(config: Path) -> None:
    async with served(config) as (_, base):
        first, second = await finished_task(base), await finished_task(base)
    assert first != second


async def test_a_task_call_sends_its_own_callers_forwarded_credential(tmp_path: Path, upstream: Upstream) -> None:
    # The task runs after tools/call has answered: it still sends the header of the request that started it.
    user = secret("Bearer task-caller-credential-3030")
    upstream.reply("GET", "/me", lambda seen: Reply(200, f'{{"you":"{seen.headers["authorization"]}"}}'.encode()))
    forward = {"header": "X-Upstream-Authorization", "as": "Authorization"}
    tool = {"name": "as_user", "description": "d", "methodType": "GET", "url": f"{upstream.url}/me"}
    config = write_tools(tmp_path, {**tool, "forwardCaller": forward})
    extension = TasksExtension()
    async with served(config) as (_, base):
        async with connect(base, extension=extension, headers={"X-Upstream-Authorization": user}) as client:
            result = await client.call_tool("as_user", {})
    assert len(extension.handles) == 1  # it ran as a task
    assert [seen.headers["authorization"] for seen in upstream.requests] == [user]
    assert not result.is_error and text_of(result) == '{"you":"***"}'
