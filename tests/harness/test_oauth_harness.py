"""The OAuth2 test harness (oauth_server.py, tests/oauth/server.mjs) does what tests of OAuth2 clients
and resource servers will rely on: real signed tokens that verify against its JWKS, client credentials
both ways, expiry, every failure of the token endpoint, key rotation, request records, discovery, tokens
made to order, and the secrets scan knowing every credential and token before anyone else has it.

Tokens are checked with PyJWT (with `cryptography`), which `mcp` already requires (`pyjwt[crypto]`).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from typing import Any
from urllib.parse import quote_plus

import anyio
import httpx2
import jwt
import pytest
from oauth_server import OAuthServer, TokenRequest, start_oauth_server
from support import SCANNER, find_node_package, secret

# Every test here runs the Node authorization server: end-to-end.
pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

CLIENT = "orders-client"
API = "https://api.example.com"


def basic(client_id: str, client_secret: str) -> str:
    """`client_secret_basic` as RFC 6749 section 2.3.1 says: each part form-urlencoded, then base64."""
    pair = f"{quote_plus(client_id)}:{quote_plus(client_secret)}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


async def token_call(server: OAuthServer, form: dict[str, str], **headers: str) -> httpx2.Response:
    return await server.http.post(server.token_url, data=form, headers=headers)


async def jwks(server: OAuthServer) -> dict[str, Any]:
    response = await server.http.get(server.jwks_url)
    assert response.status_code == 200, response.text
    return response.json()


async def verify(server: OAuthServer, token: str, **options: Any) -> dict[str, Any]:
    """The claims of `token`, its signature checked against the server's JWKS (and iss, exp, nbf, aud)."""
    key = jwt.PyJWKSet.from_dict(await jwks(server))[jwt.get_unverified_header(token)["kid"]]
    return jwt.decode(token, key, algorithms=["RS256"], issuer=server.issuer, **options)


async def test_client_credentials_with_basic_and_with_body_client_auth(oauth_server: OAuthServer) -> None:
    client_secret = "client-never-shown-p@ss:w/rd+%"  # every character that must be form-urlencoded
    await oauth_server.require_client(CLIENT, client_secret)
    authorization = basic(CLIENT, client_secret)

    form = {"grant_type": "client_credentials", "scope": "orders.read", "audience": API}
    answer = await token_call(oauth_server, form, Authorization=authorization)
    assert answer.status_code == 200, answer.text
    issued = answer.json()
    assert {k: v for k, v in issued.items() if k != "access_token"} == {
        "token_type": "Bearer",
        "expires_in": 3600,
        "scope": "orders.read",
    }
    claims = await verify(oauth_server, issued["access_token"], audience=API)
    assert claims["aud"] == API and claims["scope"] == "orders.read"
    assert claims["client_id"] == claims["sub"] == CLIENT
    assert claims["exp"] - claims["iat"] == 3600
    request = await oauth_server.last_token_request()
    assert (request.client_auth, request.client_id, request.grant_type, request.status) == (
        "client_secret_basic",
        CLIENT,
        "client_credentials",
        200,
    )
    assert request.form == form and request.headers["authorization"] == authorization
    assert request.body == "grant_type=client_credentials&scope=orders.read&audience=https%3A%2F%2Fapi.example.com"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"

    # client_secret_post; an RFC 8707 `resource` is the audience too.
    form = {"grant_type": "client_credentials", "client_id": CLIENT, "client_secret": client_secret, "resource": API}
    answer = await token_call(oauth_server, form)
    assert answer.status_code == 200, answer.text
    assert (await verify(oauth_server, answer.json()["access_token"], audience=API))["client_id"] == CLIENT
    request = await oauth_server.last_token_request()
    assert (request.client_auth, request.client_id, request.form) == ("client_secret_post", CLIENT, form)

    # The secrets scan knew the token and the credentials before this test saw them, and finds them.
    known = SCANNER.known
    assert {issued["access_token"], answer.json()["access_token"], client_secret, authorization} <= known
    with SCANNER.diverted() as leaks:
        SCANNER.scan("output", "planted", f"got {issued['access_token']} with {authorization}")
    assert {leak.secret for leak in leaks} == {issued["access_token"], authorization}


