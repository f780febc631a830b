"""Hot reload, end to end: `mcp-webtools serve` processes, real clients of both protocol eras.

An edited config reaches connected clients as `notifications/tools/list_changed` (handshake era:
on the connection; 2026-07-28: on a `subscriptions/listen` stream) and `tools/list` then shows
it; an invalid edit is logged with file, tool and field while the last good set keeps serving;
a call in flight finishes on the definition it started with; SIGHUP reloads; `--no-watch` does
not watch. Every server polls every 0.1 s, and tests wait on what they can observe.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp import Client, ClientSession, StdioServerParameters
from mcp.client.sse import sse_client
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.client.subscriptions import SubscriptionLost
from mcp.shared.subscriptions import ToolsListChanged
from support import REPO, Recorded, Reply, hamsa_tool, register_config_secrets, write_tools

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

BOUND = 30  # seconds: the most any wait here may take before the test fails
INTERVAL = "0.1"
LIST_CHANGED = "notifications/tools/list_changed"
SUBSCRIPTION_ID = "io.modelcontextprotocol/subscriptionId"
# (transport, era): every transport in both eras, and the legacy HTTP+SSE transport.
CLIENTS = [("stdio", "legacy"), ("stdio", "auto"), ("http", "legacy"), ("http", "auto"), ("sse", "legacy")]


async def eventually(check: Callable[[], Any], what: str) -> Any:
    """Poll `check` until it returns something true; fail after `BOUND` seconds."""
    try:
        with anyio.fail_after(BOUND):
            while not (value := check()):
                await anyio.sleep(0.02)
    except TimeoutError:
        pytest.fail(f"timed out waiting for {what}")
    return value


class Served:
    """A running `mcp-webtools serve` process, a client connected to it, and what it has said."""

    def __init__(self, transport: str, era: str) -> None:
        self.transport, self.era = transport, era
        self.client: Client | ClientSession | None = None
        self.initialize_result: types.InitializeResult | None = None  # the /sse session's handshake
        self._pid: Callable[[], int] = lambda: 0
        self.list_changed = 0  # notifications/tools/list_changed heard (either era's way)
        self.unsolicited = 0  # 2026-07-28 list_changed outside a listen stream: must stay 0
        self.listen_ended = ""  # how the 2026-07-28 listen stream ended, once it has
        self._log: Callable[[], str] = lambda: ""

    @property
    def log(self) -> str:
        return self._log()

    @property
    def pid(self) -> int:
        return self._pid()

    async def on_message(self, message: Any) -> None:
        if getattr(message, "method", None) != LIST_CHANGED:
            return
        if self.era == "legacy":
            self.list_changed += 1
        elif SUBSCRIPTION_ID not in ((message.params and message.params.meta) or {}):
            # 2026-07-28: only on a listen stream (whose frames the client also shows here).
            self.unsolicited += 1

    async def tool_names(self) -> list[str]:
        assert self.client is not None
        if isinstance(self.client, ClientSession):
            return [t.name for t in (await self.client.list_tools()).tools]
        return [t.name for t in (await self.client.list_tools(cache_mode="refresh")).tools]

    async def heard(self, count: int) -> None:
        await eventually(lambda: self.list_changed >= count, f"tools/list_changed #{count}")

    async def reload_logged(self, pattern: str) -> re.Match[str]:
        return await eventually(lambda: re.search(pattern, self.log), f"the log line /{pattern}/")


def server_command(config: Path, *flags: str) -> list[str]:
    return ["-m", "mcp_webtools", "serve", "--config", str(config), "--watch-interval", INTERVAL, *flags]


@asynccontextmanager
async def serving(
    transport: str, era: str, config: Path, tmp_path: Path, *flags: str, env: dict[str, str] | None = None
) -> AsyncIterator[Served]:
    """`mcp-webtools serve` over `transport` with a client of `era` connected and listening for changes."""
    environ = {**os.environ, **(env or {})}
    register_config_secrets(config, environ)
    served = Served(transport, era)
    async with anyio.create_task_group() as tg:
        if transport == "stdio":
            connection = _stdio(served, config, tmp_path, flags, environ)
        else:
            connection = _http(served, config, flags, environ, tg)
        async with connection:
            if era == "auto":
                assert isinstance(served.client, Client)
                assert served.client.protocol_version == "2026-07-28"
                await tg.start(_listen, served)
            yield served
            tg.cancel_scope.cancel()
    assert served.unsolicited == 0


async def _listen(served: Served, *, task_status: anyio.abc.TaskStatus[None]) -> None:
    assert isinstance(served.client, Client)
    try:
        async with served.client.listen(tools_list_changed=True) as subscription:
            task_status.started()  # acknowledged: every change from now on arrives
            async for event in subscription:
                if isinstance(event, ToolsListChanged):
                    served.list_changed += 1
    except SubscriptionLost:
        served.listen_ended = "lost"
    else:
        served.listen_ended = "closed by the server"


@asynccontextmanager
async def _stdio(
    served: Served, config: Path, tmp_path: Path, flags: tuple[str, ...], environ: dict[str, str]
) -> AsyncIterator[None]:
    log_path = tmp_path / f"stderr-{len(list(tmp_path.glob('stderr-*')))}.log"
    params = StdioServerParameters(
        command=sys.executable, args=server_command(config, *flags), env=environ, cwd=str(REPO)
    )
    with log_path.open("w") as errlog:
        served._log = lambda: log_path.read_text(errors="replace")
        transport = stdio_client(params, errlog=errlog)
        async with Client(transport, mode=served.era, message_handler=served.on_message) as client:
            served.client = client
            served._pid = lambda: _child_running(str(config))
            yield
    # What the server wrote to the file is scanned by the secrets scan at teardown (conftest).


def _child_running(marker: str) -> int:
    """The pid of this process's child whose command line mentions `marker` (Linux /proc)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == os.getpid() and marker.encode() in cmdline:
            return int(entry.name)
    raise AssertionError(f"no child process started with {marker}")


