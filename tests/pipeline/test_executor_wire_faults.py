"""Upstream faults uvicorn cannot produce, plus DNS, TLS, odd bodies and redirects.

`RawUpstream` is a bare asyncio TCP (or TLS) server that speaks just enough HTTP/1.1 to misbehave
on purpose: reset the socket mid-body, accept and never answer, stream a body forever. Every
fault must become a tool error (`isError: true`) that says what happened, within the tool's
timeout, and the same MCP connection must go on serving.
"""

from __future__ import annotations

import asyncio
import gzip
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
import trustme
from support import ERAS, Reply, Upstream, hamsa_tool, mcp_client, serve_asgi, write_tools

from mcp_webtools.errors import ConfigErrors
from mcp_webtools.loading import load_definitions

pytestmark = pytest.mark.anyio

META_HTTP = "mcp-webtools/http"
JSON = [("content-type", "application/json")]
FAST_RETRY = {"retries": 2, "backoffSeconds": 0}  # the default count, without the jittered waits


# --- a raw HTTP/1.1 upstream ------------------------------------------------------------------------


@dataclass
class RawRequest:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]


Behaviour = Callable[["RawUpstream", asyncio.StreamWriter, RawRequest], Awaitable[None]]


class RawUpstream:
    """Reads one request per connection, records it, then lets `behave` answer (or not)."""

    def __init__(self, behave: Behaviour, *, read: bool = True) -> None:
        self.behave = behave
        self.read = read  # False: accept the connection, then never even read the request
        self.connections = 0
        self.requests: list[RawRequest] = []
        self.release = anyio.Event()  # set at teardown: behaviours that hang wait for it
        self.client_gone = anyio.Event()  # the client closed or reset a connection we were writing to
        self.errors: list[BaseException] = []
        self.url = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            if not self.read:
                await self.release.wait()
                return
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *lines = head.decode("latin-1").split("\r\n")[:-2]
            method, target, _version = request_line.split(" ")
            headers = [(k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in lines)]
            length = int(next((v for k, v in headers if k.lower() == "content-length"), "0"))
            request = RawRequest(method, target, headers, await reader.readexactly(length))
            self.requests.append(request)
            await self.behave(self, writer, request)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            self.client_gone.set()
        except Exception as exc:  # noqa: BLE001 - reported by serve_raw, not lost in the event loop's log
            self.errors.append(exc)
        finally:
            if not writer.transport.is_closing():
                writer.transport.abort()  # a behaviour that just returns: closed without a byte of answer


@asynccontextmanager
async def serve_raw(
    behave: Behaviour, *, tls: ssl.SSLContext | None = None, read: bool = True
) -> AsyncIterator[RawUpstream]:
    upstream = RawUpstream(behave, read=read)
    tasks: set[asyncio.Task[None]] = set()

    def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.ensure_future(upstream.handle(reader, writer))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    server = await asyncio.start_server(connected, "127.0.0.1", 0, ssl=tls)
    upstream.url = f"{'https' if tls else 'http'}://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield upstream
    finally:
        upstream.release.set()
        server.close()
        await server.wait_closed()
        with anyio.fail_after(10):
            await asyncio.gather(*tasks, return_exceptions=True)
    assert not upstream.errors, upstream.errors


