"""Loading config files and folders: layouts, `${ENV}`, skipping, and errors reported all at once."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import REPO

from mcp_webtools.errors import ConfigErrors
from mcp_webtools.loading import LoadResult, load_definitions


def tool(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "methodType": "GET", "url": "https://x.test/" + name.lower().replace(" ", "-"), **extra}


def write(path: Path, document: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(document, bytes):
        path.write_bytes(document)
    elif isinstance(document, str):
        path.write_text(document)
    elif path.suffix == ".json":
        path.write_text(json.dumps(document, indent=2))
    else:
        path.write_text(yaml.safe_dump(document))
    return path


def load(*paths: Path, environ: dict[str, str] | None = None) -> LoadResult:
    return load_definitions(paths, environ={} if environ is None else environ)


def error_text(*paths: Path, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigErrors) as caught:
        load(*paths, environ=environ)
    return str(caught.value)


# --- files and folders ------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".json", ".yaml", ".yml"])
@pytest.mark.parametrize("layout", ["one", "list", "tools-key"])
def test_file_layouts(tmp_path: Path, suffix: str, layout: str) -> None:
    tools = [tool("Alpha"), tool("Beta")]
    document = {"one": tools[0], "list": tools, "tools-key": {"tools": tools}}[layout]
    path = write(tmp_path / f"tools{suffix}", document)
    result = load(path)
    expected = ["alpha"] if layout == "one" else ["alpha", "beta"]
    assert [d.mcp_name for d in result.definitions] == expected
    assert {d.source for d in result.definitions} == {str(path)}
    assert result.files == [path]


def test_folder_in_stable_order(tmp_path: Path) -> None:
    write(tmp_path / "b.yaml", [tool("Zeta"), tool("Alpha")])
    write(tmp_path / "a.json", tool("Mid"))
    write(tmp_path / "c.YML", tool("Beta"))
    write(tmp_path / "README.md", "not a config file")
    write(tmp_path / "nested" / "ignored.json", "{ this is not read")  # folders are not recursed
    result = load(tmp_path)
    assert result.files == [tmp_path / "a.json", tmp_path / "b.yaml", tmp_path / "c.YML"]
    assert [(d.mcp_name, Path(d.source).name) for d in result.definitions] == [
        ("alpha", "b.yaml"),
        ("beta", "c.YML"),
        ("mid", "a.json"),
        ("zeta", "b.yaml"),
    ]


def test_several_paths_and_a_file_named_twice(tmp_path: Path) -> None:
    first = write(tmp_path / "one" / "a.json", tool("Alpha"))
    second = write(tmp_path / "two.yaml", tool("Beta"))
    result = load(tmp_path / "one", second, first)
    assert result.files == [first, second]
    assert [d.mcp_name for d in result.definitions] == ["alpha", "beta"]


def test_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = write(tmp_path / "bom.json", "\ufeff" + json.dumps(tool("Alpha")))
    assert [d.mcp_name for d in load(path).definitions] == ["alpha"]


def test_mcp_entries_are_skipped_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write(
        tmp_path / "mixed.json",
        [
            tool("Alpha"),
            {"type": "MCP", "name": "Remote Server", "toolSettings": {"serverUrl": "https://mcp.test/mcp"}},
            {"type": "mcp", "name": "Other Server", "mcpSettings": {"url": "https://mcp.test"}},  # any shape
        ],
    )
    with caplog.at_level(logging.WARNING, logger="mcp_webtools.loading"):
        result = load(path)
    assert [d.mcp_name for d in result.definitions] == ["alpha"]
    expected = [
        f"{path}: tool 'Remote Server': skipped: has `type: \"MCP\"`; only FUNCTION tools are served",
        f"{path}: tool 'Other Server': skipped: has `type: \"MCP\"`; only FUNCTION tools are served",
    ]
    assert [str(w) for w in result.warnings] == expected
    assert caplog.messages == expected


def test_unknown_fields_are_warned_about_but_hamsa_bookkeeping_is_not(tmp_path: Path) -> None:
    api = {
        "name": "Beta",
        "id": "d949f13f",
        "persistentId": "cmjx8",
        "isActive": True,
        "toolSettings": {"serverUrl": "https://x.test/b", "methodType": "GET", "timeOut": 5, "retries": 2},
        "retries": 3,
    }
    path = write(tmp_path / "typos.json", [tool("Alpha", timeoutSecs=5), api])
    result = load(path)
    assert [d.mcp_name for d in result.definitions] == ["alpha", "beta"]
    assert [str(w) for w in result.warnings] == [
        f"{path}: tool 'Alpha': field `[0].timeoutSecs`: is not a known field; ignored "
        "(did you mean `timeoutSeconds`?)",
        f"{path}: tool 'Beta': field `[1].retries`: is not a known field; ignored (did you mean `retry`?)",
        f"{path}: tool 'Beta': field `[1].toolSettings.retries`: is not a known field; ignored",
    ]


def test_only_mcp_entries_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "mcp.yaml", {"type": "MCP", "name": "Remote"})
    assert error_text(path) == f"1 config error:\n  - {path}: defines no FUNCTION tools"


def test_missing_path_and_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    write(tmp_path / "other" / "notes.txt", "hello")
    assert error_text(tmp_path / "nope.json", tmp_path / "empty", tmp_path / "other") == (
        "3 config errors:\n"
        f"  - {tmp_path / 'nope.json'}: no such file or folder\n"
        f"  - {tmp_path / 'empty'}: folder holds no *.json, *.yaml or *.yml files\n"
        f"  - {tmp_path / 'other'}: folder holds no *.json, *.yaml or *.yml files"
    )


def test_yaml_merge_keys_may_override_and_aliases_are_read_once(tmp_path: Path) -> None:
    # `<<` merges are YAML's way to override a shared part: not a key given twice.
    path = write(
        tmp_path / "merge.yaml",
        "base: &base {methodType: GET, url: 'https://x.test/a'}\n"
        "tools:\n- {<<: *base, name: A, url: 'https://x.test/override'}\n- {<<: *base, name: B}\n",
    )
    assert [(d.mcp_name, d.url) for d in load(path).definitions] == [
        ("a", "https://x.test/override"),
        ("b", "https://x.test/a"),
    ]
    # A mapping with a repeated key, used through aliases 10^8 times over: reported once, at once.
    nested = "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 9))
    bomb = write(tmp_path / "bomb.yaml", f"l0: &l0 {{a: 1, a: 2}}\n{nested}tools: [*l8]\n")
    with pytest.raises(ConfigErrors) as caught:
        load(bomb)
    assert str(caught.value.errors[0]) == f"{bomb}: field `l0.a`: is given twice in the same mapping; keep one of them"


# --- ${ENV} ---------------------------------------------------------------------------------

ENV_TOOL = tool(
    "Get Order",
    url="${API_BASE}/orders/:orderId",
    authType="jwtAuth",
    authToken="Bearer ${API_TOKEN}",
    headers=[
        {"name": "X-Tenant", "value": "${TENANT:-acme}"},
        {"name": "X-Key", "value": "${API_KEY}"},
        {"name": "X-Raw", "value": "${RAW}"},
    ],
    pathParameters=[{"name": "orderId", "defaultValue": "${DEFAULT_ORDER:-ORD-1}"}],
)
ENV = {"API_BASE": "https://api.test", "API_TOKEN": "tok-123456", "API_KEY": "key-abcdef", "RAW": "${API_KEY}"}


def test_env_values_are_substituted_and_recorded_as_secrets(tmp_path: Path) -> None:
    (definition,) = load(write(tmp_path / "t.json", ENV_TOOL), environ=ENV).definitions
    assert definition.url == "https://api.test/orders/:orderId"
    assert definition.url_template == "${API_BASE}/orders/:orderId"
    assert definition.auth_token == "Bearer tok-123456"
    # Defaults apply; a value is used as is, never expanded again.
    assert definition.headers == (("X-Tenant", "acme"), ("X-Key", "key-abcdef"), ("X-Raw", "${API_KEY}"))
    assert definition.path_defaults == {"orderId": "ORD-1"}
    # Values from the environment are secrets; defaults written in the file are not.
    # A whole URL's host is one too: error texts name a host without its scheme.
    assert definition.secrets == {"https://api.test", "api.test", "tok-123456", "key-abcdef", "${API_KEY}"}


def test_a_host_from_a_url_variable_is_hidden_in_egress_errors(tmp_path: Path) -> None:
    path = write(tmp_path / "t.json", tool("Lookup", url="${PARTNER_API}/lookup"))
    text = error_text(path, environ={"PARTNER_API": "http://partner-never-shown.example.com"})
    assert "partner" not in text
    assert text == (
        f"1 config error:\n  - {path}: tool 'Lookup': field `url`: plain http:// to '***' is refused; use https://, "
        "or set `allowHttp: true` on the tool (or --allow-http) if the network path is trusted"
    )


def test_a_loopback_host_from_a_url_variable_is_not_hidden_but_a_lookalike_name_is(tmp_path: Path) -> None:
    """Loopback is egress.py's definition: masking it would garble every local URL in the logs."""
    environ = {
        "SHORT": "http://127.1:8080",
        "NAMED": "http://localhost.localdomain:8080",
        "MAPPED": "http://[::ffff:127.0.0.1]:8080",
        "LOOKALIKE": "https://127.0.0.1.example.com",
    }
    tools = [tool(name.title(), url=f"${{{name}}}/x") for name in environ]
    definitions = load(write(tmp_path / "t.json", tools), environ=environ).definitions
    assert {d.name: d.secrets for d in definitions} == {
        "Short": {"http://127.1:8080"},
        "Named": {"http://localhost.localdomain:8080"},
        "Mapped": {"http://[::ffff:127.0.0.1]:8080"},
        "Lookalike": {"https://127.0.0.1.example.com", "127.0.0.1.example.com"},
    }


