"""The suite-wide secrets scan finds every form of a known secret in every channel, and fails the
session when one shows. tests/support.py declares the secrets and scans; tests/conftest.py feeds it.

Leaks planted here on purpose are found inside `SCANNER.diverted()`, so they do not fail this
session; whole sessions that fail are run in a subprocess.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import anyio
import pytest
from support import (
    ERAS,
    LOG_FILTER,
    REPO,
    SCANNER,
    SECRET_MARK,
    Leak,
    SecretScanner,
    Upstream,
    hamsa_tool,
    mcp_client,
    run_pytest_session,
    tool_secrets,
    write_tools,
)

from mcp_webtools.egress import EgressPolicy
from mcp_webtools.errors import ConfigErrors
from mcp_webtools.loading import load_definitions
from mcp_webtools.serving.runtime import load_toolset

pytestmark = pytest.mark.anyio

PYTHON = Path(sys.executable).name
TOKEN = "Token sk/live+1 é"  # a scheme, a slash, a plus, a space and a non-ASCII letter


# -- the scanner ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shown",
    [
        TOKEN,
        "sk/live+1 é",  # the credential without its scheme
        "Token%20sk%2Flive%2B1%20%C3%A9",  # URL-encoded
        "sk/live%2B1%20%C3%A9",  # URL-encoded, "/" kept
        "sk%2Flive%2B1+%C3%A9",  # form-encoded
        "sk/live+1 \\u00e9",  # in a JSON string, non-ASCII escaped
    ],
)
def test_every_form_of_a_known_secret_is_found(shown):
    scanner = SecretScanner()
    scanner.register(TOKEN)
    scanner.current_test = "t.py::t"
    text = f"before {shown} after"
    assert scanner.scan("mcp", "result of request 1", text) == [
        Leak("t.py::t", "mcp", "result of request 1", TOKEN, text)
    ]


@pytest.mark.parametrize("shown", ["Token ***", "***", "sk/live", "Token sk/l", "TOKEN SK/LIVE+1 É"])
def test_masked_or_partial_values_are_not_leaks(shown):
    scanner = SecretScanner()
    scanner.register(TOKEN)
    assert scanner.scan("log", "x", f"before {shown} after") == []
    assert scanner.leaks == []


def test_short_values_and_non_strings_are_not_secrets_but_the_mark_always_is():
    scanner = SecretScanner()
    scanner.register("abc", 123456, None, b"bytes-value")
    assert scanner.known == frozenset()
    assert scanner.scan("log", "x", "abc 123456 bytes-value") == []
    assert [leak.secret for leak in scanner.scan("log", "x", f"key=a{SECRET_MARK}b")] == [SECRET_MARK]


def test_a_secret_split_across_stream_chunks_is_found_once():
    scanner = SecretScanner()
    scanner.register("clé-1234")
    stream = scanner.stream("process", "p stdout")
    encoded = "x clé-1234 y clé-1234".encode()
    for chunk in (encoded[:4], encoded[4:16], encoded[16:], b"!", b"z"):  # the first "é" is cut in two
        stream.feed(chunk)
    # Each excerpt is what the scanner had in hand: the chunk and the tail of the one before.
    assert [(leak.secret, leak.excerpt) for leak in scanner.leaks] == [
        ("clé-1234", "x clé-1234 y cl"),
        ("clé-1234", "lé-1234 y clé-1234"),
    ]


def test_the_report_says_what_was_scanned_and_names_each_leak():
    scanner = SecretScanner()
    scanner.register("sk_live_1234", "other-secret")
    scanner.current_test = "tests/test_x.py::test_y"
    scanner.scan_json("mcp", "result of request 3", {"content": [{"text": "key sk_live_1234", "n": 5}]})
    scanner.scan("log", "mcp_webtools INFO", "nothing here")
    with scanner.diverted() as planted:  # kept out of the report
        scanner.scan("log", "mcp_webtools INFO", "other-secret")
    assert [leak.secret for leak in planted] == ["other-secret"]
    assert scanner.report() == [
        f"secrets scan: 2 known secret values and the mark {SECRET_MARK!r}; "
        "scanned 1 mcp texts (31 chars), 2 log texts (24 chars)",
        "secrets scan: FAILED, 1 leak(s) of known secret values:",
        "  tests/test_x.py::test_y [mcp: result of request 3]: "
        "'sk_live_1234' in 'content\\ntext\\nn\\nkey sk_live_1234'",
    ]
    assert SecretScanner().report()[-1] == "secrets scan: no known secret value was shown"


# -- what the tests' configs make secret ----------------------------------------------------------


def test_tool_secrets_follow_the_readme_in_every_shape():
    environ = {"API_KEY": "env-key-1234", "TENANT": "env-tenant-5678", "UNUSED": "unused-value"}
    hamsa = {
        "name": "A",
        "description": "Not ${UNUSED}: descriptions are shown as written",
        "toolSettings": {
            "serverUrl": "https://api.example/${TENANT}/x",
            "authToken": "Bearer ${API_KEY}",  # the template is not a secret; API_KEY's value is
            "httpHeaders": {"X-Client": "client-1234", "Content-Type": "application/json", "X-N": 1234},
            "pathParameters": {"region": "${REGION:-eu-west-1}"},  # an unset variable's default is not
        },
    }
    guide = {"name": "B", "url": "https://b.example", "authToken": "Token ${B_TOKEN:-fallback-1}", "headers": [
        {"name": "X-Api-Key", "value": "guide-key-1"}, {"name": "Accept", "value": "text/plain"},
        {"name": "X-Short", "value": "abc"}, {"name": "X-Unset", "value": "${NOT_SET}"}]}  # fmt: skip
    envelope = {"success": True, "message": "", "data": [{"name": "C", "toolSettings": {"authToken": "env-tok-9"}}]}
    document = {"tools": [hamsa, guide, envelope]}
    assert tool_secrets(document, environ) == {
        "Bearer env-key-1234", "env-key-1234", "env-tenant-5678", "client-1234",  # hamsa
        "Token fallback-1", "guide-key-1",  # guide: an authToken's default is part of a secret
        "env-tok-9",  # envelope
    }  # fmt: skip


async def test_configuring_a_secret_through_the_harness_registers_it(upstream: Upstream, tmp_path):
    token, header, env_value, inbound = (f"harness-{name}-8d1e" for name in ("token", "header", "env", "inbound"))
    tool = hamsa_tool("Echo", f"{upstream.url}/echo/:k", authToken=token, httpHeaders={"X-Key": "${HARNESS_KEY}"},
                      params={"type": "object", "properties": {"k": {"type": "string"}}})  # fmt: skip
    assert token in SCANNER.known
    config = write_tools(tmp_path, tool)
    assert env_value not in SCANNER.known  # HARNESS_KEY is not set yet
    guide = {"name": "Guide", "methodType": "GET", "url": "https://g.example", "authToken": "harness-guide-8d1e"}
    write_tools(tmp_path, guide, "guide.json")
    assert "harness-guide-8d1e" in SCANNER.known
    async with mcp_client("sse", "legacy", config, env={"HARNESS_KEY": env_value}, auth_token=inbound) as client:
        assert {env_value, inbound} <= SCANNER.known
        # The server hides what the upstream echoes: scanned, and no leak.
        upstream.reply_json("GET", "/echo/x", {"echo": [token, env_value]})
        with SCANNER.diverted() as leaks:
            result = await client.call_tool("echo", {"k": "x"})
    assert result.structured_content["echo"] == ["***", "***"]
    assert leaks == []
    assert header not in SCANNER.known


# -- every channel is scanned ---------------------------------------------------------------------


# Legacy HTTP+SSE has one era.
@pytest.mark.parametrize(
    ("transport", "era"), [(t, e) for t in ("stdio", "http", "sse") for e in ERAS if t != "sse" or e == "legacy"]
)
async def test_every_message_a_client_receives_is_scanned(upstream: Upstream, tmp_path, transport, era):
    planted = f"planted{SECRET_MARK}tools-list"
    config = write_tools(tmp_path, hamsa_tool("Listed", f"{upstream.url}/x", description=planted))
    before = SCANNER.scanned.get("mcp", [0, 0])[0]
    with SCANNER.diverted() as leaks:
        async with mcp_client(transport, era, config) as client:
            listing = await client.list_tools()
    assert listing.tools[0].description == planted  # shown, since the server does not know it is a secret
    # stdio's stdout is a process's output as well as MCP messages: both are scanned.
    expected = {"mcp", "process"} if transport == "stdio" else {"mcp"}
    assert {leak.channel for leak in leaks} == expected
    assert {leak.secret for leak in leaks} == {SECRET_MARK}
    assert sum(leak.channel == "mcp" for leak in leaks) == 1
    assert SCANNER.scanned["mcp"][0] >= before + 2  # the handshake and the listing, at least


async def test_log_records_are_scanned_as_the_servers_filter_leaves_them(tmp_path):
    hidden = "hidden-token-3c4d"
    config = write_tools(tmp_path, hamsa_tool("Logged", "https://api.example/x", authToken=hidden))
    load_toolset([str(config)], log_filter=LOG_FILTER)  # gives its redactor to the logging filter, as `serve` does
    planted = f"log{SECRET_MARK}1"
    logger = logging.getLogger("mcp_webtools.planted")
    with SCANNER.diverted() as leaks:
        logger.warning("shown %s, hidden %s", planted, hidden)
        try:
            raise RuntimeError(f"boom {planted} {hidden}")
        except RuntimeError:
            logger.exception("failed")
    assert [(leak.source, leak.secret) for leak in leaks] == [
        ("mcp_webtools.planted WARNING", SECRET_MARK),
        ("mcp_webtools.planted ERROR", SECRET_MARK),
    ]
    assert leaks[0].excerpt == f"shown {planted}, hidden ***"
    assert leaks[1].excerpt.endswith(f"RuntimeError: boom {planted} ***")


def test_output_read_through_capsys_is_scanned(capsys):
    with SCANNER.diverted() as leaks:
        print(f"out{SECRET_MARK}1")
        print(f"err{SECRET_MARK}2", file=sys.stderr)
        assert capsys.readouterr() == (f"out{SECRET_MARK}1\n", f"err{SECRET_MARK}2\n")
    assert [(leak.channel, leak.source) for leak in leaks] == [("output", "capsys out"), ("output", "capsys err")]


@pytest.mark.e2e
async def test_output_of_server_processes_is_scanned(tmp_path):
    config = write_tools(tmp_path, hamsa_tool("Listed", f"https://api.example/x?note=p{SECRET_MARK}1"))
    argv = [sys.executable, "-m", "mcp_webtools", "list", str(config)]
    with SCANNER.diverted() as leaks:
        with anyio.fail_after(60):
            done = await anyio.run_process(argv, cwd=REPO, check=False)
            async with await anyio.open_process(argv, cwd=REPO) as process:
                read = b"".join([chunk async for chunk in process.stdout])
                assert await process.wait() == 0
    assert done.returncode == 0 and read == done.stdout
    assert [leak.channel for leak in leaks] == ["process", "process"]
    assert all(leak.source.startswith(f"{PYTHON} -m mcp_webtools list ") for leak in leaks)
    assert all(leak.source.endswith(" stdout") for leak in leaks)


# -- the loader: config errors and warnings -------------------------------------------------------


def test_config_errors_and_warnings_never_show_a_configured_secret(tmp_path, caplog):
    token = "sk_live_shared_1234"
    # Mistakes that make a message quote the config: the token pasted as an enum and as a setting's name.
    bad = hamsa_tool("Bad Schema", "https://api.example.com/x", authToken=token,
                     params={"type": "object", "properties": {"key": {"enum": token}}})  # fmt: skip
    bad["toolSettings"][token] = True
    # A host from the environment, which the egress message shows lowercased.
    path = write_tools(tmp_path, [bad, hamsa_tool("Env Host", "https://${API_HOST}/x")])
    policy = EgressPolicy(allowed_hosts=frozenset({"api.example.com"}))
    with pytest.raises(ConfigErrors) as raised:
        load_definitions([path], {"API_HOST": "Internal-API.Example"}, policy)
    assert raised.value.describe().splitlines() == [
        "2 config errors:",
        f"  - {path}: tool 'Bad Schema': field `[0].params.properties.key.enum`: "
        "is not valid JSON Schema: '***' is not of type 'array'",
        f"  - {path}: tool 'Env Host': field `[1].toolSettings.serverUrl`: "
        "host '***' is not in the allowed upstream hosts",
    ]
    warning = f"{path}: tool 'Bad Schema': field `[0].toolSettings.***`: is not a known field; ignored"
    assert caplog.messages == [warning]


# -- whole sessions -------------------------------------------------------------------------------

INNER_TESTS = """
import logging
from support import secret

