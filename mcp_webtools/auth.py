"""Upstream auth: each tool's flow, after httpx's `Auth.auth_flow` (`httpx2/_auth.py`).

A flow is a generator over one call: it yields the request to send, with its credentials, and is
sent the upstream's answer back. It may yield again (a token refreshed after a 401, a token
endpoint asked first) or stop; the last answer is the call's. `AuthenticatingSender` drives the
flows: a `sending.Sender` wrapper around the executor, so every request a flow yields goes out
under the call's policy, deadline and attempt count, like the call's own.

`authToken` is `BearerAuth`, its header value worked out once per tool at load. A flow that
obtains a secret while running (a token fetched at run time) hands it to the toolset's
`Redactor.learn` before it uses it: from then on the redactors built from that toolset and the
log filter hide it, so the call's result, its audit record, log lines and spans never show it.

A flow that must wait on something shared (another call's token fetch) is async, as httpx has
`Auth.async_auth_flow`: `AuthenticatingSender` drives `async_auth_flow`, which by default runs
the plain `auth_flow`. It may yield a `SideRequest`: a request that is not the call's own (the
token endpoint's), sent the same way but not counted in the call's `attempts`; a send error on it
is thrown into the flow, which says what it means for the call.
"""

from __future__ import annotations

import base64
import dataclasses
import re
import time
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from .errors import SendError, TokenEndpointError
from .oauth2 import CLIENT_AUTH_METHODS, ClientCredentials, TokenCache, read_token, token_endpoint_failure
from .redaction import MASK
from .requests import OutboundRequest
from .sending import AttemptCount, Sender, SendPolicy, UpstreamResponse

__all__ = [
    "AUTH_TYPES",
    "ApiKeyAuth",
    "Auth",
    "AuthFlow",
    "AsyncAuthFlow",
    "AuthenticatingSender",
    "BasicAuth",
    "BearerAuth",
    "OAuth2ClientCredentialsAuth",
    "SideRequest",
    "auth_block_problems",
    "auth_block_secrets",
    "auth_from_block",
    "authorization_value",
]

AuthFlow = Generator[OutboundRequest, UpstreamResponse, None]


@dataclass(frozen=True, slots=True)
class SideRequest:
    """A request an async flow sends for itself (a token request), not the call's own."""

    request: OutboundRequest


AsyncAuthFlow = AsyncGenerator["OutboundRequest | SideRequest", UpstreamResponse]
# A token that already carries a scheme: "Bearer x", "Token x", "Basic x".
_HAS_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*\s+\S")


def authorization_value(token: str) -> str:
    """`"sk_123"` -> `"Bearer sk_123"`; a token with a scheme (`"Token sk_123"`) is kept as is."""
    return token if _HAS_SCHEME.match(token) else f"Bearer {token}"


class Auth:
    """One tool's upstream auth: override `auth_flow`.

    The flow runs on the event loop between sends, so it must not block; whatever it needs from
    the network it yields as a request and reads from the answer.
    """

    def auth_flow(self, request: OutboundRequest) -> AuthFlow:
        """Yield each request to send (`response = yield request`); stop when done."""
        yield request

    async def async_auth_flow(self, request: OutboundRequest, *, deadline: float) -> AsyncAuthFlow:
        """What `AuthenticatingSender` drives: `auth_flow`, unless a flow must wait (see the module docstring).

        `deadline`: the call's, for anything the flow waits on besides a send.
        """
        flow = self.auth_flow(request)
        try:
            request = next(flow)
            while True:
                response = yield request
                request = flow.send(response)
        except StopIteration:
            return
        finally:
            flow.close()

    def preview(self, request: OutboundRequest) -> OutboundRequest:
        """The call's request as this flow sends it, for `call --dry-run` (nothing is sent).

        A flow that first asks somewhere else (a token endpoint) overrides this.
        """
        return next(self.auth_flow(request))

    def describe(self) -> str:
        """The auth type and where the credential goes, never a value (`validate`, `list`)."""
        return type(self).__name__

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"  # a flow holds credentials: never in a repr or log


class BearerAuth(Auth):
    """`authToken`: `Authorization: Bearer <token>` (or the token as is, with its own scheme).

    The explicit auth setting: it wins over an `Authorization` header configured in `headers`.
    """

    def __init__(self, token: str) -> None:
        self._header = authorization_value(token)  # once per tool, not per call

    def describe(self) -> str:
        return f"bearer, Authorization: {self._header.split(' ', 1)[0]} {MASK}"

    def auth_flow(self, request: OutboundRequest) -> AuthFlow:
        yield request.with_header("Authorization", self._header)


class BasicAuth(Auth):
    """`{type: basic, username, password}`: `Authorization: Basic base64(username:password)` (RFC 7617)."""

    def __init__(self, username: str, password: str) -> None:
        self._header = basic_value(username, password)

    def describe(self) -> str:
        return f"basic, Authorization: Basic {MASK}"

    def auth_flow(self, request: OutboundRequest) -> AuthFlow:
        yield request.with_header("Authorization", self._header)


