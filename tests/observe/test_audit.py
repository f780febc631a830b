"""The audit record of every tool call, and the JSON log format.

Real clients: an `mcp.Client` over Streamable HTTP (both eras) against an in-process server,
whose JSON-RPC request ids are read off the wire; and a raw JSON-RPC conversation with
`mcp-webtools --log-format json serve` over stdio, whose stderr is parsed line by line.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
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
from support import ERAS, REPO, SCANNER, Reply, hamsa_tool, register_config_secrets, secret, serve_asgi, write_tools

from mcp_webtools.observe.audit import log_call
from mcp_webtools.observe.logformat import JsonLinesFormatter
from mcp_webtools.outcomes import OUTCOMES, CallRecord
from mcp_webtools.redaction import RedactingFilter, Redactor
from mcp_webtools.serving.http_app import HttpSettings, build_http_app
from mcp_webtools.serving.runtime import ServerOptions, open_webtools
from mcp_webtools.serving.server import WebTools

pytestmark = pytest.mark.anyio

BOUND = 30  # seconds: every wait is bounded
KEY = secret("obs-key-never-shown-4711")  # lives in the URL template, via ${OBS_KEY}
TOKEN = secret("obs-token-never-shown-0815")
AUDIT_FIELDS = {
    "tool",
    "method",
    "url_template",
    "outcome",
    "status",
    "attempts",
    "duration_ms",
    "request_bytes",
    "response_bytes",
    "request_id",
}


def tools_config(tmp_path: Path, url: str) -> Path:
    order = hamsa_tool(
        "Order",
        url + "/v1/${OBS_KEY}/orders/{id}",
        params={"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]},
        authToken=TOKEN,
    )
    create = hamsa_tool("Create", f"{url}/create", "POST", {"type": "object", "properties": {"n": {"type": "integer"}}})
    slow = hamsa_tool("Slow", f"{url}/slow", timeOut=1)
    held = hamsa_tool("Held", f"{url}/held", timeOut=30)
    gone = hamsa_tool("Gone", f"http://127.0.0.1:{closed_port()}/gone")  # nothing listens there
    # No retries: one attempt, so `attempts` is exact; Flaky retries 503s at once.
    tools = [{**tool, "retry": {"retries": 0}} for tool in (order, create, slow, held, gone)]
    tools.append({**hamsa_tool("Flaky", f"{url}/flaky"), "retry": {"retries": 2, "backoffSeconds": 0}})
    return write_tools(tmp_path, tools)


client_webtools: list[WebTools] = [None]  # type: ignore[list-item]  # the server behind the last `http_client`


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fields(record: logging.LogRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in AUDIT_FIELDS}


@asynccontextmanager
async def http_client(
    config: Path, era: str, sent_ids: dict[str, list[Any]], options: ServerOptions | None = None
) -> AsyncIterator[Client]:
    """A real client over Streamable HTTP; `sent_ids` gets each tools/call's JSON-RPC id, by tool name."""
    environ = {**os.environ, "OBS_KEY": KEY}
    register_config_secrets(config, environ)
    webtools = open_webtools([str(config)], environ=environ, options=options)
    client_webtools[0] = webtools

    async def note_id(request: httpx2.Request) -> None:
        if request.method == "POST":
            message = json.loads(await request.aread())
            if isinstance(message, dict) and message.get("method") == "tools/call":
                sent_ids.setdefault(message["params"]["name"], []).append(message["id"])

    async with serve_asgi(build_http_app(webtools, HttpSettings())) as base:
        http = httpx2.AsyncClient(timeout=httpx2.Timeout(30, read=60), event_hooks={"request": [note_id]})
        async with http, Client(streamable_http_client(f"{base}/mcp", http_client=http), mode=era) as client:
            yield client


