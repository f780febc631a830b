"""Cassettes at the sender seam: an auth flow's every exchange recorded (a token fetched at run time
written `***`) and replayed in order with no network; the concealer's references and encodings."""

from __future__ import annotations

import json

import anyio
import pytest
from support import SCANNER, secret

from mcp_webtools.auth import Auth, AuthenticatingSender, AuthFlow
from mcp_webtools.cassettes import Cassette, CassetteDeck, Concealer, RecordingSender, ReplayingSender
from mcp_webtools.errors import RequestNotSent
from mcp_webtools.executor import Executor, create_http_client
from mcp_webtools.redaction import Redactor
from mcp_webtools.requests import OutboundRequest
from mcp_webtools.sending import SendPolicy, UpstreamResponse

pytestmark = pytest.mark.anyio

FETCHED = secret("fetched-token-never-shown-5150")
KEY = secret("api-key never/shown")


class TokenFirst(Auth):
    """Ask a token endpoint first, learn the token, then send the call with it (two exchanges)."""

    def __init__(self, token_url: str, redactor: Redactor) -> None:
        self.token_url, self.redactor = token_url, redactor

    def auth_flow(self, request: OutboundRequest) -> AuthFlow:
        answer = yield OutboundRequest("POST", self.token_url, (("Accept", "application/json"),), b"{}")
        token = json.loads(answer.body)["token"]
        self.redactor.learn(token)
        yield request.with_header("Authorization", f"Bearer {token}")


async def test_every_exchange_of_an_auth_flow_is_recorded_and_replayed_in_order(upstream, tmp_path):
    upstream.reply_json("POST", "/token", {"token": FETCHED})
    upstream.reply_json("GET", "/orders/1", {"id": 1, "key": KEY})
    redactor = Redactor()
    conceal = Concealer([(upstream.url, "${API}"), (KEY, "${KEY}")], redactor)
    policy = SendPolicy(timeout=5, auth=TokenFirst(f"{upstream.url}/token", redactor))
    request = OutboundRequest("GET", f"{upstream.url}/orders/1?k=api-key%20never%2Fshown", (("X-Key", KEY),))
    deck = CassetteDeck()
    deck.begin(conceal)
    async with create_http_client() as client:
        sender = AuthenticatingSender(RecordingSender(Executor(client), deck))
        answer = await sender.send(request, policy, deadline=anyio.current_time() + 5)
    assert (answer.status, json.loads(answer.body)) == (200, {"id": 1, "key": KEY})
    token, call = deck.kept()
    assert token["request"] == {
        "method": "POST", "url": "${API}/token", "headers": ["Accept: application/json"], "json": {}
    }  # fmt: skip
    assert token["response"]["json"] == {"token": "***"}  # learned at run time: no reference
    assert call["request"]["url"] == "${API}/orders/1?k=${KEY}"  # the URL-encoded form too
    assert call["request"]["headers"] == ["Authorization: Bearer ***", "X-Key: ${KEY}"]
    assert call["response"]["json"] == {"id": 1, "key": "${KEY}"}
    path = tmp_path / "c.json"
    Cassette("t", "e", deck.kept()).dump(path)
    text = path.read_text()
    assert SCANNER.scan("cassette", str(path), text) == [] and FETCHED not in text and KEY not in text

    # Replayed: the same flow, no upstream needed (no client at all), the answers in order.
    replayed = CassetteDeck()
    replayed.begin(conceal, Cassette.load(path))
    policy = SendPolicy(timeout=5, auth=TokenFirst(f"{upstream.url}/token", Redactor()))
    sent = len(upstream.requests)
    answer = await AuthenticatingSender(ReplayingSender(replayed)).send(request, policy, deadline=1e9)
    assert (answer.status, json.loads(answer.body), answer.attempts) == (200, {"id": 1, "key": "${KEY}"}, 2)
    assert replayed.difference is None and replayed.unplayed() == 0 and len(upstream.requests) == sent


async def test_replay_refuses_a_request_beyond_the_recording_and_a_changed_one(tmp_path):
    conceal = Concealer([("http://api.test", "${API}")], Redactor())
    recorded = {"method": "GET", "url": "${API}/a", "headers": ["User-Agent: mcp-webtools/0.0.1"], "body": None}
    answer = {"status": 200, "reason": "OK", "headers": ["content-type: text/plain"], "body": "hi"}
    deck = CassetteDeck()
    deck.begin(conceal, Cassette("t", "e", [{"request": recorded, "response": answer}]))
    sender = ReplayingSender(deck)
    # Our own User-Agent changes with our version, not with the definition: not compared.
    ours = OutboundRequest("GET", "http://api.test/a", (("User-Agent", "mcp-webtools/9.9.9"),))
    response = await sender.send(ours, SendPolicy(timeout=5), deadline=1e9)
    assert (response.status, response.body, response.content_type) == (200, b"hi", "text/plain")
    with pytest.raises(RequestNotSent):
        await sender.send(ours, SendPolicy(timeout=5), deadline=1e9)
    assert deck.difference == (
        "the call sent request 2, but the recording has 1; record again with --record if the change is "
        "intended:\nGET ${API}/a HTTP/1.1\nUser-Agent: mcp-webtools/9.9.9\n"
    )
    deck.begin(conceal, Cassette("t", "e", [{"request": recorded, "response": answer}]))
    changed = OutboundRequest("POST", "http://api.test/a", (("User-Agent", "mcp-webtools/0.0.1"),), b'{"x": 1}')
    with pytest.raises(RequestNotSent):
        await sender.send(changed, SendPolicy(timeout=5), deadline=1e9)
    assert deck.difference == "\n".join([
        "--- recorded", "+++ now", "@@ -1,2 +1,4 @@", "-GET ${API}/a HTTP/1.1", "+POST ${API}/a HTTP/1.1",
        " User-Agent: mcp-webtools/0.0.1", "+", '+{"x": 1}',
    ])  # fmt: skip


@pytest.mark.parametrize(
    "body",
    [b'{"a":1,"b":[true,null]}', b'{"a": 1}', b'{\n  "a": 1\n}', b'{"a":1.0e3}', b'{"a": "\\u00e9"}', b"not json",
     b"42", "caf\u00e9".encode(), b"\xff\xfe"],
)
async def test_a_kept_body_gives_back_the_exact_bytes(body):
    deck = CassetteDeck()
    kept = deck.response(UpstreamResponse(200, "OK", "application/json", body, False, 1.0))
    request = OutboundRequest("GET", "http://api.test/a", ())
    deck.begin(Concealer((), Redactor()), Cassette("t", "e", [{"request": deck.request(request), "response": kept}]))
    answer = await ReplayingSender(deck).send(request, SendPolicy(timeout=5), deadline=1e9)
    assert answer.body == body
    assert ("json" in kept) == (body in (b'{"a":1,"b":[true,null]}', b'{"a": 1}', b'{\n  "a": 1\n}'))


def test_the_concealer_prefers_the_longest_value_and_masks_secrets_without_a_reference():
    literal = secret("literal-secret-never-shown")
    conceal = Concealer([("abcd", "${SHORT}"), ("abcdef", "${LONG}"), ("ab", "${TOO_SHORT}")], Redactor([literal]))
    assert conceal(f"abcdef abcd ab {literal}") == "${LONG} ${SHORT} ab ***"
