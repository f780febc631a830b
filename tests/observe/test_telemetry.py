"""OpenTelemetry: the tool-call span, its upstream child span, and the client's trace continued.

`mcp-webtools serve --transport http` runs in a subprocess configured only by standard `OTEL_*`
variables (the console exporter, one JSON span per stderr line), so the test neither installs a
tracer provider in the test process nor leaks one into other tests. The client sends a
`traceparent` in the request's `_meta`, as an instrumented MCP client would.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from opentelemetry import trace
from support import REPO, SCANNER, Reply, ServerProcess, hamsa_tool, register_config_secrets, secret, write_tools

from mcp_webtools.observe import telemetry
from mcp_webtools.outcomes import CallRecord
from mcp_webtools.redaction import Redactor
from mcp_webtools.requests import OutboundRequest
from mcp_webtools.sending import SendPolicy, UpstreamResponse

pytestmark = pytest.mark.anyio

BOUND = 30
KEY = secret("otel-key-never-shown-2718")
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN_ID = "00f067aa0ba902b7"


def spans_in(log: str) -> list[dict]:
    """The spans the console exporter wrote to the server's stderr."""
    found = []
    for line in log.splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if "context" in entry:
                found.append(entry)
    return found


@asynccontextmanager
async def serve(config: Path, environ: dict[str, str]) -> AsyncIterator[tuple[ServerProcess, str]]:
    command = [sys.executable, "-m", "mcp_webtools", "serve", "--transport", "http", "--port", "0"]
    process = await anyio.open_process([*command, "--config", str(config)], cwd=REPO, env=environ, stdout=None)
    server = ServerProcess(process, BOUND)
    async with process, anyio.create_task_group() as tg:
        tg.start_soon(server.pump_log)
        try:
            match = await server.wait_for(lambda log: re.search(r"serving MCP at (http://127\.0\.0\.1:\d+)/mcp", log))
            yield server, match.group(1)
        finally:
            process.kill()
            with anyio.CancelScope(shield=True):
                await process.wait()
            tg.cancel_scope.cancel()