@pytest.mark.parametrize("era", ERAS)
async def test_one_audit_record_per_call_with_exact_fields(upstream, tmp_path, audit_log, era):
    upstream.reply_json("GET", f"/v1/{KEY}/orders/7", {"order": 7, "state": "shipped"})
    upstream.reply("POST", "/create", Reply(500, b'{"error":"boom"}', [("content-type", "application/json")]))
    hang = anyio.Event()
    upstream.reply("GET", "/slow", Reply(200, b"{}", wait=hang))  # answers only after the test
    upstream.reply("GET", "/flaky", Reply(503, b"later"))
    config = tools_config(tmp_path, upstream.url)
    sent_ids: dict[str, list[Any]] = {}
    async with http_client(config, era, sent_ids) as client:
        await client.list_tools()
        ok = await client.call_tool("order", {"id": "7"})
        failed = await client.call_tool("create", {"n": 1})
        invalid = await client.call_tool("order", {"id": 7})  # not a string: refused, nothing sent
        timed_out = await client.call_tool("slow", {})
        flaky = await client.call_tool("flaky", {})
        gone = await client.call_tool("gone", {})
    hang.set()
    assert [r.is_error for r in (ok, failed, invalid, timed_out, flaky, gone)] == [False] + [True] * 5

    assert [r.name for r in audit_log] == ["mcp_webtools.audit"] * 6
    assert all(r.levelno == logging.INFO and r.event == "tool_call" for r in audit_log)
    records = [fields(r) for r in audit_log]
    durations = [r.pop("duration_ms") for r in records]
    order_url = upstream.url + "/v1/${OBS_KEY}/orders/{id}"  # the template as configured, never the resolved URL
    ok_body = len(json.dumps({"order": 7, "state": "shipped"}))
    gone_url = next(t["toolSettings"]["serverUrl"] for t in json.loads(config.read_text()) if t["name"] == "Gone")
    assert records == [
        {
            "tool": "order",
            "method": "GET",
            "url_template": order_url,
            "outcome": "ok",
            "status": 200,
            "attempts": 1,
            "request_bytes": 0,
            "response_bytes": ok_body,
            "request_id": sent_ids["order"][0],
        },
        {
            "tool": "create",
            "method": "POST",
            "url_template": f"{upstream.url}/create",
            "outcome": "http_error",
            "status": 500,
            "attempts": 1,
            "request_bytes": len(b'{"n":1}'),  # what the upstream received (checked below)
            "response_bytes": len(b'{"error":"boom"}'),
            "request_id": sent_ids["create"][0],
        },
        {
            "tool": "order",
            "method": "GET",
            "url_template": order_url,
            "outcome": "invalid_arguments",
            "status": None,
            "attempts": 0,
            "request_bytes": 0,
            "response_bytes": 0,
            "request_id": sent_ids["order"][1],
        },
        {
            "tool": "slow",
            "method": "GET",
            "url_template": f"{upstream.url}/slow",
            "outcome": "timeout",
            "status": None,
            "attempts": 1,
            "request_bytes": 0,
            "response_bytes": 0,
            "request_id": sent_ids["slow"][0],
        },
        {
            "tool": "flaky",
            "method": "GET",
            "url_template": f"{upstream.url}/flaky",
            "outcome": "http_error",
            "status": 503,
            "attempts": 3,
            "request_bytes": 0,
            "response_bytes": len(b"later"),
            "request_id": sent_ids["flaky"][0],
        },
        {
            "tool": "gone",
            "method": "GET",
            "url_template": gone_url,
            "outcome": "upstream_error",
            "status": None,
            "attempts": 1,
            "request_bytes": 0,
            "response_bytes": 0,
            "request_id": sent_ids["gone"][0],
        },
    ]
    assert [r.body for r in upstream.requests if r.method == "POST"] == [b'{"n":1}']
    assert len({r["request_id"] for r in records}) == 6  # the ids on the wire, one per call
    assert 800 <= durations[3] < 5000  # the 1 s timeout (the executor gives up 0.1 s inside it), measured
    assert all(d >= 0 for d in durations)
    assert all(KEY not in r.getMessage() and "/orders/7" not in r.getMessage() for r in audit_log)
    assert audit_log[0].getMessage() == (
        f"call tool=order method=GET url={order_url} outcome=ok status=200 attempts=1 "
        f"duration_ms={durations[0]:.1f} request_bytes=0 response_bytes={ok_body} request_id={records[0]['request_id']}"
    )


