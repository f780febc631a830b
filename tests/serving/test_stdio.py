"""The stdio transport: it reads and answers as the SDK's does, and answers every line that is not
a JSON-RPC message (which the SDK's leaves unanswered)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

from mcp_webtools.serving.stdio import _lines
from tests.support import BAD_MESSAGES, REPO, ServerProcess, Upstream, error_answer, hamsa_tool, write_tools

pytestmark = pytest.mark.anyio


async def lines_of(*chunks: bytes) -> list[str]:
    reader = asyncio.StreamReader()
    for chunk in chunks:
        reader.feed_data(chunk)
    reader.feed_eof()
    return [line async for line in _lines(reader)]


async def test_lines_are_split_as_text_mode_readline_splits_them() -> None:
    assert await lines_of(b'{"a":1}\n{"b":2}\n') == ['{"a":1}\n', '{"b":2}\n']
    # "\r\n", a lone "\r", and a "\r\n" cut between two reads are each one line end.
    assert await lines_of(b"one\r\ntwo\rthree\r", b"\nfour\n") == ["one\n", "two\n", "three\n", "four\n"]
    # A line cut across reads is joined; an empty line is a line; the last one may lack "\n".
    assert await lines_of(b'{"a"', b":1}\n\nlast") == ['{"a":1}\n', "\n", "last"]
    # Bytes that are not UTF-8 are replaced, not fatal; a multi-byte character may be cut between reads.
    assert await lines_of(b"caf\xc3", b"\xa9 \xff\n") == ["café \ufffd\n"]
    assert await lines_of(b"") == []


REQUESTS = [
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}},
    },
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
    {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
    {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "get_item", "arguments": {"n": "x"}}},
]


SERVE = [sys.executable, "-m", "mcp_webtools", "--log-level", "WARNING", "serve", "--config"]


def serve(config: Path, *, data: bytes | None = None, stdin: object = None) -> list[dict]:
    """Answers of `mcp-webtools serve` whose input (`data` through a pipe, or the file `stdin`) ends
    right after the requests."""
    return serve_logged(config, data=data, stdin=stdin)[0]


def serve_logged(config: Path, *, data: bytes | None = None, stdin: object = None) -> tuple[list[dict], str]:
    """`serve`, and what the server logged."""
    done = subprocess.run(
        [*SERVE, str(config)], cwd=REPO, stdin=stdin, input=data, capture_output=True, timeout=60, check=True
    )
    return [json.loads(line) for line in done.stdout.splitlines()], done.stderr.decode()


@pytest.mark.e2e
def test_piped_input_that_ends_at_once_gets_every_answer_the_same_as_from_a_file(tmp_path: Path) -> None:
    params = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    config = write_tools(tmp_path, [hamsa_tool("Get Item", "http://127.0.0.1:9/item", params=params)])
    text = b"".join(json.dumps(request).encode() + b"\r\n" for request in REQUESTS)
    from_pipe = serve(config, data=text)  # a pipe: the thread-free transport
    source = tmp_path / "requests.jsonl"
    source.write_bytes(text)
    with source.open("rb") as file:  # a regular file: the SDK's own transport
        from_file = serve(config, stdin=file)

    # Requests run side by side (the hot path answers a call beside the session's own requests),
    # so answers may come in any order, as JSON-RPC allows: each is matched by its id.
    by_id = {answer["id"]: answer for answer in from_pipe}
    assert sorted(by_id) == [1, 2, 3] and len(from_pipe) == 3
    # The SDK's transport answers the same, but may lose the last answers to the end of input.
    assert from_file and all(by_id[answer["id"]] == answer for answer in from_file)
    assert [tool["name"] for tool in by_id[2]["result"]["tools"]] == ["get_item"]
    assert by_id[3]["result"]["isError"] is True


# -- lines that are not JSON-RPC messages ----------------------------------------------------------------

MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
}
ECHO_PARAMS = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}


class RawStdio:
    """A client that writes lines to `mcp-webtools serve` and reads its answers one by one.

    A client library cannot send a line that is not JSON-RPC, so this one is written by hand. It
    waits for each answer while the server still runs: the answers are not those of the end of input.
    """

    def __init__(self, server: ServerProcess, era: str) -> None:
        assert server.process.stdin is not None and server.process.stdout is not None
        self.server = server
        self.era = era
        self._stdin = server.process.stdin
        self._stdout = BufferedByteReceiveStream(server.process.stdout)

    async def send_line(self, line: str) -> dict[str, Any]:
        await self._stdin.send(line.encode() + b"\n")
        with anyio.fail_after(self.server.bound):
            return json.loads(await self._stdout.receive_until(b"\n", 1 << 20))

    async def request(self, request_id: int, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        params = dict(params or {})
        if self.era == "modern":
            params["_meta"] = MODERN_META
        request = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
        return await self.send_line(json.dumps(request))

    async def open(self) -> None:
        """The era's opening: `initialize` (and `initialized`), or `server/discover`."""
        if self.era == "modern":
            answer = await self.request(1, "server/discover")
        else:
            info = {"name": "raw", "version": "0"}
            opening = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": info}
            answer = await self.request(1, "initialize", opening)
            await self._stdin.send(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
        assert answer["id"] == 1 and "result" in answer, answer


@asynccontextmanager
async def raw_stdio(config: Path, era: str) -> AsyncIterator[RawStdio]:
    process = await anyio.open_process([*SERVE, str(config)], cwd=REPO)
    server = ServerProcess(process, bound=60)
    async with process, anyio.create_task_group() as tg:
        tg.start_soon(server.pump_log)
        yield RawStdio(server, era)
        assert process.stdin is not None
        await process.stdin.aclose()  # the end of input: the server stops
        assert await server.exit_code() == 0


def warnings_of(log: str) -> list[str]:
    return re.findall(r"WARNING mcp_webtools\.protocol: (.*)", log)


@pytest.mark.anyio
@pytest.mark.parametrize("era", ["legacy", "modern"])
@pytest.mark.e2e
async def test_every_line_that_is_no_message_is_answered_and_the_server_keeps_serving(
    upstream: Upstream, tmp_path: Path, era: str
) -> None:
    config = write_tools(tmp_path, [hamsa_tool("Echo", f"{upstream.url}/echo", "POST", ECHO_PARAMS)])
    async with raw_stdio(config, era) as client:
        # Before the session opens, too.
        assert await client.send_line("garbage") == error_answer(BAD_MESSAGES[0][2])
        await client.open()
        for n, (what, line, owed) in enumerate(BAD_MESSAGES):
            assert await client.send_line(line) == error_answer(owed), what
            # Still serving: the next call reaches the upstream and its answer comes back.
            answer = await client.request(100 + n, "tools/call", {"name": "echo", "arguments": {"n": n}})
            assert answer["id"] == 100 + n and answer["result"]["structuredContent"]["body"] == {"n": n}, what
    assert [r.json() for r in upstream.requests] == [{"n": n} for n in range(len(BAD_MESSAGES))]
    # One WARNING line each, saying what was answered; no traceback, no error.
    answered = [BAD_MESSAGES[0][2], *(owed for _, _, owed in BAD_MESSAGES)]
    assert warnings_of(client.server.log) == [f"stdio: answered {o['code']} {o['message']}" for o in answered]
    assert "Traceback" not in client.server.log and " ERROR " not in client.server.log


@pytest.mark.e2e
def test_lines_that_are_no_message_are_answered_from_a_file_too(tmp_path: Path) -> None:
    """Input from a regular file is read through threads, not the event loop: the same answers."""
    config = write_tools(tmp_path, [hamsa_tool("Get Item", "http://127.0.0.1:9/item")])
    lines = [REQUESTS[0], REQUESTS[1], *(line for _, line, _ in BAD_MESSAGES), "", "  ", REQUESTS[2]]
    source = tmp_path / "requests.jsonl"
    source.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    with source.open("rb") as file:
        answers, log = serve_logged(config, stdin=file)
    # Blank lines are no messages: skipped, not answered.
    assert answers[1:-1] == [error_answer(owed) for _, _, owed in BAD_MESSAGES]
    assert [answers[0]["id"], answers[-1]["id"]] == [1, 2]
    assert [tool["name"] for tool in answers[-1]["result"]["tools"]] == ["get_item"]
    assert len(warnings_of(log)) == len(BAD_MESSAGES) and "Traceback" not in log


@pytest.mark.e2e
def test_serving_stdio_from_dev_null_ends_cleanly_at_once(tmp_path):
    """/dev/null is a character device epoll refuses: it is read on threads, and its EOF ends the server."""
    config = write_tools(tmp_path, hamsa_tool("Ping", "http://127.0.0.1:9/ping"))
    with open(os.devnull, "rb") as devnull:
        done = subprocess.run(
            [sys.executable, "-m", "mcp_webtools", "serve", "--no-watch", "--config", str(config)],
            stdin=devnull, capture_output=True, timeout=60, cwd=REPO,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == b""
    assert "Traceback" not in done.stderr.decode() and "ERROR" not in done.stderr.decode()
