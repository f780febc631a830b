"""Load bench: how fast mcp-webtools serves tools/call over Streamable HTTP on this machine.

Starts a loopback upstream API and `mcp-webtools serve --transport http` (each its own process),
then, for a bounded time each, drives N concurrent callers:

1. straight at the upstream with httpx2 (the baseline: what the API costs without us);
2. through mcp-webtools with real MCP clients, per protocol era.

and prints calls/s, p50/p90/p99 latency and error counts, with each MCP row as a ratio of the
baseline. Everything stays on 127.0.0.1. See bench/README.md.

    python bench/load.py --concurrency 50 --duration 10
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx2
import uvicorn
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

REPO = Path(__file__).resolve().parent.parent
ERAS = ("legacy", "auto")  # "auto" lands on the 2026-07-28 era against mcp-webtools


# -- the upstream API (run as `load.py _upstream PORT LATENCY_MS ERROR_EVERY`) -------------------


def upstream_app(latency_ms: float, error_every: int) -> Callable[..., Awaitable[None]]:
    """GET /item?n=N -> 200 {"n": N, "name": ...}, after `latency_ms`; every `error_every`th request: 500."""
    served = 0

    async def app(scope: dict, receive: Any, send: Any) -> None:
        nonlocal served
        if scope["type"] != "http":
            return
        served += 1
        failing = bool(error_every) and served % error_every == 0
        if latency_ms:
            await anyio.sleep(latency_ms / 1000)
        n = scope["query_string"].decode().removeprefix("n=")
        if failing:
            status, body = 500, b'{"error": "injected"}'
        else:
            status, body = 200, json.dumps({"n": n, "name": f"item {n}", "tags": ["a", "b"]}).encode()
        await send(
            {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]}
        )
        await send({"type": "http.response.body", "body": body})

    return app


def run_upstream(port: int, latency_ms: float, error_every: int) -> None:
    config = uvicorn.Config(
        upstream_app(latency_ms, error_every),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        backlog=4096,
        timeout_keep_alive=60,  # longer than the clients' idle limit, so no reuse races a close
    )
    uvicorn.Server(config).run()


# -- measuring --------------------------------------------------------------------------------------


@dataclass
class Stats:
    label: str
    latencies: list[float] = field(default_factory=list)  # seconds, calls that got an answer
    errors: Counter[str] = field(default_factory=Counter)
    elapsed: float = 0.0

    @property
    def calls(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.calls / self.elapsed if self.elapsed else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


async def drive(label: str, concurrency: int, duration: float, call: Callable[[int], Awaitable[str | None]]) -> Stats:
    """`concurrency` callers, each calling again as soon as it has its answer, for `duration` s.

    `call(n)` returns None for a success or a short error label. A warm-up of two calls per
    caller (connections, caches) is not counted.
    """
    stats = Stats(label)
    async with anyio.create_task_group() as tg:
        for n in range(concurrency * 2):
            tg.start_soon(call, n)
    stop = time.perf_counter() + duration

    async def caller(first: int) -> None:
        n = first
        while time.perf_counter() < stop:
            started = time.perf_counter()
            try:
                error = await call(n)
            except Exception as exc:  # noqa: BLE001 - counted, and the caller goes on
                error = type(exc).__name__
            stats.latencies.append(time.perf_counter() - started)
            if error:
                stats.errors[error] += 1
            n += concurrency

    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for i in range(concurrency):
            tg.start_soon(caller, i)
    stats.elapsed = time.perf_counter() - started
    return stats


async def direct_stats(url: str, concurrency: int, duration: float) -> Stats:
    limits = httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency, keepalive_expiry=30)
    async with httpx2.AsyncClient(limits=limits, timeout=60) as http:

        async def call(n: int) -> str | None:
            response = await http.get(f"{url}/item", params={"n": n})
            response.json()
            return None if response.status_code == 200 else f"HTTP {response.status_code}"

        return await drive("direct httpx2", concurrency, duration, call)


async def mcp_stats(base: str, era: str, concurrency: int, duration: float) -> Stats:
    # A client's idle connections must be dropped before the server's keep-alive (5 s) drops them.
    limits = httpx2.Limits(
        max_connections=concurrency + 4, max_keepalive_connections=concurrency + 4, keepalive_expiry=2
    )
    async with (
        httpx2.AsyncClient(limits=limits, timeout=httpx2.Timeout(60)) as http,
        Client(streamable_http_client(f"{base}/mcp", http_client=http), mode=era) as client,
    ):
        await client.list_tools()

        async def call(n: int) -> str | None:
            result = await client.call_tool("get_item", {"n": n})
            if not result.is_error:
                return None
            text = result.content[0].text if result.content else ""
            return text.split("\n", 1)[0][:60]

        return await drive(f"mcp-webtools ({era})", concurrency, duration, call)


# -- processes ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def wait_for_port(port: int, process: anyio.abc.Process, what: str) -> None:
    with anyio.fail_after(30):
        while True:
            if process.returncode is not None:
                raise SystemExit(f"{what} exited with status {process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return
            except OSError:
                await anyio.sleep(0.05)


def process_figures(pid: int) -> tuple[float, float]:
    """(CPU seconds used so far, resident MiB) of a process, from /proc (0, 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        resident = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except OSError:
        return 0.0, 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks, resident * os.sysconf("SC_PAGE_SIZE") / 2**20


def write_config(directory: Path, upstream: str) -> Path:
    tool = {
        "type": "FUNCTION",
        "name": "Get Item",
        "description": "One item by number.",
        "toolSettings": {"serverUrl": f"{upstream}/item", "methodType": "GET", "timeOut": 30},
        "params": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]},
    }
    path = directory / "bench-tools.json"
    path.write_text(json.dumps([tool]))
    return path


