"""The seam around the upstream call (sending.py): the sender chain as assembled, wrappers, the
auth flows (auth.py), and secrets learned while running (redaction.py), end to end against a
recording upstream and a real MCP client."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import logging
import pkgutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from support import ERAS, LOG_FILTER, SCANNER, Recorded, Reply, hamsa_tool, secret, serve_asgi, write_tools

import mcp_webtools
from mcp_webtools.auth import Auth, AuthenticatingSender, AuthFlow, BearerAuth
from mcp_webtools.cassettes import RecordingSender, ReplayingSender
from mcp_webtools.executor import Executor, UpstreamUnreachable
from mcp_webtools.observe.telemetry import TracingSender
from mcp_webtools.outcomes import CallRecord, Outcome
from mcp_webtools.redaction import LearnedSecrets, RedactingFilter, Redactor
from mcp_webtools.requests import USER_AGENT, OutboundRequest
from mcp_webtools.sending import AttemptCount, Sender, SendPolicy, UpstreamResponse
from mcp_webtools.serving.http_app import HttpSettings, build_http_app
from mcp_webtools.serving.runtime import open_reloader, open_webtools
from mcp_webtools.serving.server import WebTools
from mcp_webtools.toolset import Toolset

pytestmark = pytest.mark.anyio

RUNTIME_TOKEN = secret("tok-learned-at-run-time-never-shown-4411")


class TokenAfter401(Auth):
    """A token fetched at run time: try as built; on a 401 fetch a token, learn it, retry once."""

    def __init__(self, token_url: str, learn) -> None:
        self.token_url = token_url
        self.learn = learn

    def auth_flow(self, request: OutboundRequest) -> AuthFlow:
        response = yield request
        if response.status != 401:
            return
        answer = yield OutboundRequest("GET", self.token_url, (("Accept", "application/json"),))
        token = json.loads(answer.body)["token"]
        self.learn(token)  # before it is used: from here on every redactor of the toolset hides it
        yield request.with_header("Authorization", f"Bearer {token}")


def with_auth(webtools: WebTools, name: str, auth: Auth) -> None:
    """Serve the toolset with tool `name` authenticating through `auth`, as a later auth setting would prepare it."""
    toolset = webtools.toolset
    tools = [
        dataclasses.replace(tool, send_policy=dataclasses.replace(tool.send_policy, auth=auth))
        if tool.name == name
        else tool
        for tool in toolset
    ]
    webtools.replace_toolset(Toolset(tools, toolset.redactor))


@asynccontextmanager
async def client_of(webtools: WebTools, era: str) -> AsyncIterator[Client]:
    """A real MCP client of `webtools` over in-process Streamable HTTP."""
    async with serve_asgi(build_http_app(webtools, HttpSettings())) as base:
        http = httpx2.AsyncClient(timeout=httpx2.Timeout(30, read=60))
        async with http, Client(streamable_http_client(f"{base}/mcp", http_client=http), mode=era) as client:
            yield client


def token_protected(upstream) -> None:
    """`/token` hands out the runtime token; `/data` answers 401 without it, and echoes it with it."""

    def data(request: Recorded) -> Reply:
        sent = request.headers.get("authorization")
        if sent != f"Bearer {RUNTIME_TOKEN}":
            return Reply(401, b'{"error": "token required"}', [("content-type", "application/json")])
        return Reply(200, json.dumps({"seen": sent}).encode(), [("content-type", "application/json")])

    upstream.reply("GET", "/data", data)
    upstream.reply_json("GET", "/token", {"token": RUNTIME_TOKEN})


# -- an auth flow through the seam, end to end ------------------------------------------------------


@pytest.mark.parametrize("era", ERAS)
async def test_a_flow_fetches_a_token_after_a_401_retries_once_and_the_learned_token_is_hidden(
    upstream, tmp_path, era
):
    token_protected(upstream)
    config = write_tools(tmp_path, hamsa_tool("Data", f"{upstream.url}/data"))
    webtools = open_webtools([str(config)], log_filter=LOG_FILTER)  # the log filter `serve` would have
    with_auth(webtools, "data", TokenAfter401(f"{upstream.url}/token", webtools.toolset.redactor.learn))
    records: list[CallRecord] = []
    webtools.calls.observers.append(records.append)

    async with client_of(webtools, era) as client:
        result = await client.call_tool("data", {})

    # Exactly what the upstream saw: the request as built, the token fetch, the one retry with the token.
    assert [(r.method, r.raw_path, r.headers.get("authorization")) for r in upstream.requests] == [
        ("GET", "/data", None),
        ("GET", "/token", None),
        ("GET", "/data", f"Bearer {RUNTIME_TOKEN}"),
    ]
    # The answer echoed the token, learned mid-call: the client sees it masked.
    assert result.is_error is False
    assert result.structured_content == {"seen": "Bearer ***", "api_response_status": 200}
    assert json.loads(result.content[0].text) == {"seen": "Bearer ***"}
    assert result.meta["mcp-webtools/http"]["attempts"] == 3  # three requests went out for this call
    assert [(r.tool, r.outcome, r.status, r.attempts) for r in records] == [("data", Outcome.OK, 200, 3)]
    # And the log lines: the filter on the server's log handler hides it as well.
    record = logging.LogRecord("mcp_webtools.calls", logging.WARNING, __file__, 1, "got %s", (RUNTIME_TOKEN,), None)
    assert LOG_FILTER.filter(record) and record.getMessage() == "got ***"
    with SCANNER.diverted() as leaks:
        logging.getLogger("mcp_webtools.calls").warning("the upstream sent %s", RUNTIME_TOKEN)
    assert leaks == []  # scanned as the server's log handler leaves it: masked


async def test_without_learning_it_the_fetched_token_would_show(upstream, tmp_path):
    """The control for the test above: the masking comes from `learn`, not from anything else."""
    token_protected(upstream)
    config = write_tools(tmp_path, hamsa_tool("Data", f"{upstream.url}/data"))
    webtools = open_webtools([str(config)])
    with_auth(webtools, "data", TokenAfter401(f"{upstream.url}/token", learn=lambda token: None))
    with SCANNER.diverted() as leaks:
        async with webtools.executor.client:
            result = await webtools.calls.call("data", {})
        SCANNER.scan_json("mcp", "the result of an unlearning flow", result.structured_content)
    assert result.structured_content == {"seen": f"Bearer {RUNTIME_TOKEN}", "api_response_status": 200}
    assert {leak.secret for leak in leaks} == {RUNTIME_TOKEN}


async def test_a_secret_learned_at_run_time_stays_hidden_after_a_reload(tmp_path):
    config = write_tools(tmp_path, [hamsa_tool("Alpha", "http://127.0.0.1:9/a")])
    log_filter = RedactingFilter()
    webtools = open_webtools([str(config)], log_filter=log_filter)
    reloader = open_reloader(webtools, [str(config)], watch=False, log_filter=log_filter)
    before = webtools.toolset
    before.redactor.learn(RUNTIME_TOKEN)
    write_tools(tmp_path, [hamsa_tool("Alpha", "http://127.0.0.1:9/b")])
    assert (await reloader.reload()).changed == ("alpha",)
    assert webtools.toolset is not before
    assert webtools.toolset.redactor(f"token {RUNTIME_TOKEN}") == "token ***"
    assert log_filter.redactor(f"token {RUNTIME_TOKEN}") == "token ***"


# -- the redactor learns ------------------------------------------------------------------------------


def test_every_redactor_sharing_the_learned_set_hides_what_one_of_them_learns():
    learned = LearnedSecrets()
    toolset_redactor = Redactor(["sk_static_1234"], learned)
    other_call = Redactor([], learned)
    log_filter = RedactingFilter()
    log_filter.add(toolset_redactor)
    log_filter.hide("inbound-token-5678")
    assert not other_call and other_call("x") == "x"  # nothing to hide yet
    toolset_redactor.learn("tok/fetched later")
    assert other_call and other_call("a tok/fetched later b") == "a *** b"
    assert other_call("tok%2Ffetched%20later") == "***"  # its encodings too, as for configured secrets
    assert log_filter.redactor("sk_static_1234 tok/fetched later inbound-token-5678") == "*** *** ***"
    assert Redactor(["sk_static_1234"])("tok/fetched later") == "tok/fetched later"  # not shared: not hidden
    assert other_call.redact_json({"k": ["tok/fetched later"]}) == {"k": ["***"]}
    assert other_call.redact_cut("ends with tok/fetc") == "ends with ***"


def test_a_redactor_without_a_shared_set_learns_for_itself():
    redactor = Redactor()
    redactor.learn("abc", "token-9999")  # too short to hide, and one to hide
    assert redactor("abc token-9999") == "abc ***"
    assert redactor.learned is not None and Redactor().learned is None


# -- the sender chain -------------------------------------------------------------------------------


class Recording:
    """The next sender in a chain: records what it is asked to send and answers 200 (or raises)."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.sent: list[tuple[OutboundRequest, SendPolicy, float, AttemptCount | None]] = []
        self.fail = fail

    async def send(self, request, policy, *, deadline, count=None) -> UpstreamResponse:
        self.sent.append((request, policy, deadline, count))
        if count is not None:
            count.sent += 1
        if self.fail is not None:
            raise self.fail
        return UpstreamResponse(200, "OK", "application/json", b"{}", False, 1.0, attempts=1)


