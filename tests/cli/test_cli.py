"""`mcp-webtools validate | list | call | serve`: exit codes and exactly what goes to stdout/stderr.

Most commands run in-process through `cli.main(argv)`; what needs a real process (a `call` that
reaches the upstream, stdio serving) runs `python -m mcp_webtools` as a subprocess.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream
from support import REPO, Reply, Upstream, hamsa_tool, run_module, write_tools

from mcp_webtools import __version__
from mcp_webtools.cli import commands as cli
from mcp_webtools.cli import options
from mcp_webtools.serving.http_app import HttpSettings

UPSTREAM_TOKEN = "Token tok-live-123456"
API_KEY = "key-live-abcdef"
DEAD_URL = "http://127.0.0.1:9"  # never contacted: these tests stop before sending

def two_tools(directory: Path, base: str = DEAD_URL) -> Path:
    item = {"type": "object", "properties": {"id": {"type": "string"}, "name": {"type": "string"}}, "required": ["id"]}
    headers = {"X-Api-Key": "${API_KEY}"}
    create = hamsa_tool("Create Item", f"{base}/items/:id", "POST", item, authToken=UPSTREAM_TOKEN, httpHeaders=headers)
    fail = hamsa_tool("Get Broken", f"{base}/broken", "GET")
    return write_tools(directory, [create, fail])


@pytest.fixture
def broken_folder(tmp_path, monkeypatch) -> tuple[Path, list[str]]:
    """A folder with four broken files, and the start of the error line each must produce."""
    monkeypatch.delenv("NOT_SET_XYZ", raising=False)
    folder = tmp_path / "broken"
    write_tools(folder, hamsa_tool("Bad Method", f"{DEAD_URL}/x", "FETCH"), "a.json")
    guide = {"name": "Relative Url", "description": "d", "methodType": "GET", "url": "/just/a/path",
             "parameters": {"type": "object", "properties": {}}}  # fmt: skip
    write_tools(folder, guide, "b.yaml")
    write_tools(folder, hamsa_tool("Needs Env", f"{DEAD_URL}/x", authToken="${NOT_SET_XYZ}"), "c.json")
    (folder / "d.json").write_text("{not json")
    expected = [
        f"  - {folder}/a.json: tool 'Bad Method': field `toolSettings.methodType`: ",
        f"  - {folder}/b.yaml: tool 'Relative Url': field `url`: must be an absolute http:// or https:// URL",
        f"  - {folder}/c.json: tool 'Needs Env': field `toolSettings.authToken`: "
        "environment variable NOT_SET_XYZ is not set",
        f"  - {folder}/d.json: invalid JSON at line 1, column 2",
    ]  # fmt: skip
    return folder, expected


def assert_every_error_listed(err: str, expected: list[str]) -> None:
    errors = [line for line in err.splitlines() if line.startswith("  - ")]
    assert f"{len(expected)} config errors:" in err.splitlines()
    assert len(errors) == len(expected), err
    for line, start in zip(errors, expected, strict=True):
        assert line.startswith(start), (line, start)


# -- validate and list ----------------------------------------------------------------------------


def test_validate_repo_config(run_cli, monkeypatch):
    monkeypatch.chdir(REPO)
    monkeypatch.delenv("MCP_WEBTOOLS_CONFIG", raising=False)
    code, out, _ = run_cli("validate")
    base = "${DEMO_API_URL:-http://127.0.0.1:8900}"
    bearer = "  auth: bearer, Authorization: Bearer ***"  # the type and where it goes, never the value
    assert code == 0
    assert out.splitlines() == [
        f"ok  cancel_appointment  DELETE {base}/appointments/:appointmentId  (config/scheduler.json){bearer}",
        f"ok  check_availability  GET {base}/slots/available  (config/scheduler.json){bearer}",
        f"ok  create_appointment  POST {base}/appointments  (config/scheduler.json){bearer}",
        f"ok  create_support_ticket  POST {base}/tickets  (config/helpdesk.yaml){bearer}",
        f"ok  get_order_status  GET {base}/orders/:orderId  (config/orders.yaml){bearer}",
        f"ok  lookup_customer_by_phone  POST {base}/customers/lookup  (config/lookup_customer.json){bearer}",
        f"ok  update_customer_preferences  PATCH {base}/customers/:customerId  (config/helpdesk.yaml){bearer}",
        "7 tool(s) valid in 4 file(s)",
    ]


@pytest.mark.parametrize(
    "command", [["validate"], ["list"], ["serve", "--config"], ["serve", "--transport", "http", "--config"]]
)
def test_broken_config_exits_1_listing_every_error(run_cli, broken_folder, command):
    folder, expected = broken_folder
    code, out, err = run_cli(*command, str(folder))
    assert (code, out) == (1, "")
    assert_every_error_listed(err, expected)


def test_list_prints_names_methods_and_url_templates(run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("API_KEY", API_KEY)
    code, out, _ = run_cli("list", str(two_tools(tmp_path, "${API_BASE:-https://api.example.test}")))
    assert code == 0
    assert out == (
        "create_item  POST    ${API_BASE:-https://api.example.test}/items/:id  auth: bearer, Authorization: Token ***\n"
        "get_broken   GET     ${API_BASE:-https://api.example.test}/broken\n"
    )


def test_config_comes_from_env_when_no_path_is_given(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no config/ here
    monkeypatch.setenv("API_KEY", API_KEY)
    first = two_tools(tmp_path / "one")
    second = write_tools(tmp_path / "two", hamsa_tool("Ping", f"{DEAD_URL}/ping"))
    monkeypatch.setenv("MCP_WEBTOOLS_CONFIG", f"{first.parent}{os.pathsep}{second}")
    assert run_cli("list")[:2] == (0, (
        f"create_item  POST    {DEAD_URL}/items/:id  auth: bearer, Authorization: Token ***\n"
        f"get_broken   GET     {DEAD_URL}/broken\n"
        f"ping         GET     {DEAD_URL}/ping\n"
    ))  # fmt: skip
    # An explicit path wins over the environment.
    assert run_cli("list", str(second))[:2] == (0, f"ping  GET     {DEAD_URL}/ping\n")
    monkeypatch.delenv("MCP_WEBTOOLS_CONFIG")
    code, out, err = run_cli("validate")
    assert (code, out) == (1, "")
    assert "  - config: no such file or folder" in err.splitlines()


# -- call -----------------------------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.anyio
async def test_call_prints_the_mcp_result_as_json(upstream: Upstream, tmp_path):
    upstream.reply_json("GET", "/broken", {"detail": "down for maintenance"}, status=503)
    config = str(two_tools(tmp_path, upstream.url))
    env = {"API_KEY": API_KEY}
    ok = await run_module("call", "create_item", "--args", '{"id": "A/1", "name": "x"}', "--config", config, env=env)
    failed = await run_module("call", "get_broken", "--config", config, env=env)

    code, out, err = ok
    assert code == 0, err
    result = json.loads(out)  # stdout holds the JSON result and nothing else
    assert result.pop("_meta")["mcp-webtools/http"]["status"] == 200
    echo = {"method": "POST", "path": "/items/A%2F1", "query": "", "body": {"name": "x"}}
    assert result == {
        "content": [{"type": "text", "text": json.dumps(echo, separators=(",", ":"))}],
        "structuredContent": {**echo, "api_response_status": 200},
        "isError": False,
        "resultType": "complete",
    }
    code, out, err = failed
    assert code == 1, err
    result = json.loads(out)
    assert result["isError"] is True
    assert result["structuredContent"] == {"api_response_status": 503}
    assert result["_meta"]["mcp-webtools/http"]["status"] == 503
    assert result["_meta"]["mcp-webtools/http"]["attempts"] == 3  # a GET on 503: retried twice
    assert "503" in result["content"][0]["text"] and "down for maintenance" in result["content"][0]["text"]

    created, *broken = upstream.requests
    assert (created.method, created.raw_path, created.json()) == ("POST", "/items/A%2F1", {"name": "x"})
    assert created.headers["authorization"] == UPSTREAM_TOKEN
    assert created.headers["x-api-key"] == API_KEY
    assert [(b.method, b.raw_path, b.query) for b in broken] == [("GET", "/broken", "")] * 3


@pytest.mark.anyio
@pytest.mark.e2e
async def test_call_prints_an_answer_nested_too_deeply_for_structured_content(upstream: Upstream, tmp_path):
    """Such an answer once made `call` crash with a traceback ("Maximum serialization depth exceeded")."""
    deep = "[" * 600 + "]" * 600
    upstream.reply("GET", "/deep", Reply(200, deep.encode(), [("content-type", "application/json")]))
    config = str(write_tools(tmp_path, hamsa_tool("Deep", f"{upstream.url}/deep")))
    code, out, err = await run_module("call", "deep", "--config", config)
    assert (code, "Traceback" in err) == (0, False), err
    result = json.loads(out)
    note = (
        "[the upstream API answered with JSON nested more than 64 levels deep, too deep to pass on as structured "
        "content: it is passed on as text]"
    )
    assert result["content"] == [{"type": "text", "text": note}, {"type": "text", "text": deep}]
    assert (result["isError"], result["structuredContent"]) == (False, {"data": deep, "api_response_status": 200})
    assert "outcome=ok status=200" in err  # the audit line says what the caller got


@pytest.mark.anyio
async def test_dry_run_prints_the_request_with_secrets_redacted(run_cli, upstream: Upstream, tmp_path, monkeypatch):
    monkeypatch.setenv("API_KEY", API_KEY)
    config = str(two_tools(tmp_path, upstream.url))
    arguments = '{"id": "A 1", "name": "héllo"}'
    code, out, err = run_cli("call", "create_item", "--args", arguments, "--config", config, "--dry-run")
    assert code == 0, err
    assert out == (
        "POST /items/A%201 HTTP/1.1\n"
        f"Host: {upstream.url.removeprefix('http://')}\n"
        f"User-Agent: mcp-webtools/{__version__}\n"
        "Accept: application/json\n"
        "Content-Type: application/json\n"
        "Authorization: ***\n"
        "X-Api-Key: ***\n"
        "\n"
        '{"name":"héllo"}\n'
    )
    assert "tok-live" not in out + err and API_KEY not in out + err
    assert upstream.requests == []


def test_dry_run_with_invalid_arguments_prints_the_tool_error(run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("API_KEY", API_KEY)
    config = str(two_tools(tmp_path))
    code, out, _ = run_cli("call", "create_item", "--args", '{"name": 5}', "--config", config, "--dry-run")
    assert code == 1
    result = json.loads(out)
    assert result["isError"] is True
    assert result["content"][0]["text"].startswith("Invalid arguments for tool 'create_item'; nothing was sent:\n")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["create_item", "--args", '{"id": '], "--args is not valid JSON: Expecting value (column 8)"),
        (["create_item", "--args", "[1]"], "--args must be a JSON object, not an array: [1]"),
        (["create_item", "--args", '"x"'], '--args must be a JSON object, not a string: "x"'),
        (["nope", "--args", "{}"], "unknown tool 'nope'; known tools: create_item, get_broken"),
    ],
)
def test_call_usage_errors_exit_2(run_cli, tmp_path, monkeypatch, argv, message):
    monkeypatch.setenv("API_KEY", API_KEY)
    code, out, err = run_cli("call", *argv, "--config", str(two_tools(tmp_path)))
    assert (code, out) == (2, "")
    assert message in err.splitlines()


def test_global_options_go_before_or_after_the_command(monkeypatch):
    monkeypatch.delenv("MCP_WEBTOOLS_LOG_LEVEL", raising=False)
    monkeypatch.delenv("MCP_WEBTOOLS_LOG_FORMAT", raising=False)

    def logging_of(*argv: str) -> tuple[str, str]:
        args = cli._parser().parse_args(argv)
        return args.log_level, args.log_format

    assert logging_of("serve", "--log-format", "json") == ("INFO", "json")
    assert logging_of("validate", "--log-level", "debug") == ("DEBUG", "text")
    assert logging_of("hamsa", "payload", "--url", "https://h/mcp", "--log-level", "ERROR") == ("ERROR", "text")
    assert logging_of("hamsa", "--log-format", "json", "import", "export.json") == ("INFO", "json")
    # A sub-command does not put back the default of an option given before it...
    assert logging_of("--log-format", "json", "serve", "--log-level", "WARNING") == ("WARNING", "json")
    assert logging_of("--log-level", "DEBUG", "call", "t", "--log-format", "json") == ("DEBUG", "json")
    assert logging_of("--log-level", "DEBUG", "hamsa", "import", "-") == ("DEBUG", "text")
    # ...and the one given last wins.
    assert logging_of("--log-level", "DEBUG", "list", "--log-level", "ERROR") == ("ERROR", "text")


@pytest.mark.parametrize(
    "command",
    [["serve"], ["validate"], ["list"], ["call"], ["demo"], ["hamsa"], ["hamsa", "payload"], ["hamsa", "register"],
     ["hamsa", "import"]],
)  # fmt: skip
def test_every_command_help_lists_the_global_options(capsys, command):
    with pytest.raises(SystemExit) as exited:
        cli.main([*command, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    section = out.split("global options (before or after the command):\n", 1)[1]
    assert section.startswith("  --log-level {DEBUG,INFO,WARNING,ERROR,CRITICAL}\n")
    assert "  --log-format {text,json}\n" in section


@pytest.mark.anyio
@pytest.mark.e2e
async def test_log_options_after_serve_take_effect(tmp_path):
    # The loader warns about an MCP-type entry (WARNING); "loaded N tool(s)" is INFO.
    config = two_tools(tmp_path)
    write_tools(tmp_path, {"type": "MCP", "name": "Remote Server", "description": "elsewhere"}, "remote.json")
    argv = [sys.executable, "-m", "mcp_webtools", "--log-format", "json", "serve", "--config", str(tmp_path)]
    code, out, err = await serve_stdio_until_eof([*argv, "--log-level", "WARNING"], {"API_KEY": API_KEY})
    assert (code, out) == (0, "")
    records = [json.loads(line) for line in err.splitlines()]
    assert [(r["level"], r["message"]) for r in records] == [
        ("WARNING", f"{config.parent / 'remote.json'}: tool 'Remote Server': skipped: has `type: \"MCP\"`; "
         "only FUNCTION tools are served")
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--log-level", "verbose", "list"], "argument --log-level: invalid choice: 'VERBOSE'"),
        (["list"], "MCP_WEBTOOLS_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, not 'BOGUS'"),
    ],
)
def test_bad_log_level_is_a_usage_error(monkeypatch, capsys, argv, message):
    monkeypatch.setenv("MCP_WEBTOOLS_LOG_LEVEL", "bogus")
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


# -- serve ----------------------------------------------------------------------------------------


async def serve_stdio_until_eof(
    argv: list[str], env: dict[str, str], until: str | None = None
) -> tuple[int, str, str]:
    """Run a stdio server, wait for `until` on its stderr (if given), then end its input:
    (exit code, stdout, stderr)."""
    process = await anyio.open_process(argv, cwd=REPO, env={**os.environ, **env})
    err = b""
    with anyio.fail_after(60):  # a wedged server fails the test instead of hanging it
        async with process:
            if until is not None:
                while until.encode() not in err:
                    err += await process.stderr.receive()
            await process.stdin.aclose()
            out = b"".join([chunk async for chunk in process.stdout])
            err += b"".join([chunk async for chunk in process.stderr])
            code = await process.wait()
    return code, out.decode(), err.decode()


@pytest.mark.anyio
@pytest.mark.e2e
async def test_stdio_serve_says_on_stderr_that_it_waits_for_a_client(tmp_path):
    config = two_tools(tmp_path)
    argv = [sys.executable, "-m", "mcp_webtools", "serve", "--config", str(config)]
    waiting = "serving MCP over stdio: waiting for an MCP client on stdin (Ctrl+C stops)"
    # Said before any client speaks: the test sends nothing until it has seen the line.
    code, out, err = await serve_stdio_until_eof(argv, {"API_KEY": API_KEY}, until=waiting)
    assert (code, out) == (0, "")
    assert sum(line.endswith(waiting) for line in err.splitlines()) == 1


def test_serve_http_builds_settings_from_flags_and_env(run_cli, tmp_path, monkeypatch):
    seen: list[tuple] = []
    bound = object()  # what `listen` returned, handed on to serve_http

    async def fake_serve_http(webtools, host, port, settings, **options) -> None:
        assert options["sockets"] is bound
        seen.append((sorted(t.name for t in webtools.toolset), host, port, settings))

    monkeypatch.setattr(cli, "serve_http", fake_serve_http)
    monkeypatch.setattr(cli, "listen", lambda host, port: bound)  # addresses this machine may not have
    monkeypatch.setenv("API_KEY", API_KEY)
    monkeypatch.setenv("MCP_WEBTOOLS_AUTH_TOKEN", "from-env-token")
    monkeypatch.setenv("MCP_WEBTOOLS_ALLOWED_HOSTS", "a.example, b.example")
    monkeypatch.delenv("MCP_WEBTOOLS_ALLOWED_ORIGINS", raising=False)
    config = str(two_tools(tmp_path))
    serve = ["serve", "--transport", "http", "--config", config]
    origin = ["--allowed-origin", "https://app.example"]
    listen = ["--host", "0.0.0.0", "--port", "9123"]
    assert run_cli(*serve, *listen, "--allowed-host", "c.example", *origin, "--stateless")[0] == 0
    assert run_cli(*serve, "--auth-token", "flag-token", "--host", "10.0.0.5")[0] == 0
    assert seen == [
        (["create_item", "get_broken"], "0.0.0.0", 9123, HttpSettings(
            auth_token="from-env-token", allowed_hosts=("a.example", "b.example", "c.example"),
            allowed_origins=("https://app.example",), stateless=True)),
        # Bound to one address: requests addressed to it are accepted too.
        (["create_item", "get_broken"], "10.0.0.5", 8000, HttpSettings(
            auth_token="flag-token", allowed_hosts=("10.0.0.5", "a.example", "b.example"))),
    ]  # fmt: skip


@pytest.mark.e2e
@pytest.mark.anyio
async def test_stdio_serve_writes_only_mcp_messages_to_stdout(upstream: Upstream, tmp_path):
    upstream.reply_json("GET", "/broken", {"detail": "down"}, status=500)
    config = two_tools(tmp_path, upstream.url)
    # An MCP-type entry makes the loader log a warning at start-up: it must land on stderr too.
    write_tools(tmp_path, {"type": "MCP", "name": "Remote Server", "description": "elsewhere"}, "remote.json")
    requests = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        *({"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": {"name": name, "arguments": arguments}}
          for n, name, arguments in [(3, "create_item", {"id": "1"}), (4, "get_broken", {}), (5, "create_item", {}),
                                     (6, "missing", {})]),
    ]  # fmt: skip
    argv = [sys.executable, "-m", "mcp_webtools", "--log-level", "DEBUG", "serve", "--config", str(config.parent)]
    process = await anyio.open_process(argv, cwd=REPO, env={**os.environ, "API_KEY": API_KEY})
    with anyio.fail_after(60):  # a wedged server fails the test instead of hanging it
        async with process:
            stdout = BufferedByteReceiveStream(process.stdout)
            answers = []
            for request in requests:
                await process.stdin.send(json.dumps(request).encode() + b"\n")
                if "id" in request:
                    answers.append(json.loads(await stdout.receive_until(b"\n", 1 << 20)))
            await process.stdin.aclose()
            rest = b"".join([chunk async for chunk in stdout])
            stderr = b"".join([chunk async for chunk in process.stderr]).decode()
            assert await process.wait() == 0, stderr

    assert rest == b""
    assert [(a["jsonrpc"], a["id"]) for a in answers] == [("2.0", n) for n in range(1, 7)]
    assert [t["name"] for t in answers[1]["result"]["tools"]] == ["create_item", "get_broken"]
    assert [answers[n]["result"]["isError"] for n in (2, 3, 4)] == [False, True, True]
    assert answers[5]["error"]["message"] == "Unknown tool: missing"
    # The logs went to stderr, redacted.
    assert "loaded 2 tool(s) from 2 file(s)" in stderr
    assert "tool 'Remote Server': skipped" in stderr
    assert "tool=create_item method=POST" in stderr and "tool=get_broken method=GET" in stderr
    assert API_KEY not in stderr and "tok-live" not in stderr


def test_serve_help_states_the_defaults_the_code_uses(capsys, monkeypatch):
    """The help text reads each default from where it is defined, so the two cannot drift apart."""
    for name, value in {
        "DEFAULT_MAX_RESPONSE_BYTES": 3 * 2**20,
        "DEFAULT_MAX_REQUEST_BYTES": 2**19,
        "DEFAULT_MAX_BODY_BYTES": 5 * 2**20,
        "DEFAULT_SHUTDOWN_GRACE": 2.5,
        "DEFAULT_MAX_CONCURRENCY": 7,
        "DEFAULT_MAX_QUEUE": 9,
    }.items():
        monkeypatch.setattr(options, name, value)
    with pytest.raises(SystemExit) as exited:
        cli.main(["serve", "--help"])
    assert exited.value.code == 0
    shown = " ".join(capsys.readouterr().out.split())  # argparse wraps to the terminal's width
    for said in (
        "stop reading an upstream body after N bytes (default 3 MiB; per tool: maxResponseBytes)",
        "refuse calls whose request body would exceed N bytes (default 0.5 MiB; per tool: maxRequestBytes)",
        "(JSON-RPC messages) over N bytes (default 5 MiB)",
        "before they are cancelled (default 2.5)",
        "all tools together (default 7; per tool: maxConcurrency)",
        "a 'busy, try again' tool error (default 9)",
    ):
        assert said in shown, said


# -- start-up failures: one line saying what to change, no traceback ------------------------------

HOST_HINT = "pick one of this machine's addresses with --host, e.g. 127.0.0.1 (0.0.0.0: every interface)"


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port something else listens on."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


@pytest.mark.anyio
@pytest.mark.e2e
@pytest.mark.parametrize("flags", [[], ["--workers", "2", "--stateless"]], ids=["one process", "workers"])
async def test_a_port_in_use_is_one_line(tmp_path, taken_port, flags):
    config = write_tools(tmp_path, hamsa_tool("Ping", f"{DEAD_URL}/ping"))
    argv = ["serve", "--transport", "http", "--port", str(taken_port), *flags, "--config", str(config)]
    assert await run_module(*argv) == (1, "", f"error: port {taken_port} is in use: pick another with --port\n")


@pytest.mark.anyio
@pytest.mark.e2e
@pytest.mark.parametrize(
    ("host", "problem"),
    [
        # Names the resolver refuses itself: no DNS query leaves the machine.
        ("no-such-host!.invalid", "'no-such-host!.invalid' cannot be resolved (Name or service not known)"),
        ("a..b", "'a..b' cannot be resolved (not a valid host name)"),
        ("192.0.2.1", "'192.0.2.1' is not an address of this machine"),  # TEST-NET-1
    ],
)
async def test_a_host_that_cannot_be_listened_on_is_one_line(tmp_path, host, problem):
    config = write_tools(tmp_path, hamsa_tool("Ping", f"{DEAD_URL}/ping"))
    for flags in ([], ["--workers", "2", "--stateless"]):
        argv = ["serve", "--transport", "http", "--host", host, *flags, "--config", str(config)]
        assert await run_module(*argv) == (1, "", f"error: --host {problem}: {HOST_HINT}\n")


@pytest.mark.anyio
@pytest.mark.e2e
async def test_an_impossible_port_is_a_usage_error(tmp_path):
    config = write_tools(tmp_path, hamsa_tool("Ping", f"{DEAD_URL}/ping"))
    code, out, err = await run_module("serve", "--transport", "http", "--port", "99999", "--config", str(config))
    assert (code, out) == (2, "")
    assert err.startswith("usage: mcp-webtools serve ")
    assert err.endswith("\nmcp-webtools serve: error: argument --port: must be a TCP port number from 0 to 65535, "
                        "not 99999\n")  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["serve", "--shutdown-grace", "-1"], "argument --shutdown-grace: must be 0 or more, not -1"),
        (["serve", "--shutdown-grace", "nan"], "argument --shutdown-grace: must be a finite number, not nan"),
        (["serve", "--watch-interval", "0"], "argument --watch-interval: must be greater than 0, not 0"),
        (["serve", "--watch-interval", "inf"], "argument --watch-interval: must be a finite number, not inf"),
        (["serve", "--port", "-1"], "argument --port: must be at least 0, not -1"),
        (["serve", "--port", "80.5"], "argument --port: must be a whole number, not '80.5'"),
        (["serve", "--workers", "0"], "argument --workers: must be at least 1, not 0"),
        (["serve", "--max-inbound-bytes", "-5"], "argument --max-inbound-bytes: must be at least 1, not -5"),
        (["serve", "--max-response-bytes", "0"], "argument --max-response-bytes: must be at least 1, not 0"),
        (["call", "t", "--max-request-bytes", "0"], "argument --max-request-bytes: must be at least 1, not 0"),
        (["call", "t", "--max-concurrency", "0"], "argument --max-concurrency: must be at least 1, not 0"),
        (["serve", "--max-queue", "-1"], "argument --max-queue: must be at least 0, not -1"),
        (["demo", "--port", "65536"], "argument --port: must be a TCP port number from 0 to 65535, not 65536"),
        (["demo", "--api-port", "-8900"], "argument --api-port: must be at least 0, not -8900"),
    ],
)
def test_numbers_that_make_no_sense_are_refused(capsys, argv, message):
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"mcp-webtools {argv[0]}: error: {message}"


def test_validate_list_and_dry_run_show_where_each_auth_credential_goes(run_cli, tmp_path, monkeypatch):
    from support import AUTH_ENV as ENV
    from support import auth_tools

    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    config = write_tools(tmp_path, auth_tools("https://api.example.com"))
    code, out, err = run_cli("validate", str(config))
    assert code == 0, err
    assert [line.split(f"({config})")[1] for line in out.splitlines()[:-1]] == [
        "  auth: basic, Authorization: Basic ***",
        "  auth: bearer, Authorization: Bearer ***",
        "  auth: apiKey, X-Api-Key: ***",
        "",  # type: none
        "  auth: apiKey, ?api_key=***",
    ]
    code, out, err = run_cli("list", str(config))
    assert code == 0, err
    assert "query_key_tool   GET     https://api.example.com/qkey?fixed=1  auth: apiKey, ?api_key=***" in out
    code, out, err = run_cli("call", "query_key_tool", "--args", "{}", "--config", str(config), "--dry-run")
    assert (code, out.splitlines()[0]) == (0, "GET /qkey?fixed=1&api_key=*** HTTP/1.1"), err
    code, out, err = run_cli("call", "basic_tool", "--args", "{}", "--config", str(config), "--dry-run")
    assert code == 0 and "Authorization: Basic ***" in out.splitlines(), (out, err)


def test_validate_list_and_dry_run_say_a_forwarded_credential_comes_from_the_caller(run_cli, tmp_path):
    tool = {
        "name": "As User",
        "description": "calls the API as the end user",
        "methodType": "GET",
        "url": "https://api.example.com/me",
        "auth": {"type": "bearer", "token": "fallback-token-3131"},
        "forwardCaller": {"header": "X-Upstream-Authorization", "as": "Authorization", "fallback": "auth"},
    }
    config = write_tools(tmp_path, tool)
    described = (
        "auth: forwardCaller, Authorization: <from the caller's X-Upstream-Authorization header>; "
        "without it: bearer, Authorization: Bearer ***"
    )
    code, out, err = run_cli("validate", str(config))
    assert (code, out.splitlines()[0]) == (0, f"ok  as_user  GET https://api.example.com/me  ({config})  {described}")
    code, out, err = run_cli("list", str(config))
    assert (code, out.splitlines()[0]) == (0, f"as_user  GET     https://api.example.com/me  {described}"), err
    code, out, err = run_cli("call", "as_user", "--args", "{}", "--config", str(config), "--dry-run")
    assert code == 0 and "Authorization: <from the caller's X-Upstream-Authorization header>" in out.splitlines()


def replaced_header_tools() -> list[dict]:
    def tool(name: str, header: str, **auth: object) -> dict:
        headers = [{"name": header, "value": "configured-header-value-5151"}, {"name": "Accept", "value": "*/*"}]
        url = "https://api.example.com/x"
        return {"name": name, "description": "d", "methodType": "GET", "url": url, "headers": headers, **auth}

    return [
        tool("Basic", "authorization", auth={"type": "basic", "username": "user-0001", "password": "pass-0001"}),
        tool("Key", "x-api-key", auth={"type": "apiKey", "in": "header", "name": "X-Api-Key", "value": "key-0001"}),
        tool("Token", "Authorization", authToken="token-value-0001"),
        tool("Caller", "X-User", forwardCaller={"header": "X-Upstream-User", "as": "X-User"}),
        tool("Query", "X-Api-Key", auth={"type": "apiKey", "in": "query", "name": "X-Api-Key", "value": "key-0002"}),
    ]


REPLACED = [
    "{config}: tool 'Basic': field `[0].headers.authorization`: is replaced by the tool's auth block (type basic)",
    "{config}: tool 'Key': field `[1].headers.x-api-key`: is replaced by the tool's auth block (type apiKey)",
    "{config}: tool 'Token': field `[2].headers.Authorization`: is replaced by the tool's authToken",
    "{config}: tool 'Caller': field `[3].headers.X-User`: is replaced by the tool's forwardCaller (the caller's "
    "credential)",
]  # a key in the query replaces no header: no warning for 'Query'


def test_validate_warns_once_for_each_configured_header_the_auth_replaces(run_cli, tmp_path):
    config = write_tools(tmp_path, replaced_header_tools())
    code, out, err = run_cli("validate", str(config))
    assert code == 0, err
    warned = [line.split(" WARNING mcp_webtools.loading: ", 1)[1] for line in err.splitlines() if " WARNING " in line]
    assert warned == [line.format(config=config) for line in REPLACED]


@pytest.mark.anyio
@pytest.mark.e2e
async def test_serve_warns_once_for_each_configured_header_the_auth_replaces(tmp_path):
    config = write_tools(tmp_path, replaced_header_tools())
    argv = [sys.executable, "-m", "mcp_webtools", "--log-format", "json", "serve", "--config", str(config)]
    code, out, err = await serve_stdio_until_eof([*argv, "--log-level", "WARNING"], {})
    assert (code, out) == (0, "")
    records = [json.loads(line) for line in err.splitlines()]
    expected = [("WARNING", line.format(config=config)) for line in REPLACED]
    assert [(r["level"], r["message"]) for r in records] == expected
