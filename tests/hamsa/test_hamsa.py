"""`mcp-webtools hamsa payload | register | import`: the exact body, what the Hamsa API receives,
every failure's exit code and message, and that no secret reaches the disk or the terminal.

`register` runs against a fake of the create-web-tool endpoint that enforces the rules its
reference states (`Token <key>`, no `params`/`async` on MCP tools) and records every request.
The CLI runs in a worker thread so that its own event loop can call the fake served on ours.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import socket
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import httpx2
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from support import secret, serve_asgi

from mcp_webtools.cli import commands as cli
from mcp_webtools.errors import ApiUnavailable
from mcp_webtools.hamsa import register as hamsa
from mcp_webtools.hamsa.cli import exit_code
from mcp_webtools.hamsa.register import CREATE_PATH
from mcp_webtools.loading import load_definitions

API_KEY = secret("hk_live_0123456789abcdef")
TOKEN = secret("mcp-server-token-5f6e7d")
SHOWN_TOKEN = "printed-on-request-9c8b"  # `payload` prints it because the user asked: not a scanned secret
TOOL_ID = "d949f13f-40d2-4e48-ac86-b66633070603"
DESCRIPTION = "HTTP tools served over MCP by mcp-webtools."


def body_for(token: str | None = f"Bearer {TOKEN}", url: str = "https://mcp.example.com/mcp", **top: object) -> dict:
    settings = {"serverUrl": url, **({"authToken": token} if token else {}), "timeOut": 30}
    return {"type": "MCP", "name": "mcp-webtools", "description": DESCRIPTION, "toolSettings": settings, **top}


@pytest.fixture(autouse=True)
def environment(monkeypatch) -> None:
    monkeypatch.setenv("HAMSA_API_KEY", API_KEY)
    monkeypatch.setenv("SERVER_TOKEN", TOKEN)
    for name in ("HAMSA_API_URL", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def run_cli(capsys) -> Callable[..., tuple[int, str, str]]:
    """`cli.main(argv)` -> (exit code, stdout, stderr), leaving the test process's logging as it was."""

    def run(*argv: str) -> tuple[int, str, str]:
        root = logging.getLogger()
        handlers, level = root.handlers[:], root.level
        try:
            code = cli.main(list(argv))
        finally:
            root.handlers[:], root.level = handlers, level
        out, err = capsys.readouterr()
        return code, out, err

    return run


# -- payload -----------------------------------------------------------------------------------


def test_payload_is_the_mcp_create_body_with_the_token_from_the_environment(run_cli, monkeypatch):
    monkeypatch.setenv("SERVER_TOKEN", SHOWN_TOKEN)
    code, out, err = run_cli("hamsa", "payload", "--url", "https://mcp.example.com/mcp", "--token-env", "SERVER_TOKEN")
    assert (code, json.loads(out)) == (0, body_for(f"Bearer {SHOWN_TOKEN}"))
    assert "params" not in out and "async" not in out  # the API refuses both on MCP tools
    assert err == "note: the body holds the token from $SERVER_TOKEN: treat it as a secret (--redact hides it)\n"


@pytest.mark.parametrize(
    ("extra", "env_token", "expected", "note"),
    [
        (["--redact"], TOKEN, body_for("***"), ""),
        ([], f"Token {SHOWN_TOKEN}", body_for(f"Token {SHOWN_TOKEN}"), "note: the body holds"),  # a scheme is kept
        (
            ["--name", "Order tools", "--description", "Orders and returns", "--timeout", "120"],
            SHOWN_TOKEN,
            {**body_for(f"Bearer {SHOWN_TOKEN}"), "name": "Order tools", "description": "Orders and returns",
             "toolSettings": {**body_for(f"Bearer {SHOWN_TOKEN}")["toolSettings"], "timeOut": 120}},
            "note: the body holds",
        ),
    ],
)  # fmt: skip
def test_payload_options(run_cli, monkeypatch, extra, env_token, expected, note):
    monkeypatch.setenv("SERVER_TOKEN", env_token)
    argv = ["hamsa", "payload", "--url", "https://mcp.example.com/mcp", "--token-env", "SERVER_TOKEN", *extra]
    code, out, err = run_cli(*argv)
    assert (code, json.loads(out)) == (0, expected)
    assert err.startswith(note)
    if "--redact" in extra:
        assert TOKEN not in out + err and err == ""