class ApiKeyAuth(Auth):
    """`{type: apiKey, in: header|query, name, value}`.

    In the query, the key is added here, at send time: the tool's URL (and so the audit
    `url_template` and spans) never holds it.
    """

    def __init__(self, where: str, name: str, value: str) -> None:
        self._where, self._name, self._value = where, name, value

    def describe(self) -> str:
        return f"apiKey, {self._name}: {MASK}" if self._where == "header" else f"apiKey, ?{self._name}={MASK}"

    def auth_flow(self, request: OutboundRequest) -> AuthFlow:
        if self._where == "header":
            yield request.with_header(self._name, self._value)
            return
        pair = f"{quote(self._name, safe='')}={quote(self._value, safe='')}"
        url, hash_, fragment = request.url.partition("#")
        separator = "&" if "?" in url else "?"
        yield dataclasses.replace(request, url=f"{url}{separator}{pair}{hash_}{fragment}")


class OAuth2ClientCredentialsAuth(Auth):
    """`{type: oauth2ClientCredentials, tokenUrl, clientId, clientSecret, scopes, audience, clientAuth}`.

    `Authorization: Bearer <access token>`, the token from the shared `TokenCache` (oauth2.py):
    fetched through the sender chain when there is none fresh, by one call while the others wait.
    An API that answers 401 has the token forgotten and the call sent once more with a fresh one;
    the second answer is the call's, whatever it is. `learn` (the toolset's `Redactor.learn`) is
    given each token before anything uses it.
    """

    PREVIEW = "Bearer <from oauth2 token endpoint>"

    def __init__(self, credentials: ClientCredentials, tokens: TokenCache, learn: Callable[[str], None]) -> None:
        self._credentials, self._tokens, self._learn = credentials, tokens, learn

    def describe(self) -> str:
        return f"oauth2ClientCredentials from {self._credentials.token_url}, Authorization: {self.PREVIEW}"

    def auth_flow(self, request: OutboundRequest) -> AuthFlow:
        raise TypeError("an OAuth2 flow waits on a shared token fetch: drive async_auth_flow")

    def preview(self, request: OutboundRequest) -> OutboundRequest:
        return request.with_header("Authorization", self.PREVIEW)  # a dry run fetches nothing

    async def async_auth_flow(self, request: OutboundRequest, *, deadline: float) -> AsyncAuthFlow:
        credentials, tokens = self._credentials, self._tokens
        key, url = credentials.key, credentials.token_url
        for last_try in (False, True):
            token = tokens.fresh(key)
            while token is None:
                fetch, leading = tokens.begin(key)
                if not leading:
                    token = await fetch.wait(deadline, url)  # None: its caller went away; fetch again
                    continue
                value = expires_in = error = None
                try:
                    try:
                        answer = yield SideRequest(credentials.token_request())
                    except SendError as exc:
                        raise token_endpoint_failure(exc, url) from None
                    value, expires_in = read_token(answer, url)
                    self._learn(value)  # a secret from the moment it arrives
                except TokenEndpointError as exc:
                    error = exc
                    raise
                finally:  # with a token, an error for those waiting, or neither (cancelled): they fetch again
                    token = tokens.end(key, fetch, value, expires_in, error)
            response = yield request.with_header("Authorization", f"Bearer {token.value}")
            if response.status != 401 or last_try:
                return
            tokens.invalidate(key, token)  # revoked or expired early: once more with a fresh one, never again


