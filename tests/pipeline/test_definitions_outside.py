"""Tool definitions as a new user writes them (issue 10, "Definitions"), tried from outside.

`validate`, `list` and `hamsa import` run as `python -m mcp_webtools` processes; `serve` answers
real MCP clients over both transports and both protocol eras, in front of a recording upstream.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import ERAS, TRANSPORTS, Upstream, mcp_client, run_module

# Most of these run `python -m mcp_webtools` as a user would: the module is end-to-end.
pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

COMBOS = [(transport, era) for transport in TRANSPORTS for era in ERAS]
BASE = "https://api.example.com"
POST_PARAMS = {"type": "object", "properties": {"postId": {"type": "string"}}}


def write(path: Path, document: Any) -> Path:
    """A config file as a person would write it (YAML for .yaml, else JSON); nothing in it is secret."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document, sort_keys=False) if path.suffix == ".yaml" else json.dumps(document))
    return path


def envelope(data: Any) -> dict[str, Any]:
    return {"success": True, "message": "success", "data": data}


# --- shapes mix freely in every layout ----------------------------------------------------------


def mixed(base: str) -> list[Any]:
    """An API body, a guide-shape tool, an envelope of one tool and an envelope of a list, side by side."""
    api_body = {
        "type": "FUNCTION",
        "name": "Api Body",
        "toolSettings": {"serverUrl": f"{base}/search", "methodType": "POST", "timeOut": 5},
        "params": {"type": "object", "properties": {"q": {"type": "string"}}},
    }
    guide = {
        "name": "Guide Tool",
        "methodType": "GET",
        "url": f"{base}/posts/{{postId}}",
        "parameters": {**POST_PARAMS, "required": ["postId"]},
    }
    one = envelope(
        {"id": "d949f13f", "type": "FUNCTION", "name": "Enveloped One",
         "toolSettings": {"serverUrl": f"{base}/one", "methodType": "GET", "timeout": 2500}}
    )  # fmt: skip
    many = envelope(
        [
            {"type": "FUNCTION", "name": "Enveloped Two", "params": {"id": {"type": "string"}},  # as the API shows
             "toolSettings": {"serverUrl": f"{base}/two/:id", "methodType": "DELETE", "pathParameters": {"id": "7"}}},
            {"name": "Enveloped Guide", "methodType": "PUT", "url": f"{base}/three", "timeoutSeconds": 3},
        ]
    )  # fmt: skip
    return [api_body, guide, one, many]


LAYOUTS = {"list": lambda tools: tools, "tools-key": lambda tools: {"tools": tools}}
# What every command sees in `mixed(BASE)`, whatever the layout.
MIXED_TOOLS = [
    ("api_body", "POST", f"{BASE}/search"),
    ("enveloped_guide", "PUT", f"{BASE}/three"),
    ("enveloped_one", "GET", f"{BASE}/one"),
    ("enveloped_two", "DELETE", f"{BASE}/two/:id"),
    ("guide_tool", "GET", f"{BASE}/posts/{{postId}}"),
]
MIXED_LIST = "".join(f"{name:<15}  {method:<6}  {url}\n" for name, method, url in MIXED_TOOLS)


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
@pytest.mark.parametrize("layout", LAYOUTS)
async def test_validate_and_list_read_every_shape_mixed_in_one_file(tmp_path: Path, layout: str, suffix: str) -> None:
    config = write(tmp_path / f"tools{suffix}", LAYOUTS[layout](mixed(BASE)))
    code, out, err = await run_module("validate", str(config))
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        *(f"ok  {name}  {method} {url}  ({config})" for name, method, url in MIXED_TOOLS),
        "5 tool(s) valid in 1 file(s)",
    ]
    assert await run_module("list", str(config)) == (0, MIXED_LIST, "")


@pytest.mark.parametrize(("transport", "era"), COMBOS)
async def test_serve_publishes_and_calls_every_shape_mixed_in_one_file(
    upstream: Upstream, tmp_path: Path, transport: str, era: str
) -> None:
    config = write(tmp_path / "tools.yaml", {"tools": mixed(upstream.url)})
    async with mcp_client(transport, era, config) as client:
        listing = await client.list_tools()
        assert [tool.name for tool in listing.tools] == [name for name, _, _ in MIXED_TOOLS]
        calls = {"api_body": {"q": "x"}, "guide_tool": {"postId": "p-1"}, "enveloped_two": {"id": "9"}}
        for name, _, _ in MIXED_TOOLS:
            result = await client.call_tool(name, calls.get(name, {}))
            assert result.is_error is False, result.content
    assert [(seen.method, seen.raw_path, seen.body) for seen in upstream.requests] == [
        ("POST", "/search", b'{"q":"x"}'),
        ("PUT", "/three", b"{}"),
        ("GET", "/one", b""),
        ("DELETE", "/two/9", b""),
        ("GET", "/posts/p-1", b""),
    ]


