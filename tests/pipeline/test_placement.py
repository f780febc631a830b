"""Argument placement (`placement`, `bodyArgument`, `bodyEncoding`): the exact request each builds, and the
config errors that name the file, the tool and the field."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from support import hamsa_tool, write_tools

from mcp_webtools.definitions import ToolDefinition
from mcp_webtools.errors import ConfigErrors, RequestBuildError
from mcp_webtools.loading import load_definitions
from mcp_webtools.requests import RequestTemplate, build_request, form_pairs

BASE = "https://api.example.com"
PROPS = {
    "type": "object",
    "properties": {"id": {}, "limit": {}, "rid": {}, "name": {}, "tags": {}, "meta": {}, "payload": {}},
}


def request(url: str, method: str, arguments: dict[str, Any], **fields: Any):
    fields.setdefault("params", PROPS)
    definition = ToolDefinition(name="t", mcp_name="t", method=method, url=url, **fields)
    return build_request(RequestTemplate.from_definition(definition), arguments)


def test_default_placement_is_unchanged():
    get = request(f"{BASE}/o/{{id}}", "GET", {"id": "7", "limit": 5})
    assert get.url == f"{BASE}/o/7?limit=5" and get.body is None
    post = request(f"{BASE}/o/{{id}}", "POST", {"id": "7", "limit": 5})
    assert post.url == f"{BASE}/o/7" and post.body == b'{"limit":5}'


def test_query_on_post_header_and_body_side_by_side():
    built = request(
        f"{BASE}/o/{{id}}",
        "POST",
        {"id": "7", "limit": 5, "rid": "r-1", "name": "Ann"},
        placement={"limit": "query", "rid": {"in": "header", "name": "X-Request-Id"}},
    )
    assert built.url == f"{BASE}/o/7?limit=5"
    assert ("X-Request-Id", "r-1") in built.headers
    assert json.loads(built.body) == {"name": "Ann"}
    assert dict(built.headers)["Content-Type"] == "application/json"


def test_wire_names_for_query_body_and_path():
    built = request(
        f"{BASE}/o/{{order-id}}".replace("order-id", "orderId"),
        "PUT",
        {"id": "A 1", "limit": 2, "name": "x"},
        placement={"id": {"in": "path", "name": "orderId"}, "limit": {"in": "query", "name": "page[size]"}},
    )
    assert built.url == f"{BASE}/o/A%201?page%5Bsize%5D=2"
    assert json.loads(built.body) == {"name": "x"}


def test_renamed_path_argument_is_required_in_the_published_schema():
    definition = ToolDefinition(
        name="t", mcp_name="t", method="GET", url=f"{BASE}/o/{{orderId}}", params=PROPS,
        placement={"id": {"in": "path", "name": "orderId"}},
    )  # fmt: skip
    assert definition.input_schema["required"] == ["id"]


def test_get_with_header_placement_and_defaults_to_query():
    built = request(f"{BASE}/s", "GET", {"limit": 1, "rid": 9}, placement={"rid": {"in": "header", "name": "X-N"}})
    assert built.url == f"{BASE}/s?limit=1" and ("X-N", "9") in built.headers


def test_explode_false_joins_a_query_list_with_commas():
    placed = {"tags": {"in": "query", "explode": False}, "limit": {"in": "query"}}
    built = request(f"{BASE}/s", "POST", {"tags": ["a b", "c,d", 3], "limit": [1, 2]}, placement=placed)
    assert urlsplit(built.url).query == "tags=a%20b,c%2Cd,3&limit=1&limit=2"


def test_body_argument_is_the_whole_body_and_the_rest_go_to_the_query():
    built = request(f"{BASE}/o", "POST", {"payload": {"a": [1, 2]}, "limit": 3}, body_argument="payload")
    assert built.body == b'{"a":[1,2]}' and built.url == f"{BASE}/o?limit=3"
    listed = request(f"{BASE}/o", "POST", {"payload": [1, "x"]}, body_argument="payload")
    assert listed.body == b'[1,"x"]'


def test_form_body_repeats_arrays_and_brackets_objects():
    built = request(
        f"{BASE}/Messages.json",
        "POST",
        {"name": "Hi & bye", "tags": ["a", "b"], "meta": {"order": 7, "ok": True, "items": [{"p": "x"}]}},
        body_encoding="form",
    )
    assert dict(built.headers)["Content-Type"] == "application/x-www-form-urlencoded"
    assert built.body == (
        b"name=Hi%20%26%20bye&tags=a&tags=b&meta%5Border%5D=7&meta%5Bok%5D=true&meta%5Bitems%5D%5B0%5D%5Bp%5D=x"
    )
    assert parse_qsl(built.body.decode()) == [
        ("name", "Hi & bye"), ("tags", "a"), ("tags", "b"), ("meta[order]", "7"), ("meta[ok]", "true"),
        ("meta[items][0][p]", "x"),
    ]  # fmt: skip
    assert "Hi & bye" in built.as_text().replace("%20", " ").replace("%26", "&")


def test_form_pairs_skip_null():
    assert form_pairs("a", None) == [] and form_pairs("a", {"b": None, "c": 1.5}) == [("a[c]", "1.5")]


def test_form_body_argument_must_be_an_object():
    with pytest.raises(RequestBuildError) as caught:
        request(f"{BASE}/o", "POST", {"payload": [1]}, body_argument="payload", body_encoding="form")
    assert caught.value.field == "payload"


@pytest.mark.parametrize("value", ["a\r\nX-Evil: 1", "a\nb", "a\x00", "café", " padded"])
def test_header_values_are_confined(value):
    with pytest.raises(RequestBuildError) as caught:
        request(f"{BASE}/s", "GET", {"rid": value}, placement={"rid": {"in": "header", "name": "X-Request-Id"}})
    assert caught.value.field == "rid" and "X-Request-Id" in str(caught.value)


def test_header_list_is_comma_joined_and_objects_are_refused():
    placed = {"tags": {"in": "header", "name": "X-Tags"}}
    assert ("X-Tags", "a,b") in request(f"{BASE}/s", "GET", {"tags": ["a", "b"]}, placement=placed).headers
    with pytest.raises(RequestBuildError):
        request(f"{BASE}/s", "GET", {"tags": {"a": 1}}, placement=placed)


def test_dry_run_text_shows_header_query_and_form_body():
    built = request(
        f"{BASE}/o", "POST", {"limit": 2, "rid": "r", "name": "n"},
        placement={"limit": "query", "rid": {"in": "header", "name": "X-Request-Id"}}, body_encoding="form",
    )  # fmt: skip
    text = built.as_text()
    assert text.startswith("POST /o?limit=2 HTTP/1.1\n")
    assert "X-Request-Id: r\n" in text and "Content-Type: application/x-www-form-urlencoded\n" in text
    assert text.endswith("\nname=n\n")


def load_error(tmp_path, **extra: Any) -> str:
    tool = hamsa_tool("Placed", f"{BASE}/o/{{id}}", "GET", params=PROPS, **{})
    tool.update(extra)
    config = write_tools(tmp_path, [tool])
    with pytest.raises(ConfigErrors) as caught:
        load_definitions([config], environ={})
    return str(caught.value)


@pytest.mark.parametrize(
    ("extra", "field", "words"),
    [
        ({"placement": {"limt": "query"}}, "placement", "'limt' is not an argument of this tool (did you mean"),
        ({"placement": {"rid": "cookie"}}, "placement.rid", "'path', 'query', 'header' or 'body'"),
        ({"placement": {"rid": {"in": "header", "name": "Authorization"}}}, "placement", "Authorization header"),
        ({"placement": {"rid": {"in": "header", "name": "host"}}}, "placement", "host header"),
        ({"placement": {"rid": {"in": "header", "name": "Transfer-Encoding"}}}, "placement", "Transfer-Encoding"),
        ({"placement": {"rid": {"in": "header", "name": "Bad Name"}}}, "placement", "not a valid HTTP header name"),
        ({"placement": {"rid": "body"}}, "placement", "a GET request has no body"),
        ({"placement": {"rid": {"in": "path", "name": "nope"}}}, "placement", "no placeholder {nope}"),
        ({"placement": {"rid": {"in": "query", "nmae": "x"}}}, "placement.rid.nmae", "is not a known setting"),
        ({"bodyArgument": "payload"}, "bodyArgument", "a GET request has no body"),
        ({"placement": {"rid": {"in": "header", "name": "X-R", "explode": False}}}, "placement", "`explode` is about"),
        ({"bodyEncoding": "xml"}, "bodyEncoding", "'json' or 'form'"),
    ],
)
def test_config_errors_name_file_tool_and_field(tmp_path, extra, field, words):
    text = load_error(tmp_path, **extra)
    assert "tools.json" in text and "Placed" in text and field in text and words in text, text


def test_body_argument_conflicts_are_config_errors(tmp_path):
    tool = hamsa_tool("Placed", f"{BASE}/o", "POST", params=PROPS)
    tool.update({"bodyArgument": "payload", "placement": {"name": "body"}})
    config = write_tools(tmp_path, [tool])
    with pytest.raises(ConfigErrors) as caught:
        load_definitions([config], environ={})
    assert "'payload' is the whole body, so 'name' cannot be placed in the body too" in str(caught.value)
    tool.update({"bodyArgument": "paylod", "placement": {}})
    write_tools(tmp_path, [tool])
    with pytest.raises(ConfigErrors) as caught:
        load_definitions([config], environ={})
    assert "bodyArgument" in str(caught.value) and "did you mean `payload`" in str(caught.value)


def test_placement_in_the_guide_shape_too(tmp_path):
    tool = {
        "name": "Guide", "methodType": "POST", "url": f"{BASE}/g", "parameters": PROPS,
        "placement": {"limit": "query"}, "bodyEncoding": "form",
    }  # fmt: skip
    config = write_tools(tmp_path, [tool])
    (definition,) = load_definitions([config], environ={}).definitions
    built = build_request(RequestTemplate.from_definition(definition), {"limit": 1, "name": "n"})
    assert urlsplit(built.url).query == "limit=1" and built.body == b"name=n"


def test_call_dry_run_prints_query_header_and_form_body(tmp_path, capsys):
    from mcp_webtools import __version__
    from mcp_webtools.cli.commands import main

    tool = hamsa_tool("Placed", f"{BASE}/o/{{id}}", "POST", params=PROPS)
    tool.update(
        {"placement": {"limit": "query", "rid": {"in": "header", "name": "X-Request-Id"}}, "bodyEncoding": "form"}
    )
    config = write_tools(tmp_path, [tool])
    arguments = json.dumps({"id": "7", "limit": 2, "rid": "r-9", "name": "a b", "tags": ["x", "y"]})
    assert main(["call", "placed", "--config", str(config), "--args", arguments, "--dry-run"]) == 0
    assert capsys.readouterr().out == (
        "POST /o/7?limit=2 HTTP/1.1\n"
        "Host: api.example.com\n"
        f"User-Agent: mcp-webtools/{__version__}\n"
        "Accept: application/json\n"
        "Content-Type: application/x-www-form-urlencoded\n"
        "X-Request-Id: r-9\n"
        "\n"
        "name=a%20b&tags=x&tags=y\n"
    )