def test_payload_without_token_says_the_tool_has_no_auth(run_cli):
    code, out, err = run_cli("hamsa", "payload", "--url", "http://127.0.0.1:8000/mcp")
    assert (code, json.loads(out)) == (0, body_for(None, "http://127.0.0.1:8000/mcp"))
    assert err == "note: no --token-env: the tool is registered without auth; the server must not require a token\n"


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8000/mcp",
        "http://[::1]/mcp",
        "http://127.0.0.2/mcp",
        "http://127.1/mcp",
        "http://ip6-localhost/mcp",
    ],
)
def test_plain_http_is_accepted_for_loopback(run_cli, url):
    code, out, _ = run_cli("hamsa", "payload", "--url", url)
    assert (code, json.loads(out)["toolSettings"]["serverUrl"]) == (0, url)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--url", "http://mcp.example.com/mcp"], "--url must use https:// (plain http:// is allowed only to "
         "localhost/127.0.0.1/::1)"),
        (["--url", "/mcp"], "--url must be an absolute https:// URL"),
        (["--url", "ftp://mcp.example.com/mcp"], "--url must be an absolute https:// URL"),
        (["--url", "https://user:pw@mcp.example.com/mcp"], "--url must not contain user:password@"),
        (["--url", "https://mcp.example.com/mcp#x"], "--url must not contain a #fragment"),
        (["--url", "https://mcp.example.com:99999/mcp"], "--url has an invalid port"),
        (["--url", "https://mcp.example.com/m cp"], "--url must not contain spaces or control characters"),
        (["--url", "https://h/mcp", "--token-env", "UNSET_TOKEN_VAR"],
         "environment variable UNSET_TOKEN_VAR (--token-env) is not set or empty"),
        (["--url", "https://h/mcp", "--token-env", "Bearer x"],
         "--token-env takes the NAME of an environment variable (letters, digits, _), not a value"),
        (["--url", "https://h/mcp", "--timeout", "0"], "--timeout must be 1 to 3600 seconds"),
        (["--url", "https://h/mcp", "--name", "n" * 251], "--name must be 1 to 250 characters"),
        (["--url", "https://h/mcp", "--description", ""], "--description must be 1 to 1000 characters"),
    ],
)  # fmt: skip
def test_payload_usage_errors_exit_2(run_cli, monkeypatch, argv, message):
    monkeypatch.delenv("UNSET_TOKEN_VAR", raising=False)
    assert run_cli("hamsa", "payload", *argv) == (2, "", f"error: {message}\n")


@pytest.mark.parametrize(
    "argv",
    [["payload", "--token", TOKEN], ["payload", f"--token={TOKEN}"], ["register", "--api-key", API_KEY],
     ["register", "--api-key"]],
)  # fmt: skip
def test_secret_values_are_refused_on_the_command_line_without_echo(capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["hamsa", argv[0], "--url", "https://h/mcp", *argv[1:]])
    out, err = capsys.readouterr()
    option = argv[1].partition("=")[0]
    assert (exit_info.value.code, out) == (2, "")
    assert err.endswith(
        f"error: {option} is not accepted: put the value in an environment variable and pass its NAME with "
        f"{option}-env\n"
    )
    assert TOKEN not in err and API_KEY not in err


# A token shaped like a variable name (letters, digits, _): `--token-env "$VAR"` passes it as the name.
NAME_SHAPED_TOKEN = secret("tok_live_5d4c3b2a1f0e")


@pytest.mark.parametrize(
    ("command", "option", "holder"),
    [(["payload"], "--token-env", "MCP_WEBTOOLS_AUTH_TOKEN"), (["register"], "--api-key-env", "HAMSA_API_KEY")],
)
def test_a_value_given_for_a_variable_name_is_not_echoed(run_cli, monkeypatch, command, option, holder):
    monkeypatch.setenv(holder, NAME_SHAPED_TOKEN)
    argv = ["hamsa", *command, "--url", "https://h/mcp", option, NAME_SHAPED_TOKEN]
    expected = f"error: {option} takes the NAME of an environment variable, not its value: pass {option} {holder} "
    assert run_cli(*argv) == (2, "", expected + "(without the $)\n")
    # A value held by no variable (pasted by hand) is not echoed either: it is not a conventional name.
    monkeypatch.delenv(holder)
    expected = f"error: {option} takes the NAME of an environment variable (capitals, digits, _), and no variable of "
    assert run_cli(*argv) == (2, "", expected + "the name given is set (not shown here, in case it is a value)\n")


