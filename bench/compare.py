"""Side-by-side benchmark: mcp-webtools, FastMCP's OpenAPI proxy and the bare MCP SDK, one run.

Starts a loopback upstream (bench/upstream.py) and measures, against the same `GET /item?n=N`:

- the direct httpx2 call (the floor);
- each server over stdio and Streamable HTTP, in both protocol eras (`legacy` handshake, and
  `auto`, which lands on 2026-07-28 where the server speaks it): p50/p90/p99 latency of
  sequential calls, the server process's own CPU time per call, and over HTTP calls/s with
  1/8/32 concurrent callers (one MCP session each);
- start-up to the first tools/list, warm tools/list and RSS at 1/100/1000 tools (stdio), and the
  bare SDK server's (its three tools): the floor of any server on this SDK;
- over HTTP, a floor for a call: `bare_server.Floor` answers a `floor` call with the same GET and
  one JSON answer in front of the SDK's app (uvicorn, httpx2 and the event loop, no MCP machinery).

All clients are the `mcp` SDK's `Client`. FastMCP runs from bench/.venv (`sh bench/setup.sh`).
Prints one table, writes bench/results/<date>-<host>.json. See bench/README.md.

    python bench/compare.py --quick
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx2
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from targets import (
    BENCH,
    BENCH_PYTHON,
    REPO,
    SETTINGS,
    WEBTOOLS_KINDS,
    Target,
    children_of,
    free_port,
    process_cpu,
    process_rss_mib,
    server_command,
    write_configs,
)

LEVELS = (1, 8, 32)
TOOL_COUNTS = (1, 100, 1000)
SERVERS = (
    ("bare", "noop"),
    ("bare", "get_item"),
    ("bare", "floor"),
    ("webtools", "get_item"),
    ("lean", "get_item"),
    ("fastmcp", "get_item"),
)
TRANSPORTS = ("stdio", "http")
ERAS = ("legacy", "auto")


@dataclass
class Row:
    label: str
    kind: str
    transport: str
    era: str
    protocol: str = ""
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    cpu_ms_per_call: float | None = None
    # This bench process's own CPU per sequential call: the MCP client's side of a call (for the
    # direct row, httpx2's side of one GET: what any proxy's upstream leg costs at least).
    client_cpu_ms_per_call: float | None = None
    rate: dict[int, float] = field(default_factory=dict)  # concurrency -> calls/s
    rate_cpu_ms: dict[int, float] = field(default_factory=dict)  # concurrency -> server CPU ms per call
    errors: Counter[str] = field(default_factory=Counter)

    def pct(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


@dataclass
class Startup:
    kind: str
    tools: int
    startup_ms: float
    list_ms: float  # warm tools/list as the SDK client sees it (median)
    list_cpu_ms: float  # server CPU per warm tools/list
    rss_mib: float


# -- calling --------------------------------------------------------------------------------------


def check(result: Any, n: int, tool: str) -> str | None:
    """None for a right answer, else a short error label."""
    if result.is_error:
        text = result.content[0].text if result.content else ""
        return "tool error: " + text.split("\n", 1)[0][:50]
    text = result.content[0].text if result.content else ""
    expected = "ok" if tool == "noop" else f"item {n}"
    return None if expected in text else "wrong answer"


async def timed_calls(client: Client, tool: str, count: int, row: Row, first: int = 0) -> None:
    for n in range(first, first + count):
        started = time.perf_counter()
        try:
            error = check(await client.call_tool(tool, {} if tool == "noop" else {"n": n}), n, tool)
        except Exception as exc:  # noqa: BLE001 - counted
            error = type(exc).__name__
        row.latencies_ms.append((time.perf_counter() - started) * 1000)
        if error:
            row.errors[error] += 1


async def drive(call: Any, concurrency: int, duration: float) -> tuple[int, float, Counter[str]]:
    """`concurrency` callers, each calling again on its answer, for `duration` s: (calls, s, errors)."""
    errors: Counter[str] = Counter()
    done = 0
    stop = time.perf_counter() + duration

    async def caller(i: int) -> None:
        nonlocal done
        n = i
        while time.perf_counter() < stop:
            try:
                error = await call(i, n)
            except Exception as exc:  # noqa: BLE001 - counted
                error = type(exc).__name__
            done += 1
            if error:
                errors[error] += 1
            n += concurrency

    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for i in range(concurrency):
            tg.start_soon(caller, i)
    return done, time.perf_counter() - started, errors


def http_client(url: str, era: str, stack: AsyncExitStack) -> Any:
    limits = httpx2.Limits(max_connections=8, max_keepalive_connections=8, keepalive_expiry=2)
    http = httpx2.AsyncClient(limits=limits, timeout=httpx2.Timeout(60))
    return Client(streamable_http_client(url, http_client=http), mode=era), http


async def open_clients(url: str, era: str, count: int, stack: AsyncExitStack) -> list[Client]:
    clients = []
    for _ in range(count):
        client, http = http_client(url, era, stack)
        await stack.enter_async_context(http)
        clients.append(await stack.enter_async_context(client))
    return clients


# -- rows -----------------------------------------------------------------------------------------


async def direct_row(upstream: str, args: argparse.Namespace) -> Row:
    row = Row("direct httpx2 (the floor)", "direct", "-", "-")
    limits = httpx2.Limits(max_connections=64, max_keepalive_connections=64, keepalive_expiry=30)
    async with httpx2.AsyncClient(limits=limits, timeout=30) as http:

        async def one(_: int, n: int) -> str | None:
            response = await http.get(f"{upstream}/item", params={"n": n})
            return None if f"item {n}" in response.text else f"HTTP {response.status_code}"

        for n in range(args.warmup):
            await one(0, n)
        own = time.process_time()
        for n in range(args.calls):
            started = time.perf_counter()
            error = await one(0, n)
            row.latencies_ms.append((time.perf_counter() - started) * 1000)
            if error:
                row.errors[error] += 1
        row.client_cpu_ms_per_call = (time.process_time() - own) * 1000 / args.calls
        for level in LEVELS:
            done, elapsed, errors = await drive(one, level, args.duration)
            row.rate[level] = done / elapsed
            row.errors.update(errors)
    return row


@asynccontextmanager
async def http_server(command: list[str], port: int, log: Any, profiled: bool = False) -> Any:
    process = await anyio.open_process(command, cwd=REPO, stdout=log, stderr=log)
    try:
        with anyio.fail_after(60):
            while True:
                if process.returncode is not None:
                    raise SystemExit(f"{' '.join(command)} exited with status {process.returncode}")
                try:
                    async with httpx2.AsyncClient() as probe:
                        await probe.get(f"http://127.0.0.1:{port}/mcp", timeout=1)
                    break
                except httpx2.HTTPError:
                    await anyio.sleep(0.05)
        yield process
    finally:
        if process.returncode is None:
            # uvicorn re-raises the signal it stopped on once it is done: SIGTERM would then kill
            # the process before cProfile writes its stats, where SIGINT ends it with a
            # KeyboardInterrupt that cProfile still writes them through.
            process.send_signal(signal.SIGINT if profiled else signal.SIGTERM)
        with anyio.move_on_after(10):
            await process.wait()
        if process.returncode is None:
            process.kill()


@asynccontextmanager
async def stdio_session(command: list[str], era: str, log: Any) -> Any:
    """(client, server pid) for a server spawned over stdio by the SDK client."""
    before = children_of(os.getpid())
    params = StdioServerParameters(command=command[0], args=command[1:], cwd=str(REPO), env=dict(os.environ))
    async with Client(stdio_client(params, errlog=log), mode=era, read_timeout_seconds=60) as client:
        spawned = children_of(os.getpid()) - before
        if len(spawned) != 1:
            raise SystemExit(f"expected one server process, found {sorted(spawned)}")
        yield client, spawned.pop()


async def server_row(target: Target, upstream: str, configs: tuple[Path, Path], args: argparse.Namespace) -> Row:
    row = Row(target.label, target.kind, target.transport, target.era)
    port = free_port()
    profiled = args.profile and target.kind in WEBTOOLS_KINDS
    profile = args.profile / f"{target.kind}-{target.transport}-{target.era}.prof" if profiled else None
    command = server_command(
        target.kind, target.transport, configs, upstream, port, args.server_log_level, profile, args.uvloop
    )
    with open(args.logdir / f"{target.kind}-{target.transport}-{target.era}-{target.tool}.log", "ab") as log:
        if target.transport == "stdio":
            async with stdio_session(command, target.era, log) as (client, pid):
                await latency(client, pid, target, row, args)
            return row
        url = f"http://127.0.0.1:{port}/mcp"
        async with http_server(command, port, log, profiled=profile is not None) as process, AsyncExitStack() as stack:
            (client,) = await open_clients(url, target.era, 1, stack)
            await latency(client, process.pid, target, row, args)
            if target.tool == "noop":
                return row
            clients = await open_clients(url, target.era, max(LEVELS) - 1, stack)
            clients.insert(0, client)
            for level in LEVELS:

                async def one(i: int, n: int) -> str | None:
                    return check(await clients[i].call_tool(target.tool, {"n": n}), n, target.tool)

                await drive(one, level, min(0.5, args.duration))  # warm every session
                cpu = process_cpu(process.pid)
                done, elapsed, errors = await drive(one, level, args.duration)
                row.rate[level] = done / elapsed
                row.rate_cpu_ms[level] = (process_cpu(process.pid) - cpu) * 1000 / max(done, 1)
                row.errors.update(errors)
    return row


async def latency(client: Client, pid: int, target: Target, row: Row, args: argparse.Namespace) -> None:
    row.protocol = client.protocol_version
    await client.list_tools()
    warm = Row("", "", "", "")
    await timed_calls(client, target.tool, args.warmup, warm, first=10_000)
    row.errors.update(warm.errors)
    cpu, own = process_cpu(pid), time.process_time()
    await timed_calls(client, target.tool, args.calls, row)
    row.cpu_ms_per_call = (process_cpu(pid) - cpu) * 1000 / args.calls
    row.client_cpu_ms_per_call = (time.process_time() - own) * 1000 / args.calls


async def startup_row(kind: str, count: int, upstream: str, directory: Path, args: argparse.Namespace) -> Startup:
    configs = write_configs(directory, upstream, count)
    profile = args.profile / f"startup-{count}.prof" if args.profile and kind == "webtools" else None
    command = server_command(kind, "stdio", configs, upstream, 0, args.server_log_level, profile, args.uvloop)
    with open(args.logdir / f"{kind}-startup-{count}.log", "ab") as log:
        started = time.perf_counter()
        async with stdio_session(command, "legacy", log) as (client, pid):
            listed = await client.list_tools(cache_mode="bypass")
            startup_ms = (time.perf_counter() - started) * 1000
            if len(listed.tools) != count:
                raise SystemExit(f"{kind} listed {len(listed.tools)} tools, not {count}")
            times = []
            cpu = process_cpu(pid)
            for _ in range(args.list_repeats):
                started = time.perf_counter()
                await client.list_tools(cache_mode="bypass")
                times.append((time.perf_counter() - started) * 1000)
            list_cpu = (process_cpu(pid) - cpu) * 1000 / args.list_repeats
            rss = process_rss_mib(pid)
    return Startup(kind, count, startup_ms, statistics.median(times), list_cpu, rss)


# -- report ---------------------------------------------------------------------------------------


def fmt(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None or value != value else format(value, spec)


STARTUP_NAMES = {"webtools": "mcp-webtools", "fastmcp": "FastMCP OpenAPI", "bare": "bare SDK server"}
BARE_TOOLS = 3  # bare_server.py's noop, get_item and floor


def counterpart(rows: list[Row], row: Row, kind: str) -> Row | None:
    return next((r for r in rows if r.kind == kind and r.transport == row.transport and r.era == row.era), None)


def report(rows: list[Row], startups: list[Startup]) -> str:
    direct = rows[0]
    width = max(len(row.label) for row in rows) + 1
    lines = [
        f"{'':{width}}{'p50':>7}{'p90':>7}{'p99':>7}{'x direct':>9}{'client':>7}{'CPU ms':>8}{'x FMCP':>7}"
        + "".join(f"{f'c/s@{c}':>8}" for c in LEVELS)
        + f"{'x FMCP@32':>10}{'CPU@32':>7}  errors"
    ]
    for row in rows:
        fast = counterpart(rows, row, "fastmcp")
        cpu_ratio = (
            row.cpu_ms_per_call / fast.cpu_ms_per_call
            if fast and row.cpu_ms_per_call and fast.cpu_ms_per_call
            else None
        )
        rate_ratio = row.rate[32] / fast.rate[32] if fast and 32 in row.rate and 32 in fast.rate else None
        errors = ", ".join(f"{n} {kind}" for kind, n in row.errors.most_common()) or "0"
        lines.append(
            f"{row.label:{width}}{fmt(row.pct(50)):>7}{fmt(row.pct(90)):>7}{fmt(row.pct(99)):>7}"
            f"{fmt(row.pct(50) / direct.pct(50), '.2f') + 'x':>9}{fmt(row.client_cpu_ms_per_call):>7}"
            f"{fmt(row.cpu_ms_per_call):>8}"
            f"{fmt(cpu_ratio) + ('x' if cpu_ratio else ''):>7}"
            + "".join(f"{fmt(row.rate.get(c), '.0f'):>8}" for c in LEVELS)
            + f"{fmt(rate_ratio) + ('x' if rate_ratio else ''):>10}{fmt(row.rate_cpu_ms.get(32)):>7}  {errors}"
        )
    lines.append("")
    kinds = ("webtools", "fastmcp", "bare")
    lines.append("start-up rows: " + "; ".join(f"{STARTUP_NAMES[k]}: {SETTINGS[k]}" for k in kinds))
    lines.append(
        f"{'start-up (stdio)':22}{'tools':>6}{'first list ms':>15}{'warm list ms':>14}{'list CPU ms':>13}{'RSS MiB':>9}"
    )
    for s in startups:
        # The bare SDK server (its 3 tools) against FastMCP with the most tools: the floor of any server on this SDK.
        most = max((o.tools for o in startups if o.kind == "fastmcp"), default=None) if s.kind == "bare" else s.tools
        other = next((o for o in startups if o.kind == "fastmcp" and o.tools == most), None)
        against = "" if s.kind != "bare" else f" ({most} tools)"
        ratio = (
            f"   vs FastMCP{against}: {s.startup_ms / other.startup_ms:.2f}x start, "
            f"{s.list_ms / other.list_ms:.2f}x list, {s.rss_mib / other.rss_mib:.2f}x RSS"
            if other and s.kind != "fastmcp"
            else ""
        )
        lines.append(
            f"{STARTUP_NAMES[s.kind]:22}{s.tools:>6}{s.startup_ms:>15.0f}{s.list_ms:>14.1f}{s.list_cpu_ms:>13.1f}{s.rss_mib:>9.0f}{ratio}"
        )
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    model = ""
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    fastmcp = subprocess.run(
        [str(BENCH_PYTHON), "-c", "import fastmcp; print(fastmcp.__version__)"], capture_output=True, text=True
    ).stdout.strip()
    from importlib.metadata import version

    return {
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load": os.getloadavg(),
        "mcp": version("mcp"),
        "fastmcp": fastmcp,
        "mcp_webtools": version("mcp-webtools"),
    }


# -- main -----------------------------------------------------------------------------------------


def targets(args: argparse.Namespace) -> list[Target]:
    found = []
    # Transport and era outermost: the rows compared with each other run minutes apart at most, so
    # a machine whose speed drifts during a run (a shared VM) moves them together.
    for transport in TRANSPORTS:
        for era in ERAS:
            for kind, tool in SERVERS:
                if kind in args.only and (tool != "floor" or transport == "http"):  # the floor is an HTTP one
                    found.append(Target(kind, transport, era, tool, args.server_log_level))
    return found


def table_order(target: Target) -> tuple[int, int, int]:
    """Server by server, then transport and era: how the table reads best."""
    return SERVERS.index((target.kind, target.tool)), TRANSPORTS.index(target.transport), ERAS.index(target.era)


async def main(args: argparse.Namespace) -> None:
    if "fastmcp" in args.only and not BENCH_PYTHON.exists():
        raise SystemExit("FastMCP's environment is missing: run `sh bench/setup.sh` first (or --only webtools bare)")
    info = machine()
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mcp-webtools-compare-") as tmp:
        directory = Path(tmp)
        args.logdir = directory
        port = free_port()
        upstream_url = f"http://127.0.0.1:{port}"
        upstream = await anyio.open_process([sys.executable, str(BENCH / "upstream.py"), str(port)], stderr=None)
        try:
            assert upstream.stdout is not None
            await upstream.stdout.receive()  # "ready"
            configs = write_configs(directory, upstream_url, 1)
            rows = [await direct_row(upstream_url, args)]
            measured = {}
            for target in targets(args):
                measured[target] = await server_row(target, upstream_url, configs, args)
                print(f"  {target.label}: p50 {measured[target].pct(50):.2f} ms", file=sys.stderr, flush=True)
            rows += [measured[target] for target in sorted(measured, key=table_order)]
            startups = []
            for count in TOOL_COUNTS:
                for kind in ("webtools", "fastmcp"):
                    if kind in args.only:
                        startups.append(await startup_row(kind, count, upstream_url, directory, args))
            if "bare" in args.only:  # interpreter, the SDK's imports and its session: every such server's floor
                startups.append(await startup_row("bare", BARE_TOOLS, upstream_url, directory, args))
        finally:
            upstream.terminate()
            await upstream.wait()
        problems = [
            f"{log.name}: {line.strip()[:160]}"
            for log in directory.glob("*.log")
            for line in log.read_text(errors="replace").splitlines()
            if "Traceback" in line or " ERROR " in line
        ]
    table = report(rows, startups)
    stamp = datetime.datetime.now(datetime.UTC)
    header = (
        f"mcp-webtools compare, {stamp:%Y-%m-%d %H:%M} UTC, {info['host']} ({info['cpus']} CPUs, {info['cpu']}), "
        f"Python {info['python']}, mcp {info['mcp']}, FastMCP {info['fastmcp']}; "
        f"{args.calls} sequential calls, {args.duration:g} s per concurrency level "
        f"({'quick' if args.quick else 'full'}, {time.perf_counter() - began:.0f} s)"
    )
    print(
        f"\n{header}\n(latency ms; CPU = server process CPU ms per call; x FMCP = ratio to FastMCP, same transport "
        f"and era)\n\n{table}"
    )
    if problems:
        print(f"\nserver logs had {len(problems)} error line(s), e.g. {problems[0]}")
    results = BENCH / "results"
    results.mkdir(exist_ok=True)
    out = results / f"{stamp:%Y-%m-%dT%H%M}-{info['host']}.json"
    rows_json = []
    for row in rows:
        data = asdict(row)
        data.pop("latencies_ms")
        data.update(p50=row.pct(50), p90=row.pct(90), p99=row.pct(99), x_direct=row.pct(50) / rows[0].pct(50))
        rows_json.append(data)
    out.write_text(
        json.dumps(
            {
                "header": header,
                "machine": info,
                "quick": args.quick,
                "rows": rows_json,
                "startup": [asdict(s) for s in startups],
                "log_problems": problems,
                "table": table,
            },
            indent=2,
        )
    )
    print(f"\nwritten to {out.relative_to(REPO)}")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="mcp-webtools vs FastMCP vs the bare SDK, loopback only.")
    parser.add_argument("--quick", action="store_true", help="about 2 minutes: fewer calls, shorter runs")
    parser.add_argument("--calls", type=int, help="sequential calls per row (default 2000; quick 300)")
    parser.add_argument("--duration", type=float, help="seconds per concurrency level (default 8; quick 2)")
    parser.add_argument(
        "--only",
        nargs="+",
        default=["webtools", "lean", "fastmcp", "bare"],
        choices=["webtools", "lean", "fastmcp", "bare"],
        help="which servers (webtools: as shipped; lean: audit line and watcher off)",
    )
    parser.add_argument("--profile", type=Path, help="run mcp-webtools under cProfile, stats into this folder")
    parser.add_argument("--uvloop", action="store_true", help="run mcp-webtools on uvloop (pip install uvloop)")
    parser.add_argument(
        "--server-log-level", default="INFO", help="the shipped mcp-webtools row's --log-level (default INFO)"
    )
    args = parser.parse_args(argv)
    args.calls = args.calls or (300 if args.quick else 2000)
    args.duration = args.duration or (2.0 if args.quick else 8.0)
    args.warmup = 50
    args.list_repeats = 5 if args.quick else 20
    if args.profile:
        args.profile = args.profile.resolve()  # the servers run from the repository root
        args.profile.mkdir(parents=True, exist_ok=True)
    return args


if __name__ == "__main__":
    anyio.run(main, parse_args(sys.argv[1:]))