@pytest.mark.parametrize("layout", LAYOUTS)
async def test_hamsa_import_writes_every_shape_mixed_in_one_export(tmp_path: Path, layout: str) -> None:
    export = write(tmp_path / "export.json", LAYOUTS[layout](mixed(BASE)))
    out = tmp_path / "imported"
    code, stdout, err = await run_module("hamsa", "import", str(export), "--out", str(out))
    assert (code, err) == (0, "")
    assert stdout.splitlines() == [
        f"wrote {out}/api_body.json  (Api Body)",
        f"wrote {out}/guide_tool.json  (Guide Tool)",
        f"wrote {out}/enveloped_one.json  (Enveloped One)",
        f"wrote {out}/enveloped_two.json  (Enveloped Two)",
        f"wrote {out}/enveloped_guide.json  (Enveloped Guide)",
    ]
    # The imported files hold the same tools as the export, in the API shape.
    assert await run_module("list", str(out)) == (0, MIXED_LIST, "")
    assert json.loads((out / "enveloped_guide.json").read_text()) == {
        "type": "FUNCTION",
        "name": "Enveloped Guide",
        "toolSettings": {"serverUrl": f"{BASE}/three", "methodType": "PUT", "timeOut": 3},
    }
    assert json.loads((out / "enveloped_one.json").read_text())["toolSettings"]["timeOut"] == 2.5


# --- every schema problem at once ----------------------------------------------------------------

BROKEN_SCHEMA = """\
name: Get User
methodType: GET
url: https://api.example.com/users/:userId
parameters:
  type: object
  properties:
    userId: {type: strin}
    age: {type: integer, minimum: zero}
  required: userId
"""


@pytest.mark.parametrize("hash_seed", ["0", "1"])  # jsonschema's own order varies with it; ours does not
async def test_validate_lists_every_schema_problem_with_its_path(tmp_path: Path, hash_seed: str) -> None:
    config = tmp_path / "user.yaml"
    config.write_text(BROKEN_SCHEMA)
    code, out, err = await run_module("validate", str(config), env={"PYTHONHASHSEED": hash_seed})
    where = f"  - {config}: tool 'Get User': field `parameters"
    assert (code, out) == (1, "")
    assert err == (
        "3 config errors:\n"
        f"{where}.properties.userId.type`: is not valid JSON Schema: 'strin' is not a JSON Schema type "
        "(did you mean `string`?); the types are array, boolean, integer, null, number, object, string\n"
        f"{where}.properties.age.minimum`: is not valid JSON Schema: 'zero' is not of type 'number'\n"
        f"{where}.required`: is not valid JSON Schema: 'userId' is not of type 'array'\n"
    )


# --- typos ---------------------------------------------------------------------------------------


async def test_unknown_keys_suggest_the_known_one_once(tmp_path: Path) -> None:
    config = tmp_path / "post.yaml"
    config.write_text(
        "name: Get Post\nmethodType: GET\nurl: https://api.example.com/posts\ndescripton: Finds a post.\n"
        "paramters: {type: object, properties: {q: {type: string}}}\n"
    )
    code, out, err = await run_module("validate", str(config))
    assert (code, out) == (0, f"ok  get_post  GET {BASE}/posts  ({config})\n1 tool(s) valid in 1 file(s)\n")
    warnings = [line.split(" WARNING mcp_webtools.loading: ", 1)[1] for line in err.splitlines()]
    assert warnings == [
        f"{config}: tool 'Get Post': field `descripton`: is not a known field; ignored (did you mean `description`?)",
        f"{config}: tool 'Get Post': field `paramters`: is not a known field; ignored (did you mean `parameters`?)",
    ]


async def test_a_misspelt_required_key_is_explained_once_next_to_the_error(tmp_path: Path) -> None:
    config = tmp_path / "post.yaml"
    config.write_text("name: Get Post\nmethodtype: GET\nurl: https://api.example.com/posts\n")
    code, out, err = await run_module("validate", str(config))
    assert (code, out) == (1, "")
    where = f"{config}: tool 'Get Post': field"
    suggestion = f"{where} `methodtype`: is not a known field; ignored (did you mean `methodType`?)"
    assert (out + err).count("did you mean") == 1
    assert err.splitlines()[0].endswith(f" WARNING mcp_webtools.loading: {suggestion}")
    assert err.splitlines()[1:] == ["1 config error:", f"  - {where} `methodType`: is required"]


@pytest.mark.parametrize(
    ("name", "text", "field", "kind"),
    [
        ("tools.json", '[{"name": "Get Post", "methodType": "GET", "url": "https://a.example/1", '
                       '"url": "https://a.example/2"}]', "[0].url", "object"),
        ("tools.yaml", "name: Get Post\nmethodType: GET\nurl: https://a.example/1\nurl: https://a.example/2\n", "url",
         "mapping"),
        ("tools.yaml", "tools:\n- name: Get Post\n  methodType: GET\n  url: https://a.example/1\n  headers:\n"
                       "    X-Tenant: a\n    X-Tenant: b\n", "tools[0].headers.X-Tenant", "mapping"),
    ],
)  # fmt: skip
async def test_a_key_given_twice_is_an_error_not_last_one_wins(
    tmp_path: Path, name: str, text: str, field: str, kind: str
) -> None:
    config = tmp_path / name
    config.write_text(text)
    code, out, err = await run_module("validate", str(config))
    assert (code, out) == (1, "")
    assert err == (
        f"1 config error:\n  - {config}: tool 'Get Post': field `{field}`: is given twice in the same {kind}; "
        "keep one of them\n"
    )