# -- register ----------------------------------------------------------------------------------


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeHamsa:
    """POST /v1/voice-agents/web-tool as its reference describes it; `reply` overrides the answer."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    reply: Response | None = None
    hang: bool = False
    release: anyio.Event = field(default_factory=anyio.Event)

    async def create(self, request: Request) -> Response:
        body = await request.body()
        self.received.append(Received(request.method, request.url.path, dict(request.headers), body))
        if self.hang:
            await self.release.wait()
        if self.reply is not None:
            return self.reply
        if request.headers.get("authorization") != f"Token {API_KEY}":
            return JSONResponse({"success": False, "message": "Unauthorized"}, 401)
        tool = json.loads(body)
        refused = [f"{key} is not allowed when type is MCP" for key in ("params", "async") if key in tool]
        if tool.get("type") != "MCP" or refused or not isinstance(tool.get("toolSettings"), dict):
            return JSONResponse({"success": False, "message": refused or ["bad tool"], "error": "Bad Request"}, 400)
        settings = {k: v for k, v in tool["toolSettings"].items() if k != "timeOut"}
        settings["timeout"] = tool["toolSettings"]["timeOut"] * 1000  # the API answers in ms
        data = {"id": TOOL_ID, "version": 1, "isActive": True, **tool, "toolSettings": settings}
        return JSONResponse({"success": True, "message": "success", "data": data}, 201)


@pytest.fixture
async def hamsa_api() -> AsyncIterator[FakeHamsa]:
    fake = FakeHamsa()
    app = Starlette(routes=[Route(CREATE_PATH, fake.create, methods=["POST"])])
    async with serve_asgi(app) as url:
        fake.url = url
        try:
            yield fake
        finally:
            fake.release.set()


async def register(run_cli, *extra: str) -> tuple[int, str, str]:
    argv = ("hamsa", "register", "--url", "https://mcp.example.com/mcp", "--token-env", "SERVER_TOKEN", *extra)
    return await anyio.to_thread.run_sync(functools.partial(run_cli, *argv))


@pytest.mark.anyio
@pytest.mark.parametrize("via", ["--base-url", "HAMSA_API_URL"])
async def test_register_posts_the_body_and_prints_the_new_id(run_cli, hamsa_api, monkeypatch, via):
    if via == "HAMSA_API_URL":
        monkeypatch.setenv("HAMSA_API_URL", hamsa_api.url + "/")
        code, out, err = await register(run_cli)
    else:
        code, out, err = await register(run_cli, "--base-url", hamsa_api.url)
    assert (code, out) == (0, f"{TOOL_ID}\n")
    assert err.splitlines()[-1] == "created MCP web tool 'mcp-webtools' in Hamsa; its id:"
    [request] = hamsa_api.received
    assert (request.method, request.path, json.loads(request.body)) == ("POST", CREATE_PATH, body_for())
    assert request.headers["authorization"] == f"Token {API_KEY}"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["accept"] == "application/json"
    assert API_KEY not in out + err


def json_reply(status: int, value: object) -> Response:
    return JSONResponse(value, status)


ECHO = f"bad header Token {API_KEY} for tool with token Bearer {TOKEN}"
MAYBE = "the tool may have been created anyway: check the Hamsa dashboard before registering again"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("reply", "code", "message"),
    [
        (None, 1, "the Hamsa API refused the API key (HTTP 401): Unauthorized; check --api-key-env"),
        (json_reply(403, {"message": "Forbidden"}), 1,
         "the Hamsa API refused the API key (HTTP 403): Forbidden; check --api-key-env"),
        (json_reply(400, {"success": False, "message": ["name must be shorter", "timeOut must be a number"],
                          "error": "Bad Request"}), 1,
         "the Hamsa API rejected the tool (HTTP 400): name must be shorter; timeOut must be a number; Bad Request"),
        (json_reply(422, {"message": ECHO}), 1,
         "the Hamsa API rejected the tool (HTTP 422): bad header Token *** for tool with token ***"),
        (Response("no such route", 404), 1, "the Hamsa API rejected the tool (HTTP 404): no such route"),
        (Response(status_code=301, headers={"location": "http://127.0.0.1:9/moved"}), 1,
         "the Hamsa API answered with a redirect (HTTP 301); not followed: check --base-url"),
        (json_reply(500, {"message": "Internal server error"}), 3,
         "the Hamsa API failed (HTTP 500): Internal server error; try again later"),
        (Response("<html><body>Bad gateway</body></html>", 502, media_type="text/html"), 3,
         "the Hamsa API failed (HTTP 502): an HTML page; try again later"),
        (json_reply(429, {"message": "Too many requests"}), 3,
         "the Hamsa API failed (HTTP 429): Too many requests; try again later"),
        (Response("created!", 201), 4, f"the Hamsa API answered HTTP 201 with a body that is not JSON; {MAYBE}"),
        (json_reply(201, {"success": True, "data": {"name": "x"}}), 4,
         f"the Hamsa API answered HTTP 201 without data.id; {MAYBE}"),
        (json_reply(200, {"success": False, "message": "quota exceeded", "data": {"id": TOOL_ID}}), 4,
         f"the Hamsa API answered success: false: quota exceeded (the answer names tool id {TOOL_ID}); {MAYBE}"),
    ],
)  # fmt: skip
async def test_register_failures(run_cli, hamsa_api, monkeypatch, reply, code, message):
    if reply is None:
        monkeypatch.setenv("HAMSA_API_KEY", "wrong-key-000")
    hamsa_api.reply = reply
    assert await register(run_cli, "--base-url", hamsa_api.url) == (code, "", f"error: {message}\n")
    assert len(hamsa_api.received) == 1  # never retried: a POST that may have created the tool


@pytest.mark.anyio
async def test_register_accepts_the_api_references_own_success_answer(run_cli, hamsa_api):
    # The API reference shows a successful create answering `"success": false, "message": "success"`.
    hamsa_api.reply = json_reply(200, {"success": False, "message": "success", "data": {"id": TOOL_ID}})
    code, out, err = await register(run_cli, "--base-url", hamsa_api.url)
    assert (code, out) == (0, f"{TOOL_ID}\n"), err


@pytest.mark.anyio
async def test_register_timeout_exits_3(run_cli, hamsa_api):
    hamsa_api.hang = True
    result = await register(run_cli, "--base-url", hamsa_api.url, "--api-timeout", "0.2")
    assert result == (3, "", f"error: no answer from {hamsa_api.url[7:]} within 0.2 s (--api-timeout); {MAYBE}\n")
    assert len(hamsa_api.received) == 1


@pytest.mark.anyio
async def test_register_connection_refused_exits_3(run_cli):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code, out, err = await register(run_cli, "--base-url", f"http://127.0.0.1:{port}")
    assert (code, out) == (3, "")
    assert err.startswith(f"error: could not connect to 127.0.0.1:{port}: ") and err.count("\n") == 1


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("error", "message"),
    [
        (httpx2.ConnectTimeout("timed out"), "could not connect to api.example.com within 5 s"),
        (httpx2.RemoteProtocolError(f"peer closed; sent Token {API_KEY}"), "the connection to api.example.com "
         f"failed before an answer (peer closed; sent Token ***); {MAYBE}"),
    ],
)  # fmt: skip
async def test_register_transport_failures(monkeypatch, error, message):
    async def fail(*args: object, **kwargs: object) -> None:  # no outside network: the send itself fails
        raise error

    monkeypatch.setattr(httpx2.AsyncClient, "send", fail)
    payload = hamsa.build_payload(hamsa.McpToolSpec("https://mcp.example.com/mcp"), {})
    target = hamsa.api_target("https://api.example.com", "HAMSA_API_KEY", {"HAMSA_API_KEY": API_KEY}, 5)
    with pytest.raises(ApiUnavailable) as raised:
        await hamsa.register(payload, target)
    assert (str(raised.value), exit_code(raised.value)) == (message, 3)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("argv", "unset", "message"),
    [
        ([], "HAMSA_API_KEY", "environment variable HAMSA_API_KEY (--api-key-env) is not set or empty"),
        (["--api-key-env", "OTHER_KEY"], None, "environment variable OTHER_KEY (--api-key-env) is not set or empty"),
        (["--base-url", "http://api.example.com"], None, "--base-url must use https:// (plain http:// is allowed "
         "only to localhost/127.0.0.1/::1)"),
        (["--base-url", "https://api.example.com?x=1"], None, "--base-url must not contain a ?query"),
        (["--api-timeout", "0"], None, "--api-timeout must be greater than 0"),
    ],
)  # fmt: skip
async def test_register_usage_errors_send_nothing(run_cli, hamsa_api, monkeypatch, argv, unset, message):
    monkeypatch.delenv("OTHER_KEY", raising=False)
    if unset:
        monkeypatch.delenv(unset)
    base = [] if "--base-url" in argv else ["--base-url", hamsa_api.url]
    assert await register(run_cli, *base, *argv) == (2, "", f"error: {message}\n")
    assert hamsa_api.received == []


# -- import ------------------------------------------------------------------------------------

CRM_TOKEN = secret("sk_live_crm_4f9a8b7c6d5e")
QUERY_KEY = secret("qk_ABCDEF123456")
WEATHER_KEY = secret("wk_9d8c7b6a5f4e")
CLIENT_ID = secret("client_123456")
SHOP_TOKEN = secret("shop-raw-token-7788")
HEADER_TOKEN = secret("hdr_secret_5566")
SECRETS = (CRM_TOKEN, QUERY_KEY, WEATHER_KEY, CLIENT_ID, SHOP_TOKEN, HEADER_TOKEN)
RECORD = {"id": TOOL_ID, "persistentId": "cmjx8qzw", "version": 3, "userId": "u-1", "projectId": "p-1",
          "isActive": True, "collectionId": "c-1"}  # fmt: skip
START = {"type": "request-start", "content": "Let me look that up for you..."}


def exported_tools() -> list[dict]:
    """Four FUNCTION tools and one MCP tool as the API's responses show them (timeouts in ms)."""
    crm = {
        **RECORD,
        "type": "FUNCTION",
        "name": "CRM Customer Lookup",
        "description": "Finds a caller.",
        "async": False,
        "messages": [START],
        "tags": ["crm"],  # ours too (endpoints select tools by tag): kept
        "toolSettings": {
            "serverUrl": "https://api.crm.example.com/v1/customers/search",
            "methodType": "POST",
            "authToken": f"Bearer {CRM_TOKEN}",
            "timeout": 10000,
            "httpHeaders": {"Content-Type": "application/json"},
        },
        "params": {"phone": {"type": "string", "description": "E.164"}},
    }
    weather = {
        **RECORD,
        "type": "FUNCTION",
        "name": "Weather API Tool",
        "description": "Current weather.",
        "async": True,
        "messages": [],
        "toolSettings": {
            "serverUrl": f"https://api.weather.example.com/v1/now/:city?api_key={QUERY_KEY}&units=si",
            "methodType": "GET",
            "timeout": 5000,
            "pathParameters": {"city": "Cairo"},
            "httpHeaders": {"X-API-Key": WEATHER_KEY, "X-Client-ID": CLIENT_ID, "Accept": "application/json"},
        },
        "params": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
    orders = {
        **RECORD,
        "type": "FUNCTION",
        "name": "Get Order Status",
        "description": "Order status.",
        "async": False,
        "toolSettings": {
            "serverUrl": "https://api.shop.example.com/orders/:orderId",
            "methodType": "GET",
            "authToken": SHOP_TOKEN,
            "timeout": 2500,
            "retries": 3,
        },
        "params": {"orderId": {"type": "string"}},
    }
    arabic = {
        **RECORD,
        "type": "FUNCTION",
        "name": "البحث عن العميل",
        "description": "بحث",
        "async": False,
        "toolSettings": {
            "serverUrl": "https://api.example.com/lookup",
            "methodType": "POST",
            "httpHeaders": [{"name": "Authorization", "value": f"Token {HEADER_TOKEN}"}],
        },
    }
    remote = {**RECORD, "type": "MCP", "name": "Remote MCP", "toolSettings": {"serverUrl": "https://m.example/mcp"}}
    return [crm, weather, orders, arabic, remote]  # fmt: skip


ENV = {
    "CRM_CUSTOMER_LOOKUP_AUTH_TOKEN": CRM_TOKEN,
    "WEATHER_API_TOOL_API_KEY": QUERY_KEY,
    "WEATHER_API_TOOL_X_API_KEY": WEATHER_KEY,
    "WEATHER_API_TOOL_X_CLIENT_ID": CLIENT_ID,
    "GET_ORDER_STATUS_AUTH_TOKEN": SHOP_TOKEN,
    "TOOL_4_AUTHORIZATION": HEADER_TOKEN,
}


def envelope(data: object) -> str:
    return json.dumps({"success": True, "message": "success", "data": data}, ensure_ascii=False)


def assert_no_secret_on_disk(folder: Path) -> None:
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert files
    for path in files:
        data = path.read_bytes()
        for value in SECRETS:
            for form in (value, json.dumps(value)[1:-1]):
                assert form.encode() not in data, (path, value)


def test_import_writes_one_loadable_file_per_tool_and_no_secret(run_cli, tmp_path):
    export = tmp_path / "export.json"
    export.write_text(envelope(exported_tools()), encoding="utf-8")
    out = tmp_path / "config"
    code, stdout, err = run_cli("hamsa", "import", str(export), "--out", str(out))
    assert (code, err) == (0, "")
    assert stdout.splitlines() == [
        f"wrote {out}/crm_customer_lookup.json  (CRM Customer Lookup)",
        f"wrote {out}/weather_api_tool.json  (Weather API Tool)",
        f"wrote {out}/get_order_status.json  (Get Order Status)",
        f"wrote {out}/tool_4.json  (البحث عن العميل)",
        "skipped 'Remote MCP': an MCP-type tool is a server, not an HTTP tool to serve",
        "dropped 'Get Order Status': field `toolSettings.retries`",
        "Set these environment variables to the values the tools have in Hamsa (not written here):",
        '  CRM_CUSTOMER_LOOKUP_AUTH_TOKEN  CRM Customer Lookup: toolSettings.authToken (the part after "Bearer")',
        "  WEATHER_API_TOOL_API_KEY        Weather API Tool: serverUrl query `api_key`",
        "  WEATHER_API_TOOL_X_API_KEY      Weather API Tool: toolSettings.httpHeaders.X-API-Key",
        "  WEATHER_API_TOOL_X_CLIENT_ID    Weather API Tool: toolSettings.httpHeaders.X-Client-ID",
        "  GET_ORDER_STATUS_AUTH_TOKEN     Get Order Status: toolSettings.authToken",
        '  TOOL_4_AUTHORIZATION            البحث عن العميل: toolSettings.httpHeaders.Authorization (the part after '
        '"Token")',
    ]  # fmt: skip
    assert sorted(p.name for p in out.iterdir()) == [
        "crm_customer_lookup.json", "get_order_status.json", "tool_4.json", "weather_api_tool.json"]  # fmt: skip
    assert_no_secret_on_disk(tmp_path / "config")
    assert json.loads((out / "crm_customer_lookup.json").read_text(encoding="utf-8")) == {
        "type": "FUNCTION", "name": "CRM Customer Lookup", "description": "Finds a caller.",
        "toolSettings": {"serverUrl": "https://api.crm.example.com/v1/customers/search", "methodType": "POST",
                         "authToken": "Bearer ${CRM_CUSTOMER_LOOKUP_AUTH_TOKEN}", "timeOut": 10,
                         "httpHeaders": {"Content-Type": "application/json"}},
        "async": False, "messages": [START],
        "params": {"type": "object", "properties": {"phone": {"type": "string", "description": "E.164"}}},
        "tags": ["crm"],
    }  # fmt: skip

    # With the variables set, the tools load and behave as they did in Hamsa.
    loaded = {d.name: d for d in load_definitions([out], environ=ENV).definitions}
    assert {name: (d.mcp_name, d.method, d.url, d.auth_token, d.headers, d.path_defaults, d.is_async,
                   d.timeout_seconds, [m.model_dump() for m in d.messages]) for name, d in loaded.items()} == {
        "CRM Customer Lookup": ("crm_customer_lookup", "POST", "https://api.crm.example.com/v1/customers/search",
                                f"Bearer {CRM_TOKEN}", (("Content-Type", "application/json"),), {}, False, 10.0,
                                [START]),
        "Weather API Tool": ("weather_api_tool", "GET",
                             f"https://api.weather.example.com/v1/now/:city?api_key={QUERY_KEY}&units=si", None,
                             (("X-API-Key", WEATHER_KEY), ("X-Client-ID", CLIENT_ID), ("Accept", "application/json")),
                             {"city": "Cairo"}, True, 5.0, []),
        "Get Order Status": ("get_order_status", "GET", "https://api.shop.example.com/orders/:orderId", SHOP_TOKEN, (),
                             {}, False, 2.5, []),
        "البحث عن العميل": ("tool_4", "POST", "https://api.example.com/lookup", None,
                            (("Authorization", f"Token {HEADER_TOKEN}"),), {}, False, 10.0, []),
    }  # fmt: skip
    assert loaded["Weather API Tool"].params == exported_tools()[1]["params"]
    # A URL placeholder without a default is written into `required`: a call cannot go without it.
    assert loaded["Get Order Status"].params == {
        "type": "object", "properties": {"orderId": {"type": "string"}}, "required": ["orderId"]}  # fmt: skip
    assert set(ENV.values()) <= set().union(*(d.secrets for d in loaded.values()))  # redacted like any env value


@pytest.mark.parametrize(
    "document",
    [exported_tools()[2], [exported_tools()[2]], {"success": True, "data": exported_tools()[2]}],
    ids=["bare object", "bare list", "envelope with one tool"],
)
def test_import_reads_each_export_form(run_cli, tmp_path, monkeypatch, document):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(json.dumps(document).encode())))
    code, out, _ = run_cli("hamsa", "import", "-", "--out", str(tmp_path))
    assert (code, out.splitlines()[0]) == (0, f"wrote {tmp_path}/get_order_status.json  (Get Order Status)")
    settings = json.loads((tmp_path / "get_order_status.json").read_text())["toolSettings"]
    assert settings == {"serverUrl": "https://api.shop.example.com/orders/:orderId", "methodType": "GET",
                        "authToken": "${GET_ORDER_STATUS_AUTH_TOKEN}", "timeOut": 2.5}  # fmt: skip


