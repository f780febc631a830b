"""`GET /metrics` (Prometheus text format), `/readyz`, and who may read them.

Known calls from a real MCP client, then exact counter values read back over HTTP and parsed
with prometheus-client's own parser. `/readyz` is probed over real HTTP during a shutdown drain
through a second listener on the same app (the server's own stops accepting when the drain starts).
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from prometheus_client.parser import text_string_to_metric_families
from support import Reply, answer_lifespan, bound_socket, hamsa_tool, secret, serve_asgi, write_tools

from mcp_webtools.observe.metrics import Metrics
from mcp_webtools.outcomes import CallRecord
from mcp_webtools.serving.http_app import HttpSettings, build_http_app
from mcp_webtools.serving.runtime import open_reloader, open_webtools, start_http
from mcp_webtools.serving.server import WebTools

pytestmark = pytest.mark.anyio

BOUND = 30
TOKEN = secret("metrics-token-never-shown-31")


def tools_config(tmp_path: Path, url: str) -> Path:
    tools = [
        hamsa_tool("Ok", f"{url}/ok", params={"type": "object", "properties": {"n": {"type": "integer"}}}),
        hamsa_tool("Broken", f"{url}/broken"),
        hamsa_tool("Held", f"{url}/held", timeOut=30),
    ]
    return write_tools(tmp_path, [{**tool, "retry": {"retries": 0}} for tool in tools])


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample as {(name, sorted labels): value}."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict, name: str, **labels: str) -> float | None:
    return found.get((name, tuple(sorted(labels.items()))))


@asynccontextmanager
async def served(config: Path, settings: HttpSettings | None = None) -> AsyncIterator[tuple[WebTools, str]]:
    webtools = open_webtools([str(config)])
    async with serve_asgi(build_http_app(webtools, settings or HttpSettings())) as base:
        yield webtools, base


@asynccontextmanager
async def mcp(base: str, headers: dict[str, str] | None = None) -> AsyncIterator[Client]:
    http = httpx2.AsyncClient(headers=headers or {}, timeout=httpx2.Timeout(30, read=60))
    async with http, Client(streamable_http_client(f"{base}/mcp", http_client=http), mode="legacy") as client:
        yield client


async def test_metrics_count_the_calls_made(upstream, tmp_path):
    upstream.reply_json("GET", "/ok", {"ok": True})
    upstream.reply("GET", "/broken", Reply(500, b"no"))
    config = tools_config(tmp_path, upstream.url)
    async with served(config) as (webtools, base), mcp(base) as client:
        await client.list_tools()
        for _ in range(2):
            assert (await client.call_tool("ok", {})).is_error is False
        assert (await client.call_tool("broken", {})).is_error is True
        assert (await client.call_tool("ok", {"n": "not a number"})).is_error is True
        with pytest.raises(Exception, match="Unknown tool"):
            await client.call_tool("made_up_by_the_client", {})
        webtools.metrics.observe_reload(True)
        webtools.metrics.observe_reload(False)
        async with httpx2.AsyncClient() as http:
            response = await http.get(f"{base}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    found = samples(response.text)

    calls = {key[1]: v for key, v in found.items() if key[0] == "mcp_webtools_tool_calls_total"}
    assert calls == {
        (("client", "none"), ("outcome", "ok"), ("tool", "ok")): 2.0,
        (("client", "none"), ("outcome", "invalid_arguments"), ("tool", "ok")): 1.0,
        (("client", "none"), ("outcome", "http_error"), ("tool", "broken")): 1.0,
    }
    responses = {key[1]: v for key, v in found.items() if key[0] == "mcp_webtools_upstream_responses_total"}
    assert responses == {
        (("status_class", "2xx"), ("tool", "ok")): 2.0,
        (("status_class", "5xx"), ("tool", "broken")): 1.0,
    }
    assert value(found, "mcp_webtools_tool_call_duration_seconds_count", tool="ok") == 3.0
    assert value(found, "mcp_webtools_tool_call_duration_seconds_count", tool="broken") == 1.0
    assert value(found, "mcp_webtools_tool_call_duration_seconds_bucket", tool="ok", le="60.0") == 3.0
    assert value(found, "mcp_webtools_tool_call_duration_seconds_bucket", tool="ok", le="0.001") is not None
    assert value(found, "mcp_webtools_calls_in_flight") == 0.0
    assert value(found, "mcp_webtools_tools_loaded") == 3.0
    assert value(found, "mcp_webtools_config_reloads_total", result="ok") == 1.0
    assert value(found, "mcp_webtools_config_reloads_total", result="error") == 1.0
    assert value(found, "mcp_webtools_config_last_reload_success") == 0.0
    assert value(found, "mcp_webtools_config_last_reload_timestamp_seconds") > 1.7e9
    assert value(found, "mcp_webtools_process_id") == os.getpid()  # served in this process
    for reason in ("missing", "scheme", "overlong", "wrong"):  # there from the start, at 0
        assert value(found, "mcp_webtools_unauthorized_requests_total", reason=reason) == 0.0
    # A tool name a client made up never becomes a label.
    assert "made_up_by_the_client" not in response.text


async def test_each_app_has_its_own_registry(upstream, tmp_path):
    upstream.reply_json("GET", "/ok", {})
    config = tools_config(tmp_path, upstream.url)
    async with served(config) as (_, first), served(config) as (_, second), mcp(first) as client:
        await client.call_tool("ok", {})
        async with httpx2.AsyncClient() as http:
            one = samples((await http.get(f"{first}/metrics")).text)
            other = samples((await http.get(f"{second}/metrics")).text)
    assert value(one, "mcp_webtools_tool_calls_total", tool="ok", outcome="ok", client="none") == 1.0
    assert value(other, "mcp_webtools_tool_calls_total", tool="ok", outcome="ok", client="none") is None


@pytest.mark.parametrize("metrics_public", [False, True])
async def test_metrics_need_the_token_unless_public_and_probes_never_do(upstream, tmp_path, metrics_public):
    config = tools_config(tmp_path, upstream.url)
    settings = HttpSettings(auth_token=TOKEN, metrics_public=metrics_public)
    async with served(config, settings) as (_, base), httpx2.AsyncClient() as http:
        anonymous = {}
        for path in ("/healthz", "/readyz", "/metrics"):
            anonymous[path] = (await http.get(f"{base}{path}")).status_code
        authorized = await http.get(f"{base}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        wrong = await http.get(f"{base}/metrics", headers={"Authorization": "Bearer nope-nope"})
    assert anonymous == {"/healthz": 200, "/readyz": 200, "/metrics": 200 if metrics_public else 401}
    assert authorized.status_code == 200 and "mcp_webtools_tools_loaded 3.0" in authorized.text
    assert wrong.status_code == (200 if metrics_public else 401)


class ProbeListener:
    """The same ASGI app on a second port, without its lifespan (the main server runs that)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
            return
        await self.app(scope, receive, send)


