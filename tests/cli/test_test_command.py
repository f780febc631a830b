"""`mcp-webtools test`: examples run through the whole call path against a live upstream, recorded into
cassettes (secrets as `${NAME}`), replayed with no network, and a changed definition failing with a diff.

The command runs in-process (`run_cli`) in a worker thread: the recording upstream is served by the
test's own event loop.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import anyio
import pytest
from support import REPO, SCANNER, Reply, Upstream, secret, serve_asgi, write_tools

pytestmark = pytest.mark.anyio

KEY = "orders-key-never-shown-7"
PARAMS = {"type": "object", "properties": {"orderId": {"type": "string"}}, "required": ["orderId"]}
SHIPPED = {"order": {"id": "42", "status": "shipped"}}
LINE = re.compile(r"^(PASS|FAIL)  (\S+): (.+?)  \((\d+) ms\)(?:  (.*))?$")


def orders_tool(examples: list[dict[str, Any]], url: str = "${ORDERS_API}/orders/{orderId}", **extra: Any) -> dict:
    return {
        "name": "Get Order",
        "methodType": "GET",
        "url": url,
        "headers": {"X-Api-Key": "${ORDERS_KEY}"},
        "parameters": PARAMS,
        "examples": examples,
        **extra,
    }


EXAMPLES = [
    {"name": "shipped order", "arguments": {"orderId": "42"},
     "expect": {"status": 200, "fields": {"order.status": "shipped"}}},
    {"name": "missing order", "arguments": {"orderId": "7"}, "expect": {"status": 404, "contains": "no such order"}},
]  # fmt: skip


def serve_orders(upstream: Upstream) -> None:
    upstream.reply_json("GET", "/orders/42", SHIPPED)
    upstream.reply_json("GET", "/orders/7", {"error": "no such order"}, status=404)
    upstream.reply_json("GET", "/orders/8", {"order": {"id": "8", "status": "pending"}})


@pytest.fixture
def orders_env(monkeypatch, upstream: Upstream) -> dict[str, str]:
    """`${ORDERS_API}` at the recording upstream and a secret `${ORDERS_KEY}`."""
    environ = {"ORDERS_API": upstream.url, "ORDERS_KEY": secret(KEY)}
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    serve_orders(upstream)
    return environ


async def run_test(run_cli, *argv: Any) -> tuple[int, str, str]:
    return await anyio.to_thread.run_sync(lambda: run_cli("--log-level", "WARNING", "test", *argv))


def lines_of(out: str) -> list[tuple[str, ...]]:
    """Each PASS/FAIL line as (verdict, tool, example, first difference); the milliseconds are checked to be there."""
    found = [LINE.match(line) for line in out.splitlines()]
    return [(m[1], m[2], m[3], m[5] or "") for m in found if m]


async def test_examples_pass_and_fail_with_the_first_difference(run_cli, upstream, orders_env, tmp_path):
    failing = {
        "name": "pending order",
        "arguments": {"orderId": "8"},
        "expect": {"fields": {"order.status": "shipped"}},
    }
    config = write_tools(tmp_path / "config", orders_tool([*EXAMPLES, failing]))
    code, out, err = await run_test(run_cli, config)
    assert lines_of(out) == [
        ("PASS", "get_order", "shipped order", ""),
        ("PASS", "get_order", "missing order", ""),
        ("FAIL", "get_order", "pending order", 'fields.order.status: expected "shipped", got "pending"'),
    ]
    assert re.fullmatch(r"3 example\(s\): 2 passed, 1 failed \(\d+ ms\)", out.splitlines()[-1])
    assert code == 1 and err == ""
    # The whole path: the upstream saw each request as the definition builds it, auth header included.
    assert [(r.method, r.raw_path, r.headers["x-api-key"]) for r in upstream.requests] == [
        ("GET", "/orders/42", KEY),
        ("GET", "/orders/7", KEY),
        ("GET", "/orders/8", KEY),
    ]


async def test_all_examples_passing_exits_0_and_tool_selects(run_cli, upstream, orders_env, tmp_path):
    other = orders_tool([{"name": "broken", "arguments": {"orderId": "8"}, "expect": {"status": 500}}], name="Other")
    config = write_tools(tmp_path / "config", [orders_tool(EXAMPLES), other])
    code, out, _ = await run_test(run_cli, "--config", config, "--tool", "get_order")
    assert code == 0
    assert [line[:3] for line in lines_of(out)] == [("PASS", "get_order", e["name"]) for e in EXAMPLES]
    code, out, _ = await run_test(run_cli, config)
    assert code == 1 and lines_of(out)[-1] == ("FAIL", "other", "broken", "status: expected 500, got HTTP 200")


async def test_a_failure_message_never_shows_a_secret(run_cli, upstream, orders_env, tmp_path):
    upstream.reply_json("GET", "/orders/9", {"echo": KEY})
    example = {"name": "echo", "arguments": {"orderId": "9"}, "expect": {"fields": {"echo": "other"}}}
    config = write_tools(tmp_path / "config", orders_tool([example]))
    code, out, _ = await run_test(run_cli, config)
    assert code == 1
    assert lines_of(out) == [("FAIL", "get_order", "echo", 'fields.echo: expected "other", got "***"')]


async def test_junit_xml_has_one_testcase_per_example(run_cli, upstream, orders_env, tmp_path):
    upstream.reply_json("GET", "/orders/9", {"echo": KEY})
    failing = {"name": "echo <&>", "arguments": {"orderId": "9"}, "expect": {"contains": "nothing"}}
    config = write_tools(tmp_path / "config", orders_tool([*EXAMPLES, failing]))
    junit = tmp_path / "reports" / "examples.xml"
    code, out, _ = await run_test(run_cli, config, "--junit", junit)
    assert code == 1
    text = junit.read_text()
    assert SCANNER.scan("junit", str(junit), text) == [] and KEY not in text
    root = ET.fromstring(text)
    assert root.tag == "testsuites" and (root.get("tests"), root.get("failures"), root.get("errors")) == ("3", "1", "0")
    (suite,) = root
    assert suite.get("name") == "mcp-webtools" and suite.get("tests") == "3"
    cases = [(case.get("classname"), case.get("name")) for case in suite]
    assert cases == [("get_order", "shipped order"), ("get_order", "missing order"), ("get_order", "echo <&>")]
    assert all(float(case.get("time")) >= 0 for case in suite)
    assert [case.find("failure") is None for case in suite] == [True, True, False]
    failure = suite[2].find("failure")
    assert failure.get("message") == 'contains: "nothing" is not in the result text ({"echo":"***"})'
    assert failure.text == failure.get("message")


async def test_record_writes_a_cassette_per_example_with_references_not_secrets(
    run_cli, upstream, orders_env, tmp_path
):
    config = write_tools(tmp_path / "config", orders_tool(EXAMPLES))
    cassettes = tmp_path / "cassettes"
    code, out, _ = await run_test(run_cli, config, "--record", cassettes)
    assert code == 0, out
    files = sorted(p.relative_to(cassettes).as_posix() for p in cassettes.rglob("*"))
    assert files == ["get_order", "get_order/missing_order.json", "get_order/shipped_order.json"]
    text = (cassettes / "get_order/shipped_order.json").read_text()
    assert SCANNER.scan("cassette", "shipped_order.json", text) == [] and upstream.url not in text
    cassette = json.loads(text)
    assert {k: cassette[k] for k in ("version", "tool", "example")} == {
        "version": 1, "tool": "get_order", "example": "shipped order"
    }  # fmt: skip
    (exchange,) = cassette["exchanges"]
    assert exchange["request"] == {
        "method": "GET",
        "url": "${ORDERS_API}/orders/42",
        "headers": ["User-Agent: mcp-webtools/0.1.0", "Accept: application/json", "X-Api-Key: ${ORDERS_KEY}"],
        "body": None,
    }
    response = exchange["response"]
    # A JSON answer is kept as JSON, with how it was spaced, so that replay gives back its exact bytes.
    assert (response["status"], response["reason"], response["json"], response["jsonStyle"]) == (
        200, "OK", SHIPPED, "spaced"
    )  # fmt: skip
    assert "content-type: application/json" in response["headers"]
    missing = json.loads((cassettes / "get_order/missing_order.json").read_text())
    assert missing["exchanges"][0]["response"]["status"] == 404


async def test_record_conceals_auth_credentials_in_headers_query_and_answers(run_cli, upstream, monkeypatch, tmp_path):
    environ = {
        "API": upstream.url,
        "SVC_USER": secret("svc-user-never-shown"),
        "SVC_PASS": secret("svc-pass-never-shown"),
        "QKEY": secret("query key/never-shown"),
    }
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    echo = [("content-type", "application/json")]
    upstream.reply("GET", "/echo", lambda request: Reply(200, json.dumps(request.headers).encode(), echo))
    example = [{"name": "one", "arguments": {}}]
    basic = {"type": "basic", "username": "${SVC_USER}", "password": "${SVC_PASS}"}
    query = {"type": "apiKey", "in": "query", "name": "api_key", "value": "${QKEY}"}
    tools = [
        {"name": "Basic", "methodType": "GET", "url": "${API}/echo", "auth": basic, "examples": example},
        {"name": "Query", "methodType": "POST", "url": "${API}/items", "auth": query, "examples": example},
    ]
    config = write_tools(tmp_path / "config", tools)
    cassettes = tmp_path / "cassettes"
    code, out, _ = await run_test(run_cli, config, "--record", cassettes)
    assert code == 0, out
    basic_text = (cassettes / "basic/one.json").read_text()
    query_text = (cassettes / "query/one.json").read_text()
    for name, text in (("basic", basic_text), ("query", query_text)):
        assert SCANNER.scan("cassette", name, text) == []
    request = json.loads(basic_text)["exchanges"][0]["request"]
    assert "Authorization: Basic ${base64:${SVC_USER}:${SVC_PASS}}" in request["headers"]
    # The upstream echoed the headers it got: the answer is concealed the same way.
    answer = json.loads(basic_text)["exchanges"][0]["response"]["json"]
    assert answer["authorization"] == "Basic ${base64:${SVC_USER}:${SVC_PASS}}"
    request = json.loads(query_text)["exchanges"][0]["request"]
    assert request["url"] == "${API}/items?api_key=${QKEY}"
    assert request["json"] == {} and "jsonStyle" not in request  # our own bodies are compact JSON


async def record_then_stop(run_cli, tmp_path: Path, tools: Any, monkeypatch) -> tuple[Path, Path]:
    """Record `tools`' examples against an upstream that is then stopped; (config, cassettes)."""
    app = Upstream()
    serve_orders(app)
    async with serve_asgi(app) as url:
        monkeypatch.setenv("ORDERS_API", url)
        monkeypatch.setenv("ORDERS_KEY", secret(KEY))
        config = write_tools(tmp_path / "config", tools)
        cassettes = tmp_path / "cassettes"
        code, out, _ = await run_test(run_cli, config, "--record", cassettes)
        assert code == 0, out
        assert len(app.requests) == 2
    for path in cassettes.rglob("*.json"):
        assert SCANNER.scan("cassette", str(path), path.read_text()) == []
    return config, cassettes


