"""Past one process: `serve --workers N` and `--stateless` replicas.

Real `mcp-webtools serve --transport http` processes on 127.0.0.1, real MCP clients, and an
upstream in the test process. `/metrics` gives the pid of the process that served it, which is
how a test tells the workers apart.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import traceback
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from support import (
    ERAS,
    REPO,
    Recorded,
    Reply,
    ServerProcess,
    hamsa_tool,
    http_server_process,
    serve_asgi,
    serving_pid,
    write_tools,
)

from mcp_webtools.serving import workers
from mcp_webtools.serving.listening import listen

BOUND = 60  # seconds: every wait is bounded, so a broken guarantee fails instead of hanging

pytestmark = pytest.mark.e2e  # every test starts `mcp-webtools serve` processes


def running(config: Path, *flags: str) -> AbstractAsyncContextManager[ServerProcess]:
    # Stopped with SIGTERM at the end, so workers are not left behind (then killed: the workers
    # stop too, see workers.worker_sockets).
    return http_server_process(config, *flags, bound=BOUND)


async def url_of(server: ServerProcess, workers_count: int = 1) -> str:
    """The base URL once every worker serves."""
    matches = await server.wait_for_logs(r"serving MCP at (http://127\.0\.0\.1:\d+)/mcp", workers_count)
    return matches[0].group(1)


async def pids_seen(url: str, want: int) -> set[int]:
    """Ask /metrics on fresh connections until `want` different processes answered (or the bound ends)."""
    seen: set[int] = set()
    with anyio.move_on_after(BOUND):
        while len(seen) < want:
            # A fresh connection each time, so the kernel picks a worker anew.
            async with httpx2.AsyncClient(timeout=10) as http:
                seen.add(await serving_pid(http, url))
    return seen


def worker_pids(log: str) -> list[int]:
    return [int(m.group(1)) for m in re.finditer(r"worker \d started \[pid (\d+)\]", log)]


def text_of(result: types.CallToolResult) -> str:
    assert len(result.content) == 1 and isinstance(result.content[0], types.TextContent), result.content
    return result.content[0].text


@asynccontextmanager
async def mcp_http(url: str, era: str, transport: httpx2.AsyncBaseTransport | None = None) -> AsyncIterator[Client]:
    http = httpx2.AsyncClient(timeout=httpx2.Timeout(30, read=60), transport=transport)
    async with http, Client(streamable_http_client(f"{url}/mcp", http_client=http), mode=era) as client:
        yield client


class Holding:
    """An upstream route that holds each request until released, and says when one arrived."""

    def __init__(self) -> None:
        self.arrivals = 0
        self._arrived = anyio.Event()
        self.release = anyio.Event()

    async def __call__(self, request: Recorded) -> Reply:
        self.arrivals += 1
        self._arrived.set()
        self._arrived = anyio.Event()
        return Reply(200, b'{"released": true}', [("content-type", "application/json")], wait=self.release)

    async def until(self, count: int) -> None:
        with anyio.fail_after(BOUND):
            while self.arrivals < count:
                await self._arrived.wait()


# -- serve --workers N ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_two_workers_answer_calls_and_drain_on_sigterm(upstream, tmp_path):
    holding = Holding()
    upstream.reply("GET", "/hold", holding)
    async with serve_asgi(upstream) as api:
        config = write_tools(tmp_path, [hamsa_tool("Echo", f"{api}/echo"), hamsa_tool("Hold", f"{api}/hold")])
        async with running(config, "--workers", "2", "--stateless", "--shutdown-grace", "30") as server:
            url = await url_of(server, 2)
            started = worker_pids(server.log)
            assert len(started) == 2 and server.process.pid not in started
            # The kernel hands connections to either worker: both answer, each from its own process.
            assert await pids_seen(url, 2) == set(started)
            for era in ERAS:
                async with mcp_http(url, era) as client:
                    result = await client.call_tool("echo", {})
                    assert result.is_error is False and '"path":"/echo"' in text_of(result)

            # Calls in flight on several connections (so, likely, on both workers) when SIGTERM comes.
            held = 6
            results: list[types.CallToolResult] = []

            async def call(era: str) -> None:
                async with mcp_http(url, era) as client:
                    # The client lists the tools after a call it has no listing for: after SIGTERM
                    # that would need a new connection, which is refused.
                    await client.list_tools()
                    results.append(await client.call_tool("hold", {}))

            async with anyio.create_task_group() as tg:
                for number in range(held):
                    tg.start_soon(call, ERAS[number % 2])
                await holding.until(held)
                server.process.send_signal(signal.SIGTERM)
                draining = await server.wait_for_logs(r"waiting up to 30 s for (\d+) call\(s\) in flight", 2)
                assert sum(int(m.group(1)) for m in draining) == held  # every call is waited for, in its worker
                holding.release.set()
            assert [(r.is_error, text_of(r)) for r in results] == [(False, '{"released":true}')] * held
            assert await server.exit_code() == 0
            for pid in started:
                assert f"[pid {pid}] stopped (signal SIGTERM)" in server.log
            assert "all workers stopped" in server.log
            assert "cancelled" not in server.log and "Traceback" not in server.log


@pytest.mark.anyio
async def test_a_worker_that_dies_is_replaced(upstream, tmp_path):
    async with serve_asgi(upstream) as api:
        config = write_tools(tmp_path, [hamsa_tool("Echo", f"{api}/echo")])
        async with running(config, "--workers", "2", "--stateless") as server:
            url = await url_of(server, 2)
            first, second = worker_pids(server.log)
            os.kill(first, signal.SIGKILL)
            await server.wait_for_log(rf"worker 1 \[pid {first}\] died unexpectedly \(signal SIGKILL\); starting")
            await url_of(server, 3)  # the replacement serves
            replacement = worker_pids(server.log)[2]
            assert await pids_seen(url, 2) == {second, replacement}
            async with mcp_http(url, "legacy") as client:
                assert (await client.call_tool("echo", {})).is_error is False
            server.process.send_signal(signal.SIGTERM)
            assert await server.exit_code() == 0


@pytest.mark.anyio
async def test_sighup_reaches_every_worker(upstream, tmp_path):
    async with serve_asgi(upstream) as api:
        write_tools(tmp_path, [hamsa_tool("Echo", f"{api}/echo")])
        async with running(tmp_path, "--workers", "2", "--stateless", "--no-watch") as server:
            url = await url_of(server, 2)
            write_tools(tmp_path, [hamsa_tool("Added", f"{api}/added")], "more.json")
            server.process.send_signal(signal.SIGHUP)
            reloaded = await server.wait_for_logs(r"config reloaded \(SIGHUP\): 1 added \(added\)", 2)
            assert len(reloaded) == 2  # each worker reloaded its own copy
            for era in ERAS:
                async with mcp_http(url, era) as client:
                    listed = await client.list_tools(cache_mode="refresh")
                    assert sorted(t.name for t in listed.tools) == ["added", "echo"]
            server.process.send_signal(signal.SIGTERM)
            assert await server.exit_code() == 0


@pytest.mark.anyio
async def test_a_config_error_stops_before_any_worker_starts(tmp_path):
    config = write_tools(tmp_path, [{"type": "FUNCTION", "name": "Broken", "toolSettings": {}}])
    command = [sys.executable, "-m", "mcp_webtools", "serve", "--transport", "http", "--port", "0"]
    result = await anyio.run_process([*command, "--workers", "3", "--stateless", "--config", str(config)], check=False)
    # Said once, by the supervisor, which then starts nothing.
    assert (result.returncode, result.stdout, result.stderr.decode()) == (
        1,
        b"",
        f"2 config errors:\n"
        f"  - {config}: tool 'Broken': field `[0].toolSettings.methodType`: is required\n"
        f"  - {config}: tool 'Broken': field `[0].toolSettings.serverUrl`: is required\n",
    )


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ([], "--workers needs --transport http"),
        (["--transport", "http"], "--workers needs --stateless (legacy-era sessions cannot span processes)"),
        (
            ["--transport", "http", "--stateless", "--tasks"],
            "--workers with --tasks needs --state redis://... (task handles otherwise live in one process)",
        ),
    ],
)
async def test_workers_need_http_and_stateless(tmp_path, flags, message):
    config = write_tools(tmp_path, [hamsa_tool("Echo", "http://127.0.0.1:9/echo")])
    command = [sys.executable, "-m", "mcp_webtools", "serve", "--workers", "2", *flags, "--config", str(config)]
    result = await anyio.run_process(command, cwd=REPO, check=False)
    assert (result.returncode, result.stderr.decode().strip()) == (2, message)


def test_workers_that_keep_dying_at_start_stop_the_supervisor(caplog):
    """The restart policy on its own, with workers that exit at once (the parent checked the config first,
    so in `serve` this takes something like a file that broke right after)."""
    sockets = listen("127.0.0.1", 0)
    crash = [sys.executable, "-c", "import os, sys; sys.exit(1 if os.environ.get('MCP_WEBTOOLS_WORKER_FD') else 9)"]
    caplog.set_level("INFO", logger="mcp_webtools.workers")
    try:
        assert workers.Supervisor(2, crash, sockets).run() == 1
    finally:
        for sock in sockets:
            sock.close()
    messages = [r.getMessage() for r in caplog.records]
    started = [m for m in messages if re.fullmatch(r"worker \d started \[pid \d+\]", m)]
    # Two at first, a replacement for each of the first MAX_QUICK_DEATHS - 1 deaths, then it gives up.
    assert len(started) == 2 + workers.MAX_QUICK_DEATHS - 1
    assert sum("died unexpectedly (exit status 1); starting a new one" in m for m in messages) == 2
    gave_up = r"worker \d \[pid \d+\] failed to start \(exit status 1\); stopping all workers"
    assert sum(bool(re.fullmatch(gave_up, m)) for m in messages) == 1


@pytest.mark.anyio
async def test_workers_stop_when_their_supervisor_is_killed(upstream, tmp_path):
    async with serve_asgi(upstream) as api:
        config = write_tools(tmp_path, [hamsa_tool("Echo", f"{api}/echo")])
        async with running(config, "--workers", "2", "--stateless") as server:
            await url_of(server, 2)
            pids = worker_pids(server.log)
            server.process.kill()  # no chance to pass anything on
            await server.wait_for_logs(r"the supervisor has gone; stopping", 2)
            await server.wait_for_logs(r"Finished server process", 2)  # each drained as on SIGTERM
            with anyio.fail_after(BOUND):
                while any(alive(pid) for pid in pids):
                    await anyio.sleep(0.05)  # polling process state: there is nothing to wait on
        assert "Traceback" not in server.log


def alive(pid: int) -> bool:
    """Running, not gone or a zombie waiting to be reaped (the workers are not this process's children)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


# -- --stateless replicas: any one can answer any request -----------------------------------------


class RoundRobin(httpx2.AsyncBaseTransport):
    """Sends each request to the next replica in turn, as a load balancer without sticky routing does."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.sent: list[tuple[str, int]] = []  # (method, port)
        self._inner = httpx2.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        port = self.ports[len(self.sent) % len(self.ports)]
        self.sent.append((request.method, port))
        request.url = request.url.copy_with(port=port)
        request.headers["host"] = f"127.0.0.1:{port}"
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


@pytest.mark.anyio
@pytest.mark.parametrize("era", ERAS)
async def test_stateless_replicas_answer_any_request(upstream, tmp_path, era):
    async with serve_asgi(upstream) as api:
        # An async tool speaks a start message: progress still reaches the client on its POST's stream.
        speaking = hamsa_tool("Speak", f"{api}/speak", messages={"Request Start": "Opening"}, **{"async": True})
        config = write_tools(tmp_path, [hamsa_tool("Echo", f"{api}/echo"), speaking])
        async with running(config, "--stateless") as one, running(config, "--stateless") as two:
            ports = [port_of(await url_of(one)), port_of(await url_of(two))]
            balancer = RoundRobin(ports)
            heard: list[str | None] = []

            async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                heard.append(message)

            async with mcp_http(f"http://127.0.0.1:{ports[0]}", era, balancer) as client:
                for round_number in range(3):
                    listed = await client.list_tools(cache_mode="refresh")
                    assert [t.name for t in listed.tools] == ["echo", "speak"]
                    result = await client.call_tool("echo", {})
                    assert result.is_error is False and '"path":"/echo"' in text_of(result)
                    spoken = await client.call_tool("speak", {}, progress_callback=on_progress)
                    assert spoken.is_error is False and heard.count("Opening") == round_number + 1
            posts = [port for method, port in balancer.sent if method == "POST"]
            assert set(posts) == set(ports) and len(posts) >= 9


@pytest.mark.anyio
@pytest.mark.parametrize(("era", "works"), [("legacy", False), ("auto", True)])
async def test_without_stateless_only_the_modern_era_survives_round_robin(upstream, tmp_path, era, works):
    """Why replicas behind a plain load balancer want --stateless: a legacy session lives in one process."""
    async with serve_asgi(upstream) as api:
        config = write_tools(tmp_path, [hamsa_tool("Echo", f"{api}/echo")])
        async with running(config) as one, running(config) as two:
            ports = [port_of(await url_of(one)), port_of(await url_of(two))]
            balancer = RoundRobin(ports)

            async def use() -> bool:
                async with mcp_http(f"http://127.0.0.1:{ports[0]}", era, balancer) as client:
                    for _ in range(2):
                        await client.list_tools(cache_mode="refresh")
                        await client.call_tool("echo", {})
                return True

            if works:
                assert await use()
            else:
                # The second replica has never heard of the session the first one opened.
                with pytest.raises(BaseException) as failed:  # the client raises it inside task groups
                    with anyio.fail_after(BOUND):
                        await use()
                assert "MCPError: Session not found" in "".join(traceback.format_exception(failed.value))