def report(args: argparse.Namespace, rows: list[Stats], server: dict[str, tuple[float, float]]) -> None:
    print(
        f"\nmcp-webtools load bench: {args.concurrency} concurrent callers, {args.duration:g} s per row, "
        f"upstream latency {args.latency_ms:g} ms, error every {args.error_every or 'never'}"
    )
    print(f"{'':24}{'calls':>8}{'calls/s':>10}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}  errors")
    baseline = rows[0]
    for stats in rows:
        errors = ", ".join(f"{count} {kind}" for kind, count in stats.errors.most_common()) or "0"
        print(
            f"{stats.label:24}{stats.calls:>8}{stats.rate:>10.1f}{stats.percentile(50):>9.2f}"
            f"{stats.percentile(90):>9.2f}{stats.percentile(99):>9.2f}  {errors}"
        )
    for stats in rows[1:]:
        print(
            f"{stats.label:24}  vs direct: {stats.rate / baseline.rate:.2f}x the calls/s, "
            f"{stats.percentile(50) / baseline.percentile(50):.1f}x the p50, "
            f"{stats.percentile(99) / baseline.percentile(99):.1f}x the p99"
        )
        cpu, rss = server[stats.label]
        print(f"{'':24}  server: {cpu / max(stats.calls, 1) * 1000:.2f} ms CPU per call; {rss:.0f} MiB resident after")


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="mcp-webtools-bench-") as tmp:
        upstream_port, mcp_port = free_port(), free_port()
        upstream_url = f"http://127.0.0.1:{upstream_port}"
        config = write_config(Path(tmp), upstream_url)
        log = open(Path(tmp) / "server.log", "wb")  # noqa: SIM115 - closed below
        upstream_cmd = [
            sys.executable,
            __file__,
            "_upstream",
            str(upstream_port),
            str(args.latency_ms),
            str(args.error_every),
        ]
        server_cmd = [sys.executable, "-m", "mcp_webtools", "--log-level", args.server_log_level]
        server_cmd += ["serve", "--transport", "http", "--port", str(mcp_port)]
        server_cmd += ["--config", str(config), "--max-concurrency", str(max(64, args.concurrency))]
        server_cmd += ["--max-queue", str(max(256, args.concurrency))]
        async with (
            await anyio.open_process(upstream_cmd, stdout=None, stderr=None) as upstream,
            await anyio.open_process(server_cmd, cwd=REPO, stdout=log, stderr=log) as server,
        ):
            try:
                await wait_for_port(upstream_port, upstream, "the upstream")
                await wait_for_port(mcp_port, server, "mcp-webtools")
                rows = [await direct_stats(upstream_url, args.concurrency, args.duration)]
                figures: dict[str, tuple[float, float]] = {}
                for era in ERAS if args.era == "both" else (args.era,):
                    cpu_before, _ = process_figures(server.pid)
                    stats = await mcp_stats(f"http://127.0.0.1:{mcp_port}", era, args.concurrency, args.duration)
                    cpu_after, rss = process_figures(server.pid)
                    rows.append(stats)
                    figures[stats.label] = (cpu_after - cpu_before, rss)
            finally:
                for process in (server, upstream):
                    if process.returncode is None:
                        process.terminate()
                with anyio.move_on_after(15):
                    await server.wait()
                    await upstream.wait()
        log.close()
        report(args, rows, figures)
        problems = re.findall(r".*(?:ERROR|Traceback).*", (Path(tmp) / "server.log").read_text(errors="replace"))
        if problems:
            print(f"\nthe server logged {len(problems)} error line(s), e.g.: {problems[0][:200]}")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Load bench for mcp-webtools over Streamable HTTP (loopback only).")
    parser.add_argument("--concurrency", type=int, default=50, help="concurrent callers (default 50)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per row (default 10)")
    parser.add_argument("--era", choices=("legacy", "auto", "both"), default="both", help="MCP protocol era(s)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="upstream delay per request (default 0)")
    parser.add_argument("--error-every", type=int, default=0, help="every Nth upstream answer is a 500 (default never)")
    parser.add_argument(
        "--server-log-level", default="INFO", help="mcp-webtools --log-level (default INFO, which logs each call)"
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    if sys.argv[1:2] == ["_upstream"]:
        run_upstream(int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]))
    else:
        anyio.run(main, parse_args(sys.argv[1:]))
