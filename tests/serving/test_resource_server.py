"""OAuth resource-server mode (serving/resource_server.py) against a real authorization server
(tests/oauth_server.py): RFC 9728 metadata, the 401/403 challenges RFC 6750 and the MCP authorization
spec prescribe, JWT checks (discovery, JWKS rotation, exp, nbf, aud, iss, pinned algorithms), opaque
tokens through introspection, requiredScopes hiding and refusing tools, and a real MCP client that
knows only our URL completing the OAuth flow.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from mcp import Client, ClientSession
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from mcp.shared.exceptions import MCPError
from oauth_server import OAuthServer
from support import (
    POST_HEADERS,
    RAW_INITIALIZE,
    Upstream,
    bound_socket,
    hamsa_tool,
    http_server_process,
    mcp_client,
    run_module,
    secret,
    serve_asgi,
    text_of,
    write_tools,
)

from mcp_webtools.errors import ConfigErrors
from mcp_webtools.loading import load_definitions
from mcp_webtools.serving.http_app import HttpSettings, build_http_app
from mcp_webtools.serving.http_scope import Caller
from mcp_webtools.serving.resource_server import (
    INTROSPECTION_CACHE_SECONDS,
    JWKS_MAX_AGE_SECONDS,
    JWKS_REFETCH_SECONDS,
    OAuthSettings,
    Refused,
    ResourceServer,
    discovery_urls,
)
from mcp_webtools.serving.runtime import open_webtools

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

STATIC = "static-token-never-shown-7d1"
AUDIENCE = "https://mcp.example.com/mcp"


def call(name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": name, "arguments": arguments or {}}}


def tools(upstream: Upstream, directory: Path) -> Path:
    """`public` needs no scope, `orders` needs orders.read, `refund` needs orders.read and orders.write."""
    empty = {"type": "object", "properties": {}}
    return write_tools(
        directory,
        [
            hamsa_tool("public", f"{upstream.url}/public", "GET", empty),
            {**hamsa_tool("orders", f"{upstream.url}/orders", "GET", empty), "requiredScopes": ["orders.read"]},
            {
                **hamsa_tool("refund", f"{upstream.url}/refund", "POST", empty),
                "requiredScopes": ["orders.read", "orders.write"],
            },
        ],
    )


@asynccontextmanager
async def protected(
    config: Path, oauth_server: OAuthServer, *, static: str | None = None, **settings: Any
) -> AsyncIterator[tuple[str, httpx2.AsyncClient]]:
    """Our server in resource-server mode on its own URL (the audience is `<base>/mcp`); a raw HTTP client."""
    sock = bound_socket()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    oauth = OAuthSettings(issuer=oauth_server.issuer, audience=f"{base}/mcp", **settings)
    app = build_http_app(open_webtools([str(config)]), HttpSettings(auth_token=static, oauth=oauth))
    async with serve_asgi(app, sock), httpx2.AsyncClient(base_url=base, timeout=30, trust_env=False) as http:
        yield base, http


async def post(http: httpx2.AsyncClient, body: dict[str, Any], token: str | None = None) -> httpx2.Response:
    headers = {**POST_HEADERS, **({"Authorization": f"Bearer {token}"} if token else {})}
    return await http.post("/mcp", json=body, headers=headers)


def b64(value: bytes) -> str:
    return base64.urlsafe_b64encode(value).rstrip(b"=").decode()


async def test_metadata_and_the_401_that_leads_a_client_to_the_authorization_server(
    oauth_server: OAuthServer, upstream: Upstream, tmp_path: Path
) -> None:
    async with protected(tools(upstream, tmp_path), oauth_server, scopes=("mcp",)) as (base, http):
        metadata_url = f"{base}/.well-known/oauth-protected-resource/mcp"
        expected = {
            "resource": f"{base}/mcp",
            "authorization_servers": [oauth_server.issuer],
            "scopes_supported": ["mcp", "orders.read", "orders.write"],
            "bearer_methods_supported": ["header"],
        }
        for path in ("/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"):
            answer = await http.get(path, headers={"Origin": "https://app.example.com"})
            assert answer.status_code == 200, answer.text
            assert answer.json() == expected
            assert answer.headers["access-control-allow-origin"] == "*"

        missing = await post(http, RAW_INITIALIZE)
        assert missing.status_code == 401
        # RFC 6750 section 3.1: no error code when the request carried no token.
        assert missing.headers["www-authenticate"] == f'Bearer scope="mcp", resource_metadata="{metadata_url}"'

        garbage = await post(http, RAW_INITIALIZE, secret("not-a-token-never-shown"))
        assert garbage.status_code == 401
        assert garbage.headers["www-authenticate"] == (
            f'Bearer error="invalid_token", resource_metadata="{metadata_url}", '
            'error_description="the token is not a JWT, and no introspection endpoint is configured"'
        )
        assert garbage.json()["error"] == "invalid_token"
        assert (await http.get("/healthz")).status_code == 200


async def test_every_bad_token_is_refused_with_invalid_token_and_never_logged(
    oauth_server: OAuthServer, upstream: Upstream, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "mcp_webtools")
    async with protected(tools(upstream, tmp_path), oauth_server) as (base, http):
        audience = f"{base}/mcp"
        good = {"aud": audience, "sub": "alice", "scope": "orders.read"}
        now = int(time.time())
        public_jwk = (await oauth_server.http.get(oauth_server.jwks_url)).json()["keys"][0]
        pem = serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        public_pem = jwt.PyJWK(public_jwk).key.public_bytes(*pem)  # the classic HS256 forgery's "secret"
        claims = {**good, "iss": oauth_server.issuer, "exp": now + 600}

        def unsigned(alg: str) -> str:
            header = b64(json.dumps({"alg": alg, "typ": "JWT", "kid": public_jwk["kid"]}).encode())
            return f"{header}.{b64(json.dumps(claims).encode())}"

        forged_hs256 = unsigned("HS256")
        forged_hs256 += "." + b64(hmac.new(public_pem, forged_hs256.encode(), hashlib.sha256).digest())
        cases = {
            "the token has expired": await oauth_server.issue(good, expires_in=-120),
            "the token is not valid yet (nbf)": await oauth_server.issue({**good, "nbf": now + 600}),
            "the token was issued for another audience": await oauth_server.issue(
                {**good, "aud": "https://other.example/mcp"}
            ),
            "the token was issued by another issuer": await oauth_server.issue({**good, "iss": "https://evil.example"}),
            "the token has no exp claim": await oauth_server.issue({**good, "exp": None}),
            "the token's algorithm 'none' is not accepted (asymmetric only)": secret(unsigned("none") + "."),
            "the token's algorithm 'HS256' is not accepted (asymmetric only)": secret(forged_hs256),
            "the token's signature does not verify": await oauth_server.issue(
                good, foreign_key=True, kid=public_jwk["kid"]
            ),
        }
        for reason, token in cases.items():
            answer = await post(http, RAW_INITIALIZE, token)
            assert answer.status_code == 401, (reason, answer.text)
            assert answer.headers["www-authenticate"] == (
                f'Bearer error="invalid_token", resource_metadata="{base}/.well-known/oauth-protected-resource/mcp", '
                f'error_description="{reason}"'
            ), reason
            assert answer.json() == {"error": "invalid_token", "error_description": reason}
        ok = await post(http, RAW_INITIALIZE, await oauth_server.issue(good))
        assert ok.status_code == 200, ok.text
    refusals = [r.getMessage() for r in caplog.records if r.name == "mcp_webtools.auth" and r.levelname == "WARNING"]
    assert [line.split(": ", 1)[1] for line in refusals] == list(cases)
    assert all(token not in caplog.text for token in cases.values())


async def test_a_rotated_key_is_fetched_once_and_unknown_kids_do_not_refetch_within_the_interval(
    oauth_server: OAuthServer, upstream: Upstream, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "mcp_webtools.auth")

    def fetches() -> int:
        return sum("fetched the JWKS" in r.getMessage() for r in caplog.records)

    async with protected(tools(upstream, tmp_path), oauth_server) as (base, http):
        claims = {"aud": f"{base}/mcp", "sub": "alice"}
        assert (await post(http, RAW_INITIALIZE, await oauth_server.issue(claims))).status_code == 200
        assert (await post(http, RAW_INITIALIZE, await oauth_server.issue(claims))).status_code == 200
        assert fetches() == 1  # cached
        await oauth_server.rotate_key()
        assert (await post(http, RAW_INITIALIZE, await oauth_server.issue(claims))).status_code == 200
        assert fetches() == 2  # the new kid made us refetch
        await oauth_server.rotate_key()
        refused = await post(http, RAW_INITIALIZE, await oauth_server.issue(claims))
        assert refused.status_code == 401
        assert "the token is signed with a key the issuer does not publish" in refused.headers["www-authenticate"]
        forged_kids = [await oauth_server.issue(claims, foreign_key=True, kid=f"made-up-{n}") for n in range(3)]
        for token in forged_kids:
            assert (await post(http, RAW_INITIALIZE, token)).status_code == 401
        assert fetches() == 2  # at most one refetch per interval, whatever kids the tokens name


async def test_scopes_hide_tools_and_a_call_without_them_gets_403_insufficient_scope(
    oauth_server: OAuthServer, upstream: Upstream, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "mcp_webtools.audit")
    async with protected(tools(upstream, tmp_path), oauth_server) as (base, http):
        token = await oauth_server.issue({"aud": f"{base}/mcp", "sub": "alice", "scope": "orders.read"})
        headers = {"Authorization": f"Bearer {token}"}
        for era in ("legacy", "auto"):
            async with (
                httpx2.AsyncClient(headers=headers, timeout=30, trust_env=False) as authorised,
                Client(streamable_http_client(f"{base}/mcp", http_client=authorised), mode=era) as client,
            ):
                listed = await client.list_tools()
                assert [tool.name for tool in listed.tools] == ["orders", "public"], era
                assert text_of(await client.call_tool("orders", {})) != ""

        answer = await post(http, call("refund"), token)
        assert answer.status_code == 403
        assert answer.headers["www-authenticate"] == (
            'Bearer error="insufficient_scope", scope="orders.read orders.write", '
            f'resource_metadata="{base}/.well-known/oauth-protected-resource/mcp", '
            'error_description="the token lacks the scope orders.write"'
        )
        assert [r.raw_path for r in upstream.requests] == ["/orders", "/orders"]  # refund never reached upstream
        audit = [r for r in caplog.records if r.name == "mcp_webtools.audit"]
        assert [(r.getMessage().split(" ")[1], r.getMessage().rsplit(" ", 1)[1]) for r in audit] == [
            ("tool=orders", "client=alice")
        ] * 2  # the token's subject is the caller in the audit record
        assert all(r.client == "alice" for r in audit)
        assert all(token not in value for r in upstream.requests for _, value in r.header_list)


async def test_an_extra_token_audience_is_accepted_and_no_other(
    oauth_server: OAuthServer, upstream: Upstream, tmp_path: Path
) -> None:
    app_id = "6f1c2a9e-0000-4000-8000-000000000001"  # Entra ID v2 tokens name the API's application id
    async with protected(tools(upstream, tmp_path), oauth_server, token_audiences=(app_id,)) as (base, http):
        ok = await post(http, RAW_INITIALIZE, await oauth_server.issue({"aud": app_id, "sub": "svc", "scp": ["a"]}))
        assert ok.status_code == 200, ok.text
        other = await post(http, RAW_INITIALIZE, await oauth_server.issue({"aud": "6f1c2a9e-other", "sub": "svc"}))
        assert other.json()["error_description"] == "the token was issued for another audience"


async def test_the_static_token_still_works_next_to_oauth_and_sees_every_tool(
    oauth_server: OAuthServer, upstream: Upstream, tmp_path: Path
) -> None:
    async with protected(tools(upstream, tmp_path), oauth_server, static=secret(STATIC)) as (base, http):
        async with (
            httpx2.AsyncClient(
                headers={"Authorization": f"Bearer {STATIC}"}, timeout=30, trust_env=False
            ) as authorised,
            Client(streamable_http_client(f"{base}/mcp", http_client=authorised), mode="legacy") as client,
        ):
            assert [tool.name for tool in (await client.list_tools()).tools] == ["orders", "public", "refund"]
        assert (await post(http, RAW_INITIALIZE)).status_code == 401


async def test_opaque_tokens_are_introspected_and_the_answer_is_cached(
    oauth_server: OAuthServer, upstream: Upstream, tmp_path: Path
) -> None:
    await oauth_server.require_client("mcp-webtools", "introspection-secret-never-shown")
    introspection = {
        "introspection_url": oauth_server.introspection_url,
        "client_id": "mcp-webtools",
        "client_secret": "introspection-secret-never-shown",
    }
    async with protected(tools(upstream, tmp_path), oauth_server, **introspection) as (base, http):
        active = await oauth_server.opaque({"aud": f"{base}/mcp", "sub": "bob", "scope": "orders.read"})
        assert (await post(http, RAW_INITIALIZE, active)).status_code == 200
        assert (await post(http, call("refund"), active)).status_code == 403  # its scopes came from introspection
        assert len(await oauth_server.introspections()) == 1  # the second request used the cached answer

        revoked = await oauth_server.opaque({"aud": f"{base}/mcp", "sub": "bob"})
        assert (await oauth_server.http.post(oauth_server.revocation_url, data={"token": revoked})).status_code == 200
        other = await oauth_server.opaque({"aud": "https://other.example/mcp", "sub": "bob"})
        for token, reason in (
            (revoked, "the authorization server says the token is not active"),
            (other, "the token was issued for another audience"),
        ):
            answer = await post(http, RAW_INITIALIZE, token)
            assert answer.status_code == 401
            assert answer.json() == {"error": "invalid_token", "error_description": reason}
        assert [r["client_id"] for r in await oauth_server.introspections()] == ["mcp-webtools"] * 3


class MemoryStorage:
    """The SDK client's token storage, in memory."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