# --- path placeholders are required --------------------------------------------------------------


def placeholder_tools(base: str) -> list[dict[str, Any]]:
    return [
        {"name": "Get Post", "methodType": "GET", "url": f"{base}/posts/{{postId}}", "parameters": POST_PARAMS},
        {
            "name": "Get Comment",
            "methodType": "GET",
            "url": f"{base}/posts/:postId/comments/{{commentId}}",
            "pathParameters": [{"name": "postId", "defaultValue": "1"}],
            "parameters": {
                "type": "object",
                "properties": {"postId": {"type": "string"}, "commentId": {"type": "string"}, "q": {"type": "string"}},
                "required": ["q"],
            },
        },
        {"name": "Get Listed", "methodType": "GET", "url": f"{base}/l/:postId",
         "parameters": {**POST_PARAMS, "required": ["postId"]}},
    ]  # fmt: skip


@pytest.mark.parametrize(("transport", "era"), COMBOS)
async def test_placeholders_without_a_default_are_published_as_required(
    upstream: Upstream, tmp_path: Path, transport: str, era: str
) -> None:
    config = write(tmp_path / "tools.json", placeholder_tools(upstream.url))
    async with mcp_client(transport, era, config) as client:
        schemas = {tool.name: tool.input_schema for tool in (await client.list_tools()).tools}
        assert schemas == {
            "get_post": {**POST_PARAMS, "required": ["postId"]},
            "get_comment": {**placeholder_tools("")[1]["parameters"], "required": ["q", "commentId"]},
            "get_listed": {**POST_PARAMS, "required": ["postId"]},
        }
        # The schema in the file is as written; a call without the placeholder is still refused as before.
        assert json.loads(config.read_text())[0]["parameters"] == POST_PARAMS
        result = await client.call_tool("get_post", {})
        assert result.is_error is True
        assert "postId: is required: it fills the URL path" in result.content[0].text
        assert (await client.call_tool("get_comment", {"commentId": "c 1", "q": "x"})).is_error is False
    assert [seen.raw_path + "?" + seen.query for seen in upstream.requests] == ["/posts/1/comments/c%201?q=x"]


async def test_validate_notes_placeholders_published_as_required(tmp_path: Path) -> None:
    config = write(tmp_path / "tools.json", placeholder_tools(BASE))
    code, out, err = await run_module("validate", str(config))
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"ok  get_comment  GET {BASE}/posts/:postId/comments/{{commentId}}  ({config})",
        f"ok  get_listed  GET {BASE}/l/:postId  ({config})",
        f"ok  get_post  GET {BASE}/posts/{{postId}}  ({config})",
        f"note: {config}: tool 'Get Post': field `[0].parameters.required`: URL placeholder {{postId}} has no "
        "pathParameters default and a call cannot go without it, so the published inputSchema lists it in "
        "`required`; add it there",
        f"note: {config}: tool 'Get Comment': field `[1].parameters.required`: URL placeholder {{commentId}} has no "
        "pathParameters default and a call cannot go without it, so the published inputSchema lists it in "
        "`required`; add it there",
        "3 tool(s) valid in 1 file(s)",
    ]


async def test_hamsa_import_writes_placeholders_into_required(tmp_path: Path) -> None:
    export = write(tmp_path / "export.json", envelope(placeholder_tools(BASE)))
    code, _, err = await run_module("hamsa", "import", str(export), "--out", str(tmp_path / "out"))
    assert (code, err) == (0, "")
    written = {p.stem: json.loads(p.read_text())["params"] for p in (tmp_path / "out").iterdir()}
    assert written == {
        "get_post": {**POST_PARAMS, "required": ["postId"]},
        "get_comment": {**placeholder_tools("")[1]["parameters"], "required": ["q", "commentId"]},
        "get_listed": {**POST_PARAMS, "required": ["postId"]},
    }
    # Nothing left for `validate` to point out.
    code, out, _ = await run_module("validate", str(tmp_path / "out"))
    assert code == 0 and "note:" not in out


async def test_placeholders_are_named_as_written(tmp_path: Path) -> None:
    tool = {"name": "Get Post", "methodType": "GET", "url": f"{BASE}/u/:userId/posts/{{postId}}"}
    config = write(tmp_path / "tools.json", tool)
    code, out, err = await run_module("validate", str(config))
    assert (code, out) == (1, "")
    assert err == (
        f"1 config error:\n  - {config}: tool 'Get Post': field `url`: URL placeholder(s) :userId, {{postId}} have "
        "neither a parameter of that name nor a pathParameters default\n"
    )