@asynccontextmanager
async def _http(
    served: Served, config: Path, flags: tuple[str, ...], environ: dict[str, str], tg: anyio.abc.TaskGroup
) -> AsyncIterator[None]:
    command = [sys.executable, *server_command(config, "--transport", "http", "--port", "0", *flags)]
    process = await anyio.open_process(command, cwd=REPO, env=environ, stdout=None)
    served._pid = lambda: process.pid
    log = bytearray()
    served._log = lambda: log.decode(errors="replace")

    async def pump() -> None:
        assert process.stderr is not None
        async for chunk in process.stderr:
            log.extend(chunk)

    try:
        tg.start_soon(pump)
        match = await eventually(lambda: re.search(r"serving MCP at (http://[0-9.]+:\d+)/mcp", served.log), "start")
        url = match.group(1)
        if served.transport == "sse":
            async with sse_client(f"{url}/sse") as (read, write):
                async with ClientSession(read, write, message_handler=served.on_message) as session:
                    served.initialize_result = await session.initialize()
                    served.client = session
                    yield
            return
        http = httpx2.AsyncClient(timeout=httpx2.Timeout(30, read=60))
        transport = streamable_http_client(f"{url}/mcp", http_client=http)
        async with http, Client(transport, mode=served.era, message_handler=served.on_message) as client:
            served.client = client
            yield
    finally:
        if process.returncode is None:
            process.terminate()
        with anyio.CancelScope(shield=True), anyio.move_on_after(10):
            await process.wait()
        if process.returncode is None:
            process.kill()
        await process.aclose()


def advertised_list_changed(served: Served) -> bool | None:
    if served.initialize_result is not None:
        tools = served.initialize_result.capabilities.tools
    else:
        assert served.client is not None
        tools = served.client.server_capabilities.tools
    return tools.list_changed if tools else None


def text_of(result: types.CallToolResult) -> str:
    assert len(result.content) == 1 and isinstance(result.content[0], types.TextContent), result.content
    return result.content[0].text


# -- an edit reaches every client ------------------------------------------------------------------