def test_env_value_overrides_the_default(tmp_path: Path) -> None:
    environ = {**ENV, "TENANT": "globex", "DEFAULT_ORDER": "ORD-9"}
    (definition,) = load(write(tmp_path / "t.json", ENV_TOOL), environ=environ).definitions
    assert (definition.headers[0], definition.path_defaults) == (("X-Tenant", "globex"), {"orderId": "ORD-9"})
    assert {"globex", "ORD-9"} <= definition.secrets


def test_missing_env_variables_name_tool_and_variable_never_values(tmp_path: Path) -> None:
    path = write(tmp_path / "t.json", ENV_TOOL)
    text = error_text(path, environ={"API_TOKEN": "tok-123456", "RAW": "raw-secret"})
    assert text == (
        "2 config errors:\n"
        f"  - {path}: tool 'Get Order': field `url`: environment variable API_BASE is not set\n"
        f"  - {path}: tool 'Get Order': field `headers.X-Key`: environment variable API_KEY is not set"
    )


def test_env_value_with_crlf_is_rejected_without_showing_it(tmp_path: Path) -> None:
    path = write(tmp_path / "t.json", ENV_TOOL)
    text = error_text(path, environ={**ENV, "API_KEY": "key\r\nX-Injected: yes", "API_BASE": "https://a.test\n"})
    assert text == (
        "2 config errors:\n"
        f"  - {path}: tool 'Get Order': field `url`: must not contain spaces or control characters (CR, LF, tab, ...)\n"
        f"  - {path}: tool 'Get Order': field `headers`: header 'X-Key' has a value containing CR, LF or NUL"
    )


