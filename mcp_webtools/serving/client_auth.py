"""Who is calling over HTTP, and may they use the endpoint they came to.

An `Authenticator` reads one request's ASGI scope and says who sent it (a `http_scope.Caller`) or why
it cannot tell (a key of `http_app.UNAUTHORIZED`). `StaticClients` is the one for static bearer
tokens: the clients of the config's `clients:` (endpoints.py), read anew on every request so that a
reload's clients count from the next request, and `serve --auth-token` as the client `default`.
Another kind of credential (an OAuth access token) is one more class with the same method, tried
beside it by `http_app.BearerTokenGuard`.

Which endpoints a caller may use (`may_use`): a configured client only those that list it; the
`--auth-token` client every endpoint and `/mcp` with the paths around it (metrics, console), as
before endpoints existed.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Protocol

from starlette.types import Scope

from ..endpoints import OPERATOR_CLIENT, EndpointConfig
from .http_scope import Caller

__all__ = ["MAX_TOKEN_BYTES", "Authenticator", "StaticClients", "bearer_token", "may_use"]

# Longer than any token worth issuing (the README's recipe makes 43 characters): a refusal of one
# is logged as `overlong`, the kind of thing someone probing the server sends.
MAX_TOKEN_BYTES = 1024


class Authenticator(Protocol):
    """Says who sent a request: a `Caller`, or why not (a key of `http_app.UNAUTHORIZED`)."""

    @property
    def active(self) -> bool:
        """Whether it guards anything now (no tokens configured: every request passes, as before)."""
        ...

    def authenticate(self, scope: Scope) -> Caller | str: ...


def bearer_token(scope: Scope) -> tuple[bytes | None, bytes]:
    """(the `Authorization` header or None, the token it carries under `Bearer` or Hamsa's `Token`, or b"")."""
    header: bytes | None = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            header = value
            break
    scheme, _, credential = (header or b"").strip().partition(b" ")
    return header, credential.strip() if scheme.lower() in (b"bearer", b"token") else b""


class StaticClients:
    """The configured clients' tokens (`current()`'s, compared by digest) and the `--auth-token`."""

    def __init__(self, current: Callable[[], EndpointConfig], operator_token: str | None = None) -> None:
        self._current = current
        self._operator = operator_token.encode("utf-8") if operator_token else None

    @property
    def active(self) -> bool:
        return self._operator is not None or bool(self._current().clients)

    def authenticate(self, scope: Scope) -> Caller | str:
        header, presented = bearer_token(scope)
        operator = self._operator or b""
        # Compare in constant time, always, so timing says nothing about any token.
        is_operator = hmac.compare_digest(presented, operator) and bool(operator) and bool(presented)
        client = self._current().authenticate(presented) if presented else None
        if is_operator:
            return Caller(OPERATOR_CLIENT)
        if client is not None:
            return Caller(client.id)
        if not header:
            return "missing"
        scheme = header.strip().partition(b" ")[0].lower()
        if scheme not in (b"bearer", b"token"):
            return "scheme"
        if not presented:
            return "missing"
        return "overlong" if len(presented) > MAX_TOKEN_BYTES else "wrong"


def may_use(caller: Caller, endpoint: str | None, config: EndpointConfig) -> bool:
    """Whether `caller` may use `endpoint` (None: `/mcp` and the paths around it)."""
    if caller.id == OPERATOR_CLIENT:
        return True
    if endpoint is None:
        return False
    found = config.endpoints.get(endpoint)
    return found is not None and caller.id in found.clients