@pytest.mark.parametrize("era", ["legacy", "auto"])
async def test_the_sdk_client_knowing_only_our_url_completes_oauth_and_sees_only_its_tools(
    oauth_server: OAuthServer, upstream: Upstream, tmp_path: Path, era: str
) -> None:
    client_secret = "connector-secret-never-shown"
    await oauth_server.require_client("connector", client_secret)
    await oauth_server.set_tokens(scope="orders.read")  # what the authorization server grants this client
    async with protected(tools(upstream, tmp_path), oauth_server) as (base, _):
        auth = ClientCredentialsOAuthProvider(
            server_url=f"{base}/mcp",
            storage=MemoryStorage(),
            client_id="connector",
            client_secret=client_secret,
            issuer=oauth_server.issuer,
        )
        async with (
            httpx2.AsyncClient(auth=auth, timeout=30, trust_env=False) as http,
            Client(streamable_http_client(f"{base}/mcp", http_client=http), mode=era) as client,
        ):
            assert [tool.name for tool in (await client.list_tools()).tools] == ["orders", "public"]
            result = await client.call_tool("orders", {})
            assert not result.is_error, text_of(result)
    request = await oauth_server.last_token_request()
    assert (request.grant_type, request.client_id, request.form.get("resource")) == (
        "client_credentials",
        "connector",
        f"{base}/mcp",
    )
    assert [r.raw_path for r in upstream.requests] == ["/orders"]
    assert "authorization" not in upstream.requests[0].headers


