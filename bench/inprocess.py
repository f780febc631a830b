"""Where a 2026-07-28 tools/call's server CPU goes, measured in one process, each layer against the one below.

    python bench/inprocess.py [--calls N]

Against bench/upstream.py (started here), sequential, CPU time of this process per call:

1. the GET itself, with one keep-alive httpx2 client: what any proxy's upstream leg costs at least;
2. `WebTools.call`: the whole tool call of mcp-webtools (validation, the request, the sender chain
   with that same GET, shaping, the audit record and metrics), as the hot path runs it;
3. the HTTP app (`build_http_app`) called as ASGI with a 2026-07-28 tools/call POST: 2 plus the
   token and endpoint layers, the body checks, the hot path's checks and its JSON answer;

each also as a ratio to 1. What `bench/compare.py` measures for a server on top of 3 is uvicorn
(the HTTP parsing, the sockets) and the event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx2
from targets import BENCH, free_port, write_configs

from mcp_webtools.serving.http_app import HttpSettings, build_http_app
from mcp_webtools.serving.runtime import open_webtools
from mcp_webtools.serving.server import CallOrigin, ClientSeen

WARMUP = 100
ENVELOPE = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}


async def per_call(call: Any, count: int) -> float:
    """CPU microseconds of this process per `await call(n)`, after a warm-up."""
    for n in range(WARMUP):
        await call(n)
    started = time.process_time()
    for n in range(count):
        await call(n)
    return (time.process_time() - started) * 1e6 / count


async def main(count: int) -> None:
    port = free_port()
    upstream_process = subprocess.Popen([sys.executable, str(BENCH / "upstream.py"), str(port)])
    upstream = f"http://127.0.0.1:{port}"
    try:
        async with httpx2.AsyncClient() as http:
            for _ in range(100):  # until the upstream listens
                try:
                    await http.get(f"{upstream}/item", params={"n": 0})
                    break
                except httpx2.HTTPError:
                    await asyncio.sleep(0.05)

            async def get(n: int) -> None:
                (await http.get(f"{upstream}/item", params={"n": n})).raise_for_status()

            floor = await per_call(get, count)

        config, _ = write_configs(Path(tempfile.mkdtemp()), upstream, 1)
        webtools = open_webtools([str(config)])
        origin = CallOrigin(1, None, None, None, None, ClientSeen(None, None, "bench"))
        app = build_http_app(webtools, HttpSettings())
        async with webtools.executor.client:

            async def tool_call(n: int) -> None:
                result = await webtools.call("get_item", {"n": n}, origin)
                assert not result.is_error, result

            pipeline = await per_call(tool_call, count)

            async def asgi_call(n: int) -> None:
                await _post(app, {"name": "get_item", "arguments": {"n": n}, "_meta": ENVELOPE})

            whole = await per_call(asgi_call, count)
    finally:
        upstream_process.kill()
    print(f"CPU per call, {count} sequential calls, one process:")
    print(f"  the GET with httpx2 (the floor)          {floor:7.0f} us  1.00x")
    print(f"  WebTools.call (the whole tool call)      {pipeline:7.0f} us  {pipeline / floor:.2f}x")
    print(f"  the HTTP app, a 2026-07-28 tools/call    {whole:7.0f} us  {whole / floor:.2f}x")


async def _post(app: Any, params: dict[str, Any]) -> None:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}).encode()
    headers = [
        (b"host", b"127.0.0.1:8000"),
        (b"accept", b"application/json, text/event-stream"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"mcp-protocol-version", b"2026-07-28"),
        (b"mcp-method", b"tools/call"),
        (b"mcp-name", params["name"].encode()),
    ]
    scope = {
        "type": "http", "method": "POST", "path": "/mcp", "raw_path": b"/mcp", "query_string": b"",
        "headers": headers, "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8000), "scheme": "http",
        "http_version": "1.1", "root_path": "",
    }  # fmt: skip
    pending = [{"type": "http.request", "body": body, "more_body": False}]
    done = asyncio.Event()
    sent: list[dict] = []

    async def receive() -> dict:
        if pending:
            return pending.pop()
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    await app(scope, receive, send)
    done.set()
    assert sent[0]["status"] == 200 and b'"isError":false' in sent[1]["body"], sent


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="sequential calls per layer (default 2000)")
    asyncio.run(main(parser.parse_args().calls))