@pytest.mark.parametrize(("transport", "era"), CLIENTS)
async def test_a_new_config_file_is_served_and_announced(upstream, tmp_path, transport, era):
    config = tmp_path / "config"
    write_tools(config, [hamsa_tool("Get Order", f"{upstream.url}/orders/:orderId", "GET", _order_params())])
    async with serving(transport, era, config, tmp_path) as served:
        assert advertised_list_changed(served) is True
        assert await served.tool_names() == ["get_order"]

        # A second file in the folder: picked up whole, as the loader reads the folder.
        write_tools(
            config,
            [hamsa_tool("Cancel Order", f"{upstream.url}/orders/:orderId", "DELETE", _order_params())],
            "more.yaml",
        )
        await served.heard(1)
        assert await served.tool_names() == ["cancel_order", "get_order"]
        result = await served.client.call_tool("cancel_order", {"orderId": "A1"})  # type: ignore[union-attr]
        assert result.is_error is False, result.content
        assert [(r.method, r.raw_path) for r in upstream.requests] == [("DELETE", "/orders/A1")]
        await served.reload_logged(
            r"config reloaded \(file change\): 1 added \(cancel_order\), 0 removed, 0 changed; "
            r"2 tool\(s\) now, notified clients"
        )

        # Removing a file removes its tools.
        (config / "more.yaml").unlink()
        await served.heard(2)
        assert await served.tool_names() == ["get_order"]
    assert served.list_changed == 2


def _order_params() -> dict:
    return {"type": "object", "properties": {"orderId": {"type": "string"}}, "required": ["orderId"]}


# -- an invalid edit changes nothing ---------------------------------------------------------------


@pytest.mark.parametrize(("transport", "era"), [("stdio", "legacy"), ("http", "auto")])
async def test_an_invalid_edit_is_logged_and_the_last_good_set_keeps_serving(upstream, tmp_path, transport, era):
    config = tmp_path / "config"
    good = hamsa_tool("Get Order", f"{upstream.url}/orders/:orderId", "GET", _order_params())
    write_tools(config, [good])
    # A host from the environment that the egress policy refuses: the error must not show it.
    env = {"PARTNER_HOST": "partner-never-shown-host.example.com"}
    async with serving(transport, era, config, tmp_path, env=env) as served:
        broken = [
            good,
            hamsa_tool("Refund", f"{upstream.url}/refunds", "FETCH"),
            hamsa_tool("Partner Lookup", "http://${PARTNER_HOST}/lookup", "GET"),
        ]
        write_tools(config, broken)
        failure = await served.reload_logged(
            r"config reload \(file change\) failed; still serving the previous 1 tool\(s\)\. "
            r"2 config errors:\n(.*)\n(.*)\n"
        )
        assert failure.group(1).strip() == (
            f"- {config / 'tools.json'}: tool 'Refund': field `[1].toolSettings.methodType`: "
            "must be one of GET, POST, PUT, PATCH, DELETE (any case)"
        )
        assert (
            failure.group(2)
            .strip()
            .startswith(f"- {config / 'tools.json'}: tool 'Partner Lookup': field `[2].toolSettings.serverUrl`: ")
        )
        assert "***" in failure.group(2)  # the host came from ${PARTNER_API}: a secret, masked

        assert await served.tool_names() == ["get_order"]
        result = await served.client.call_tool("get_order", {"orderId": "7"})  # type: ignore[union-attr]
        assert result.is_error is False, result.content
        assert upstream.requests[-1].raw_path == "/orders/7"

        # Fixed: served and announced, and the failed attempt was never announced.
        write_tools(config, [good, hamsa_tool("Refund", f"{upstream.url}/refunds", "POST")])
        await served.heard(1)
        assert await served.tool_names() == ["get_order", "refund"]
    assert served.list_changed == 1


# -- a call in flight keeps its definition ---------------------------------------------------------


