"""OAuth2 client credentials (RFC 6749 section 4.4): the token request, its answer, and the token cache.

What `auth.OAuth2ClientCredentialsAuth` builds on. Nothing here touches the network: the flow
yields the token request this module builds, the sender chain sends it (egress policy, the tool's
deadline), and the answer comes back here to be read.

`TokenCache` keeps one access token per (token URL, client id, scopes, audience): every tool with
the same client shares it. It lives beside the toolset and a reload hands it to the next one
(`serving/runtime.open_reloader`), so a reload asks the token endpoint for nothing. Tokens are
held in memory only, for this process, until `expires_in` minus a margin (or a 401 from the API).
One fetch per key at a time: the first call that finds no fresh token fetches it, every other
call for the same key waits for that fetch (`TokenFetch`) rather than asking again.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus, urlencode

import anyio

from .errors import SendError, TokenEndpointError
from .requests import OutboundRequest
from .sending import UpstreamResponse

__all__ = [
    "CLIENT_AUTH_METHODS",
    "AccessToken",
    "ClientCredentials",
    "TokenCache",
    "TokenFetch",
    "read_token",
    "refresh_margin",
    "token_endpoint_failure",
]

CLIENT_AUTH_METHODS = ("basic", "body")  # client_secret_basic (the default) | client_secret_post
MAX_MARGIN_SECONDS = 30.0
MAX_DESCRIPTION_SHOWN = 300  # characters of an `error_description` quoted to the model
# What to do about each RFC 6749 section 5.2 error code, said to the model and the operator.
_ADVICE = {
    "invalid_client": "check the tool's auth.clientId, auth.clientSecret and auth.clientAuth",
    "unauthorized_client": "the authorization server does not let this client use client credentials",
    "invalid_scope": "check the tool's auth.scopes",
    "invalid_request": "check the tool's auth block (scopes, audience, clientAuth)",
    "invalid_grant": "check the tool's auth block",
    "unsupported_grant_type": "the authorization server does not offer client credentials at that URL",
}

TokenKey = tuple[str, str, tuple[str, ...], str | None]


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    """One tool's `{type: oauth2ClientCredentials, ...}` block, checked (`auth.auth_block_problems`)."""

    token_url: str
    client_id: str
    client_secret: str
    scopes: tuple[str, ...] = ()
    audience: str | None = None
    client_auth: str = "basic"

    @classmethod
    def from_block(cls, block: Mapping[str, Any]) -> ClientCredentials:
        return cls(
            token_url=block["tokenUrl"],
            client_id=block["clientId"],
            client_secret=block["clientSecret"],
            scopes=tuple(block.get("scopes") or ()),
            audience=block.get("audience"),
            client_auth=block.get("clientAuth", "basic"),
        )

    @property
    def key(self) -> TokenKey:
        """What a token is for: tools that agree on it share one token (the secret is not part of it)."""
        return (self.token_url, self.client_id, self.scopes, self.audience)

    def basic_credential(self) -> str:
        """RFC 6749 section 2.3.1: each part form-urlencoded, then `id:secret` in base64."""
        pair = f"{quote_plus(self.client_id)}:{quote_plus(self.client_secret)}"
        return base64.b64encode(pair.encode()).decode("ascii")

    def token_request(self) -> OutboundRequest:
        """The POST to the token endpoint: `grant_type=client_credentials`, scope, audience, client auth."""
        form = [("grant_type", "client_credentials")]
        if self.scopes:
            form.append(("scope", " ".join(self.scopes)))
        if self.audience:
            form.append(("audience", self.audience))
        headers = [("Content-Type", "application/x-www-form-urlencoded"), ("Accept", "application/json")]
        if self.client_auth == "body":
            form += [("client_id", self.client_id), ("client_secret", self.client_secret)]
        else:
            headers.append(("Authorization", f"Basic {self.basic_credential()}"))
        return OutboundRequest(method="POST", url=self.token_url, headers=tuple(headers), body=urlencode(form).encode())


@dataclass(frozen=True, slots=True)
class AccessToken:
    value: str
    fresh_until: float | None  # a `TokenCache.clock` value; None: until the API answers 401

    def fresh(self, now: float) -> bool:
        return self.fresh_until is None or now < self.fresh_until


def refresh_margin(expires_in: float) -> float:
    """How long before it expires a token is replaced: 10% of its life, at most 30 s.

    Enough for a call that starts with it to reach the API while it is still valid.
    """
    return min(MAX_MARGIN_SECONDS, expires_in / 10)


