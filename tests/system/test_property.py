"""Property-based tests (hypothesis): random arguments, random JSON-RPC, random config files.

1. Any arguments through `ToolCalls.prepare`: a tool error, or a request that keeps the configured
   scheme, host, port and path shape, one segment per placeholder, and only the documented headers.
2. Any bytes posted to the live Streamable HTTP endpoint, in both protocol eras: never a 5xx, a
   traceback or an internal error, the server keeps answering, and the upstream only ever sees
   requests in a documented form.
3. Any file handed to the loader: a `ConfigErrors` naming the file (or a clean load), never another
   exception.

Each property is bounded (examples and sizes) so the file stays fast.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import httpx2
import mcp_types as types
import pytest
import yaml
from anyio.from_thread import start_blocking_portal
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from support import Recorded, Upstream, hamsa_tool, serve_asgi, write_tools

from mcp_webtools.calls import PreparedCall
from mcp_webtools.errors import ConfigErrors
from mcp_webtools.loading import MAX_CONFIG_FILE_BYTES, load_definitions
from mcp_webtools.serving.http_app import HttpSettings, build_http_app
from mcp_webtools.serving.runtime import open_webtools
from mcp_webtools.serving.server import WebTools

BOUNDED = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
USER_AGENT = "mcp-webtools/0.1.0"

# -- strategies shared by the properties ------------------------------------------------------------------

TRICKY = ["/", "..", ".", "%2e%2e", "%2f", "%", "\\", "\r\n", "\x00", "", " ", "?", "#", "&", "=", "@", ":", "\uff0e"]
tricky_text = st.one_of(
    st.sampled_from(TRICKY),
    st.lists(st.sampled_from(TRICKY) | st.text(max_size=3), min_size=1, max_size=6).map("".join),
    st.text(max_size=20),
)
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(), tricky_text
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


# -- 1. random arguments through ToolCalls.prepare ------------------------------------------------------------

ORDERS_URL = "https://api.example.com:8443/v1/orders/:orderId/items/{itemId}?fixed=1&x=%20"
TOOLS = [
    hamsa_tool(
        "Orders", ORDERS_URL, "GET",
        {
            "type": "object",
            "properties": {
                "orderId": {"type": "string"}, "itemId": {"type": "integer"}, "q": {"type": "string"},
                "tags": {"type": "array", "items": {"type": "string"}}, "flag": {"type": "boolean"},
                "limit": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
            },
            "required": ["orderId", "itemId"],
        },
        authToken="tok-orders", httpHeaders={"X-Tenant": "acme"},
    ),
    {
        **hamsa_tool(
            "Notes", "https://notes.example.com/api/notes/:noteId", "POST",
            {
                "type": "object",
                "properties": {
                    "noteId": {"type": "string"}, "text": {"type": "string", "maxLength": 200},
                    "meta": {"type": "object"}, "n": {"type": "number"},
                },
                "required": ["noteId"],
                "additionalProperties": False,
            },
        ),
        "maxRequestBytes": 300,
    },
    hamsa_tool(  # `name` has no type: any JSON value reaches the request builder
        "Files", "https://files.example.com/files/:folder/:name", "DELETE",
        {"type": "object", "properties": {"name": {}, "folder": {"type": "string"}}, "required": ["name"]},
        pathParameters={"folder": "inbox"},
    ),
    hamsa_tool("Anything", "https://[2001:db8::1]:9443/put", "PUT", {"type": "object"}),
]  # fmt: skip
# What each tool's requests must carry: exactly these headers, in this order.
DOCUMENTED_HEADERS = {
    "orders": (("User-Agent", USER_AGENT), ("Accept", "application/json"), ("Authorization", "Bearer tok-orders"),
               ("X-Tenant", "acme")),
    "notes": (("User-Agent", USER_AGENT), ("Accept", "application/json"), ("Content-Type", "application/json")),
    "files": (("User-Agent", USER_AGENT), ("Accept", "application/json")),
    "anything": (("User-Agent", USER_AGENT), ("Accept", "application/json"), ("Content-Type", "application/json")),
}  # fmt: skip
PROPERTIES = {"orders": ["orderId", "itemId", "q", "tags", "flag", "limit"], "notes": ["noteId", "text", "meta", "n"]}
PROPERTIES |= {"files": ["name", "folder"], "anything": ["a", "b"]}


@pytest.fixture(scope="module")
def webtools(tmp_path_factory: pytest.TempPathFactory) -> WebTools:
    return open_webtools([str(write_tools(tmp_path_factory.mktemp("prepare"), TOOLS))], environ={})


def arguments_for(tool: str) -> st.SearchStrategy[dict[str, Any]]:
    names = st.sampled_from([*PROPERTIES[tool], "extra", "Host", "Authorization"]) | st.text(max_size=8)
    loose = st.dictionaries(names, json_values, max_size=6)
    typed = {  # arguments of the right types, with hostile strings: most of these get sent
        "orders": st.fixed_dictionaries(
            {"orderId": tricky_text, "itemId": st.integers(-(2**40), 2**40)},
            optional={"q": tricky_text, "tags": st.lists(tricky_text, max_size=3), "flag": st.booleans()},
        ),
        "notes": st.fixed_dictionaries({"noteId": tricky_text}, optional={"text": tricky_text, "n": st.floats()}),
        "files": st.fixed_dictionaries(
            {"name": json_scalars},
            optional={
                "folder": st.none() | tricky_text,
                "extra": json_values,
                "filter": st.dictionaries(tricky_text, json_values, min_size=1, max_size=3),
            },
        ),
        "anything": loose,
    }[tool]
    return typed | loose


@st.composite
def calls(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    tool = draw(st.sampled_from(sorted(PROPERTIES)))
    return tool, draw(arguments_for(tool))


def path_pattern(url: str) -> re.Pattern[str]:
    """The configured path with each placeholder as exactly one non-empty segment."""
    path = urlsplit(url).path
    pieces = re.split(r":([A-Za-z_]\w*)|\{([A-Za-z_]\w*)\}", path)
    regex = ""
    for i in range(0, len(pieces), 3):
        regex += re.escape(pieces[i])
        if i + 1 < len(pieces):
            regex += f"(?P<{pieces[i + 1] or pieces[i + 2]}>[^/?#]+)"
    return re.compile(regex)


def segment_text(value: Any) -> str:
    """A path value as the segment documents it: strings as they are, everything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))  # compact; True -> "true"