async def test_credentials_and_tokens_are_known_secrets_before_the_client_has_them(
    oauth_server: OAuthServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    answered = threading.Event()
    registered: list[tuple[list[str], bool]] = []  # (values, whether the answer had come before they were)
    register = SCANNER.register

    def register_slowly(*values: object) -> None:
        # Waits for the answer a while: the launcher must not answer before this returns.
        registered.append(([str(v) for v in values], answered.wait(0.5)))
        register(*values)

    monkeypatch.setattr(SCANNER, "register", register_slowly)
    client_secret = "slow-never-shown-secret"
    form = {"grant_type": "client_credentials", "client_id": CLIENT, "client_secret": client_secret}
    answer = await token_call(oauth_server, form)
    answered.set()
    assert answer.status_code == 200, answer.text
    assert registered == [([client_secret], False), ([answer.json()["access_token"]], False)]


@pytest.mark.parametrize(
    "credentials",
    [
        pytest.param({"Authorization": basic(CLIENT, "wrong-never-shown-secret")}, id="wrong secret, basic"),
        pytest.param({"client_id": CLIENT, "client_secret": "wrong-never-shown-secret"}, id="wrong secret, body"),
        pytest.param({"Authorization": basic("someone-else", "right-never-shown-secret")}, id="unknown client"),
        pytest.param({"client_id": CLIENT}, id="no secret"),
        pytest.param({}, id="no client"),
    ],
)
async def test_a_required_client_is_checked(oauth_server: OAuthServer, credentials: dict[str, str]) -> None:
    await oauth_server.require_client(CLIENT, "right-never-shown-secret")
    headers = {k: v for k, v in credentials.items() if k == "Authorization"}
    form = {"grant_type": "client_credentials", **{k: v for k, v in credentials.items() if k != "Authorization"}}
    answer = await token_call(oauth_server, form, **headers)
    assert answer.status_code == 401
    assert answer.json() == {"error": "invalid_client", "error_description": "the test asked for invalid_client"}
    assert answer.headers["www-authenticate"] == 'Basic realm="oauth2-mock-server"'
    assert (await oauth_server.last_token_request()).status == 401


async def test_two_client_auth_methods_at_once_are_refused(oauth_server: OAuthServer) -> None:
    client_secret = secret("both-never-shown-secret")
    form = {"grant_type": "client_credentials", "client_id": CLIENT, "client_secret": client_secret}
    answer = await token_call(oauth_server, form, Authorization=basic(CLIENT, client_secret))
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"
    request = await oauth_server.last_token_request()
    assert request.client_auth == "client_secret_basic client_secret_post"


async def test_expires_in_and_claims_are_the_tests(oauth_server: OAuthServer) -> None:
    form = {"grant_type": "client_credentials", "client_id": CLIENT, "client_secret": secret("c-never-shown-s")}
    await oauth_server.set_tokens(expires_in=60, scope="orders.read orders.write")
    await oauth_server.set_tokens(expires_in=5, audience="https://other.example.com", times=1)
    await oauth_server.set_tokens(claims={"tenant": "acme", "sub": "svc-7", "nbf": None}, times=1)

    seen: list[tuple[int, int, str, str]] = []  # (expires_in, exp - iat, scope, aud) of each token
    for _ in range(3):
        answer = (await token_call(oauth_server, form)).json()
        claims = await verify(oauth_server, answer["access_token"], options={"verify_aud": False})
        assert answer["scope"] == claims["scope"]
        seen.append((answer["expires_in"], claims["exp"] - claims["iat"], claims["scope"], claims.get("aud")))
        if len(seen) == 2:
            assert (claims["tenant"], claims["sub"], "nbf" in claims) == ("acme", "svc-7", False)
        else:
            assert (claims["sub"], claims["nbf"]) == (CLIENT, claims["iat"] - 10)
    # Each one-off over the setting for every token, in turn; then that setting alone.
    both = "orders.read orders.write"
    assert seen == [(5, 5, both, "https://other.example.com"), (60, 60, both, None), (60, 60, both, None)]

    await oauth_server.set_tokens()  # back to the defaults
    answer = (await token_call(oauth_server, form)).json()
    claims = await verify(oauth_server, answer["access_token"])
    assert (answer["expires_in"], claims["exp"] - claims["iat"], "scope" in answer, "scope" in claims) == (
        3600,
        3600,
        False,
        False,
    )


@pytest.mark.parametrize(
    ("mode", "status", "content_type", "body"),
    [
        ("invalid_client", 401, "application/json", {"error": "invalid_client"}),
        ("server_error", 500, "application/json", {"error": "server_error"}),
        ("invalid_scope", 400, "application/json", {"error": "invalid_scope"}),
        ("not_json", 200, "text/html", None),
    ],
)
async def test_token_endpoint_failures(
    oauth_server: OAuthServer, mode: str, status: int, content_type: str, body: dict[str, str] | None
) -> None:
    form = {"grant_type": "client_credentials", "client_id": CLIENT, "client_secret": secret("f-never-shown-s")}
    await oauth_server.fail(mode, times=2)
    for _ in range(2):
        answer = await token_call(oauth_server, form)
        assert (answer.status_code, answer.headers["content-type"]) == (status, content_type)
        if body is None:
            with pytest.raises(json.JSONDecodeError):
                answer.json()
        else:
            assert answer.json() == {**body, "error_description": f"the test asked for {mode}"}
    assert (await token_call(oauth_server, form)).status_code == 200  # the third one is a token again

    await oauth_server.fail(mode, times=None)
    assert [(await token_call(oauth_server, form)).status_code for _ in range(3)] == [status] * 3
    await oauth_server.fail(None)
    assert (await token_call(oauth_server, form)).status_code == 200
    assert [r.status for r in await oauth_server.token_requests()] == [status, status, 200, status, status, status, 200]


async def test_a_hang_holds_token_requests_until_released(oauth_server: OAuthServer) -> None:
    form = {"grant_type": "client_credentials", "client_id": CLIENT, "client_secret": secret("h-never-shown-s")}
    await oauth_server.fail("hang", times=2)
    answers: list[httpx2.Response] = []

    async def held_call() -> None:
        answers.append(await token_call(oauth_server, form))

    async with anyio.create_task_group() as tg:
        tg.start_soon(held_call)
        tg.start_soon(held_call)
        requests = await oauth_server.wait_for_token_requests(2)
        assert [r.status for r in requests] == [None, None]
        # A request after the held ones is answered while they still wait.
        assert (await token_call(oauth_server, form)).status_code == 200
        assert answers == []
        assert await oauth_server.release() == 2
    assert [a.status_code for a in answers] == [200, 200]
    assert [r.status for r in await oauth_server.token_requests()] == [200, 200, 200]

    # A client that gives up while held: releasing it later harms nothing.
    await oauth_server.fail("hang")
    async with httpx2.AsyncClient(timeout=httpx2.Timeout(30, read=0.5)) as http:
        with pytest.raises(httpx2.ReadTimeout):
            await http.post(oauth_server.token_url, data=form)
    assert await oauth_server.release() == 1
    assert (await token_call(oauth_server, form)).status_code == 200
    assert len(await oauth_server.token_requests()) == 5


async def test_key_rotation(oauth_server: OAuthServer) -> None:
    form = {"grant_type": "client_credentials", "client_id": CLIENT, "client_secret": secret("k-never-shown-s")}
    before = (await token_call(oauth_server, form)).json()["access_token"]
    first = jwt.get_unverified_header(before)["kid"]
    assert [key["kid"] for key in (await jwks(oauth_server))["keys"]] == [first]

    second = await oauth_server.rotate_key()
    assert second != first
    after = [(await token_call(oauth_server, form)).json()["access_token"] for _ in range(2)]
    assert [jwt.get_unverified_header(token)["kid"] for token in after] == [second, second]
    assert sorted(key["kid"] for key in (await jwks(oauth_server))["keys"]) == sorted([first, second])
    for token in (before, *after):
        await verify(oauth_server, token)  # the older key is still published

    third = await oauth_server.rotate_key(retire=True)
    published = (await jwks(oauth_server))["keys"]
    assert [key["kid"] for key in published] == [third]
    assert all(key["kty"] == "RSA" and key["alg"] == "RS256" and "d" not in key for key in published)
    with pytest.raises(KeyError):
        await verify(oauth_server, before)
    assert jwt.get_unverified_header(await oauth_server.issue())["kid"] == third


async def test_token_requests_are_counted_by_grant_and_client(oauth_server: OAuthServer) -> None:
    credentials = {"a-client": secret("a-never-shown-s"), "b-client": secret("b-never-shown-s")}
    calls = [("a-client", "client_credentials"), ("b-client", "client_credentials"), ("a-client", "client_credentials")]
    calls.append(("b-client", "password"))
    for client_id, grant in calls:
        form = {"grant_type": grant, "client_id": client_id, "client_secret": credentials[client_id]}
        if grant == "password":
            form |= {"username": "alice", "password": secret("alice-never-shown-pw")}
        answer = await token_call(oauth_server, form)
        assert answer.status_code == 200, answer.text
    # The password grant's refresh and id tokens are secrets too.
    assert {answer.json()["refresh_token"], answer.json()["id_token"]} <= SCANNER.known

    async def count(**which: str) -> int:
        return len(await oauth_server.token_requests(**which))

    assert await count() == 4
    assert await count(grant_type="client_credentials") == 3
    assert await count(client_id="a-client") == 2
    assert await count(grant_type="client_credentials", client_id="b-client") == 1
    assert await count(grant_type="password", client_id="b-client") == 1
    assert await count(grant_type="authorization_code") == 0
    password = (await oauth_server.token_requests(grant_type="password"))[0]
    assert isinstance(password, TokenRequest) and password.form["username"] == "alice"
    claims = await verify(oauth_server, answer.json()["access_token"])
    assert (claims["sub"], claims["client_id"]) == ("alice", "b-client")


async def test_discovery_documents(oauth_server: OAuthServer) -> None:
    issuer = oauth_server.issuer
    openid = await oauth_server.http.get(f"{issuer}/.well-known/openid-configuration")
    rfc8414 = await oauth_server.http.get(f"{issuer}/.well-known/oauth-authorization-server")
    assert openid.status_code == rfc8414.status_code == 200
    assert openid.json() == rfc8414.json() == await oauth_server.metadata()
    metadata = openid.json()
    assert issuer.startswith("http://127.0.0.1:") and metadata["issuer"] == issuer
    assert (metadata["token_endpoint"], metadata["jwks_uri"]) == (oauth_server.token_url, oauth_server.jwks_url)
    assert metadata["token_endpoint_auth_methods_supported"] == ["client_secret_basic", "client_secret_post"]
    assert "client_credentials" in metadata["grant_types_supported"]
    assert metadata["authorization_endpoint"] == f"{issuer}/authorize"
    assert metadata["code_challenge_methods_supported"] == ["plain", "S256"]


async def test_tokens_made_to_order(oauth_server: OAuthServer) -> None:
    now = int(time.time())
    claims = {"aud": "https://mcp.example.com/mcp", "scope": "tools.read", "sub": "user-42", "client_id": "ide"}
    token = await oauth_server.issue(claims, expires_in=120)
    assert token in SCANNER.known
    checked = await verify(oauth_server, token, audience="https://mcp.example.com/mcp")
    assert {name: checked[name] for name in claims} == claims
    assert checked["exp"] - checked["iat"] == 120 and abs(checked["iat"] - now) <= 5

    with pytest.raises(jwt.ExpiredSignatureError):
        await verify(oauth_server, await oauth_server.issue({"exp": now - 3600}))
    with pytest.raises(jwt.ImmatureSignatureError):
        await verify(oauth_server, await oauth_server.issue({"nbf": now + 3600}))
    with pytest.raises(jwt.InvalidIssuerError):
        await verify(oauth_server, await oauth_server.issue({"iss": "https://idp.example.com"}))
    with pytest.raises(jwt.InvalidAudienceError):
        await verify(oauth_server, token, audience="https://another.example.com")
    with pytest.raises(jwt.MissingRequiredClaimError):
        await verify(oauth_server, await oauth_server.issue({"exp": None}), options={"require": ["exp"]})

    # Signed with a key in no JWKS: under its own kid, or under the current key's (a forgery).
    with pytest.raises(KeyError):
        await verify(oauth_server, await oauth_server.issue(foreign_key=True))
    current = jwt.get_unverified_header(token)["kid"]
    forged = await oauth_server.issue(claims, foreign_key=True, kid=current)
    assert jwt.get_unverified_header(forged)["kid"] == current
    with pytest.raises(jwt.InvalidSignatureError):
        await verify(oauth_server, forged, audience="https://mcp.example.com/mcp")
    assert await oauth_server.token_requests() == []  # none of this went through the token endpoint


def test_without_node_it_skips_or_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCP_WEBTOOLS_NODE", "/nonexistent/node")
    monkeypatch.delenv("MCP_WEBTOOLS_REQUIRE_NODE", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no Node binary at /nonexistent/node"):
        find_node_package("oauth2-mock-server", (22, 12))
    monkeypatch.setenv("MCP_WEBTOOLS_REQUIRE_NODE", "1")
    with pytest.raises(pytest.fail.Exception, match="MCP_WEBTOOLS_REQUIRE_NODE=1 but no Node binary"):
        find_node_package("oauth2-mock-server", (22, 12))


async def test_the_server_stops_with_its_context() -> None:
    async with start_oauth_server() as server:
        assert (await server.metadata())["issuer"] == server.issuer
    async with httpx2.AsyncClient(timeout=30) as http:
        with pytest.raises(httpx2.ConnectError):
            await http.get(server.jwks_url)


async def test_introspection_is_real_and_revocation_ends_a_token(oauth_server: OAuthServer) -> None:
    await oauth_server.require_client(CLIENT, "introspector-never-shown-9")
    auth = basic(CLIENT, "introspector-never-shown-9")

    async def introspect(token: str, authorization: str = auth) -> httpx2.Response:
        form = {"token": token, "token_type_hint": "access_token"}
        return await oauth_server.http.post(
            oauth_server.introspection_url, data=form, headers={"Authorization": authorization}
        )

    jwt_token = await oauth_server.issue({"sub": "alice", "aud": API, "scope": "orders.read"})
    opaque = await oauth_server.opaque({"sub": "bob", "aud": API})
    expired = await oauth_server.issue({"sub": "carol"}, expires_in=-5)
    answer = (await introspect(jwt_token)).json()
    assert (answer["active"], answer["sub"], answer["aud"], answer["scope"]) == (True, "alice", API, "orders.read")
    answer = (await introspect(opaque)).json()
    assert (answer["active"], answer["sub"], answer["iss"]) == (True, "bob", oauth_server.issuer)
    assert (await introspect(expired)).json() == {"active": False}
    assert (await introspect(secret("never-issued-never-shown"))).json() == {"active": False}
    assert (await introspect(opaque, basic(CLIENT, "wrong-never-shown"))).status_code == 401

    assert (await oauth_server.http.post(oauth_server.revocation_url, data={"token": opaque})).status_code == 200
    assert (await introspect(opaque)).json() == {"active": False}
    assert (await introspect(jwt_token)).json()["active"] is True
    assert [r["client_id"] for r in await oauth_server.introspections()] == [CLIENT] * 7
