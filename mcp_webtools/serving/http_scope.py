"""What the HTTP request behind an MCP request says: the HTTP layer's notions, for the server to ask.

`http_app` puts a `HangUp` in the ASGI scope of each POST to `/mcp` (under `CLIENT_GONE`) and calls
it when the client disconnects; `server.WebTools` asks `hang_up_of(ctx)` whether a call's answer has
a POST to watch, and `caller_key(ctx)` who is calling (to bind task handles to their caller). Over
stdio there is no HTTP request: nothing to watch, and the caller is the process's one client.

Whoever authenticates an HTTP request (a configured client's token, an OAuth access token) says who
the caller is by putting a `Caller` in the ASGI scope under `AUTHENTICATED`; `caller_of(ctx)` reads it.

`http_app` puts the endpoint a request came to (`/mcp/<name>`, `/sse/<name>`: endpoints.py) in the
scope under `ENDPOINT` (absent for `/mcp`); `endpoint_of(ctx)` reads it. It also sets
`REQUEST_ENDPOINT` for the request's own task, for SDK hooks that are given no context (the
2026-07-28 `Mcp-Param-*` schema lookup).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import anyio
from mcp.server import ServerRequestContext

__all__ = [
    "AUTHENTICATED",
    "CLIENT_GONE",
    "ENDPOINT",
    "NO_ENDPOINT",
    "REQUEST_ENDPOINT",
    "Caller",
    "HangUp",
    "caller_key",
    "caller_of",
    "endpoint_of",
    "hang_up_of",
    "inbound_headers",
]

# ASGI scope key: the `HangUp` of a POST that may carry a call's answer.
CLIENT_GONE = "mcp_webtools.client_gone"
# ASGI scope key: the `Caller` the HTTP layer authenticated for this request.
AUTHENTICATED = "mcp_webtools.caller"
# ASGI scope key: the name of the endpoint (`/mcp/<name>`) the request came to.
ENDPOINT = "mcp_webtools.endpoint"
# What `endpoint_of` says for a request with no HTTP scope (stdio): the process's own choice.
NO_ENDPOINT = object()
# The endpoint of the HTTP request the current task serves (None: `/mcp`); unset outside one.
REQUEST_ENDPOINT: ContextVar[str | None] = ContextVar("mcp_webtools.request_endpoint", default=None)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling, as the HTTP layer established it. Never holds a credential."""

    id: str  # a configured client's id, or an OAuth token's client id / subject
    scopes: frozenset[str] | None = None  # the scopes an OAuth token grants; None when not OAuth
    endpoint: str | None = None  # the endpoint the request came to, when endpoints are configured


class HangUp:
    """Cancels the calls awaiting their answer on one HTTP request once its client disconnects.

    `http_app` puts one in the request's ASGI scope (under `CLIENT_GONE`) and calls it on the
    disconnect.
    """

    def __init__(self) -> None:
        self.happened = False
        self._scopes: set[anyio.CancelScope] = set()

    def __call__(self) -> None:
        self.happened = True
        for scope in self._scopes:
            scope.cancel()

    @contextmanager
    def cancels(self) -> Iterator[anyio.CancelScope]:
        scope = anyio.CancelScope()
        if self.happened:
            scope.cancel()
        self._scopes.add(scope)
        try:
            with scope:
                yield scope
        finally:
            self._scopes.discard(scope)


def hang_up_of(ctx: ServerRequestContext) -> HangUp | None:
    """The `HangUp` of the POST this request came on, if it came on one."""
    scope = _http_scope(ctx)
    hang_up = scope.get(CLIENT_GONE) if scope is not None else None
    return hang_up if isinstance(hang_up, HangUp) else None


def caller_of(ctx: ServerRequestContext) -> Caller | None:
    """The authenticated caller of this request; None over stdio or when nobody authenticated it."""
    scope = _http_scope(ctx)
    caller = scope.get(AUTHENTICATED) if scope is not None else None
    return caller if isinstance(caller, Caller) else None


def inbound_headers(ctx: ServerRequestContext) -> list[tuple[bytes, bytes]] | None:
    """The headers of the HTTP request this MCP request came on (ASGI form); None over stdio."""
    scope = _http_scope(ctx)
    return list(scope.get("headers") or []) if scope is not None else None


def endpoint_of(ctx: ServerRequestContext) -> str | None | object:
    """The endpoint an HTTP request came to (None: `/mcp`), or `NO_ENDPOINT` without an HTTP request."""
    scope = _http_scope(ctx)
    if scope is None:
        return NO_ENDPOINT
    endpoint = scope.get(ENDPOINT)
    return endpoint if isinstance(endpoint, str) else None


def caller_key(ctx: ServerRequestContext) -> str:
    """Who is calling: the authenticated caller's id, else a hash of the inbound `Authorization`
    header over HTTP (never the token itself), or "stdio" (one client per process, so the process
    is the connection)."""
    scope = _http_scope(ctx)
    if scope is None:
        return "stdio"
    caller = scope.get(AUTHENTICATED)
    if isinstance(caller, Caller):
        return "caller:" + caller.id
    headers = dict(scope.get("headers") or [])
    return "http:" + hashlib.sha256(headers.get(b"authorization", b"")).hexdigest()


def _http_scope(ctx: ServerRequestContext) -> dict | None:
    scope = getattr(ctx.request, "scope", None)
    return scope if isinstance(scope, dict) else None