REQUEST = OutboundRequest(
    "POST",
    "https://api.example/x",
    (("User-Agent", USER_AGENT), ("Accept", "application/json"), ("X-Key", "k1"), ("authorization", "Token old")),
    b"{}",
    defaults=2,
)


async def test_without_an_auth_flow_the_request_goes_as_built():
    inner = Recording()
    count = AttemptCount()
    policy = SendPolicy(timeout=5)
    response = await AuthenticatingSender(inner).send(REQUEST, policy, deadline=12.5, count=count)
    assert response.attempts == 1 and inner.sent == [(REQUEST, policy, 12.5, count)]


async def test_bearer_auth_sets_its_header_where_auth_token_always_went():
    inner = Recording()
    policy = SendPolicy(timeout=5, auth=BearerAuth("sk_tok"))
    await AuthenticatingSender(inner).send(REQUEST, policy, deadline=12.5)
    (sent, _, deadline, count), = inner.sent
    assert deadline == 12.5 and count is not None and count.sent == 1
    # After our defaults, before the configured headers; the configured Authorization is replaced.
    assert sent.headers == (
        ("User-Agent", USER_AGENT),
        ("Accept", "application/json"),
        ("Authorization", "Bearer sk_tok"),
        ("X-Key", "k1"),
    )
    assert (sent.method, sent.url, sent.body) == (REQUEST.method, REQUEST.url, REQUEST.body)
    assert "sk_tok" not in repr(policy)  # a flow holds a credential: never in a repr