@pytest.mark.parametrize("era", ERAS)
async def test_a_call_the_client_cancels_is_audited_as_cancelled_with_the_attempts_sent(
    upstream, tmp_path, audit_log, era
):
    """Cancelled while its request is at the upstream: that attempt was sent, and counts (it once said 0)."""
    release = anyio.Event()
    upstream.reply("GET", "/held", Reply(200, b"{}", wait=release))
    # Flaky retries at once: its first attempt gets a 503, its second is held.
    upstream.reply("GET", "/flaky", lambda seen: Reply(503) if len(upstream.requests) == 2 else Reply(wait=release))
    config = tools_config(tmp_path, upstream.url)
    sent_ids: dict[str, list[Any]] = {}
    async with http_client(config, era, sent_ids) as client:
        await client.list_tools()
        for tool, requests in (("held", 1), ("flaky", 3)):
            with anyio.fail_after(BOUND):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(client.call_tool, tool, {})
                    while len(upstream.requests) < requests:
                        await anyio.sleep(0.01)
                    tg.cancel_scope.cancel()  # the client gives up: cancel notification or hang-up
                while len(audit_log) < len(sent_ids):
                    await anyio.sleep(0.01)
    release.set()
    assert [seen.raw_path for seen in upstream.requests] == ["/held", "/flaky", "/flaky"]
    records = [fields(record) for record in audit_log]
    assert all(record.pop("duration_ms") > 0 for record in records)
    assert records == [
        {
            "tool": tool,
            "method": "GET",
            "url_template": f"{upstream.url}/{tool}",
            "outcome": "cancelled",
            "status": None,
            "attempts": attempts,
            "request_bytes": 0,
            "response_bytes": 0,
            "request_id": sent_ids[tool][0],
        }
        for tool, attempts in (("held", 1), ("flaky", 2))
    ]