async def test_readyz_is_ready_then_503_while_draining(upstream, tmp_path):
    release = anyio.Event()
    upstream.reply("GET", "/held", Reply(200, b'{"held": "done"}', [("content-type", "application/json")], release))
    config = tools_config(tmp_path, upstream.url)
    webtools = open_webtools([str(config)])
    server = start_http(webtools, "127.0.0.1", 0, HttpSettings(), shutdown_grace_seconds=BOUND)
    sock = bound_socket()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    async with anyio.create_task_group() as tg, serve_asgi(ProbeListener(server.config.app)) as probe:
        tg.start_soon(server.serve, [sock])
        async with httpx2.AsyncClient() as http:
            with anyio.fail_after(BOUND):
                while not server.started:
                    await anyio.sleep(0.01)
            ready = await http.get(f"{base}/readyz")
            assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
            result: list = []
            async with mcp(base) as client:
                # The client fetches tools/list after a call it has no listing for: not possible once draining.
                await client.list_tools()

                async def call() -> None:
                    result.append(await client.call_tool("held", {}))

                tg.start_soon(call)
                with anyio.fail_after(BOUND):
                    while not upstream.requests:
                        await anyio.sleep(0.01)
                in_flight = samples((await http.get(f"{probe}/metrics")).text)
                assert value(in_flight, "mcp_webtools_calls_in_flight") == 1.0
                server.should_exit = True  # what SIGTERM does
                with anyio.fail_after(BOUND):
                    while not webtools.in_flight.closing:
                        await anyio.sleep(0.01)
                draining = await http.get(f"{probe}/readyz")
                assert (draining.status_code, draining.json()) == (503, {"status": "shutting down"})
                healthz = await http.get(f"{probe}/healthz")
                assert healthz.status_code == 200  # still alive: liveness must not kill a draining pod
                release.set()
                with anyio.fail_after(BOUND):
                    while not result:
                        await anyio.sleep(0.01)
    assert json.loads(result[0].content[0].text) == {"held": "done"}


