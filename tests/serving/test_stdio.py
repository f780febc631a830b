"""The thread-free stdio transport reads and answers exactly as the SDK's does."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mcp_webtools.stdio import _lines
from tests.support import REPO, hamsa_tool, write_tools

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


def serve(config: Path, *, data: bytes | None = None, stdin: object = None) -> list[dict]:
    """Answers of `mcp-webtools serve` whose input (`data` through a pipe, or the file `stdin`) ends
    right after the requests."""
    argv = [sys.executable, "-m", "mcp_webtools", "--log-level", "WARNING", "serve", "--config", str(config)]
    done = subprocess.run(argv, cwd=REPO, stdin=stdin, input=data, capture_output=True, timeout=60, check=True)
    return [json.loads(line) for line in done.stdout.splitlines()]


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

    assert [answer["id"] for answer in from_pipe] == [1, 2, 3]
    # The SDK's transport answers the same, but may lose the last answers to the end of input.
    assert from_file and from_file == from_pipe[: len(from_file)]
    assert [tool["name"] for tool in from_pipe[1]["result"]["tools"]] == ["get_item"]
    assert from_pipe[2]["result"]["isError"] is True