async def test_answers_cut_off_or_unusable_are_audited_as_the_client_got_them(upstream, tmp_path, audit_log):
    """`http_error` is a non-2xx status: a 2xx answer cut off at maxResponseBytes is `truncated`, one the tool
    cannot pass on (outputSchema, nesting) is `invalid_response`; and each has its own counter in /metrics."""
    big = json.dumps({"items": ["x" * 40] * 100}).encode()  # over the 1024 bytes these tools read
    deep = b"[" * 300 + b"]" * 300
    for path, body in {"/big": big, "/deep": deep, "/shape": b'{"id": "seven"}'}.items():
        upstream.reply("GET", path, Reply(200, body, [("content-type", "application/json")]))
    upstream.reply("GET", "/big-error", Reply(500, big, [("content-type", "application/json")]))
    capped = {"maxResponseBytes": 1024, "retry": {"retries": 0}}
    tools = {
        "Big": hamsa_tool("Big", f"{upstream.url}/big"),
        "Big Fields": {**hamsa_tool("Big Fields", f"{upstream.url}/big"), "responseFields": ["items"]},
        "Big Error": hamsa_tool("Big Error", f"{upstream.url}/big-error"),
        "Deep": hamsa_tool("Deep", f"{upstream.url}/deep"),
        "Deep Fields": {**hamsa_tool("Deep Fields", f"{upstream.url}/deep"), "responseFields": ["[0]"]},
        "Shape": {
            **hamsa_tool("Shape", f"{upstream.url}/shape"),
            "outputSchema": {"type": "object", "properties": {"id": {"type": "integer"}}},
        },
    }
    config = write_tools(tmp_path, [{**tool, **capped} for tool in tools.values()])
    async with http_client(config, "auto", {}) as client:
        results = {name: await client.call_tool(name.lower().replace(" ", "_"), {}) for name in tools}
        found = {
            tuple(sorted(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(client_webtools[0].metrics.exposition().decode())
            for sample in family.samples
            if sample.name == "mcp_webtools_tool_calls_total"
        }
    expected = {  # tool -> (isError the client got, outcome, status)
        "big": (False, "truncated", 200),  # the beginning of the answer, marked as cut off
        "big_fields": (True, "truncated", 200),  # responseFields cannot pick from the beginning of a document
        "big_error": (True, "http_error", 500),
        "deep": (False, "ok", 200),  # passed on as text, with a note
        "deep_fields": (True, "invalid_response", 200),
        "shape": (True, "invalid_response", 200),  # does not match the outputSchema
    }
    assert {name.lower().replace(" ", "_"): result.is_error for name, result in results.items()} == {
        tool: is_error for tool, (is_error, _, _) in expected.items()
    }
    assert [(r.tool, r.outcome, r.status, r.attempts) for r in audit_log] == [
        (tool, outcome, status, 1) for tool, (_, outcome, status) in expected.items()
    ]
    assert found == {
        (("client", "none"), ("outcome", outcome), ("tool", tool)): 1.0 for tool, (_, outcome, _) in expected.items()
    }


async def test_refused_calls_are_audited_as_busy_or_shutdown(upstream, tmp_path, audit_log):
    release = anyio.Event()
    upstream.reply("GET", "/held", Reply(200, b"{}", wait=release))
    config = tools_config(tmp_path, upstream.url)
    sent_ids: dict[str, list[Any]] = {}
    # One call at a time and no queue: a second call while one is in flight is refused as busy.
    async with http_client(config, "auto", sent_ids, ServerOptions(max_concurrency=1, max_queue=0)) as client:
        await client.list_tools()
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.call_tool, "held", {})
            with anyio.fail_after(BOUND):
                while not upstream.requests:
                    await anyio.sleep(0.01)
            busy = await client.call_tool("slow", {})
            release.set()
        await client_webtools[0].in_flight.drain(BOUND)  # what a shutdown does first: no new calls
        refused = await client.call_tool("slow", {})
    assert busy.is_error and "busy, try again shortly" in busy.content[0].text
    assert refused.is_error and "shutting down" in refused.content[0].text
    records = [fields(r) for r in audit_log]
    for record in records:
        del record["duration_ms"], record["url_template"], record["method"]
    none = {"status": None, "attempts": 0, "request_bytes": 0, "response_bytes": 0}
    assert records == [
        {"tool": "slow", "outcome": "busy", **none, "request_id": sent_ids["slow"][0]},
        {"tool": "held", "outcome": "ok", **none, "status": 200, "attempts": 1, "response_bytes": 2,
         "request_id": sent_ids["held"][0]},
        {"tool": "slow", "outcome": "shutdown", **none, "request_id": sent_ids["slow"][1]},
    ]  # fmt: skip


async def test_an_unknown_tool_gets_no_audit_record(upstream, tmp_path, audit_log):
    config = tools_config(tmp_path, upstream.url)
    async with http_client(config, "legacy", {}) as client:
        with pytest.raises(Exception, match="Unknown tool"):
            await client.call_tool("no_such_tool", {})
    assert audit_log == []


def test_the_filter_redacts_structured_fields_and_json_lines_carry_them():
    """A secret passed in `extra=` is masked before any formatter sees it."""
    record = logging.LogRecord("mcp_webtools.audit", logging.INFO, __file__, 1, "call %s", (KEY,), None)
    record.url_template = f"https://api.example/{KEY}/x"
    record.nested = {"list": [KEY, 5], KEY: "key"}
    assert RedactingFilter(Redactor([KEY])).filter(record) is True
    line = json.loads(JsonLinesFormatter().format(record))
    assert line == {
        "time": line["time"],
        "level": "INFO",
        "logger": "mcp_webtools.audit",
        "message": "call ***",
        "url_template": "https://api.example/***/x",
        "nested": {"list": ["***", 5], "***": "key"},
    }
    assert line["time"].endswith("+00:00")


def test_the_outcomes_are_a_small_documented_set():
    documented = (REPO / "docs" / "operations.md").read_text()
    for outcome in OUTCOMES:
        assert f"`{outcome}`" in documented, outcome
    # A record redacts its strings (the URL template can hold a ${SECRET}).
    record = CallRecord("t", "GET", f"https://x.example/{KEY}", "ok", request_id=f"id-{KEY}")
    assert record.redacted(Redactor([KEY])) == CallRecord(
        "t", "GET", "https://x.example/***", "ok", request_id="id-***"
    )
    log_call(record.redacted(Redactor([KEY])))  # logs without error, whatever the level


# -- JSON lines over stdio ------------------------------------------------------------------------


@pytest.mark.e2e
async def test_json_log_lines_over_stdio_carry_the_audit_record_and_no_secret(upstream, tmp_path):
    upstream.reply_json("GET", f"/v1/{KEY}/orders/42", {"order": 42})
    config = tools_config(tmp_path, upstream.url)
    environ = {**os.environ, "OBS_KEY": KEY, "MCP_WEBTOOLS_LOG_FORMAT": "json"}
    register_config_secrets(config, environ)
    command = [sys.executable, "-m", "mcp_webtools", "serve", "--config", str(config)]
    messages = [
        {
            "jsonrpc": "2.0",
            "id": "init-1",
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "audit-test", "version": "1"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {
            "jsonrpc": "2.0",
            "id": "call-7",
            "method": "tools/call",
            "params": {"name": "order", "arguments": {"id": "42"}},
        },
        {"jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": {"name": "order", "arguments": {}}},
    ]
    async with await anyio.open_process(command, env=environ, cwd=REPO) as process:
        assert process.stdin is not None and process.stdout is not None and process.stderr is not None
        answers: dict[Any, Any] = {}
        buffer = b""
        with anyio.fail_after(BOUND):
            for message in messages:
                await process.stdin.send(json.dumps(message).encode() + b"\n")
                if "id" not in message:
                    continue
                while message["id"] not in answers:
                    line, _, buffer = buffer.partition(b"\n")
                    if not _:
                        buffer = line + await process.stdout.receive()
                        continue
                    answer = json.loads(line)
                    answers[answer.get("id")] = answer
            await process.stdin.aclose()  # end of input: the server exits
            stderr = b""
            async for chunk in process.stderr:
                stderr += chunk
            await process.wait()
    assert answers["call-7"]["result"]["isError"] is False
    assert answers[8]["result"]["isError"] is True

    text = stderr.decode()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    audit = [line for line in lines if line["logger"] == "mcp_webtools.audit"]
    for line in audit:
        del line["time"], line["message"], line["duration_ms"]
    base = {"level": "INFO", "logger": "mcp_webtools.audit", "event": "tool_call", "tool": "order", "method": "GET"}
    base["url_template"] = upstream.url + "/v1/${OBS_KEY}/orders/{id}"
    assert audit == [
        {
            **base,
            "outcome": "ok",
            "status": 200,
            "attempts": 1,
            "request_bytes": 0,
            "response_bytes": len(b'{"order": 42}'),
            "request_id": "call-7",
            "client": None,  # over stdio no configured client calls
        },
        {
            **base,
            "outcome": "invalid_arguments",
            "status": None,
            "attempts": 0,
            "request_bytes": 0,
            "response_bytes": 0,
            "request_id": 8,
            "client": None,
        },
    ]
    assert KEY not in text and TOKEN not in text
    SCANNER.scan("process", "serve --log-format json (stderr)", text)


def test_an_unknown_log_format_is_refused(capsys):
    from mcp_webtools.cli.commands import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--log-format", "xml", "validate"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'xml'" in capsys.readouterr().err