# --- errors across files ----------------------------------------------------------------------


def test_duplicate_slug_across_files_names_both(tmp_path: Path) -> None:
    write(tmp_path / "a.json", tool("Get Order Status"))
    write(tmp_path / "b.yaml", tool("get order-status"))
    assert error_text(tmp_path) == (
        "1 config error:\n"
        f"  - {tmp_path / 'b.yaml'}: tool 'get order-status': field `name`: MCP tool name 'get_order_status' "
        f"is also used by tool 'Get Order Status' in {tmp_path / 'a.json'}; rename one or set `mcpName`"
    )


def test_every_error_of_a_broken_set_is_reported_together(tmp_path: Path) -> None:
    write(tmp_path / "a.json", '{"name": "A",\n  "url": }')
    write(
        tmp_path / "b.yaml",
        {
            "tools": [
                tool("Bad Method", methodType="FETCH", description=["not", "text"]),
                tool("No Env", url="${NOPE}/x", headers=7),
                tool("Good"),
            ]
        },
    )
    write(tmp_path / "c.yml", tool("good"))
    b = tmp_path / "b.yaml"
    assert error_text(tmp_path) == (
        "6 config errors:\n"
        f"  - {tmp_path / 'a.json'}: invalid JSON at line 2, column 10: Expecting value\n"
        f"  - {b}: tool 'Bad Method': field `tools[0].description`: must be a string\n"
        f"  - {b}: tool 'Bad Method': field `tools[0].methodType`: "
        "must be one of GET, POST, PUT, PATCH, DELETE (any case)\n"
        f"  - {b}: tool 'No Env': field `tools[1].headers`: "
        "must be an object of name: value, or a list of {name, value}\n"
        f"  - {b}: tool 'No Env': field `tools[1].url`: environment variable NOPE is not set\n"
        f"  - {tmp_path / 'c.yml'}: tool 'good': field `name`: MCP tool name 'good' is also used by tool 'Good' "
        f"in {b}; rename one or set `mcpName`"
    )