async def test_config_reloads_are_counted(upstream, tmp_path):
    config = tools_config(tmp_path, upstream.url)
    webtools = open_webtools([str(config)])
    reloader = open_reloader(webtools, [str(config)], watch=False)
    before = samples(webtools.metrics.exposition().decode())
    assert value(before, "mcp_webtools_config_last_reload_success") == 1.0  # nothing rejected yet
    config.write_text("[{]")  # not JSON: rejected, the last good set kept
    assert (await reloader.reload()).ok is False
    rejected = samples(webtools.metrics.exposition().decode())
    write_tools(tmp_path, [hamsa_tool("Ok", f"{upstream.url}/ok")])  # valid: one tool now
    assert (await reloader.reload()).ok is True
    after = samples(webtools.metrics.exposition().decode())

    assert value(rejected, "mcp_webtools_config_reloads_total", result="error") == 1.0
    assert value(rejected, "mcp_webtools_config_last_reload_success") == 0.0
    assert value(rejected, "mcp_webtools_tools_loaded") == 3.0
    assert value(after, "mcp_webtools_config_reloads_total", result="ok") == 1.0
    assert value(after, "mcp_webtools_config_reloads_total", result="error") == 1.0
    assert value(after, "mcp_webtools_config_last_reload_success") == 1.0
    assert value(after, "mcp_webtools_tools_loaded") == 1.0
    assert (
        value(before, "mcp_webtools_config_last_reload_timestamp_seconds")
        <= value(rejected, "mcp_webtools_config_last_reload_timestamp_seconds")
        <= value(after, "mcp_webtools_config_last_reload_timestamp_seconds")
    )


def test_the_client_label_is_bounded_to_the_configured_clients():
    configured = {"hamsa-sales"}
    metrics = Metrics(in_flight=lambda: 0, tools_loaded=lambda: 1, clients=lambda: configured)
    for client in ("hamsa-sales", "someone-else", None):
        metrics.observe_call(CallRecord("t", "GET", "https://x.example", "ok", client=client))
    configured.clear()  # a reload removed it: its calls still ending count as "other"
    metrics.observe_call(CallRecord("t", "GET", "https://x.example", "ok", client="hamsa-sales"))
    found = samples(metrics.exposition().decode())
    assert {labels: v for (name, labels), v in found.items() if name == "mcp_webtools_tool_calls_total"} == {
        (("client", "hamsa-sales"), ("outcome", "ok"), ("tool", "t")): 1.0,
        (("client", "other"), ("outcome", "ok"), ("tool", "t")): 2.0,
        (("client", "none"), ("outcome", "ok"), ("tool", "t")): 1.0,
    }