async def test_a_flow_is_closed_when_the_send_fails():
    closed: list[bool] = []

    class Watching(Auth):
        def auth_flow(self, request: OutboundRequest) -> AuthFlow:
            try:
                yield request
            finally:
                closed.append(True)

    inner = Recording(fail=UpstreamUnreachable("could not connect to the upstream API (refused)"))
    with pytest.raises(UpstreamUnreachable):
        await AuthenticatingSender(inner).send(REQUEST, SendPolicy(timeout=5, auth=Watching()), deadline=1.0)
    assert closed == [True]


def test_the_assembled_chain_ends_in_the_executor(tmp_path):
    webtools = open_webtools([str(write_tools(tmp_path, [hamsa_tool("Alpha", "http://127.0.0.1:9/a")]))])
    chain, sender = [], webtools.calls.sender
    while sender is not None:
        chain.append(type(sender))
        sender = getattr(sender, "inner", None)
        if chain[-1] is Executor:
            assert sender is None
    assert chain == [TracingSender, AuthenticatingSender, Executor]
    # The innermost is the very executor whose connection pool the transports open and close.
    innermost = webtools.calls.sender.inner.inner
    assert innermost is webtools.executor


def test_the_executor_is_the_only_sender_that_does_not_delegate():
    """Every other class with `Sender.send`'s signature wraps a sender given to it as `inner`, but the
    replayer of recorded answers, which stands in for the executor (`mcp-webtools test --replay`)."""
    wanted = inspect.signature(Sender.send)
    senders = set()
    for info in pkgutil.walk_packages(mcp_webtools.__path__, "mcp_webtools."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            send = getattr(cls, "send", None)
            if cls is not Sender and inspect.iscoroutinefunction(send):
                if list(inspect.signature(send).parameters)[:3] == list(wanted.parameters)[:3]:
                    senders.add(cls)
    assert {Executor, ReplayingSender, AuthenticatingSender, TracingSender, RecordingSender} <= senders
    wrappers = senders - {Executor, ReplayingSender}
    assert all(list(inspect.signature(cls.__init__).parameters)[1] == "inner" for cls in wrappers), wrappers


async def test_a_wrapper_added_in_one_line_sees_every_call(upstream, tmp_path):
    """What a later feature (a rate limit, a cache) is: one `Sender` wrapping the chain, one line of assembly."""
    upstream.reply_json("GET", "/a", {"ok": True})
    config = write_tools(tmp_path, [hamsa_tool("Alpha", f"{upstream.url}/a", authToken="sk_alpha_never-shown-1")])
    webtools = open_webtools([str(config)])
    seen: list[tuple[str, float, float]] = []

    class Watching:
        def __init__(self, inner: Sender) -> None:
            self.inner = inner

        async def send(self, request, policy, *, deadline, count=None) -> UpstreamResponse:
            seen.append((request.url, policy.timeout, deadline - anyio.current_time()))
            return await self.inner.send(request, policy, deadline=deadline, count=count)

    webtools.calls.sender = Watching(webtools.calls.sender)  # the one line
    async with webtools.executor.client:
        result = await webtools.calls.call("alpha", {})
    assert result.is_error is False and result.structured_content == {"ok": True, "api_response_status": 200}
    [(url, timeout, left)] = seen
    assert url == f"{upstream.url}/a" and timeout == 10.0 and 9 < left <= 9.9  # inside the tool's timeout
    # Auth sits inside the wrapper: the request reached the upstream with the token.
    assert upstream.requests[0].headers["authorization"] == "Bearer sk_alpha_never-shown-1"