def test_import_writes_guide_shape_tools_in_the_api_shape_without_their_secrets(run_cli, tmp_path):
    guide = {
        "name": "Get Order",
        "methodType": "GET",
        "url": "https://api.shop.example.com/orders/:orderId",
        "authType": "jwtAuth",
        "authToken": f"Bearer {SHOP_TOKEN}",
        "timeoutSeconds": 4,
        "headers": [{"name": "X-Client-ID", "value": CLIENT_ID}, {"name": "Accept", "value": "application/json"}],
        "pathParameters": [{"name": "orderId", "defaultValue": "ORD-1"}],
        "parameters": {"type": "object", "properties": {"orderId": {"type": "string"}}},
    }
    no_auth = {
        "name": "Ping",
        "methodType": "GET",
        "url": "https://api.example.com/ping",
        "authType": "none",
        "authToken": HEADER_TOKEN,
    }
    export = tmp_path / "export.json"
    export.write_text(json.dumps([guide, no_auth]))
    code, stdout, err = run_cli("hamsa", "import", str(export), "--out", str(tmp_path / "c"))
    assert (code, err) == (0, "")
    assert stdout.splitlines() == [
        f"wrote {tmp_path}/c/get_order.json  (Get Order)",
        f"wrote {tmp_path}/c/ping.json  (Ping)",
        "dropped 'Ping': field `authToken` (authType is \"none\")",
        "Set these environment variables to the values the tools have in Hamsa (not written here):",
        '  GET_ORDER_AUTH_TOKEN   Get Order: toolSettings.authToken (the part after "Bearer")',
        "  GET_ORDER_X_CLIENT_ID  Get Order: toolSettings.httpHeaders.X-Client-ID",
    ]
    assert json.loads((tmp_path / "c" / "get_order.json").read_text()) == {
        "type": "FUNCTION", "name": "Get Order",
        "toolSettings": {"serverUrl": "https://api.shop.example.com/orders/:orderId", "methodType": "GET",
                         "authToken": "Bearer ${GET_ORDER_AUTH_TOKEN}", "timeOut": 4,
                         "httpHeaders": {"X-Client-ID": "${GET_ORDER_X_CLIENT_ID}", "Accept": "application/json"},
                         "pathParameters": [{"name": "orderId", "defaultValue": "ORD-1"}]},
        "params": {"type": "object", "properties": {"orderId": {"type": "string"}}},  # it has a default
    }  # fmt: skip
    assert json.loads((tmp_path / "c" / "ping.json").read_text())["toolSettings"] == {
        "serverUrl": "https://api.example.com/ping", "methodType": "GET"}  # fmt: skip
    assert_no_secret_on_disk(tmp_path / "c")