def basic_value(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


# The `auth` block: each type and the string fields it needs (every one of them a secret but
# `in`, `name` and `tokenUrl`), then the optional fields of the types that have some.
AUTH_TYPES: dict[str, tuple[str, ...]] = {
    "bearer": ("token",),
    "basic": ("username", "password"),
    "apiKey": ("in", "name", "value"),
    "oauth2ClientCredentials": ("tokenUrl", "clientId", "clientSecret"),
    "none": (),
}
OPTIONAL_FIELDS: dict[str, tuple[str, ...]] = {"oauth2ClientCredentials": ("scopes", "audience", "clientAuth")}
API_KEY_PLACES = ("header", "query")
_NOT_SECRET = frozenset({"type", "in", "name", "tokenUrl", "scopes", "audience", "clientAuth"})


def auth_block_problems(block: Any) -> list[tuple[str, str]]:
    """`(field under auth, message)` for each thing wrong with an `auth` block; none when it is usable.

    Messages say what is allowed and never quote a value. Whether the egress policy lets the
    server reach a `tokenUrl` is the loader's check, as for the tool's own URL.
    """
    if not isinstance(block, Mapping):
        return [("", "must be an object with `type`: one of " + ", ".join(AUTH_TYPES))]
    kind = block.get("type")
    if kind not in AUTH_TYPES:
        return [("type", "must be one of " + ", ".join(AUTH_TYPES))]
    needed, optional = AUTH_TYPES[kind], OPTIONAL_FIELDS.get(kind, ())
    problems = [
        (key, f"is not a field of auth type {kind}; it takes " + (", ".join(needed + optional) or "no other fields"))
        for key in block
        if key != "type" and key not in needed and key not in optional
    ]
    for key in needed:
        value = block.get(key)
        if not isinstance(value, str) or not value:
            problems.append((key, f"is required for auth type {kind}, as a non-empty string"))
        elif any(ch in value for ch in "\r\n\0") or not value.isascii():
            problems.append((key, "must be printable ASCII (it goes into an HTTP header or URL)"))
    if kind == "apiKey" and isinstance(block.get("in"), str) and block["in"] not in API_KEY_PLACES:
        problems.append(("in", "must be header or query (a key in a cookie is not supported)"))
    if kind == "oauth2ClientCredentials":
        problems += _client_credentials_problems(block)
    return problems


def _client_credentials_problems(block: Mapping[str, Any]) -> list[tuple[str, str]]:
    problems = []
    url = block.get("tokenUrl")
    if isinstance(url, str) and url and url.isascii():
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            problems.append(("tokenUrl", "must be an absolute https:// (or http://) URL of the token endpoint"))
        elif "@" in parts.netloc or parts.fragment:
            problems.append(("tokenUrl", "must have no user:password@ and no #fragment; credentials go in clientId"))
    scopes = block.get("scopes", [])
    if not isinstance(scopes, list) or not all(isinstance(s, str) and s and s.split() == [s] for s in scopes):
        problems.append(("scopes", "must be a list of scope names, each a non-empty string without spaces"))
    if "audience" in block and (not isinstance(block["audience"], str) or not block["audience"]):
        problems.append(("audience", "must be a non-empty string (the API the token is for)"))
    if block.get("clientAuth", "basic") not in CLIENT_AUTH_METHODS:
        problems.append(
            ("clientAuth", "must be basic (HTTP Basic, the default) or body (client_id and client_secret in the form)")
        )
    return problems


def auth_block_secrets(block: Mapping[str, Any]) -> set[str]:
    """Every value of a valid `auth` block to hide, and the credential of the header value made from it."""
    secrets = {value for key, value in block.items() if key not in _NOT_SECRET and isinstance(value, str)}
    if block.get("type") == "basic":
        # The encoded credential: hiding it hides the whole `Basic ...` value, and a dry run still says `Basic ***`.
        secrets.add(basic_value(block["username"], block["password"]).removeprefix("Basic "))
    if block.get("type") == "oauth2ClientCredentials":
        secrets.add(ClientCredentials.from_block(block).basic_credential())  # sent to the token endpoint
    return secrets


def auth_from_block(block: Mapping[str, Any], tokens: TokenCache, learn: Callable[[str], None]) -> Auth | None:
    """The flow for a valid `auth` block (`auth_block_problems` found nothing); None for `type: none`.

    `tokens`: where fetched tokens are kept (the toolset's); `learn`: hides each from then on.
    """
    kind = block["type"]
    if kind == "bearer":
        return BearerAuth(block["token"])
    if kind == "basic":
        return BasicAuth(block["username"], block["password"])
    if kind == "apiKey":
        return ApiKeyAuth(block["in"], block["name"], block["value"])
    if kind == "oauth2ClientCredentials":
        return OAuth2ClientCredentialsAuth(ClientCredentials.from_block(block), tokens, learn)
    return None


class AuthenticatingSender:
    """A `Sender` that runs the tool's auth flow (`policy.auth`) around the next sender."""

    def __init__(self, inner: Sender) -> None:
        self.inner = inner

    async def send(
        self,
        request: OutboundRequest,
        policy: SendPolicy,
        *,
        deadline: float,
        count: AttemptCount | None = None,
    ) -> UpstreamResponse:
        if policy.auth is None:
            return await self.inner.send(request, policy, deadline=deadline, count=count)
        count = count if count is not None else AttemptCount()
        started, sends = time.perf_counter(), 0
        flow = policy.auth.async_auth_flow(request, deadline=deadline)
        response: UpstreamResponse | None = None
        try:
            step = await flow.__anext__()
            while True:
                try:
                    if isinstance(step, SideRequest):  # the flow's own (a token request): not one of the call's
                        answer = await self.inner.send(step.request, policy, deadline=deadline, count=AttemptCount())
                    else:
                        answer = response = await self.inner.send(step, policy, deadline=deadline, count=count)
                        sends += 1
                except SendError as exc:
                    if not isinstance(step, SideRequest):
                        raise
                    step = await flow.athrow(exc)  # the flow says what a failed side request means
                    continue
                try:
                    step = await flow.asend(answer)
                except StopAsyncIteration:
                    break
        finally:
            await flow.aclose()
        if response is None:
            raise RuntimeError(f"{type(policy.auth).__name__} ended without sending the call's request")
        if sends == 1:
            return response
        # The call's answer is the last one; it took every exchange the flow made, and their attempts.
        elapsed_ms = (time.perf_counter() - started) * 1000
        return dataclasses.replace(response, attempts=count.sent, elapsed_ms=elapsed_ms)