@BOUNDED
@given(call=calls())
def test_prepare_refuses_or_builds_only_the_documented_request(webtools: WebTools, call: tuple[str, dict[str, Any]]):
    name, arguments = call
    tool = webtools.toolset.get(name)
    prepared = webtools.calls.prepare(name, arguments)
    event(f"{name}: {'refused' if isinstance(prepared, types.CallToolResult) else 'built'}")
    if isinstance(prepared, types.CallToolResult):
        assert prepared.is_error is True
        assert prepared.content[0].text.startswith(f"Invalid arguments for tool {name!r}; nothing was sent:\n- ")
        return
    assert isinstance(prepared, PreparedCall)
    request, configured = prepared.preview(), urlsplit(tool.definition.url)  # as it goes out, auth applied
    sent = urlsplit(request.url)
    # Scheme, host and port are the configured ones, as urlsplit and the HTTP client both read them.
    assert (sent.scheme, sent.hostname, sent.port) == (configured.scheme, configured.hostname, configured.port)
    client_view = httpx2.URL(request.url)
    assert (client_view.scheme, client_view.host, client_view.port) == (
        configured.scheme, configured.hostname, configured.port,
    )  # fmt: skip
    # One percent-encoded segment per placeholder, holding exactly the value (or the default).
    match = path_pattern(tool.definition.url).fullmatch(sent.path)
    assert match is not None, sent.path
    filled = tool.validator.validate(arguments)
    for placeholder, segment in match.groupdict().items():
        value = filled.get(placeholder)
        expected = segment_text(value) if value is not None else tool.definition.path_defaults[placeholder]
        assert segment == quote(expected, safe="") and unquote(segment) == expected
    # Everything else goes to the query (GET, DELETE) or the JSON body, nowhere else.
    rest = {k: v for k, v in filled.items() if k not in match.groupdict()}
    if request.method in ("POST", "PUT", "PATCH"):
        assert sent.query == configured.query and json.loads(request.body) == rest
    else:
        assert request.body is None
        prefix = f"{configured.query}&" if configured.query else ""  # the fixed query comes first, verbatim
        assert sent.query == configured.query or sent.query.startswith(prefix)
        extra = sent.query.removeprefix(prefix) if sent.query != configured.query else ""
        # Each argument (each item of a list) as name=value, in order; nulls are left out.
        items = [(k, item) for k, v in rest.items() for item in (v if isinstance(v, list) else [v])]
        assert [pair.split("=", 1) for pair in extra.split("&") if extra] == [
            [quote(k, safe=""), quote(segment_text(item), safe="")] for k, item in items if item is not None
        ]
    assert request.headers == DOCUMENTED_HEADERS[name]


