"""A real OAuth2 authorization server for the tests, never a hand-written fake: the npm package
`oauth2-mock-server` (pinned in .ci/run) run by tests/oauth/server.mjs, on 127.0.0.1.

It issues RS256-signed JWTs for every grant, publishes its JWKS and its metadata (OpenID discovery and
RFC 8414), and takes client secrets through HTTP Basic (`client_secret_basic`) or the form
(`client_secret_post`). Tests steer it through `OAuthServer`: what the next tokens say, how the token
endpoint fails, whose client credentials it accepts, key rotation; and read back every token request
it received. The `oauth_server` fixture (conftest.py) starts one per test.

The secrets scan (support.py) knows every client secret the server received and every token it
issued before the server under test holds them: the launcher announces each on stdout and waits until
`_acknowledge` has registered it.
"""

from __future__ import annotations

import functools
import json
import queue
import subprocess
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import httpx2
import pytest
from support import REPO, SCANNER, find_node_package, secret

PACKAGE = "oauth2-mock-server"
LAUNCHER = Path(__file__).parent / "oauth/server.mjs"
BOUND = 30  # seconds: start-up, and any wait on the server


@dataclass(frozen=True)
class TokenRequest:
    """One request to the token endpoint, as the authorization server received it."""

    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: str  # as sent
    form: dict[str, str]  # the body read as a form (a name sent twice: the last value)
    grant_type: str | None
    client_id: str | None  # from Basic credentials, else the form
    client_auth: str  # "client_secret_basic" | "client_secret_post" | "none" (both, space-separated: refused)
    status: int | None  # the answer's status; None while held, or when never answered


class OAuthServer:
    """A running authorization server and its control API (tests/oauth/server.mjs)."""

    def __init__(self, issuer: str, http: httpx2.AsyncClient) -> None:
        self.issuer = issuer  # http://127.0.0.1:<port>: tokens' `iss`, and the base of every endpoint
        self.token_url = f"{issuer}/token"
        self.jwks_url = f"{issuer}/jwks"
        self.introspection_url = f"{issuer}/introspect"  # RFC 7662, real: active only for live tokens issued here
        self.revocation_url = f"{issuer}/revoke"  # RFC 7009: the token stops being active
        self.http = http  # for requests to it (a new client costs ~60 ms)
        self.clients: dict[str, str] = {}

    async def _control(self, method: str, path: str, value: dict[str, Any] | None = None, **params: Any) -> Any:
        response = await self.http.request(method, f"{self.issuer}/_harness/{path}", json=value, params=params)
        assert response.status_code == 200, f"{method} /_harness/{path}: {response.status_code} {response.text}"
        return response.json()

    async def token_requests(
        self, *, grant_type: str | None = None, client_id: str | None = None
    ) -> list[TokenRequest]:
        """Every token request so far, oldest first; only those of `grant_type` / `client_id` if given."""
        return [
            request
            for request in await self.wait_for_token_requests(0)
            if grant_type in (None, request.grant_type) and client_id in (None, request.client_id)
        ]

    async def wait_for_token_requests(self, count: int) -> list[TokenRequest]:
        """Every token request, once at least `count` have been received, their secrets registered and each
        either held (a "hang": `release` finds it) or being answered (fails the test after `BOUND` seconds)."""
        with anyio.fail_after(BOUND):
            answer = await self._control("GET", "requests", count=count)
        return [TokenRequest(**request) for request in answer["requests"]]

    async def last_token_request(self) -> TokenRequest:
        requests = await self.wait_for_token_requests(1)
        return requests[-1]

    async def require_client(self, client_id: str, client_secret: str) -> None:
        """From now on the token endpoint accepts only the clients required so far, each with its secret
        (Basic or form), and answers anyone else `401 invalid_client`. The secret becomes a test secret."""
        self.clients[client_id] = secret(client_secret)
        await self._control("POST", "clients", {"clients": self.clients})

    async def set_tokens(
        self,
        *,
        expires_in: int | None = None,
        audience: str | list[str] | None = None,
        scope: str | None = None,
        claims: dict[str, Any] | None = None,
        times: int | None = None,
    ) -> None:
        """What issued access tokens say: `expires_in` (the answer's and the JWT's `exp`), `aud`, `scope`
        (the answer's and the JWT's), and other `claims` (a claim set to None is removed from the JWT).

        With `times=None` for every token from now on (replacing the earlier such settings); with a number,
        for that many tokens (after other such one-offs), over the settings for every token. By default a
        token has `aud` from the request's `audience` or `resource` parameter, the requested scope,
        `client_id` and `sub` (the client's id, unless a user's), and lives 3600 s.
        """
        settings = {"expires_in": expires_in, "audience": audience, "scope": scope, "claims": claims}
        settings = {name: value for name, value in settings.items() if value is not None}
        await self._control("POST", "tokens", {"settings": settings, "times": times})

    async def fail(self, mode: str | None, *, times: int | None = 1) -> None:
        """Answer the next `times` token requests (from now on if None: after the one-offs) with `mode`, not a token:

        - an RFC 6749 error code: `invalid_client` (401, with `WWW-Authenticate: Basic`), `server_error` (500),
          any other (`invalid_scope`, `invalid_grant`, ...) with 400; the JSON body `{"error", "error_description"}`;
        - "not_json": 200 with an HTML page (a proxy's or a captive portal's);
        - "hang": no answer until `release()`, which lets the held requests through to be answered as usual.

        `fail(None)` clears what is queued.
        """
        await self._control("POST", "faults", {"mode": mode, "times": times})

    async def release(self) -> int:
        """Let the token requests a "hang" holds be answered; how many there were."""
        return (await self._control("POST", "release"))["released"]

    async def rotate_key(self, *, retire: bool = False) -> str:
        """Sign with a new key from now on; its `kid`. The JWKS lists it too, and keeps the older keys
        unless `retire` (then tokens signed with them no longer verify)."""
        return (await self._control("POST", "rotate", {"retire": retire}))["kid"]

    async def issue(
        self,
        claims: dict[str, Any] | None = None,
        *,
        expires_in: int | None = None,
        foreign_key: bool = False,
        kid: str | None = None,
    ) -> str:
        """A signed JWT straight from the issuer (no token request), for resource-server tests; a test secret.

        It has `iss` (this server), `iat`, `nbf` (10 s ago), `exp` (`expires_in` from now, default 3600 s) and
        `claims` over them (None removes one). `foreign_key` signs it with a key in no JWKS; `kid` sets the
        header's `kid` (with `foreign_key`, the current key's kid makes a forgery that only the signature betrays).
        """
        ask = {"claims": claims or {}, "foreign": foreign_key}
        ask |= {name: value for name, value in (("expires_in", expires_in), ("kid", kid)) if value is not None}
        return secret((await self._control("POST", "issue", ask))["token"])

    async def opaque(self, claims: dict[str, Any] | None = None, *, expires_in: int | None = None) -> str:
        """An opaque access token (not a JWT) that only introspection reads: `iss`, `iat`, `exp` (`expires_in`
        from now, default 3600 s) and `claims` (None removes one); a test secret."""
        ask: dict[str, Any] = {"claims": claims or {}}
        if expires_in is not None:
            ask["expires_in"] = expires_in
        return secret((await self._control("POST", "opaque", ask))["token"])

    async def introspections(self) -> list[dict[str, Any]]:
        """Every introspection request so far: the client id and `token_type_hint` (never the token)."""
        return (await self._control("GET", "introspections"))["introspections"]

    async def metadata(self) -> dict[str, Any]:
        """The OpenID discovery document (`/.well-known/openid-configuration`)."""
        response = await self.http.get(f"{self.issuer}/.well-known/openid-configuration")
        assert response.status_code == 200, response.text
        return response.json()