# --- broken inputs: always a clean ConfigErrors, never a traceback ----------------------------

OK = tool("T")
HOLD = 'a tool definition (an object), a list of them, or {"tools": [...]}'
NOT_A_TOOL = "a tool definition must be an object"
HEADERS = "field `headers`: must be an object of name: value, or a list of {name, value}"
PATH_PARAMS = "field `pathParameters`: must be an object of name: value, or a list of {name, defaultValue}"
METHOD = "field `methodType`: must be one of GET, POST, PUT, PATCH, DELETE (any case)"
NEITHER = "is neither the Hamsa API shape (with `toolSettings`) nor the guide shape (with `methodType` and `url`)"
BAD_DEFAULT = "field `pathParameters.id`: a path parameter default must be a string or a number"


@pytest.mark.parametrize(
    ("filename", "content", "expected"),
    [
        ("t.json", '{\n  "name": "T",\n  "url": }', ["invalid JSON at line 3, column 10: Expecting value"]),
        ("t.json", "", ["invalid JSON at line 1, column 1: Expecting value"]),
        (
            "t.yaml",
            "name: T\nurl: [open\n",
            ["invalid YAML at line 3, column 1: expected ',' or ']', but got '<stream end>'"],
        ),
        (
            "t.yml",
            "tools:\n\t- name: T\n",
            ["invalid YAML at line 2, column 1: found character '\\t' that cannot start any token"],
        ),
        ("t.yaml", b"name: \xff\xfe\n", ["is not UTF-8 text"]),
        ("t.yaml", "# nothing here\n", [f"is empty (or null); it must hold {HOLD}"]),
        ("t.json", "42", [f"must hold {HOLD}"]),
        ("t.json", '"T"', [f"must hold {HOLD}"]),
        ("t.json", {"tools": {"name": "T"}}, ["field `tools`: must be a list of tool definitions"]),
        (
            "t.json",
            [1, None],
            [
                f"tool 'unnamed entry [0]': field `[0]`: {NOT_A_TOOL}",
                f"tool 'unnamed entry [1]': field `[1]`: {NOT_A_TOOL}",
            ],
        ),
        ("t.json", {"success": True, "data": None}, [f"tool 'unnamed entry data': field `data`: {NOT_A_TOOL}"]),
        ("t.json", {"name": "T", "endpoint": "https://x.test"}, [f"tool 'T': {NEITHER}"]),
        (
            "t.json",
            {"name": "T", "toolSettings": "https://x.test"},
            ["tool 'T': field `toolSettings`: must be an object"],
        ),
        ("t.json", {"name": "T", "toolSettings": []}, ["tool 'T': field `toolSettings`: must be an object"]),
        ("t.json", {**OK, "headers": 3}, [f"tool 'T': {HEADERS}"]),
        (
            "t.json",
            {**OK, "headers": ["X-A: 1"]},
            ["tool 'T': field `headers[0]`: must be an object with `name` and `value`"],
        ),
        (
            "t.json",
            {**OK, "headers": [{"name": 5, "value": "1"}]},
            ["tool 'T': field `headers[0].name`: must be a non-empty string"],
        ),
        (
            "t.json",
            {**OK, "headers": {"X-A": {"v": 1}}},
            ["tool 'T': field `headers.X-A`: a header value must be a string or a number"],
        ),
        ("t.json", {**OK, "pathParameters": "id"}, [f"tool 'T': {PATH_PARAMS}"]),
        ("t.json", {**OK, "pathParameters": [{"name": "id", "defaultValue": True}]}, [f"tool 'T': {BAD_DEFAULT}"]),
        ("t.json", {**OK, "parameters": "object"}, ["tool 'T': field `parameters`: must be an object"]),
        ("t.json", {**OK, "messages": "hello"}, ["tool 'T': field `messages`: must be a list"]),
        (
            "t.json",
            {**OK, "messages": [1, {"type": "a"}]},
            ["tool 'T': field `messages[0]`: must be an object", "tool 'T': field `messages[1].content`: is required"],
        ),
        ("t.json", {**OK, "async": "yes"}, ["tool 'T': field `async`: must be true or false"]),
        ("t.json", {**OK, "timeoutSeconds": True}, ["tool 'T': field `timeoutSeconds`: must be a number"]),
        ("t.json", {**OK, "timeoutSeconds": "10"}, ["tool 'T': field `timeoutSeconds`: must be a number"]),
        (
            "t.json",
            {**OK, "authToken": 12345, "authType": "jwtAuth"},
            ["tool 'T': field `authToken`: must be a string"],
        ),
        ("t.json", {**OK, "name": 5}, ["tool 'unnamed entry': field `name`: must be a string"]),
        ("t.json", {"methodType": "GET", "url": "https://x.test"}, ["tool 'unnamed entry': field `name`: is required"]),
        (
            "t.json",
            {"name": "T", "toolSettings": {}},
            [
                "tool 'T': field `toolSettings.methodType`: is required",
                "tool 'T': field `toolSettings.serverUrl`: is required",
            ],
        ),
        (
            "t.yaml",
            "name: T\nmethodType: GET\nurl: https://x.test\ndescription: 2024-01-18\n",
            ["tool 'T': field `description`: must be a string"],
        ),
        # The parts that could not be read and the rest of the entry, in one pass.
        (
            "t.json",
            {**OK, "methodType": "FETCH", "headers": 3, "pathParameters": "id"},
            [f"tool 'T': {HEADERS}", f"tool 'T': {PATH_PARAMS}", f"tool 'T': {METHOD}"],
        ),
        # An envelope in a list: its tools are named where they sit.
        (
            "t.json",
            [OK, {"success": True, "data": [{**OK, "name": "U", "methodType": "FETCH"}]}],
            [f"tool 'U': field `[1].data[0].{METHOD.removeprefix('field `')}"],
        ),
        # A key given twice outside any tool, and inside a tool, each at its path.
        (
            "t.json",
            '{"tools": [], "tools": [{"name": "T", "methodType": "GET", "url": "https://x.test", "name": "T"}]}',
            [
                "field `tools`: is given twice in the same object; keep one of them",
                "tool 'T': field `tools[0].name`: is given twice in the same object; keep one of them",
            ],
        ),
    ],
)
def test_broken_input_is_a_clean_config_error(tmp_path: Path, filename: str, content: Any, expected: list[str]) -> None:
    path = write(tmp_path / filename, content)
    with pytest.raises(ConfigErrors) as caught:
        load(path)
    assert [str(e) for e in caught.value.errors] == [f"{path}: {line}" for line in expected]