def test_import_refuses_to_overwrite_without_force(run_cli, tmp_path):
    export = tmp_path / "export.json"
    export.write_text(envelope(exported_tools()[:2]))
    out = tmp_path / "config"
    out.mkdir()
    (out / "weather_api_tool.json").write_text("mine")
    code, stdout, err = run_cli("hamsa", "import", str(export), "--out", str(out))
    assert (code, stdout) == (1, "")
    assert (
        err == f"error: nothing written:\n  - {out}/weather_api_tool.json already exists; use --force to overwrite it\n"
    )
    assert [p.name for p in out.iterdir()] == ["weather_api_tool.json"]  # all or nothing
    assert (out / "weather_api_tool.json").read_text() == "mine"

    code, stdout, _ = run_cli("hamsa", "import", str(export), "--out", str(out), "--force")
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["crm_customer_lookup.json", "weather_api_tool.json"]
    assert json.loads((out / "weather_api_tool.json").read_text())["name"] == "Weather API Tool"
    assert_no_secret_on_disk(out)


def test_same_names_get_distinct_files_and_mcp_names(run_cli, tmp_path):
    first, second = exported_tools()[2], {**exported_tools()[2], "description": "The other one."}
    named = {**first, "mcpName": "orders_v2", "description": "Named."}  # a set mcpName names the file
    export = tmp_path / "export.json"
    export.write_text(envelope([first, second, named]))
    code, stdout, _ = run_cli("hamsa", "import", str(export), "--out", str(tmp_path / "c"))
    assert code == 0
    assert "  GET_ORDER_STATUS_2_AUTH_TOKEN  Get Order Status: toolSettings.authToken" in stdout.splitlines()
    env = {name: SHOP_TOKEN for name in ("GET_ORDER_STATUS_AUTH_TOKEN", "GET_ORDER_STATUS_2_AUTH_TOKEN",
                                         "ORDERS_V2_AUTH_TOKEN")}  # fmt: skip
    loaded = load_definitions([tmp_path / "c"], environ=env).definitions
    assert [(d.mcp_name, d.description, d.source.rsplit("/", 1)[1]) for d in loaded] == [
        ("get_order_status", "Order status.", "get_order_status.json"),
        ("get_order_status_2", "The other one.", "get_order_status_2.json"),
        ("orders_v2", "Named.", "orders_v2.json"),
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (f'{{"authToken": "{CRM_TOKEN}",', "export.json: invalid JSON at line 1, column 42: Expecting property name "
         "enclosed in double quotes"),
        (b"\xff\xfe{}", "export.json: is not UTF-8 text"),
        (envelope([{"name": "No Settings", "authToken": CRM_TOKEN}, 7]),
         "nothing written:\n  - export.json: data[0]: tool 'No Settings': has no `toolSettings` object; is this a "
         "Hamsa API export?\n  - export.json: data[1]: a tool must be an object"),
        (envelope({**exported_tools()[1], "toolSettings": {"serverUrl": f"https://u:{CRM_TOKEN}@h.example/x"}}),
         "nothing written:\n  - export.json: data: tool 'Weather API Tool': toolSettings.serverUrl holds "
         "user:password@; move it to authToken in Hamsa first"),
        (envelope({**exported_tools()[1], "toolSettings": {"serverUrl": "https://h.example/", "timeout": "5s"}}),
         "nothing written:\n  - export.json: data: tool 'Weather API Tool': toolSettings.timeout must be a number "
         "(milliseconds)"),
        (envelope([exported_tools()[4]]), "export.json: holds no FUNCTION tools to import"),
        (envelope({**exported_tools()[0], "toolSettings": {"serverUrl": f"https://h.example/{CRM_TOKEN}/x",
                                                           "authToken": f"Bearer {CRM_TOKEN}"}}),
         "nothing written:\n  - export.json: data: tool 'CRM Customer Lookup': a credential of this tool also "
         "appears outside authToken, headers and query; move it first"),
    ],
)  # fmt: skip
def test_import_input_problems_write_nothing(run_cli, tmp_path, monkeypatch, content, message):
    monkeypatch.chdir(tmp_path)
    Path("export.json").write_bytes(content if isinstance(content, bytes) else content.encode())
    code, out, err = run_cli("hamsa", "import", "export.json", "--out", "config")
    assert (code, out, err) == (1, "", f"error: {message}\n")
    assert not Path("config").exists()
    assert CRM_TOKEN not in err


