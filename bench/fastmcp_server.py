"""FastMCP's OpenAPI proxy over the benchmark's upstream (runs in bench/.venv, see setup.sh).

    bench/.venv/bin/python bench/fastmcp_server.py SPEC.json UPSTREAM_URL stdio
    bench/.venv/bin/python bench/fastmcp_server.py SPEC.json UPSTREAM_URL http PORT

Each operation of the OpenAPI document becomes a tool, as `FastMCP.from_openapi` makes it with
its defaults; the one shared httpx2 client points at the upstream.
"""

from __future__ import annotations

import json
import sys

import httpx2
from fastmcp import FastMCP


def main(spec_path: str, upstream: str, transport: str, port: str | None = None) -> None:
    with open(spec_path) as file:
        spec = json.load(file)
    client = httpx2.AsyncClient(base_url=upstream, timeout=30)
    server = FastMCP.from_openapi(spec, client=client, name="bench")
    if transport == "stdio":
        server.run("stdio", show_banner=False, log_level="WARNING")
    else:
        server.run("http", show_banner=False, host="127.0.0.1", port=int(port or 0), log_level="warning")


if __name__ == "__main__":
    main(*sys.argv[1:])