# --- the repository's own config/ -------------------------------------------------------------

REPO_TOOLS = [
    ("cancel_appointment", "DELETE", "/appointments/:appointmentId", 10.0, "scheduler.json"),
    ("check_availability", "GET", "/slots/available", 5.0, "scheduler.json"),
    ("create_appointment", "POST", "/appointments", 10.0, "scheduler.json"),
    ("create_support_ticket", "POST", "/tickets", 10.0, "helpdesk.yaml"),
    ("get_order_status", "GET", "/orders/:orderId", 5.0, "orders.yaml"),
    ("lookup_customer_by_phone", "POST", "/customers/lookup", 10.0, "lookup_customer.json"),
    ("update_customer_preferences", "PATCH", "/customers/:customerId", 10.0, "helpdesk.yaml"),
]


@pytest.mark.parametrize(
    ("environ", "base", "secrets"),
    [
        ({}, "http://127.0.0.1:8900", frozenset()),
        (
            {"DEMO_API_URL": "http://127.0.0.1:9999", "DEMO_API_TOKEN": "tok-from-env"},
            "http://127.0.0.1:9999",
            frozenset({"http://127.0.0.1:9999", "tok-from-env"}),
        ),
    ],
)
def test_repository_config(environ: dict[str, str], base: str, secrets: frozenset[str]) -> None:
    result = load(REPO / "config", environ=environ)
    assert [(d.mcp_name, d.method, d.url, d.timeout_seconds, Path(d.source).name) for d in result.definitions] == [
        (name, method, base + path, timeout, file) for name, method, path, timeout, file in REPO_TOOLS
    ]
    assert {d.secrets for d in result.definitions} == {secrets}
    assert [p.name for p in result.files] == ["helpdesk.yaml", "lookup_customer.json", "orders.yaml", "scheduler.json"]
    assert result.warnings == []