@pytest.mark.parametrize(
    ("transport", "era"), [("stdio", "legacy"), ("stdio", "auto"), ("http", "legacy"), ("http", "auto")]
)
async def test_a_call_in_flight_finishes_on_the_definition_it_started_with(upstream, tmp_path, transport, era):
    arrived, release = anyio.Event(), anyio.Event()

    def held(request: Recorded) -> Reply:
        arrived.set()
        # The answer echoes the credential the call was sent with: the result must mask it.
        body = json.dumps({"version": 1, "sentWith": request.headers.get("authorization", "")}).encode()
        return Reply(200, body, [("content-type", "application/json")], wait=release)

    upstream.reply("GET", "/v1/quote", held)
    config = tmp_path / "config"
    old_token, new_token = "sk-old-never-shown-1234", "sk-new-never-shown-5678"
    write_tools(config, [hamsa_tool("Quote", f"{upstream.url}/v1/quote", "GET", authToken=old_token)])
    async with serving(transport, era, config, tmp_path) as served, anyio.create_task_group() as tg:
        results: list[types.CallToolResult] = []

        async def call() -> None:
            results.append(await served.client.call_tool("quote", {}))  # type: ignore[union-attr]

        tg.start_soon(call)
        with anyio.fail_after(BOUND):
            await arrived.wait()
        # While it waits on the upstream: a new URL, a new token, a new parameter.
        new_params = {"type": "object", "properties": {"symbol": {"type": "string"}}, "required": ["symbol"]}
        write_tools(config, [hamsa_tool("Quote", f"{upstream.url}/v2/quote", "GET", new_params, authToken=new_token)])
        await served.heard(1)
        await served.reload_logged(r"config reloaded \(file change\): 0 added, 0 removed, 1 changed \(quote\)")
        release.set()
        await eventually(lambda: results, "the call in flight to finish")

        old = results[0]
        assert old.is_error is False, old.content
        assert old.structured_content == {"version": 1, "sentWith": "Bearer ***", "api_response_status": 200}
        assert (upstream.requests[0].raw_path, upstream.requests[0].headers["authorization"]) == (
            "/v1/quote",
            f"Bearer {old_token}",
        )

        new = await served.client.call_tool("quote", {"symbol": "ACME"})  # type: ignore[union-attr]
        assert new.is_error is False, new.content
        assert (upstream.requests[1].raw_path, upstream.requests[1].query) == ("/v2/quote", "symbol=ACME")
        assert upstream.requests[1].headers["authorization"] == f"Bearer {new_token}"


# -- SIGHUP, and --no-watch ------------------------------------------------------------------------


@pytest.mark.skipif(sys.platform != "linux", reason="SIGHUP, and /proc to find the stdio server's pid")
@pytest.mark.parametrize(("transport", "era"), [("stdio", "legacy"), ("stdio", "auto"), ("http", "legacy")])
async def test_sighup_reloads_and_no_watch_does_not_watch(upstream, tmp_path, transport, era):
    config = tmp_path / "tools.json"
    first = hamsa_tool("Get Order", f"{upstream.url}/orders/:orderId", "GET", _order_params())
    write_tools(tmp_path, [first])
    async with serving(transport, era, config, tmp_path, "--no-watch") as served:
        assert "watching" not in served.log
        write_tools(tmp_path, [first, hamsa_tool("Refund", f"{upstream.url}/refunds", "POST")])
        # Not watched: the edit stays unseen for many times the watch interval.
        with anyio.move_on_after(20 * float(INTERVAL)):
            while True:
                assert await served.tool_names() == ["get_order"]
                await anyio.sleep(float(INTERVAL))
        assert served.list_changed == 0

        os.kill(served.pid, signal.SIGHUP)
        await served.heard(1)
        assert await served.tool_names() == ["get_order", "refund"]
        await served.reload_logged(r"config reloaded \(SIGHUP\): 1 added \(refund\), 0 removed, 0 changed")

        # The same bytes again: nothing changes, nobody is told.
        os.kill(served.pid, signal.SIGHUP)
        await served.reload_logged(r"config reload \(SIGHUP\): no changes; 2 tool\(s\)")
        assert served.list_changed == 1
    assert "file change" not in served.log


async def test_watching_is_on_by_default_and_said_at_start(upstream, tmp_path):
    config = write_tools(tmp_path, [hamsa_tool("Get Order", f"{upstream.url}/orders/:orderId", "GET", _order_params())])
    async with serving("stdio", "legacy", config, tmp_path) as served:
        await served.reload_logged(r"watching 1 config file\(s\) for changes every 0\.1 s; SIGHUP reloads too")
        os.utime(config)  # touched, same bytes: nothing to reload
        changed = hamsa_tool("Get Order", f"{upstream.url}/orders/:orderId", "GET", _order_params(), description="New")
        write_tools(tmp_path, [changed])
        await served.reload_logged(r"config reloaded \(file change\): 0 added, 0 removed, 1 changed \(get_order\)")
        await served.heard(1)
    assert served.log.count("config reload") == 1


async def test_listen_streams_are_closed_cleanly_at_shutdown(upstream, tmp_path):
    config = write_tools(tmp_path, [hamsa_tool("Get Order", f"{upstream.url}/orders/:orderId", "GET", _order_params())])
    async with serving("http", "auto", config, tmp_path) as served:
        os.kill(served.pid, signal.SIGTERM)
        # Ended by the server's graceful close (its final result frame), not dropped at the flush.
        assert await eventually(lambda: served.listen_ended, "the listen stream to end") == "closed by the server"
