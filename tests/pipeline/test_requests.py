"""Request building (mcp_webtools.requests): the exact request a tool call turns into, no network."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import httpx2
import pytest

from mcp_webtools.auth import BearerAuth
from mcp_webtools.calls import PreparedCall
from mcp_webtools.definitions import ToolDefinition
from mcp_webtools.errors import RequestBuildError
from mcp_webtools.loading import load_definitions
from mcp_webtools.requests import USER_AGENT, OutboundRequest, RequestTemplate, build_request
from mcp_webtools.toolset import Toolset

BASE = "https://api.example.com:8443"
ANY_PROPS = {"type": "object", "properties": {"id": {}, "part": {}, "q": {}}}


def template(url: str, method: str = "GET", **fields: Any) -> RequestTemplate:
    fields.setdefault("params", ANY_PROPS)
    return RequestTemplate.from_definition(ToolDefinition(name="t", mcp_name="t", method=method, url=url, **fields))


def path_of(url: str) -> str:
    return urlsplit(url).path


def headers_of(request) -> dict[str, str]:
    return dict(request.headers)


@pytest.mark.parametrize("url", [f"{BASE}/orders/:id/items", f"{BASE}/orders/{{id}}/items"])
def test_both_placeholder_styles_take_the_argument(url):
    assert build_request(template(url), {"id": "A-1"}).url == f"{BASE}/orders/A-1/items"


@pytest.mark.parametrize("url", [f"{BASE}/orders/:id/:part", f"{BASE}/orders/{{id}}/{{part}}"])
def test_path_default_fills_in_when_the_argument_is_absent_or_null(url):
    tpl = template(url, path_defaults={"part": "summary"})
    assert build_request(tpl, {"id": "7"}).url == f"{BASE}/orders/7/summary"
    assert build_request(tpl, {"id": "7", "part": None}).url == f"{BASE}/orders/7/summary"
    assert build_request(tpl, {"id": "7", "part": "lines"}).url == f"{BASE}/orders/7/lines"


def test_placeholder_next_to_literal_text_and_repeated():
    tpl = template(f"{BASE}/files/:id.json/{{id}}")
    assert build_request(tpl, {"id": "a b"}).url == f"{BASE}/files/a%20b.json/a%20b"


@pytest.mark.parametrize(
    ("value", "segment"),
    [
        ("a/b", "a%2Fb"),
        ("a?x=1", "a%3Fx%3D1"),
        ("a#frag", "a%23frag"),
        ("%2f", "%252f"),
        ("100%", "100%25"),
        ("a..b", "a..b"),
        ("%2e%2e%2e", "%252e%252e%252e"),
        ("a\\b", "a%5Cb"),
        ("a\r\nX-Injected: 1", "a%0D%0AX-Injected%3A%201"),
        ("a\x00b", "a%00b"),
        ("two words", "two%20words"),
        ("café/€", "caf%C3%A9%2F%E2%82%AC"),
        ("...", "..."),
        (".hidden", ".hidden"),
        ("~user_1-2", "~user_1-2"),
        (42, "42"),
        (1.5, "1.5"),
        (True, "true"),
        (False, "false"),
    ],
)
def test_each_path_value_is_exactly_one_segment(value, segment):
    url = build_request(template(f"{BASE}/v1/orders/:id/items"), {"id": value}).url
    assert url == f"{BASE}/v1/orders/{segment}/items"
    # What the HTTP client will put on the wire: the same segments, nothing decoded.
    raw_path = httpx2.URL(url).raw_path.decode()
    assert raw_path == f"/v1/orders/{segment}/items"
    assert [unquote(s) for s in raw_path.split("/")][3] == (value if isinstance(value, str) else segment)


DOT_SEGMENT = (
    "must not contain a '.' or '..' path segment (split on '/' or '\\', encoded or not): a proxy that decodes "
    "the URL would resolve it to another path"
)


def test_an_empty_path_value_is_refused():
    with pytest.raises(RequestBuildError) as caught:
        build_request(template(f"{BASE}/orders/:id"), {"id": ""})
    assert (caught.value.field, caught.value.message) == ("id", "must not be empty: it fills a URL path segment")


@pytest.mark.parametrize(
    "value",
    [
        *(".", "..", "../x", "..\\x", "x/..", "./x", "x\\.", "a/./b", "x/../../admin", "..;/admin", "..;jsessionid=1"),
        *("%2e", "%2e%2e", "%2E.", "%2e%2e%2fadmin", "..%2Fadmin", "..%5cadmin", "x%2F%2E%2E"),  # percent-encoded
        *("%252e%252e", "%25252e%25252e%25252fx", "%252E%252E%255Cx"),  # encoded twice, three times
        # NFKC makes '．', '﹒' and '‥' dots, '／' and '＼' slashes
        *("\uff0e", "\uff0e\uff0e/x", "\u2025/x", "\ufe52\ufe52", "..\uff0fx", "..\uff3cx"),
        *("%EF%BC%8E%EF%BC%8E", "\uff05\uff12\uff45\uff05\uff12\uff45"),  # fullwidth, encoded; fullwidth '%2e'
        *("%c0%ae%c0%ae/x", "%e0%80%ae%e0%80%ae", "%c0%ae%c0%af"),  # overlong UTF-8 (lenient decoders)
        *("%u002e%u002e/x", "%uff0e%uff0e"),  # IIS's %u escape
        "%" + "25" * 9 + "2e",  # "." encoded ten times: still changing after eight decodings
    ],
)
def test_dot_segments_are_refused_in_any_encoding(value):
    with pytest.raises(RequestBuildError) as caught:
        build_request(template(f"{BASE}/orders/:id"), {"id": value})
    assert (caught.value.field, caught.value.message) == ("id", DOT_SEGMENT)


def test_dot_segment_from_a_default_is_refused_too():
    with pytest.raises(RequestBuildError) as caught:
        build_request(template(f"{BASE}/orders/:part", path_defaults={"part": ".."}), {})
    assert (caught.value.field, caught.value.message) == ("part", DOT_SEGMENT)


@pytest.mark.parametrize("value", [{"a": 1}, [1, 2]])
def test_non_scalar_path_values_are_refused(value):
    with pytest.raises(RequestBuildError) as caught:
        build_request(template(f"{BASE}/orders/:id"), {"id": value})
    assert caught.value.field == "id"
    assert caught.value.message == "fills a URL path segment, so it must be a string, number or boolean"


def test_missing_path_value_without_default_is_refused():
    with pytest.raises(RequestBuildError) as caught:
        build_request(template(f"{BASE}/orders/:id"), {})
    assert (caught.value.field, caught.value.message) == ("id", "is required: it fills the URL path")


@pytest.mark.parametrize("value", ["@evil.com", "//evil.com", "http://evil.com:1/x", "evil.com:80", "\\\\evil.com"])
@pytest.mark.parametrize("url", [f"{BASE}/:id", f"{BASE}/v1/{{id}}/x", "http://127.0.0.1/:id"])
def test_argument_values_never_choose_scheme_host_or_port(url, value):
    request = build_request(template(url), {"id": value, "q": value})
    configured, parsed = urlsplit(url), httpx2.URL(request.url)
    assert (parsed.scheme, parsed.host, parsed.port) == (configured.scheme, configured.hostname, configured.port)
    assert parsed.userinfo == b""
    assert parse_qsl(parsed.query.decode()) == [("q", value)]


def test_path_arguments_are_not_sent_again():
    get = build_request(template(f"{BASE}/orders/:id"), {"id": "7", "q": "x"})
    assert get.url == f"{BASE}/orders/7?q=x"
    post = build_request(template(f"{BASE}/orders/:id", "POST"), {"id": "7", "q": "x"})
    assert (post.url, post.body) == (f"{BASE}/orders/7", b'{"q":"x"}')
    # A null argument for a placeholder with a default is not sent as `"id": null` either.
    tpl = template(f"{BASE}/orders/:id", "PATCH", path_defaults={"id": "1"})
    assert build_request(tpl, {"id": None, "q": "x"}).body == b'{"q":"x"}'


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_query_string_for_get_and_delete(method):
    arguments = {
        "tags": ["a b", "c&d", None, 3],
        "active": True,
        "archived": False,
        "page": 2,
        "ratio": 0.25,
        "filter": {"name": "Zoë", "ids": [1, 2]},
        "skip": None,
        "empty": "",
    }
    request = build_request(template(f"{BASE}/search", method), arguments)
    assert request.method == method
    assert request.body is None
    assert urlsplit(request.url).query == (
        "tags=a%20b&tags=c%26d&tags=3&active=true&archived=false&page=2&ratio=0.25"
        "&filter=%7B%22name%22%3A%22Zo%C3%AB%22%2C%22ids%22%3A%5B1%2C2%5D%7D&empty="
    )
    assert parse_qsl(urlsplit(request.url).query, keep_blank_values=True)[-2:] == [
        ("filter", '{"name":"Zoë","ids":[1,2]}'),
        ("empty", ""),
    ]


def test_fixed_query_in_the_url_is_kept_verbatim_before_the_arguments():
    tpl = template(f"{BASE}/search?api-version=2024-01&flag&q=fixed%20one", "GET")
    assert build_request(tpl, {"q": "mine"}).url == f"{BASE}/search?api-version=2024-01&flag&q=fixed%20one&q=mine"
    assert build_request(tpl, {}).url == f"{BASE}/search?api-version=2024-01&flag&q=fixed%20one"
    post = build_request(template(f"{BASE}/items?v=2", "POST"), {"q": 1})
    assert (post.url, post.body) == (f"{BASE}/items?v=2", b'{"q":1}')


def test_no_arguments_no_query_and_root_path():
    assert build_request(template(BASE), {}).url == f"{BASE}/"
    assert build_request(template(f"{BASE}/ping"), {"skip": None}).url == f"{BASE}/ping"


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
def test_json_body_for_post_put_patch(method):
    arguments = {"name": "Zoë", "n": 1, "x": 1.5, "ok": True, "none": None, "list": [1, "a"], "obj": {"k": "v"}}
    request = build_request(template(f"{BASE}/items", method), arguments)
    assert request.url == f"{BASE}/items"
    assert request.body == '{"name":"Zoë","n":1,"x":1.5,"ok":true,"none":null,"list":[1,"a"],"obj":{"k":"v"}}'.encode()
    assert json.loads(request.body) == arguments
    assert headers_of(request)["Content-Type"] == "application/json"
    assert build_request(template(f"{BASE}/items", method), {}).body == b"{}"


def test_get_has_no_content_type_and_default_headers():
    request = build_request(template(f"{BASE}/items"), {})
    assert request.headers == (("User-Agent", USER_AGENT), ("Accept", "application/json"))


def test_configured_content_type_and_accept_replace_the_defaults():
    headers = (("content-type", "application/vnd.api+json"), ("Accept", "text/csv"), ("X-Tenant", "acme"))
    request = build_request(template(f"{BASE}/items", "POST", headers=headers), {"a": 1})
    assert request.headers == (("User-Agent", USER_AGENT), *headers)


@pytest.mark.parametrize(
    ("token", "header"),
    [
        ("sk_live_123", "Bearer sk_live_123"),
        ("eyJhbGciOiJIUzI1NiJ9.e30.sig", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig"),
        ("Bearer abc123", "Bearer abc123"),
        ("Token abc123", "Token abc123"),
        ("Basic dXNlcjpwYXNz", "Basic dXNlcjpwYXNz"),
    ],
)
def test_auth_token_becomes_the_authorization_header(token, header):
    request = BearerAuth(token).preview(build_request(template(f"{BASE}/items", auth_token=token), {}))
    assert headers_of(request)["Authorization"] == header


@pytest.mark.parametrize(
    "headers",
    [
        (("authorization", "Token from-headers"), ("X-Api-Key", "key-1")),
        (("X-Api-Key", "key-1"), ("Authorization", "Token from-headers")),  # wherever it was configured
    ],
)
def test_auth_token_wins_over_a_configured_authorization_header(headers):
    request = build_request(template(f"{BASE}/items", auth_token="sk_tok", headers=headers), {})
    request = BearerAuth("sk_tok").preview(request)  # as the call sends it: auth.py applies the token
    assert request.headers == (
        ("User-Agent", USER_AGENT),
        ("Accept", "application/json"),
        ("Authorization", "Bearer sk_tok"),
        ("X-Api-Key", "key-1"),
    )


def test_configured_authorization_header_is_kept_without_auth_token():
    request = build_request(template(f"{BASE}/items", headers=(("Authorization", "Token abc"),)), {})
    assert headers_of(request)["Authorization"] == "Token abc"


def guide_request(tmp_path: Path, **fields: Any) -> OutboundRequest:
    """The request a guide-shaped tool sends for a call without arguments, auth applied as a call applies it."""
    tool = {
        "name": "Guide Tool",
        "description": "d",
        "methodType": "POST",
        "url": f"{BASE}/x",
        "parameters": {"type": "object", "properties": {}},
        **fields,
    }
    path = tmp_path / "tool.json"
    path.write_text(json.dumps(tool))
    (tool,) = Toolset.from_definitions(load_definitions([path], environ={}).definitions)
    return PreparedCall(tool, build_request(tool.template, {})).preview()


def test_guide_auth_type_none_sends_no_authorization(tmp_path):
    request = guide_request(tmp_path, authType="none", authToken="sk_ignored_token")
    assert "authorization" not in {name.lower() for name, _ in request.headers}


def test_guide_jwt_auth_and_headers(tmp_path):
    request = guide_request(
        tmp_path, authType="jwtAuth", authToken="jwt-abc", headers=[{"name": "X-Team", "value": "7"}]
    )
    assert request.headers == (
        ("User-Agent", USER_AGENT),
        ("Accept", "application/json"),
        ("Content-Type", "application/json"),
        ("Authorization", "Bearer jwt-abc"),
        ("X-Team", "7"),
    )


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
@pytest.mark.parametrize(
    ("url", "method", "arguments"),
    [
        (f"{BASE}/x/:id", "GET", lambda bad: {"id": bad}),
        (f"{BASE}/x", "GET", lambda bad: {"id": [1, bad]}),
        (f"{BASE}/x", "POST", lambda bad: {"ok": 1, "id": {"deep": bad}}),
    ],
)
def test_non_finite_numbers_are_refused_naming_the_argument(url, method, arguments, bad):
    with pytest.raises(RequestBuildError) as caught:
        build_request(template(url, method), arguments(bad))
    assert (caught.value.field, caught.value.message) == ("id", "must be a finite number (JSON has no NaN or Infinity)")


def test_as_text_for_dry_runs():
    tpl = template("https://api.example.com/orders/:id?v=1", "POST", auth_token="sk_abc")
    request = BearerAuth("sk_abc").preview(build_request(tpl, {"id": "a/b", "note": "hé"}))
    assert request.as_text() == (
        "POST /orders/a%2Fb?v=1 HTTP/1.1\n"
        "Host: api.example.com\n"
        f"User-Agent: {USER_AGENT}\n"
        "Accept: application/json\n"
        "Content-Type: application/json\n"
        "Authorization: Bearer sk_abc\n"
        "\n"
        '{"note":"hé"}\n'
    )
    get = build_request(template(f"{BASE}/orders"), {})
    assert (
        get.as_text()
        == f"GET /orders HTTP/1.1\nHost: api.example.com:8443\nUser-Agent: {USER_AGENT}\nAccept: application/json\n"
    )