async def test_serve_refuses_incomplete_or_unsafe_oauth_settings() -> None:
    code, _, err = await run_module("serve", "--transport", "http", "--oauth-issuer", "https://idp.example.com")
    assert code == 2 and "--oauth-issuer and --oauth-audience go together" in err, err
    code, _, err = await run_module(
        "serve", "--transport", "http", "--oauth-issuer", "http://idp.example.com", "--oauth-audience",
        "https://mcp.example.com/mcp", "--oauth-introspection-url", "https://idp.example.com/introspect",
    )  # fmt: skip
    assert code == 2, err
    assert "--oauth-issuer must be an https:// URL (http:// only on loopback)" in err
    assert "--oauth-introspection-url needs --oauth-client-id and a client secret" in err


def test_required_scopes_are_read_in_every_shape_and_a_bad_one_names_file_tool_and_field(tmp_path: Path) -> None:
    url = "https://api.example.com/orders"
    entries = [
        {**hamsa_tool("api_shape", url), "requiredScopes": ["orders.read", "orders.read"]},
        {"name": "guide_shape", "methodType": "GET", "url": url, "requiredScopes": ["orders.read"]},
    ]
    definitions = load_definitions([write_tools(tmp_path, entries)]).definitions
    assert [d.required_scopes for d in definitions] == [("orders.read",), ("orders.read",)]
    bad = write_tools(tmp_path, [{**hamsa_tool("bad", url), "requiredScopes": ["orders read"]}], "bad.json")
    with pytest.raises(ConfigErrors) as caught:
        load_definitions([bad])
    assert [str(problem) for problem in caught.value.errors] == [
        f"{bad}: tool 'bad': field `[0].requiredScopes`: 'orders read' is not an OAuth scope "
        "(printable ASCII, no space, quote or backslash)"
    ]