def read_token(response: UpstreamResponse, token_url: str) -> tuple[str, float | None]:
    """The access token and its `expires_in` (seconds; None if not given) from the token endpoint's answer.

    Raises `TokenEndpointError` for any answer that holds no usable bearer token.
    """
    where = f"the OAuth2 token endpoint {token_url}"
    try:
        document = json.loads(response.body)
    except (ValueError, UnicodeDecodeError):
        document = None
    if not response.ok:
        raise TokenEndpointError(_refusal(where, response, document))
    if not isinstance(document, dict):
        kind = response.content_type.split(";")[0].strip() or "no Content-Type"
        raise TokenEndpointError(f"{where} answered HTTP {response.status} with a body that is not JSON ({kind})")
    token = document.get("access_token")
    if not isinstance(token, str) or not token:
        raise TokenEndpointError(f"{where} answered HTTP {response.status} with JSON but no access_token")
    token_type = document.get("token_type")
    if isinstance(token_type, str) and token_type.lower() != "bearer":
        raise TokenEndpointError(f"{where} issued a token of type {token_type!r}; only Bearer tokens can be used")
    expires_in = document.get("expires_in")
    if isinstance(expires_in, str) and expires_in.isdigit():  # some servers send it as a string
        expires_in = int(expires_in)
    usable = isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool) and expires_in >= 0
    return token, float(expires_in) if usable else None


def _refusal(where: str, response: UpstreamResponse, document: object) -> str:
    """An error answer, in words: its status, OAuth error code and description, and what to do."""
    text = f"{where} answered HTTP {response.status}"
    error = document.get("error") if isinstance(document, dict) else None
    if not isinstance(error, str) or not error:
        return text + (" (try again later)" if response.status >= 500 else "")
    text += f" with error {error}"
    description = document.get("error_description") if isinstance(document, dict) else None
    if isinstance(description, str) and 0 < len(description) <= MAX_DESCRIPTION_SHOWN:
        text += f" ({description})"
    advice = _ADVICE.get(error, "try again later" if response.status >= 500 else "")
    return f"{text}; {advice}" if advice else text


def token_endpoint_failure(exc: SendError, token_url: str) -> TokenEndpointError:
    """A send error on the token request (refused by the egress policy, unreachable, timed out), as the call's error."""
    # Only the first clause: the executor's note that "a POST may have taken effect" is about
    # calling the API again, which is no concern of a token request.
    reason = str(exc).split("; ", 1)[0]
    return TokenEndpointError(f"the OAuth2 token endpoint {token_url} gave no answer: {reason}", attempts=exc.attempts)


class TokenFetch:
    """One fetch of a token in progress: the call that started it sends the request, the rest wait here."""

    def __init__(self) -> None:
        self._done = anyio.Event()
        self.token: AccessToken | None = None
        self.error: TokenEndpointError | None = None

    async def wait(self, deadline: float, token_url: str) -> AccessToken | None:
        """The token fetched; None if the call fetching it went away (fetch again); raises its error.

        Gives up at `deadline` (the waiting call's own): a hung token endpoint times every call out.
        """
        with anyio.move_on_after(max(0.0, deadline - anyio.current_time())):
            await self._done.wait()
        if not self._done.is_set():
            raise TokenEndpointError(f"the OAuth2 token endpoint {token_url} gave no answer: it did not answer in time")
        if self.error is not None:
            raise TokenEndpointError(str(self.error))
        return self.token

    def finish(self, token: AccessToken | None = None, error: TokenEndpointError | None = None) -> None:
        self.token, self.error = token, error
        self._done.set()


class TokenCache:
    """Access tokens by `ClientCredentials.key`, and the fetches in progress (see the module docstring).

    `clock`: seconds, monotonic; a test may drive its own.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._tokens: dict[TokenKey, AccessToken] = {}
        self._fetches: dict[TokenKey, TokenFetch] = {}

    def fresh(self, key: TokenKey) -> AccessToken | None:
        """The token for `key` if it is not due for refresh."""
        token = self._tokens.get(key)
        return token if token is not None and token.fresh(self.clock()) else None

    def begin(self, key: TokenKey) -> tuple[TokenFetch, bool]:
        """The fetch for `key` in progress, or a new one; True when the caller must do it (and `end` it)."""
        fetch = self._fetches.get(key)
        if fetch is not None:
            return fetch, False
        fetch = self._fetches[key] = TokenFetch()
        return fetch, True

    def end(
        self,
        key: TokenKey,
        fetch: TokenFetch,
        value: str | None = None,
        expires_in: float | None = None,
        error: TokenEndpointError | None = None,
    ) -> AccessToken | None:
        """Finish the fetch that `begin` handed out: with a token (kept), an error, or neither (abandoned)."""
        token = None
        if value is not None:
            fresh_until = None if expires_in is None else self.clock() + expires_in - refresh_margin(expires_in)
            token = self._tokens[key] = AccessToken(value, fresh_until)
        if self._fetches.get(key) is fetch:
            del self._fetches[key]
        fetch.finish(token, error)
        return token

    def invalidate(self, key: TokenKey, token: AccessToken) -> None:
        """Forget `token` (the API answered 401 to it), unless a newer one has replaced it already."""
        if self._tokens.get(key) is token:
            del self._tokens[key]

    def __len__(self) -> int:
        return len(self._tokens)
