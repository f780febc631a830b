"""oauth2.py and the OAuth2 flow in auth.py, driven through `AuthenticatingSender` by a scripted
sender (no network): what the end-to-end tests against the real authorization server cannot steer,
such as the call that is fetching a token going away while others wait on its fetch."""

from __future__ import annotations

import json

import anyio
import pytest
from support import secret

from mcp_webtools.auth import AuthenticatingSender, OAuth2ClientCredentialsAuth
from mcp_webtools.errors import TokenEndpointError
from mcp_webtools.oauth2 import ClientCredentials, TokenCache, read_token, refresh_margin
from mcp_webtools.redaction import Redactor
from mcp_webtools.requests import OutboundRequest
from mcp_webtools.sending import AttemptCount, SendPolicy, UpstreamResponse

pytestmark = pytest.mark.anyio

TOKEN_URL = "https://idp.example.com/oauth/token"
CREDENTIALS = ClientCredentials(TOKEN_URL, secret("unit-client-id-5150"), secret("unit-client-secret-never-shown"))
API_REQUEST = OutboundRequest("GET", "https://api.example.com/orders", ())


def answer(status: int, body: object, content_type: str = "application/json") -> UpstreamResponse:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return UpstreamResponse(status, "", content_type, data, False, 1.0)


class Scripted:
    """A sender whose token endpoint answers from `tokens` (waiting on `gate` first, if set); the API says 200."""

    def __init__(self, *tokens: str) -> None:
        self.tokens = list(tokens)
        self.sent: list[OutboundRequest] = []
        self.gate: anyio.Event | None = None
        self.token_requests = 0

    async def send(self, request, policy, *, deadline, count=None):
        (count or AttemptCount()).sent += 1
        self.sent.append(request)
        if request.url != TOKEN_URL:
            return answer(200, {"ok": True})
        self.token_requests += 1
        token = self.tokens.pop(0)
        if self.gate is not None:
            gate, self.gate = self.gate, None
            await gate.wait()
        return answer(200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600})


def policy(redactor: Redactor, tokens: TokenCache) -> SendPolicy:
    return SendPolicy(timeout=5, auth=OAuth2ClientCredentialsAuth(CREDENTIALS, tokens, redactor.learn))


async def test_when_the_call_fetching_a_token_goes_away_a_waiting_call_fetches_it_itself():
    first, second = secret("unit-token-first-0001"), secret("unit-token-second-0002")
    inner, redactor, tokens = Scripted(first, second), Redactor(), TokenCache()
    inner.gate = anyio.Event()  # the first token request never gets its answer
    sender, send_policy = AuthenticatingSender(inner), policy(redactor, tokens)
    answers: list[UpstreamResponse] = []
    deadline = anyio.current_time() + 5
    async with anyio.create_task_group() as group:
        leader = anyio.CancelScope()

        async def lead() -> None:
            with leader:
                await sender.send(API_REQUEST, send_policy, deadline=deadline)

        async def follow() -> None:
            answers.append(await sender.send(API_REQUEST, send_policy, deadline=deadline))

        group.start_soon(lead)
        await anyio.wait_all_tasks_blocked()
        group.start_soon(follow)
        await anyio.wait_all_tasks_blocked()
        assert inner.token_requests == 1  # the follower waits on the leader's fetch
        leader.cancel()
    assert [response.status for response in answers] == [200]
    assert inner.token_requests == 2
    assert inner.sent[-1].headers == (("Authorization", f"Bearer {second}"),)
    assert redactor(second) == "***"  # learned as it arrived (the first never did)


async def test_a_call_waiting_on_anothers_fetch_gives_up_at_its_own_deadline():
    inner, tokens = Scripted(secret("unit-token-late-0003")), TokenCache()
    inner.gate = anyio.Event()
    sender, send_policy = AuthenticatingSender(inner), policy(Redactor(), tokens)
    async with anyio.create_task_group() as group:
        group.start_soon(lambda: sender.send(API_REQUEST, send_policy, deadline=anyio.current_time() + 30))
        await anyio.wait_all_tasks_blocked()
        with pytest.raises(TokenEndpointError) as caught:
            await sender.send(API_REQUEST, send_policy, deadline=anyio.current_time() + 0.05)
        assert str(caught.value) == f"the OAuth2 token endpoint {TOKEN_URL} gave no answer: it did not answer in time"
        gate = inner.gate
        group.cancel_scope.cancel()
    assert gate is None and inner.token_requests == 1


async def test_the_token_request_is_not_one_of_the_calls_attempts():
    inner, tokens = Scripted(secret("unit-token-count-0004")), TokenCache()
    count = AttemptCount()
    response = await AuthenticatingSender(inner).send(
        API_REQUEST, policy(Redactor(), tokens), deadline=anyio.current_time() + 5, count=count
    )
    assert (response.attempts, count.sent, len(inner.sent)) == (1, 1, 2)


def test_a_401_forgets_only_the_token_it_was_the_answer_to():
    tokens, key = TokenCache(), CREDENTIALS.key
    fetch, leading = tokens.begin(key)
    old = tokens.end(key, fetch, "unit-old-token", 3600)
    fetch, leading = tokens.begin(key)
    new = tokens.end(key, fetch, "unit-new-token", 3600)
    assert old is not None and new is not None and leading
    tokens.invalidate(key, old)  # a late 401 to the old token: the new one stays
    assert tokens.fresh(key) is new
    tokens.invalidate(key, new)
    assert tokens.fresh(key) is None


def test_the_refresh_margin_is_a_tenth_of_the_tokens_life_and_at_most_30_s():
    assert (refresh_margin(3600), refresh_margin(100), refresh_margin(0)) == (30, 10, 0)


@pytest.mark.parametrize(
    ("response", "result"),
    [
        (answer(200, {"access_token": "unit-tok", "token_type": "bearer", "expires_in": "120"}), ("unit-tok", 120.0)),
        (answer(200, {"access_token": "unit-tok"}), ("unit-tok", None)),  # no expires_in: kept until a 401
        (answer(200, {"access_token": "unit-tok", "token_type": "mac"}), "issued a token of type 'mac'; only Bearer "
         "tokens can be used"),
        (answer(503, b"<html>down</html>", "text/html"), "answered HTTP 503 (try again later)"),
        (answer(400, {"error": "invalid_request", "error_description": "x" * 301}), "answered HTTP 400 with error "
         "invalid_request; check the tool's auth block (scopes, audience, clientAuth)"),
        (answer(403, {"error": "access_denied", "error_description": "no"}), "answered HTTP 403 with error "
         "access_denied (no)"),
        (answer(200, b"", ""), "answered HTTP 200 with a body that is not JSON (no Content-Type)"),
    ],
)  # fmt: skip
def test_reading_the_token_endpoints_answer(response: UpstreamResponse, result):
    if isinstance(result, tuple):
        assert read_token(response, TOKEN_URL) == result
        return
    with pytest.raises(TokenEndpointError) as caught:
        read_token(response, TOKEN_URL)
    assert str(caught.value) == f"the OAuth2 token endpoint {TOKEN_URL} {result}"