async def test_serve_from_the_command_line_and_environment_accepts_oauth_and_static_tokens(
    oauth_server: OAuthServer, upstream: Upstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    audience = "https://mcp.example.com/mcp"  # behind a proxy: the public URL, not the bind address
    monkeypatch.setenv("MCP_WEBTOOLS_AUTH_TOKEN", secret(STATIC))
    monkeypatch.setenv("MCP_WEBTOOLS_OAUTH_ISSUER", oauth_server.issuer)
    monkeypatch.setenv("MCP_WEBTOOLS_OAUTH_SCOPES", "mcp:tools orders.read")
    monkeypatch.setenv("INTROSPECTION_SECRET", secret("cli-introspection-never-shown"))
    await oauth_server.require_client("webtools-cli", "cli-introspection-never-shown")
    flags = ["--oauth-audience", audience, "--oauth-introspection-url", oauth_server.introspection_url]
    flags += ["--oauth-client-id", "webtools-cli", "--oauth-client-secret", "${INTROSPECTION_SECRET}"]
    async with http_server_process(tools(upstream, tmp_path), *flags) as server:
        match = await server.wait_for_log(r"serving MCP at (http://127\.0\.0\.1:\d+)/mcp")
        async with httpx2.AsyncClient(base_url=match.group(1), timeout=30, trust_env=False) as http:
            metadata = (await http.get("/.well-known/oauth-protected-resource/mcp")).json()
            assert metadata == {
                "resource": audience,
                "authorization_servers": [oauth_server.issuer],
                "scopes_supported": ["mcp:tools", "orders.read", "orders.write"],
                "bearer_methods_supported": ["header"],
            }
            missing = await post(http, RAW_INITIALIZE)
            assert missing.headers["www-authenticate"] == (
                'Bearer scope="mcp:tools orders.read", '
                'resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"'
            )
            jwt_token = await oauth_server.issue({"aud": audience, "sub": "alice"})
            opaque = await oauth_server.opaque({"aud": audience, "sub": "bob"})
            for token in (jwt_token, opaque, STATIC):
                assert (await post(http, RAW_INITIALIZE, token)).status_code == 200
            expired = await post(http, RAW_INITIALIZE, await oauth_server.issue({"aud": audience}, expires_in=-300))
            assert expired.status_code == 401
        await server.wait_for_log(r"401 for POST /mcp from 127\.0\.0\.1:\d+: the token has expired")
    assert [r["client_id"] for r in await oauth_server.introspections()] == ["webtools-cli"]


async def test_an_unreachable_authorization_server_gives_503_not_401(
    upstream: Upstream, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    closed = bound_socket()  # listening, never accepting: then closed, so connecting is refused
    issuer = f"http://127.0.0.1:{closed.getsockname()[1]}"
    closed.close()
    oauth = OAuthSettings(issuer=issuer, audience="https://mcp.example.com/mcp")
    app = build_http_app(open_webtools([str(tools(upstream, tmp_path))]), HttpSettings(oauth=oauth))
    token = secret("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.bmV2ZXItc2hvd24")
    async with serve_asgi(app) as base, httpx2.AsyncClient(base_url=base, timeout=30, trust_env=False) as http:
        answer = await post(http, RAW_INITIALIZE, token)
    assert (answer.status_code, answer.headers["retry-after"], answer.json()["error"]) == (
        503,
        "5",
        "temporarily_unavailable",
    )
    assert "the authorization server could not be reached" in answer.json()["error_description"]
    assert token not in caplog.text


async def test_the_legacy_sse_transport_lists_by_scope_too(
    oauth_server: OAuthServer, upstream: Upstream, tmp_path: Path
) -> None:
    async with protected(tools(upstream, tmp_path), oauth_server) as (base, http):
        token = await oauth_server.issue({"aud": f"{base}/mcp", "sub": "carol", "scope": "orders.read orders.write"})
        async with sse_client(f"{base}/sse", headers={"Authorization": f"Bearer {token}"}) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                assert [t.name for t in (await session.list_tools()).tools] == ["orders", "public", "refund"]
        narrow = await oauth_server.issue({"aud": f"{base}/mcp", "sub": "dave", "scope": ""})
        async with sse_client(f"{base}/sse", headers={"Authorization": f"Bearer {narrow}"}) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                assert [t.name for t in (await session.list_tools()).tools] == ["public"]


async def test_over_stdio_required_scopes_limit_nothing(upstream: Upstream, tmp_path: Path) -> None:
    async with mcp_client("stdio", "legacy", tools(upstream, tmp_path)) as client:
        assert [tool.name for tool in (await client.list_tools()).tools] == ["orders", "public", "refund"]
        assert not (await client.call_tool("refund", {})).is_error
    assert [r.raw_path for r in upstream.requests] == ["/refund"]


class Clock:
    """A monotonic clock the test moves: the refetch interval, the JWKS's age and the cache's life."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_discovery_tries_rfc_8414_then_openid_with_the_issuer_path_in_both_places() -> None:
    assert discovery_urls("https://idp.example.com/realms/tools") == [
        "https://idp.example.com/.well-known/oauth-authorization-server/realms/tools",
        "https://idp.example.com/realms/tools/.well-known/openid-configuration",
        "https://idp.example.com/.well-known/openid-configuration/realms/tools",
    ]
    assert discovery_urls("https://tenant.eu.auth0.com/") == [
        "https://tenant.eu.auth0.com/.well-known/oauth-authorization-server",
        "https://tenant.eu.auth0.com/.well-known/openid-configuration",
    ]


async def test_the_jwks_is_refetched_when_stale_so_a_retired_key_stops_verifying(oauth_server: OAuthServer) -> None:
    clock = Clock()
    verifier = ResourceServer(OAuthSettings(issuer=oauth_server.issuer, audience=AUDIENCE), clock=clock)
    try:
        old = await oauth_server.issue({"aud": AUDIENCE, "sub": "alice", "scope": "a b"})
        assert await verifier.authenticate(old) == Caller(id="alice", scopes=frozenset({"a", "b"}))
        await oauth_server.rotate_key(retire=True)
        clock.now += JWKS_MAX_AGE_SECONDS - 1
        assert isinstance(await verifier.authenticate(old), Caller)  # the cached JWKS still has its key
        new = await oauth_server.issue({"aud": AUDIENCE, "sub": "bob"})
        assert isinstance(await verifier.authenticate(new), Caller)  # unknown kid: refetched
        await oauth_server.rotate_key()
        newer = await oauth_server.issue({"aud": AUDIENCE, "sub": "carol"})
        assert isinstance(await verifier.authenticate(newer), Refused)  # within the refetch interval
        clock.now += JWKS_REFETCH_SECONDS
        assert isinstance(await verifier.authenticate(newer), Caller)  # the interval is over
        clock.now += JWKS_MAX_AGE_SECONDS
        refused = await verifier.authenticate(old)
        assert refused == Refused(
            401, "the token is signed with a key the issuer does not publish", "invalid_token"
        )  # the stale JWKS was refetched, without the retired key
    finally:
        await verifier.aclose()


async def test_an_introspection_answer_is_reused_only_for_its_cache_life(oauth_server: OAuthServer) -> None:
    await oauth_server.require_client("rs", "rs-secret-never-shown")
    settings = OAuthSettings(
        issuer=oauth_server.issuer,
        audience=AUDIENCE,
        introspection_url=oauth_server.introspection_url,
        client_id="rs",
        client_secret="rs-secret-never-shown",
    )
    clock = Clock()
    verifier = ResourceServer(settings, clock=clock)
    try:
        token = await oauth_server.opaque({"aud": AUDIENCE, "sub": "bob"})
        assert await verifier.authenticate(token) == Caller(id="bob", scopes=frozenset())
        await oauth_server.http.post(oauth_server.revocation_url, data={"token": token})
        clock.now += INTROSPECTION_CACHE_SECONDS - 1
        assert isinstance(await verifier.authenticate(token), Caller)  # cached: revocation not seen yet
        clock.now += 1
        assert await verifier.authenticate(token) == Refused(
            401, "the authorization server says the token is not active", "invalid_token"
        )
        assert len(await oauth_server.introspections()) == 2
    finally:
        await verifier.aclose()


async def test_an_endpoint_path_is_a_resource_of_its_own_for_the_endpoints_to_plug_in(
    oauth_server: OAuthServer, upstream: Upstream, tmp_path: Path
) -> None:
    """The seam for `/mcp/<name>` endpoints: their URL is an accepted audience, and their challenge and
    metadata name them (the endpoint routes themselves come with the endpoints)."""
    verifier = ResourceServer(OAuthSettings(issuer=oauth_server.issuer, audience=AUDIENCE, scopes=("mcp",)))
    assert verifier.metadata("/mcp/orders")["resource"] == "https://mcp.example.com/mcp/orders"
    assert verifier.metadata_route("/mcp/orders").path == "/.well-known/oauth-protected-resource/mcp/orders"
    async with protected(tools(upstream, tmp_path), oauth_server) as (base, http):
        for_endpoint = await oauth_server.issue({"aud": f"{base}/mcp/orders", "sub": "erin"})
        headers = {**POST_HEADERS, "Authorization": f"Bearer {for_endpoint}"}
        assert (await http.post("/mcp/orders", json=RAW_INITIALIZE, headers=headers)).status_code == 404  # past auth
        refused = await post(http, RAW_INITIALIZE, for_endpoint)  # /mcp is another resource
        assert refused.json()["error_description"] == "the token was issued for another audience"
        other = await oauth_server.issue({"aud": f"{base}/mcp/billing", "sub": "erin"})
        headers["Authorization"] = f"Bearer {other}"
        answer = await http.post("/mcp/orders", json=RAW_INITIALIZE, headers=headers)
        assert answer.status_code == 401
        assert (
            f'resource_metadata="{base}/.well-known/oauth-protected-resource/mcp/orders"'
            in (answer.headers["www-authenticate"])
        )


async def test_the_web_console_gives_an_oauth_caller_no_more_than_mcp_does(
    oauth_server: OAuthServer, upstream: Upstream, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "mcp_webtools.audit")
    sock = bound_socket()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    oauth = OAuthSettings(issuer=oauth_server.issuer, audience=f"{base}/mcp")
    app = build_http_app(open_webtools([str(tools(upstream, tmp_path))]), HttpSettings(oauth=oauth, ui=True))
    token = await oauth_server.issue({"aud": f"{base}/mcp", "sub": "frank", "scope": "orders.read"})
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    async with serve_asgi(app, sock), httpx2.AsyncClient(base_url=base, timeout=30, trust_env=False) as http:
        refused = await http.post("/ui/api/call", json={"tool": "refund", "arguments": {}}, headers=headers)
        assert (refused.status_code, refused.json()) == (
            403,
            {"error": "insufficient_scope", "error_description": "the token lacks the scope orders.write"},
        )
        allowed = await http.post("/ui/api/call", json={"tool": "orders", "arguments": {}}, headers=headers)
        assert allowed.status_code == 200, allowed.text
    assert [r.raw_path for r in upstream.requests] == ["/orders"]
    assert [r.client for r in caplog.records if r.name == "mcp_webtools.audit"] == ["frank"]


async def test_each_endpoint_is_a_resource_of_its_own_opened_by_its_required_scopes(
    oauth_server: OAuthServer, upstream: Upstream, tmp_path: Path
) -> None:
    """Endpoints (issue 14) under OAuth (issue 15): `/mcp/sales` has its own metadata and challenge, takes
    a token for its own URL, and lets in a token with its requiredScopes, showing the tools its scopes allow."""
    config = tools(upstream, tmp_path).parent  # the folder: the tools and the endpoints beside them
    (tmp_path / "endpoints.yaml").write_text(
        "endpoints:\n"
        "  - {name: sales, tools: [orders, refund], requiredScopes: [sales]}\n"
        "  - {name: open, tools: [public]}\n"
    )
    async with protected(config, oauth_server) as (base, http):
        sales_metadata = f"{base}/.well-known/oauth-protected-resource/mcp/sales"
        answer = await http.get("/.well-known/oauth-protected-resource/mcp/sales")
        assert answer.status_code == 200
        assert answer.json() == {
            "resource": f"{base}/mcp/sales",
            "authorization_servers": [oauth_server.issuer],
            "scopes_supported": ["orders.read", "orders.write", "sales"],
            "bearer_methods_supported": ["header"],
        }
        assert (await http.get("/.well-known/oauth-protected-resource/mcp/nowhere")).status_code == 404

        # No token at the endpoint: its own metadata in the challenge.
        answer = await http.post("/mcp/sales", json=RAW_INITIALIZE, headers=POST_HEADERS)
        assert (answer.status_code, answer.headers["www-authenticate"]) == (
            401, f'Bearer resource_metadata="{sales_metadata}"'
        )  # fmt: skip

        # A token for the endpoint's own URL, without the endpoint's scope: 403 insufficient_scope.
        lacking = await oauth_server.issue({"aud": f"{base}/mcp/sales", "sub": "bob", "scope": "orders.read"})
        with_lacking = {**POST_HEADERS, "Authorization": f"Bearer {lacking}"}
        answer = await http.post("/mcp/sales", json=RAW_INITIALIZE, headers=with_lacking)
        assert answer.status_code == 403
        assert answer.headers["www-authenticate"] == (
            f'Bearer error="insufficient_scope", scope="sales", resource_metadata="{sales_metadata}", '
            'error_description="the token lacks the scope sales"'
        )
        # A token for the endpoint's URL is not one for another endpoint's.
        answer = await http.post("/mcp/open", json=RAW_INITIALIZE, headers=with_lacking)
        assert answer.status_code == 401
        assert 'error="invalid_token"' in answer.headers["www-authenticate"]
        assert f'resource_metadata="{base}/.well-known/oauth-protected-resource/mcp/open"' in (
            answer.headers["www-authenticate"]
        )

        # With the endpoint's scope: its tools that the token's scopes allow, and no other endpoint's.
        token = await oauth_server.issue({"aud": f"{base}/mcp", "sub": "carol", "scope": "sales orders.read"})
        async with (
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30, trust_env=False) as authorised,
            Client(streamable_http_client(f"{base}/mcp/sales", http_client=authorised), mode="auto") as client,
        ):
            assert [tool.name for tool in (await client.list_tools()).tools] == ["orders"]
            assert not (await client.call_tool("orders", {})).is_error
            with pytest.raises(MCPError, match="Unknown tool: public"):  # another endpoint's tool: unknown here
                await client.call_tool("public", {})
        answer = await post(http, call("refund"), token)  # /mcp: refund needs orders.write
        assert answer.status_code == 403
        assert [r.raw_path for r in upstream.requests] == ["/orders"]


async def test_serve_takes_the_oauth_settings_from_a_config_file_and_flags_win(
    oauth_server: OAuthServer, upstream: Upstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`oauth:` in a file of ours is `--oauth-*` as config (the issue: "and the same in config and
    environment"); its client secret is a secret; a flag given too wins."""
    audience = "https://mcp.example.com/mcp"
    config = tools(upstream, tmp_path).parent
    monkeypatch.setenv("INTROSPECTION_SECRET", secret("config-introspection-never-shown"))
    await oauth_server.require_client("webtools-config", "config-introspection-never-shown")
    (config / "server.yaml").write_text(
        "oauth:\n"
        f"  issuer: {oauth_server.issuer}\n"
        f"  audience: {audience}\n"
        "  scopes: [mcp:tools]\n"
        f"  introspectionUrl: {oauth_server.introspection_url}\n"
        "  clientId: webtools-config\n"
        "  clientSecret: ${INTROSPECTION_SECRET}\n"
    )
    code, out, _ = await run_module("validate", str(config))
    assert code == 0 and f"oauth: issuer {oauth_server.issuer}  audience {audience}" in out
    async with http_server_process(config) as server:
        match = await server.wait_for_log(r"serving MCP at (http://127\.0\.0\.1:\d+)/mcp")
        async with httpx2.AsyncClient(base_url=match.group(1), timeout=30, trust_env=False) as http:
            metadata = (await http.get("/.well-known/oauth-protected-resource/mcp")).json()
            assert (metadata["resource"], metadata["authorization_servers"]) == (audience, [oauth_server.issuer])
            missing = await post(http, RAW_INITIALIZE)
            assert (missing.status_code, missing.headers["www-authenticate"]) == (401, (
                'Bearer scope="mcp:tools", '
                'resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"'
            ))  # fmt: skip
            opaque = await oauth_server.opaque({"aud": audience, "sub": "carol"})  # introspected with its secret
            assert (await post(http, RAW_INITIALIZE, opaque)).status_code == 200
    assert [r["client_id"] for r in await oauth_server.introspections()] == ["webtools-config"]
    other = "https://other.example.com/mcp"
    async with http_server_process(config, "--oauth-issuer", oauth_server.issuer, "--oauth-audience", other) as server:
        match = await server.wait_for_log(r"serving MCP at (http://127\.0\.0\.1:\d+)/mcp")
        async with httpx2.AsyncClient(base_url=match.group(1), timeout=30, trust_env=False) as http:
            assert (await http.get("/.well-known/oauth-protected-resource/mcp")).json()["resource"] == other


async def test_a_bad_oauth_block_in_a_config_file_is_an_error_naming_the_file_and_field(tmp_path: Path) -> None:
    (tmp_path / "server.yaml").write_text("oauth:\n  issuer: https://idp.example.com\n  audiance: x\n")
    code, _, err = await run_module("validate", str(tmp_path))
    assert code == 1
    assert "field `oauth.audiance`: is not a field of oauth (did you mean `audience`?)" in err
    assert "field `oauth.audience`: is required (oauth needs both issuer and audience)" in err