@asynccontextmanager
async def start_oauth_server() -> AsyncIterator[OAuthServer]:
    """Run tests/oauth/server.mjs with the project's Node; stop it on exit. Skips without Node or the
    package, except where `$MCP_WEBTOOLS_REQUIRE_NODE=1` (CI): there it fails."""
    node, package = find_node_package(PACKAGE, (22, 12))
    # stderr is the test's, so pytest shows what the launcher printed if it failed.
    command = [node, str(LAUNCHER), str(package.parent)]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=REPO)
    started: queue.Queue[str | None] = queue.Queue()
    reader = threading.Thread(target=_acknowledge, args=(process, started), daemon=True)
    reader.start()
    try:
        try:
            issuer = await anyio.to_thread.run_sync(functools.partial(started.get, timeout=BOUND))
        except queue.Empty:
            pytest.fail(f"{LAUNCHER.name} printed no issuer within {BOUND} s")
        if issuer is None:
            pytest.fail(f"{LAUNCHER.name} exited with {process.wait()} before serving (its stderr is above)")
        async with httpx2.AsyncClient(timeout=BOUND, trust_env=False) as http:
            yield OAuthServer(issuer, http)
    finally:
        assert process.stdin is not None
        process.stdin.close()  # the launcher exits when its stdin closes
        try:
            process.wait(BOUND)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join(BOUND)


def _acknowledge(process: subprocess.Popen[bytes], started: queue.Queue[str | None]) -> None:
    """Read the launcher's stdout: hand over the issuer, then register each announced secret and
    acknowledge it (the launcher answers only then). A thread, so that no event loop has to be free."""
    assert process.stdout is not None and process.stdin is not None
    for line in process.stdout:
        message = json.loads(line)
        if "issuer" in message:
            started.put(message["issuer"])
            continue
        SCANNER.register(*message["secrets"])
        try:
            process.stdin.write(b"\n")
            process.stdin.flush()
        except (OSError, ValueError):  # stdin closed: the test is over
            return
    started.put(None)