async def test_replay_passes_with_no_network_and_other_secret_values(run_cli, tmp_path, monkeypatch):
    config, cassettes = await record_then_stop(run_cli, tmp_path, orders_tool(EXAMPLES), monkeypatch)
    # The upstream is gone (its port refuses connections), and CI has other values for the variables.
    monkeypatch.setenv("ORDERS_API", "http://127.0.0.1:9")
    monkeypatch.setenv("ORDERS_KEY", secret("ci-key-never-shown-99"))
    code, out, err = await run_test(run_cli, config, "--replay", cassettes)
    assert [line[:2] for line in lines_of(out)] == [("PASS", "get_order")] * 2, out
    assert code == 0 and err == ""


async def test_a_changed_definition_fails_replay_with_a_diff_of_the_requests(run_cli, tmp_path, monkeypatch):
    config, cassettes = await record_then_stop(run_cli, tmp_path, orders_tool(EXAMPLES), monkeypatch)
    changed = orders_tool(EXAMPLES, url="${ORDERS_API}/v2/orders/{orderId}?expand=items")
    changed["headers"] = {"X-Api-Key": "${ORDERS_KEY}", "X-Trace": "on"}
    write_tools(tmp_path / "config", changed)
    junit = tmp_path / "junit.xml"
    code, out, _ = await run_test(run_cli, config, "--replay", cassettes, "--junit", junit)
    assert code == 1
    failure = ET.parse(junit).getroot()[0][0].find("failure")
    diff = "-GET ${ORDERS_API}/orders/42 HTTP/1.1\n+GET ${ORDERS_API}/v2/orders/42?expand=items HTTP/1.1"
    assert diff in failure.text
    shipped = cassettes / "get_order/shipped_order.json"
    assert out.split("\n2 example(s)")[0].splitlines()[:10] == [
        out.splitlines()[0],
        "    --- recorded",
        "    +++ now",
        "    @@ -1,4 +1,5 @@",
        "    -GET ${ORDERS_API}/orders/42 HTTP/1.1",
        "    +GET ${ORDERS_API}/v2/orders/42?expand=items HTTP/1.1",
        "     User-Agent: mcp-webtools/0.1.0",
        "     Accept: application/json",
        "     X-Api-Key: ${ORDERS_KEY}",
        "    +X-Trace: on",
    ]
    assert lines_of(out)[0] == (
        "FAIL", "get_order", "shipped order", f"the request differs from the recording in {shipped}"
    )  # fmt: skip