def response_head(status: str, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{name}: {value}" for name, value in headers), "", ""]
    return "\r\n".join(lines).encode("latin-1")


async def answer(
    writer: asyncio.StreamWriter, status: str, body: bytes, content_type: str = "application/json"
) -> None:
    headers = [("Content-Type", content_type), ("Content-Length", str(len(body))), ("Connection", "close")]
    writer.write(response_head(status, headers) + body)
    writer.close()  # flushes what is buffered, then FIN
    await writer.wait_closed()


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with an RST instead of a FIN: linger on, zero seconds, and no shutdown first."""
    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


# --- shared checks ------------------------------------------------------------------------------------


def text_of(result: types.CallToolResult) -> str:
    assert len(result.content) == 1 and isinstance(result.content[0], types.TextContent), result.content
    return result.content[0].text


def with_settings(tool: dict[str, Any], **settings: Any) -> dict[str, Any]:
    """Our extension settings (`retry`, `followRedirects`, ...) are top-level keys in every shape."""
    return {**tool, **settings}


def with_ping(tmp_path: Path, upstream: Upstream, *tools: dict[str, Any]) -> Path:
    """A config of `tools`, plus a healthy `ping` tool to prove the server still serves."""
    return write_tools(tmp_path, [*tools, hamsa_tool("Ping", f"{upstream.url}/ping")])


async def assert_still_serving(client: Any, upstream: Upstream) -> None:
    ok = await client.call_tool("ping", {})
    assert ok.is_error is False and ok.structured_content["path"] == "/ping"
    assert upstream.requests[-1].raw_path == "/ping"


# --- the connection breaks mid-body ---------------------------------------------------------------------


def break_mid_body(mode: str) -> Behaviour:
    async def behave(raw: RawUpstream, writer: asyncio.StreamWriter, request: RawRequest) -> None:
        headers = [("Content-Type", "application/json"), ("Content-Length", "100")]
        writer.write(response_head("200 OK", headers) + b'{"partial": ')
        await writer.drain()
        if mode == "reset":
            reset(writer)
        else:
            writer.close()  # FIN after 12 of the 100 promised bytes

    return behave


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("reset", "Connection reset by peer"),
        ("close", "peer closed connection without sending complete message body (received 12 bytes, expected 100)"),
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_connection_broken_mid_body_is_a_tool_error(upstream, tmp_path, mode, reason, method):
    async with serve_raw(break_mid_body(mode)) as raw:
        tool = with_settings(hamsa_tool("Broken", f"{raw.url}/broken", method), retry=FAST_RETRY)
        config = with_ping(tmp_path, upstream, tool)
        async with mcp_client("http", "legacy", config) as client:
            result = await client.call_tool("broken", {})
            await assert_still_serving(client, upstream)

    broke = f"the connection to the upstream API broke before the answer was complete ({reason})"
    if method == "GET":  # idempotent: retried, every attempt broken the same way
        assert text_of(result) == f"Calling 'broken' failed after 3 attempts: {broke}."
        assert result.meta[META_HTTP]["attempts"] == 3
    else:  # a POST is sent once, and the model is told the effect may have happened
        expected = f"{broke}; the POST may still have taken effect upstream, so check before calling again"
        assert text_of(result) == f"Calling 'broken' failed: {expected}."
        assert "attempts" not in result.meta[META_HTTP]
    assert result.is_error is True
    assert [(r.method, r.target) for r in raw.requests] == [(method, "/broken")] * (3 if method == "GET" else 1)


# --- accepted, never answered ----------------------------------------------------------------------------


async def hang(raw: RawUpstream, writer: asyncio.StreamWriter, request: RawRequest) -> None:
    await raw.release.wait()


@pytest.mark.parametrize("reads", [True, False], ids=["reads-the-request", "never-reads"])
async def test_an_upstream_that_accepts_and_never_answers_times_out(upstream, tmp_path, reads):
    async with serve_raw(hang, read=reads) as raw:
        post_tool = hamsa_tool("Silent Post", f"{raw.url}/silent", "POST", timeOut=30)
        get_tool = hamsa_tool("Silent", f"{raw.url}/silent", timeOut=0.5)
        config = with_ping(tmp_path, upstream, get_tool, with_settings(post_tool, retry={"attemptTimeoutSeconds": 0.3}))
        async with mcp_client("http", "legacy", config) as client:
            get = await client.call_tool("silent", {})
            post = await client.call_tool("silent_post", {})
            await assert_still_serving(client, upstream)

    # The GET's first attempt used its whole deadline, so there was no time for another.
    assert (get.is_error, text_of(get)) == (True, "Calling 'silent' failed: timed out after 0.5 s.")
    assert "attempts" not in get.meta[META_HTTP]
    # The POST's attempt had its own, shorter limit; it is not retried, and it may have arrived.
    assert (post.is_error, text_of(post)) == (
        True,
        "Calling 'silent_post' failed: timed out after 0.3 s; "
        "the POST may still have taken effect upstream, so check before calling again.",
    )
    assert raw.connections == 2
    assert [r.method for r in raw.requests] == (["GET", "POST"] if reads else [])


# --- DNS failure ------------------------------------------------------------------------------------------


async def test_a_name_that_does_not_resolve_is_a_tool_error(upstream, tmp_path, monkeypatch):
    """The resolver the egress backend calls is replaced for one `.invalid` name (RFC 6761), so no
    DNS query ever leaves the machine; every other name still goes to the real resolver."""
    real_getaddrinfo = anyio.getaddrinfo
    asked: list[str] = []

    async def getaddrinfo(host: Any, port: Any, **kwargs: Any) -> Any:
        asked.append(host)
        if host == "api.example.invalid":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return await real_getaddrinfo(host, port, **kwargs)

    monkeypatch.setattr("mcp_webtools.egress.anyio.getaddrinfo", getaddrinfo)
    tool = with_settings(hamsa_tool("Lookup", "https://api.example.invalid/v1/x"), retry=FAST_RETRY)
    config = with_ping(tmp_path, upstream, tool)
    async with mcp_client("http", "legacy", config) as client:  # in-process: the patch applies
        result = await client.call_tool("lookup", {})
        await assert_still_serving(client, upstream)
    assert result.is_error is True
    assert text_of(result) == (
        "Calling 'lookup' failed after 3 attempts: could not connect to the upstream API "
        "(could not resolve host 'api.example.invalid' (Name or service not known))."
    )
    assert asked == ["api.example.invalid"] * 3  # resolved afresh per attempt; 127.0.0.1 needs no lookup


# --- TLS failure ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


async def ok_json(raw: RawUpstream, writer: asyncio.StreamWriter, request: RawRequest) -> None:
    await answer(writer, "200 OK", b'{"secure": true}')


async def test_an_untrusted_certificate_is_a_tool_error(upstream, tmp_path, ca):
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_tls)
    async with serve_raw(ok_json, tls=server_tls) as secure:
        # Control: the TLS server works for a client that trusts its CA.
        trusting = ssl.create_default_context()
        ca.configure_trust(trusting)
        async with httpx2.AsyncClient(verify=trusting) as http:
            assert (await http.get(f"{secure.url}/secure")).json() == {"secure": True}
        assert len(secure.requests) == 1

        # uvicorn answers the ClientHello with a plain-text 400, as any plain HTTP server would.
        not_tls = hamsa_tool("Not Tls", f"{upstream.url.replace('http:', 'https:')}/plain")
        config = with_ping(tmp_path, upstream, hamsa_tool("Untrusted", f"{secure.url}/secure"), not_tls)
        async with mcp_client("http", "legacy", config) as client:
            untrusted = await client.call_tool("untrusted", {})
            not_tls = await client.call_tool("not_tls", {})
            await assert_still_serving(client, upstream)

    # Not transient: a certificate does not become trusted by asking again, so one attempt each.
    assert untrusted.is_error is True
    assert text_of(untrusted).startswith(
        "Calling 'untrusted' failed: the TLS handshake with the upstream API failed "
        "([SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local issuer certificate"
    ), text_of(untrusted)
    assert text_of(not_tls).startswith(
        "Calling 'not_tls' failed: the TLS handshake with the upstream API failed ([SSL: WRONG_VERSION_NUMBER]"
    ), text_of(not_tls)
    assert len(secure.requests) == 1  # the control's request only (asyncio hands over only handshaken connections)
    assert [r.raw_path for r in upstream.requests] == ["/ping"]


# --- odd bodies -----------------------------------------------------------------------------------------


async def test_an_endless_body_stops_at_the_cap(upstream, tmp_path):
    async def endless(raw: RawUpstream, writer: asyncio.StreamWriter, request: RawRequest) -> None:
        head = [("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")]
        writer.write(response_head("200 OK", head) + b"1\r\n[\r\n")
        chunk = b'"0123456789",' * 78  # 1014 bytes
        while True:  # until the client hangs up: a write then fails with ConnectionError
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()

    async with serve_raw(endless) as raw:
        tool = with_settings(hamsa_tool("Endless", f"{raw.url}/endless", timeOut=30), maxResponseBytes=4096)
        config = with_ping(tmp_path, upstream, tool)
        async with mcp_client("http", "legacy", config) as client:
            result = await client.call_tool("endless", {})
            with anyio.fail_after(10):
                await raw.client_gone.wait()  # we hung up rather than read on
            await assert_still_serving(client, upstream)

    assert result.is_error is False
    body = b"[" + (b'"0123456789",' * 78) * 5
    assert text_of(result) == (
        "[response truncated: the upstream body exceeded 4096 bytes; only the beginning is shown]\n"
        + body[:4096].decode()
    )
    assert result.meta[META_HTTP] == {
        "status": 200,
        "elapsedMs": result.meta[META_HTTP]["elapsedMs"],
        "truncated": True,
    }
    assert len(raw.requests) == 1  # a truncated answer is an answer: not retried


@pytest.mark.parametrize(
    ("reply", "is_error", "text"),
    [
        # A 2xx is not an error even when its body is broken: the call did happen upstream,
        # and an error would invite the model to repeat it. The text shows what came back.
        (
            Reply(200, b"<html>oops</html>", JSON),
            False,
            "[the upstream API labelled this answer application/json, but it is not valid JSON]\n<html>oops</html>",
        ),
        (
            Reply(502, b"<html>Bad gateway</html>", JSON),
            True,
            "The upstream API answered HTTP 502 Bad Gateway.\nResponse body:\n<html>Bad gateway</html>",
        ),
        (
            Reply(200, b"not gzip at all", [*JSON, ("content-encoding", "gzip")]),
            True,
            "Calling 'odd' failed: the upstream API's answer could not be decoded "
            "(its Content-Encoding does not match the body).",
        ),
        (Reply(200, gzip.compress(b'{"zipped": 1}'), [*JSON, ("content-encoding", "gzip")]), False, '{"zipped":1}'),
    ],
    ids=["html-as-json-200", "html-as-json-502", "bad-gzip", "good-gzip"],
)
async def test_bodies_that_are_not_what_they_claim(upstream, tmp_path, reply, is_error, text):
    upstream.reply("POST", "/odd", reply)
    config = with_ping(tmp_path, upstream, hamsa_tool("Odd", f"{upstream.url}/odd", "POST"))
    async with mcp_client("http", "legacy", config) as client:
        result = await client.call_tool("odd", {})
        await assert_still_serving(client, upstream)
    assert all(isinstance(block, types.TextContent) for block in result.content)
    assert (result.is_error, "\n".join(block.text for block in result.content)) == (is_error, text)
    assert [r.raw_path for r in upstream.requests] == ["/odd", "/ping"]  # a POST: sent once


def test_an_invalid_header_value_is_refused_at_load_without_showing_it(tmp_path):
    """A `${...}` value ending in a tab would make h11 refuse the request at send time, quoting
    the value; the loader refuses it first, naming the header but never the value."""
    tool = hamsa_tool("Keyed", "https://api.example.com/keyed", httpHeaders={"X-Api-Key": "${ODD_KEY}"})
    path = write_tools(tmp_path, tool)
    with pytest.raises(ConfigErrors) as caught:
        load_definitions([path], environ={"ODD_KEY": "sk_live_hidden_77\t"})
    assert caught.value.describe() == (
        f"1 config error:\n  - {path}: tool 'Keyed': field `toolSettings.httpHeaders`: header 'X-Api-Key' "
        "has a value with control characters or leading/trailing whitespace"
    )


# --- redirects ----------------------------------------------------------------------------------------


def redirect(status: int, location: str) -> Reply:
    return Reply(status, b"", [("location", location)])


async def test_redirects_are_followed_only_when_asked_and_only_within_the_origin(upstream, tmp_path):
    other = Upstream()
    async with serve_asgi(other) as other_url:
        port = upstream.url.rsplit(":", 1)[1]
        hops = {
            "/same-307": redirect(307, "/target"),
            "/same-303": redirect(303, f"{upstream.url}/target"),
            "/same-302": redirect(302, "target"),
            "/to-host": redirect(302, f"http://localhost:{port}/target"),  # the same server, by another name
            "/to-port": redirect(307, f"{other_url}/target"),
            "/to-scheme": redirect(307, f"https://127.0.0.1:{port}/target"),
            "/loop": redirect(302, "/loop"),
        }
        for path, reply in hops.items():
            upstream.reply("POST", path, reply)
        upstream.reply("GET", "/loop", redirect(302, "/loop"))
        tools = [
            with_settings(
                hamsa_tool(path.strip("/").replace("-", " "), f"{upstream.url}{path}", "POST", {"type": "object"}),
                followRedirects=True,
            )
            for path in hops
        ]
        tools.append(hamsa_tool("Not Followed", f"{upstream.url}/same-307", "POST", {"type": "object"}))
        config = write_tools(tmp_path, tools)
        async with mcp_client("http", "legacy", config) as client:
            results = {name: await client.call_tool(name, {"n": 1}) for name in ("same_307", "same_303", "same_302")}
            refused = {name: await client.call_tool(name, {"n": 1}) for name in ("to_host", "to_port", "to_scheme")}
            default = await client.call_tool("not_followed", {"n": 1})
            loop = await client.call_tool("loop", {"n": 1})

    def post(path: str) -> tuple:
        return ("POST", path, b'{"n":1}', "application/json")

    def get(path: str) -> tuple:
        return ("GET", path, b"", None)

    assert [(r.method, r.raw_path, r.body, r.headers.get("content-type")) for r in upstream.requests] == [
        post("/same-307"), post("/target"),  # 307 keeps the method and the body
        post("/same-303"), get("/target"),  # 303 becomes a GET without a body
        post("/same-302"), get("/target"),  # so does a 302 after a POST, as browsers and httpx do
        post("/to-host"), post("/to-port"), post("/to-scheme"),  # never to another origin
        post("/same-307"),  # not followed by default
        post("/loop"), *[get("/loop")] * 5,
    ]  # fmt: skip
    assert other.requests == []
    assert all(r.is_error is False and r.structured_content["path"] == "/target" for r in results.values())
    for name, result in refused.items():
        what = name.removeprefix("to_")
        status = "302 Found" if what == "host" else "307 Temporary Redirect"
        assert (result.is_error, text_of(result)) == (
            True,
            f"The upstream API answered HTTP {status}. The redirect points to another {what}, so it was not followed.",
        )
    assert text_of(default) == (
        "The upstream API answered HTTP 307 Temporary Redirect. The redirect to /target was not followed: this tool "
        "does not follow redirects (followRedirects: true in its definition follows them within the same origin)."
    )
    assert text_of(loop) == "The upstream API answered HTTP 302 Found. More than 5 redirects; stopped following."


async def test_a_followed_redirect_keeps_the_idempotency_key(upstream, tmp_path):
    upstream.reply("POST", "/start", redirect(307, "/queue"))
    upstream.reply("POST", "/queue", Reply(202, b'{"queued": true}', JSON))
    tool = hamsa_tool("Start", f"{upstream.url}/start", "POST")
    config = write_tools(tmp_path, with_settings(tool, followRedirects=True, retry={"retryNonIdempotent": True}))
    async with mcp_client("http", "legacy", config) as client:
        result = await client.call_tool("start", {})
    assert result.is_error is False and result.structured_content["queued"] is True
    keys = [r.headers.get("idempotency-key") for r in upstream.requests]
    assert [r.raw_path for r in upstream.requests] == ["/start", "/queue"] and keys[0] and keys[0] == keys[1]


@pytest.mark.parametrize("era", ERAS)
async def test_a_redirect_to_a_url_the_client_cannot_build_sends_nothing_more(upstream, tmp_path, era):
    """The followed hop would exceed httpx's URL limit: `RequestNotSent`, a tool error saying so,
    after the one request that did go out, and the server keeps serving."""
    upstream.reply("GET", "/far", redirect(302, "/" + "x" * 70_000))
    tool = with_settings(hamsa_tool("Far", f"{upstream.url}/far"), followRedirects=True)
    async with mcp_client("http", era, with_ping(tmp_path, upstream, tool)) as client:
        result = await client.call_tool("far", {})
        await assert_still_serving(client, upstream)
    assert (result.is_error, text_of(result)) == (
        True,
        "Calling 'far' failed: the HTTP request could not be built (URL too long).",
    )
    assert [r.raw_path for r in upstream.requests] == ["/far", "/ping"]