# -- 2. random JSON-RPC over the live Streamable HTTP endpoint ------------------------------------------------

MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
}
POST_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
MODERN_HEADERS = {**POST_HEADERS, "MCP-Protocol-Version": "2026-07-28"}
# `subscriptions/listen` is left out: it rightly holds its stream open, which a request/response check cannot read.
METHODS = [
    "initialize", "notifications/initialized", "server/discover", "tools/list", "tools/call", "ping",
    "notifications/cancelled", "resources/list", "prompts/list", "logging/setLevel", "completion/complete",
]  # fmt: skip
header_text = st.text(alphabet=string.ascii_letters + string.digits + "/-_.", max_size=15)


@dataclass
class Live:
    base: str
    upstream: Upstream
    http: httpx2.Client
    session: str


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """The server and a recording upstream on an event loop in another thread, for a synchronous hypothesis test."""
    upstream = Upstream()
    with start_blocking_portal() as portal, portal.wrap_async_context_manager(serve_asgi(upstream)) as upstream_url:
        upstream.url = upstream_url
        tools = [
            hamsa_tool(
                "Echo", f"{upstream_url}/echo/:x", "GET", {"type": "object", "properties": {"x": {"type": "string"}}}
            ),
            hamsa_tool("Post", f"{upstream_url}/post", "POST", {"type": "object"}, authToken="tok-post"),
        ]
        webtools = open_webtools([str(write_tools(tmp_path_factory.mktemp("live"), tools))], environ={})
        with portal.wrap_async_context_manager(serve_asgi(build_http_app(webtools, HttpSettings()))) as base:
            with httpx2.Client(base_url=base, timeout=20) as http:
                init = {
                    "protocolVersion": "2025-11-25",
                    "capabilities": {},
                    "clientInfo": {"name": "p", "version": "0"},
                }
                opened = http.post("/mcp", json=rpc("initialize", init, 0), headers=POST_HEADERS)
                session = opened.headers["mcp-session-id"]
                legacy = {**POST_HEADERS, "Mcp-Session-Id": session, "MCP-Protocol-Version": "2025-11-25"}
                assert http.post("/mcp", json=rpc("notifications/initialized"), headers=legacy).status_code == 202
                yield Live(base, upstream, http, session)


def rpc(method: str, params: Any = None, id: Any = None) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    if id is not None:
        message["id"] = id
    return message


tool_params = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["echo", "post"]) | st.text(max_size=8),
        "arguments": json_values | arguments_for("anything"),
    },
    optional={"_meta": st.just(MODERN_META) | json_values},
)
messages = st.fixed_dictionaries(
    {},
    optional={
        "jsonrpc": st.just("2.0") | json_scalars,
        "id": st.integers() | st.text(max_size=8) | json_values,
        "method": st.sampled_from(METHODS) | st.text(max_size=20),
        "params": tool_params | json_values,
        "result": json_values,
        "error": json_values,
    },
)
bodies = st.one_of(
    messages.map(json.dumps),
    st.lists(messages, max_size=3).map(json.dumps),  # a batch
    json_values.map(json.dumps),
    st.binary(max_size=60).map(lambda b: b.decode("latin-1")),
    st.text(max_size=60),
)