async def test_a_missing_cassette_fails_saying_to_record(run_cli, tmp_path, monkeypatch):
    config, cassettes = await record_then_stop(run_cli, tmp_path, orders_tool(EXAMPLES), monkeypatch)
    added = {"name": "new one", "arguments": {"orderId": "1"}}
    write_tools(tmp_path / "config", orders_tool([*EXAMPLES, added]))
    code, out, _ = await run_test(run_cli, config, "--replay", cassettes)
    assert code == 1
    assert lines_of(out)[2] == (
        "FAIL", "get_order", "new one",
        f"no cassette at {cassettes}/get_order/new_one.json; record one against the real API with --record {cassettes}",
    )  # fmt: skip


async def test_a_broken_cassette_fails_its_example(run_cli, tmp_path, monkeypatch):
    config, cassettes = await record_then_stop(run_cli, tmp_path, orders_tool(EXAMPLES), monkeypatch)
    (cassettes / "get_order/shipped_order.json").write_text('{"exchanges": [{"request": {}}]}')
    code, out, _ = await run_test(run_cli, config, "--replay", cassettes)
    assert code == 1
    assert lines_of(out)[0][3] == (
        f"cassette {cassettes}/get_order/shipped_order.json has no valid `exchanges` list; "
        "record it again with --record"
    )