LEAK = secret("inner-planted-1234")

def test_prints_it():
    print("token:", LEAK)

def test_logs_it():
    logging.getLogger("mcp_webtools.inner").warning("token %s", LEAK)

def test_clean():
    print("nothing secret here")
"""


async def run_inner_session(directory: Path, *args: str) -> tuple[int, list[str]]:
    """A pytest session with this suite's harness; its exit code and its secrets-scan lines."""
    code, output = await run_pytest_session(directory, {"test_inner.py": INNER_TESTS}, "test_inner.py", *args)
    return code, [line for line in output.splitlines() if line.startswith(("secrets scan", "  test_"))]


@pytest.mark.e2e
async def test_a_session_that_shows_a_secret_fails_and_says_where(tmp_path):
    results: dict[str, tuple[int, list[str]]] = {}

    async def run(name: str, *args: str) -> None:
        results[name] = await run_inner_session(tmp_path / name, *args)

    async with anyio.create_task_group() as tg:
        tg.start_soon(run, "leaky")
        tg.start_soon(run, "clean", "-k", "clean")
    head = f"secrets scan: 1 known secret values and the mark {SECRET_MARK!r}; scanned "
    assert results["leaky"] == (
        1,  # every test passed, yet the session failed
        [
            head + "2 output texts (46 chars), 1 log texts (24 chars)",
            "secrets scan: FAILED, 2 leak(s) of known secret values:",
            "  test_inner.py::test_prints_it [output: stdout]: 'inner-planted-1234' in 'token: inner-planted-1234\\n'",
            "  test_inner.py::test_logs_it [log: mcp_webtools.inner WARNING]: 'inner-planted-1234' in "
            "'token inner-planted-1234'",
        ],
    )
    assert results["clean"] == (
        0,
        [head + "1 output texts (20 chars)", "secrets scan: no known secret value was shown"],
    )