def test_import_reports_what_validate_will_refuse(run_cli, tmp_path):
    plain = {**exported_tools()[2], "toolSettings": {"serverUrl": "http://shop.example.com/orders/1",
                                                     "methodType": "GET", "timeout": 3000}}  # fmt: skip
    export = tmp_path / "export.json"
    export.write_text(envelope(plain))
    code, out, err = run_cli("hamsa", "import", str(export), "--out", str(tmp_path / "c"))
    assert (code, out) == (1, f"wrote {tmp_path}/c/get_order_status.json  (Get Order Status)\n")
    assert err == (
        "the written files do not load yet; fix these, then run `mcp-webtools validate`:\n"
        f"  - {tmp_path}/c/get_order_status.json: tool 'Get Order Status': field `toolSettings.serverUrl`: plain "
        "http:// to 'shop.example.com' is refused; use https://, or set `allowHttp: true` on the tool (or "
        "--allow-http) if the network path is trusted\n"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["missing.json"], "missing.json: cannot read: No such file or directory"),
        (["export.json", "--out", "export.json"], "nothing written:\n  - --out export.json is not a folder"),
    ],
)
def test_import_unreadable_source_or_bad_out(run_cli, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    Path("export.json").write_text(envelope(exported_tools()[2]))
    assert run_cli("hamsa", "import", *argv) == (1, "", f"error: {message}\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export.json"]


# --- one description of the Hamsa format, read alike by `validate` and `hamsa import` ------------


def test_loader_and_importer_read_the_hamsa_format_alike(run_cli, tmp_path, caplog):
    """Unknown keys, Hamsa's bookkeeping keys and the envelope's milliseconds mean the same to both."""
    tool = {"id": "a1", "createdAt": "2025-01-01", "type": "FUNCTION", "name": "Slow Lookup", "retries": 2,
            "toolSettings": {"serverUrl": "https://api.example.com/x", "methodType": "GET", "timeout": 2500,
                             "retryCount": 3}}  # fmt: skip
    export = tmp_path / "export.json"
    export.write_text(envelope(tool))
    with caplog.at_level(logging.WARNING, logger="mcp_webtools.loading"):
        [definition] = load_definitions([export], environ={}).definitions
    assert definition.timeout_seconds == 2.5
    assert [record.getMessage() for record in caplog.records] == [
        f"{export}: tool 'Slow Lookup': field `data.retries`: is not a known field; ignored (did you mean `retry`?)",
        f"{export}: tool 'Slow Lookup': field `data.toolSettings.retryCount`: is not a known field; ignored",
    ]
    code, out, _ = run_cli("hamsa", "import", str(export), "--out", str(tmp_path / "c"))
    assert (code, out) == (0, f"wrote {tmp_path}/c/slow_lookup.json  (Slow Lookup)\n"
                              "dropped 'Slow Lookup': field `retries`\n"
                              "dropped 'Slow Lookup': field `toolSettings.retryCount`\n")  # fmt: skip
    written = json.loads((tmp_path / "c" / "slow_lookup.json").read_text())
    assert written["toolSettings"]["timeOut"] == 2.5
    assert load_definitions([tmp_path / "c"], environ={}).definitions[0].timeout_seconds == 2.5


def test_the_hamsa_format_has_one_home():
    """The readers, the importer and registration take Hamsa's facts from hamsa/format.py, not copies."""
    from mcp_webtools.hamsa import format, importer
    from mcp_webtools.readers import envelope, guide, hamsa_api

    assert importer.KEPT_KEYS[: len(format.TOOL_KEYS)] == format.TOOL_KEYS
    assert hamsa_api.KNOWN_KEYS >= set(format.TOOL_KEYS) and guide.KNOWN_KEYS >= format.GUIDE_KEYS
    assert envelope.is_envelope is format.is_envelope and hamsa.envelope_refused is format.envelope_refused
    assert format.seconds_from_milliseconds(10000) == 10 and isinstance(format.seconds_from_milliseconds(10000), int)
    assert format.seconds_from_milliseconds(2500) == 2.5
    assert format.envelope_refused({"success": False, "message": "bad key"})
    assert not format.envelope_refused({"success": False, "message": "success"})  # the API reference's example


# -- one endpoint: its URL and its client's token, from the config -------------------------------------

SALES_CLIENT_TOKEN = secret("hamsa-sales-client-token-31d7")


def endpoints_config(directory: Path) -> Path:
    tool = {"name": "get_order", "methodType": "GET", "url": "https://api.example.com/orders"}
    (directory / "tools.json").write_text(json.dumps([tool]))
    endpoints = {
        "endpoints": [
            {"name": "sales", "tools": ["get_order"], "clients": ["hamsa-sales"]},
            {"name": "support", "tools": ["get_order"], "clients": ["hamsa-support", "ide"]},
        ],
        "clients": [
            {"id": "hamsa-sales", "token": "${SALES_CLIENT_TOKEN}"},
            {"id": "hamsa-support", "token": "${SUPPORT_CLIENT_TOKEN}"},
            {"id": "ide", "tokenSha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
        ],
    }
    (directory / "endpoints.json").write_text(json.dumps(endpoints))
    return directory


@pytest.mark.anyio
async def test_register_one_endpoint_with_its_url_and_its_clients_token(run_cli, hamsa_api, monkeypatch, tmp_path):
    monkeypatch.setenv("SALES_CLIENT_TOKEN", SALES_CLIENT_TOKEN)
    monkeypatch.setenv("SUPPORT_CLIENT_TOKEN", secret("hamsa-support-client-token-8e02"))
    argv = ("hamsa", "register", "--url", "https://mcp.example.com", "--endpoint", "sales")
    argv += ("--config", str(endpoints_config(tmp_path)), "--base-url", hamsa_api.url)
    code, out, err = await anyio.to_thread.run_sync(functools.partial(run_cli, *argv))
    assert (code, out) == (0, f"{TOOL_ID}\n"), err
    [request] = hamsa_api.received
    expected = body_for(f"Bearer {SALES_CLIENT_TOKEN}", url="https://mcp.example.com/mcp/sales")
    assert json.loads(request.body) == expected
    assert SALES_CLIENT_TOKEN not in out + err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--endpoint", "support"],
            "error: endpoint 'support' has 2 clients (hamsa-support, ide): choose one with --client ID, "
            "or give the token with --token-env NAME",
        ),
        (
            ["--endpoint", "support", "--client", "ide"],
            "error: client 'ide' has only a tokenSha256 in the config: give its token with --token-env NAME",
        ),
        (
            ["--endpoint", "support", "--client", "hamsa-sales"],
            "error: --client hamsa-sales: endpoint 'support' does not list it (clients: hamsa-support, ide)",
        ),
        (
            ["--endpoint", "nowhere"],
            "error: --endpoint nowhere: no such endpoint in the config; defined: sales, support",
        ),
        (["--client", "ide"], "error: --client and --config go with --endpoint"),
    ],
)
def test_payload_endpoint_choices_that_need_the_user(run_cli, monkeypatch, tmp_path, extra, message):
    monkeypatch.setenv("SALES_CLIENT_TOKEN", SALES_CLIENT_TOKEN)
    monkeypatch.setenv("SUPPORT_CLIENT_TOKEN", secret("hamsa-support-client-token-8e02"))
    argv = ["hamsa", "payload", "--url", "https://mcp.example.com/mcp", "--config", str(endpoints_config(tmp_path))]
    code, out, err = run_cli(*argv, *extra)
    assert (code, out, err.strip().splitlines()[-1]) == (2, "", message)


def test_payload_endpoint_with_a_token_from_the_environment(run_cli, monkeypatch, tmp_path):
    monkeypatch.setenv("SALES_CLIENT_TOKEN", SALES_CLIENT_TOKEN)
    monkeypatch.setenv("SUPPORT_CLIENT_TOKEN", secret("hamsa-support-client-token-8e02"))
    monkeypatch.setenv("IDE_TOKEN", SHOWN_TOKEN)
    argv = ["hamsa", "payload", "--url", "https://mcp.example.com/mcp", "--endpoint", "support"]
    code, out, _ = run_cli(*argv, "--token-env", "IDE_TOKEN", "--config", str(endpoints_config(tmp_path)))
    assert (code, json.loads(out)) == (0, body_for(f"Bearer {SHOWN_TOKEN}", url="https://mcp.example.com/mcp/support"))
