"""The benchmark's upstream API: a loopback HTTP/1.1 server as cheap as Python can make it.

`GET /item?n=N` answers `{"n": N, "name": "item N", "tags": ["a", "b"]}` with keep-alive. It is a
bare `asyncio.Protocol` (no framework, no ASGI) so that the upstream costs the benchmark as
little as possible and the figures are about what sits between a caller and it.

    python bench/upstream.py PORT        # serves until killed; prints "ready" when listening
"""

from __future__ import annotations

import asyncio
import json
import sys

__all__ = ["UpstreamProtocol", "serve"]

_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
_NOT_FOUND = b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"


class UpstreamProtocol(asyncio.Protocol):
    """One connection: answers each complete request in the order received (pipelining works)."""

    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end]
            length = _content_length(head)
            if len(self.buffer) < end + 4 + length:
                return  # the body is still on its way
            self.buffer = self.buffer[end + 4 + length :]
            assert self.transport is not None
            self.transport.write(_answer(head))


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return 0


def _answer(head: bytes) -> bytes:
    target = head.split(b" ", 2)[1]
    path, _, query = target.partition(b"?")
    if not path.endswith(b"/item"):
        return _NOT_FOUND
    n = 0
    for pair in query.split(b"&"):
        name, _, value = pair.partition(b"=")
        if name == b"n" and value.lstrip(b"-").isdigit():
            n = int(value)
    body = json.dumps({"n": n, "name": f"item {n}", "tags": ["a", "b"]}).encode()
    return _HEAD % len(body) + body


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(UpstreamProtocol, "127.0.0.1", port, backlog=4096)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