def test_dry_run_and_test_print_a_request_with_one_printer(run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("ORDERS_API", "http://127.0.0.1:9")
    monkeypatch.setenv("ORDERS_KEY", secret(KEY))
    config, cassettes = write_tools(tmp_path / "config", orders_tool(EXAMPLES[:1])), tmp_path / "none"
    code, dry, _ = run_cli("call", "get_order", "--args", '{"orderId": "42"}', "--config", config, "--dry-run")
    assert code == 0 and dry.startswith("GET /orders/42 HTTP/1.1\nHost: 127.0.0.1:9\n") and "X-Api-Key: ***" in dry
    code, out, _ = run_cli("--log-level", "WARNING", "test", config, "--replay", cassettes, "--show-request")
    assert code == 1
    shown = out.split("\n", 1)[1].rsplit("\n1 example(s)", 1)[0] + "\n"
    assert shown == dry


def test_exit_2_when_there_is_nothing_to_run(run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("ORDERS_API", "http://127.0.0.1:9")
    monkeypatch.setenv("ORDERS_KEY", secret(KEY))
    config = write_tools(tmp_path / "config", orders_tool([]))
    assert run_cli("--log-level", "WARNING", "test", config) == (
        2, "", "no examples to run: no tool has `examples` (docs/configuration.md, Examples)\n"
    )  # fmt: skip
    code, out, err = run_cli("--log-level", "WARNING", "test", config, "--tool", "nope")
    assert (code, out, err) == (2, "", "unknown tool(s) 'nope'; known tools: get_order\n")
    with pytest.raises(SystemExit) as exited:
        run_cli("test", config, "--record", tmp_path / "a", "--replay", tmp_path / "b")
    assert exited.value.code == 2


def test_a_config_error_exits_1_naming_the_example(run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("ORDERS_API", "http://127.0.0.1:9")
    monkeypatch.setenv("ORDERS_KEY", secret(KEY))
    config = write_tools(tmp_path / "config", orders_tool([{"name": "x", "arguments": {}}]))
    code, out, err = run_cli("test", config)
    assert (code, out) == (1, "")
    assert f"{config}: tool 'Get Order': field `examples[0].arguments.orderId`: is required" in err


async def test_a_cassette_or_junit_file_that_cannot_be_written_is_said_plainly(run_cli, upstream, orders_env, tmp_path):
    config = write_tools(tmp_path / "config", orders_tool(EXAMPLES[:1]))
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cassette folder should go")
    code, out, err = await run_test(run_cli, config, "--record", blocked)
    assert code == 1 and "Traceback" not in out + err
    assert lines_of(out)[0][3].startswith(f"the cassette {blocked}/get_order/shipped_order.json cannot be written (")
    code, out, err = await run_test(run_cli, config, "--junit", tmp_path)
    assert code == 2 and lines_of(out)[0][0] == "PASS"
    assert err.startswith(f"--junit {tmp_path} cannot be written (") and err.endswith("); pick another path\n")


async def test_the_shipped_examples_pass_against_the_demo_api_and_replay_without_it(run_cli, tmp_path, monkeypatch):
    from mcp_webtools.demo.api import create_demo_api

    config, cassettes = REPO / "config" / "orders.yaml", tmp_path / "cassettes"
    async with serve_asgi(create_demo_api()) as url:
        monkeypatch.setenv("DEMO_API_URL", url)
        code, out, _ = await run_test(run_cli, config, "--record", cassettes)
    assert code == 0, out
    assert lines_of(out) == [("PASS", "get_order_status", name, "") for name in ("shipped order", "unknown order")]
    request = json.loads((cassettes / "get_order_status/shipped_order.json").read_text())["exchanges"][0]["request"]
    assert request["url"] == "${DEMO_API_URL:-http://127.0.0.1:8900}/orders/ORD-12345"  # the reference as written
    code, out, _ = await run_test(run_cli, config, "--replay", cassettes)
    assert code == 0, out


async def test_examples_judge_the_result_after_shaping(run_cli, upstream, orders_env, tmp_path):
    shaped = [
        {"name": "kept", "arguments": {"orderId": "42"}, "expect": {"fields": {"order.status": "shipped"}}},
        {"name": "dropped", "arguments": {"orderId": "42"}, "expect": {"fields": {"order.id": "42"}}},
    ]
    config = write_tools(tmp_path / "config", orders_tool(shaped, responseFields=["order.status"]))
    code, out, _ = await run_test(run_cli, config)
    assert code == 1
    assert lines_of(out) == [
        ("PASS", "get_order", "kept", ""),
        ("FAIL", "get_order", "dropped", 'fields.order.id: expected "42", but the result has no such field'),
    ]


@pytest.mark.e2e
async def test_an_oauth2_tool_records_its_token_exchange_concealed_and_replays_it_offline(
    run_cli, upstream, oauth_server, tmp_path, monkeypatch
):
    """Both exchanges of a client-credentials call are recorded in order, with the client's credentials and
    the issued token never in the cassette, and replay answers both without the authorization server."""
    environ = {
        "API": upstream.url,
        "CC_ID": secret("cassette-client-7710"),
        "CC_SECRET": secret("cassette-secret-never-shown"),
    }
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    upstream.reply_json("GET", "/orders/42", SHIPPED)
    auth = {
        "type": "oauth2ClientCredentials",
        "tokenUrl": f"{oauth_server.issuer}/token",
        "clientId": "${CC_ID}",
        "clientSecret": "${CC_SECRET}",
    }
    example = {"name": "shipped", "arguments": {"orderId": "42"}, "expect": {"fields": {"order.status": "shipped"}}}
    tool = {"name": "Orders", "methodType": "GET", "url": "${API}/orders/{orderId}", "parameters": PARAMS,
            "auth": auth, "examples": [example]}  # fmt: skip
    config = write_tools(tmp_path / "config", tool)
    cassettes = tmp_path / "cassettes"
    code, out, _ = await run_test(run_cli, config, "--record", cassettes)
    assert code == 0, out
    assert len(await oauth_server.token_requests()) == 1
    (issued,) = [request.headers["authorization"].removeprefix("Bearer ") for request in upstream.requests]
    text = (cassettes / "orders/shipped.json").read_text()
    assert SCANNER.scan("cassette", "shipped.json", text) == [] and issued not in text
    token_exchange, call = json.loads(text)["exchanges"]
    token_request = token_exchange["request"]
    assert (token_request["method"], token_request["url"]) == ("POST", f"{oauth_server.issuer}/token")
    assert "Authorization: Bearer ***" in call["request"]["headers"]
    assert call["request"]["url"] == "${API}/orders/42"
    # No authorization server and no API now: replay answers both exchanges from the cassette.
    monkeypatch.setenv("API", "http://127.0.0.1:9")
    code, out, err = await run_test(run_cli, config, "--replay", cassettes)
    assert [line[:2] for line in lines_of(out)] == [("PASS", "orders")], out
    assert code == 0 and err == ""