@st.composite
def well_formed_calls(draw: st.DrawFn) -> tuple[str, dict[str, str]]:
    """A tools/call either era accepts as a message, with random arguments: these reach the tools."""
    name = draw(st.sampled_from(["echo", "post"]))
    arguments = draw(st.fixed_dictionaries({}, optional={"x": tricky_text | json_values}) | arguments_for("anything"))
    params: dict[str, Any] = {"name": name, "arguments": arguments}
    if draw(st.booleans()):
        params["_meta"] = MODERN_META
        headers = {**MODERN_HEADERS, "Mcp-Method": "tools/call", "Mcp-Name": name}
    else:
        headers = {**POST_HEADERS, "MCP-Protocol-Version": "2025-11-25", "Mcp-Session-Id": "SESSION"}
    return json.dumps(rpc("tools/call", params, draw(st.integers(1, 10**6)))), headers


@st.composite
def posts(draw: st.DrawFn) -> tuple[str, dict[str, str]]:
    if draw(st.booleans()):
        return draw(well_formed_calls())
    body = draw(bodies)
    era = draw(st.sampled_from(["legacy", "legacy-session", "modern", "none"]))
    headers: dict[str, str] = {}
    if era != "none":
        headers = dict(MODERN_HEADERS if era == "modern" else POST_HEADERS)
    if era == "modern":
        headers["Mcp-Method"] = draw(st.sampled_from(METHODS) | header_text)
        if draw(st.booleans()):
            headers["Mcp-Name"] = draw(st.sampled_from(["echo", "post"]) | header_text)
    if era == "legacy-session":
        headers["MCP-Protocol-Version"] = draw(st.sampled_from(["2025-11-25", "2025-06-18"]) | header_text)
        headers["Mcp-Session-Id"] = "SESSION"
    return body, headers


def documented(request: Recorded) -> bool:
    """A request the config describes: the tool's method and path shape, and exactly its headers."""
    names = [name for name, _ in request.header_list if name not in ("host", "accept-encoding", "content-length")]
    base = ["connection", "user-agent", "accept"]
    if request.method == "GET":
        return re.fullmatch(r"/echo/[^/?#]+", request.raw_path) is not None and names == base and request.body == b""
    if request.method == "POST" and request.raw_path == "/post" and request.query == "":
        headers_ok = names == [*base, "content-type", "authorization"]
        return headers_ok and request.headers["authorization"] == "Bearer tok-post" and isinstance(request.json(), dict)
    return False


def call_echo(live: Live, value: str) -> None:
    """A valid modern-era call: the server must still answer it correctly."""
    params = {"name": "echo", "arguments": {"x": value}, "_meta": MODERN_META}
    headers = {**MODERN_HEADERS, "Mcp-Method": "tools/call", "Mcp-Name": "echo"}
    response = live.http.post("/mcp", json=rpc("tools/call", params, 1), headers=headers)
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert (result["isError"], result["structuredContent"]["path"]) == (False, f"/echo/{quote(value, safe='')}")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(post=posts())
def test_random_json_rpc_never_crashes_the_server_or_reaches_the_upstream_undocumented(
    live: Live, post: tuple[str, dict[str, str]]
):
    body, headers = post
    if headers.get("Mcp-Session-Id") == "SESSION":
        headers["Mcp-Session-Id"] = live.session
    seen = len(live.upstream.requests)
    response = live.http.post("/mcp", content=body.encode("utf-8", "surrogatepass"), headers=headers)
    tool_error = '"isError":true' in response.text
    event(f"HTTP {response.status_code}" + (" (tool error)" if tool_error else ""))
    assert response.status_code < 500, response.text
    # No internal error, whether as JSON-RPC -32603 or as our own catch-all tool error.
    assert "Traceback" not in response.text and '"code":-32603' not in response.text.replace(" ", ""), response.text
    assert "an unexpected error occurred" not in response.text, response.text
    call_echo(live, "still-serving")
    new = live.upstream.requests[seen:]
    event(f"upstream requests besides the check: {len(new) - 1}")
    assert all(documented(r) for r in new), [(r.method, r.raw_path, r.header_list) for r in new]


# -- 3. random and broken config files -----------------------------------------------------------------------