@pytest.mark.e2e
@pytest.mark.parametrize("era", ["legacy", "auto"])
async def test_one_span_per_call_with_the_upstream_request_as_its_child(upstream, tmp_path, era):
    upstream.reply_json("GET", f"/v1/{KEY}/items/5", {"item": 5})
    upstream.reply("GET", "/down", Reply(503, b"down"))
    tools = [
        hamsa_tool(
            "Item",
            upstream.url + "/v1/${OTEL_KEY}/items/{id}",
            params={"type": "object", "properties": {"id": {"type": "string"}}},
        ),
        {**hamsa_tool("Down", f"{upstream.url}/down"), "retry": {"retries": 1, "backoffSeconds": 0}},
    ]
    config = write_tools(tmp_path, tools)
    environ = {**os.environ, "OTEL_KEY": KEY, "OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "webtools-test"}
    environ["MCP_WEBTOOLS_AUTH_TOKEN"] = secret("otel-inbound-token-6d1f")  # the caller: client `default`
    register_config_secrets(config, environ)
    traceparent = f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"
    async with serve(config, environ) as (server, base):
        auth = {"Authorization": f"Bearer {environ['MCP_WEBTOOLS_AUTH_TOKEN']}"}
        http = httpx2.AsyncClient(headers=auth, timeout=httpx2.Timeout(30, read=60))
        async with http, Client(streamable_http_client(f"{base}/mcp", http_client=http), mode=era) as client:
            await client.list_tools()
            ok = await client.call_tool("item", {"id": "5"}, meta={"traceparent": traceparent})
            down = await client.call_tool("down", {})
        assert (ok.is_error, down.is_error) == (False, True)
        await server.wait_for(lambda log: sum(s["name"] == "GET " + upstream.url + "/down" for s in spans_in(log)))
        await server.wait_for(lambda log: sum(s["name"] == "tools/call down" for s in spans_in(log)))
        spans = spans_in(server.log)
        log = server.log

    by_name = {span["name"]: span for span in spans}
    call = by_name["tools/call item"]
    item_template = upstream.url + "/v1/${OTEL_KEY}/items/{id}"
    child = by_name[f"GET {item_template}"]
    # The client's trace is continued: same trace id, the client's span as the parent.
    assert call["context"]["trace_id"] == f"0x{TRACE_ID}"
    assert call["parent_id"] == f"0x{PARENT_SPAN_ID}"
    assert call["kind"] == "SpanKind.SERVER"
    assert call["resource"]["attributes"]["service.name"] == "webtools-test"
    assert {
        k: call["attributes"][k] for k in call["attributes"] if k.startswith(("mcp_webtools.", "url.", "http."))
    } == {
        "mcp_webtools.tool": "item",
        "mcp_webtools.outcome": "ok",
        "mcp_webtools.attempts": 1,
        "mcp_webtools.client": "default",  # the configured client's id, never its token
        "http.request.method": "GET",
        "http.response.status_code": 200,
        "url.template": item_template,
    }
    # The upstream request: a CLIENT span, child of the tool-call span.
    assert child["context"]["trace_id"] == f"0x{TRACE_ID}"
    assert child["parent_id"] == call["context"]["span_id"]
    assert child["kind"] == "SpanKind.CLIENT"
    assert child["attributes"] == {
        "http.request.method": "GET",
        "url.template": item_template,
        "http.response.status_code": 200,
    }
    assert child["status"]["status_code"] == "UNSET"

    # Without a traceparent: a new trace; the upstream's 503 (after one retry) marks both spans.
    down_call, down_child = by_name["tools/call down"], by_name[f"GET {upstream.url}/down"]
    assert down_call["parent_id"] is None and down_call["context"]["trace_id"] != f"0x{TRACE_ID}"
    assert down_child["parent_id"] == down_call["context"]["span_id"]
    assert down_child["attributes"] == {
        "http.request.method": "GET",
        "url.template": f"{upstream.url}/down",
        "http.response.status_code": 503,
        "http.request.resend_count": 1,
        "error.type": "503",
    }
    assert down_child["status"]["status_code"] == "ERROR"
    assert down_call["attributes"]["mcp_webtools.outcome"] == "http_error"
    assert down_call["status"]["status_code"] == "ERROR"  # the SDK marks a tool error
    assert KEY not in log
    SCANNER.scan("process", "serve with OTEL_TRACES_EXPORTER=console (stderr)", log)


async def test_tracing_is_off_without_configuration_and_free_without_opentelemetry(monkeypatch, caplog):
    assert telemetry.configure_tracing({}) is False
    assert telemetry.configure_tracing({"OTEL_TRACES_EXPORTER": "none"}) is False
    assert telemetry.configure_tracing({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}) is False

    # Configured for OTLP but the exporter (the `otel` extra) is missing: a warning, and still off.
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    with caplog.at_level(logging.WARNING, "mcp_webtools.telemetry"):
        assert telemetry.configure_tracing({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}) is False
    assert "pip install 'mcp-webtools[otel]'" in caplog.text
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)  # nothing was set up

    response = UpstreamResponse(200, "OK", "text/plain", b"hi", False, 1.0)

    class Answering:  # the next sender in the chain
        async def send(self, request, policy, *, deadline, count=None) -> UpstreamResponse:
            return response

    traced = telemetry.TracingSender(Answering())
    request = OutboundRequest("GET", "https://x.example/", ())
    policy = SendPolicy(timeout=1.0, url_template=Redactor([KEY])(f"https://x.example/{KEY}"))
    # Unconfigured: the API's non-recording spans, nothing to record.
    assert await traced.send(request, policy, deadline=anyio.current_time() + 1) is response
    telemetry.annotate_call(CallRecord("t", "GET", "https://x.example", "ok"))
    # opentelemetry not importable at all: the same calls, no spans, no errors.
    monkeypatch.setattr(telemetry, "trace", None)
    assert telemetry.configure_tracing({"OTEL_TRACES_EXPORTER": "console"}) is False
    assert await traced.send(request, policy, deadline=anyio.current_time() + 1) is response
    telemetry.annotate_call(CallRecord("t", "GET", "https://x.example", "ok"))