VALID_ENTRIES = [
    hamsa_tool("Fuzz Tool", "https://api.example.com/items/:id", "GET", {"type": "object", "properties": {"id": {}}}),
    {"name": "Guide Tool", "methodType": "POST", "url": "https://${HOST:-api.example.com}/x", "authType": "jwtAuth",
     "authToken": "${TOKEN}", "headers": [{"name": "X-A", "value": "1"}], "parameters": {"type": "object"}},
    {"success": True, "message": "ok", "data": hamsa_tool("Envelope", "https://api.example.com/e", "DELETE")},
]  # fmt: skip
FIELD_NAMES = [
    "name", "type", "toolSettings", "serverUrl", "methodType", "url", "params", "parameters", "timeOut", "authToken",
    "httpHeaders", "headers", "pathParameters", "retry", "maxConcurrency", "allowHttp", "maxRequestBytes", "messages",
    "async", "mcpName", "data", "tools", "description", "properties",
]  # fmt: skip
config_values = st.one_of(
    json_values,
    st.sampled_from(
        ["${TOKEN}", "${MISSING}", "${HOST:-}", "http://169.254.169.254/", "ftp://x/", "https://a.example/:x"]
    ),
    st.sampled_from(["GET", "post", "TRACE", "FUNCTION", "MCP"]),
)


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    """A valid entry with a few keys, at any depth, replaced, removed or added."""
    document = json.loads(json.dumps(draw(st.sampled_from(VALID_ENTRIES))))
    for _ in range(draw(st.integers(1, 4))):
        node = document
        while isinstance(node, dict) and node and draw(st.booleans()):
            child = node[draw(st.sampled_from(sorted(node)))]
            if not isinstance(child, dict):
                break
            node = child
        if not isinstance(node, dict):
            continue
        key = draw(st.sampled_from(sorted(node) or FIELD_NAMES) | st.sampled_from(FIELD_NAMES))
        if draw(st.booleans()):
            node[key] = draw(config_values)
        else:
            node.pop(key, None)
    return document


documents = st.one_of(
    mutated(),
    st.lists(mutated(), max_size=3),
    st.fixed_dictionaries({"tools": st.lists(mutated(), max_size=3)}),
    json_values,
)


@st.composite
def config_files(draw: st.DrawFn) -> tuple[str, bytes]:
    suffix = draw(st.sampled_from([".json", ".yaml", ".yml"]))
    document = draw(documents)
    encode = draw(st.sampled_from(["json", "yaml", "cut", "bytes", "bom"]))
    if encode == "bytes":
        return suffix, draw(st.binary(max_size=200))
    text = yaml.safe_dump(document) if encode == "yaml" else json.dumps(document)
    if encode == "cut":
        text = text[: draw(st.integers(0, len(text)))]
    return suffix, (("\ufeff" if encode == "bom" else "") + text).encode("utf-8")


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


TWO_OF_A_NAME = json.dumps([VALID_ENTRIES[0], {**VALID_ENTRIES[0], "mcpName": "fuzz_tool"}]).encode()


@BOUNDED
@given(file=config_files(), environ=st.dictionaries(st.sampled_from(["TOKEN", "HOST"]), st.text(max_size=10)))
@example(file=(".json", b" " * (MAX_CONFIG_FILE_BYTES + 1)), environ={})  # too big to read
@example(file=(".json", TWO_OF_A_NAME), environ={})  # duplicate names
def test_loading_any_file_gives_config_errors_naming_it_or_tools(fuzz_dir: Path, file: tuple[str, bytes], environ):
    suffix, content = file
    path = fuzz_dir / f"tools{suffix}"
    path.write_bytes(content)
    try:
        loaded = load_definitions([path], environ=environ)
    except ConfigErrors as exc:
        event("config errors")
        assert exc.errors
        for error in exc.errors:
            assert error.file == str(path) and str(error).startswith(f"{path}: "), error
            assert error.message.strip() and "Traceback" not in error.message, error
            assert error.field is not None or error.tool is None or error.message.startswith(_WHOLE_ENTRY), error
        return
    event("loaded")
    assert loaded.definitions and all(d.source == str(path) for d in loaded.definitions)


# Problems about a whole entry (it names the tool, but no single field is at fault).
_WHOLE_ENTRY = ("a tool definition must be an object", "is neither the Hamsa API shape", "skipped")
