"""Per-caller credentials: `forwardCaller`, a tool that calls its API as the end user.

    forwardCaller: {header: X-Upstream-Authorization, as: Authorization, fallback: error, stdioEnv: UPSTREAM_AUTH}

The value the MCP client sent in the inbound HTTP header `header` (of the HTTP request carrying this
tools/call) goes upstream as `as`, for that call only. Never the inbound `Authorization` header
itself: that is the credential the client presents to *us*, and the MCP authorization rules forbid
passing it through; the config refuses `header: Authorization`. Without the header the call is refused
with a tool error saying which header to send (`fallback: error`, the default) or goes with the tool's
own auth (`fallback: auth`). Over stdio there is no HTTP request: the value comes from the process
environment variable `stdioEnv` (the one client is the process's), else the fallback applies.

The HTTP layer says what the inbound request carries: `serving/server.py` sets `INBOUND_HEADERS` for
each call (None when there is no HTTP request: stdio, `mcp-webtools call`, the console). The value is
read there on each call and handed to `redaction.hide_in_this_call`, never to the toolset's shared
learned secrets: it is masked in this call's result, errors, audit record, log lines and spans, is
never stored anywhere a later call or another caller could reach, and is gone when the call ends.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from .auth import AsyncAuthFlow, Auth, AuthFlow
from .errors import RequestNotSent
from .redaction import hide_in_this_call
from .requests import OutboundRequest

__all__ = [
    "FALLBACKS",
    "INBOUND_HEADERS",
    "ForwardCaller",
    "ForwardCallerAuth",
    "forward_caller_problems",
]

# The inbound HTTP request's headers (ASGI form: lowercase name, value, as bytes) of the call running in
# this context; None when the call came on no HTTP request.
INBOUND_HEADERS: ContextVar[Sequence[tuple[bytes, bytes]] | None] = ContextVar(
    "mcp_webtools.inbound_headers", default=None
)

FALLBACKS = ("error", "auth")
FIELDS = ("header", "as", "fallback", "stdioEnv")
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP header name (RFC 9110 token)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Never forwarded nor set from a caller: connection-level (hop-by-hop) headers, the ones that frame or
# route the message, and cookies (a session with someone else, not a credential meant for this API).
_NEVER = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "cookie",
        "set-cookie",
    }
)
# The MCP transport's own headers: they speak to us (a session id is itself a credential).
_OURS = frozenset({"mcp-session-id", "mcp-protocol-version", "last-event-id", "content-type", "accept"})


@dataclass(frozen=True, slots=True)
class ForwardCaller:
    """A valid `forwardCaller` block (`forward_caller_problems` found nothing)."""

    header: str  # the inbound header the MCP client sends the credential in
    send_as: str  # the header it goes upstream as
    fallback: str = "error"  # without it: "error" refuses the call, "auth" uses the tool's own auth
    stdio_env: str | None = None  # over stdio, the environment variable that holds it

    @classmethod
    def from_block(cls, block: Mapping[str, Any]) -> ForwardCaller:
        return cls(block["header"], block["as"], block.get("fallback", "error"), block.get("stdioEnv"))

    def source(self) -> str:
        """Where the value comes from, as `list`, dry runs and the console say it (never a value)."""
        return f"<from the caller's {self.header} header>"


def forward_caller_problems(block: Any, has_own_auth: bool) -> list[tuple[str, str]]:
    """`(field under forwardCaller, message)` for each thing wrong; none when the block is usable.

    `has_own_auth`: the tool has an `auth` block or an `authToken` (what `fallback: auth` falls back to).
    """
    if not isinstance(block, Mapping):
        return [("", "must be an object: {header: X-Upstream-Authorization, as: Authorization}")]
    takes = "is not a field of forwardCaller; it takes " + ", ".join(FIELDS)
    problems = [(str(key), takes) for key in block if key not in FIELDS]
    for key in ("header", "as"):
        name = block.get(key)
        if not isinstance(name, str) or not _TOKEN.match(name):
            problems.append((key, "is required, as an HTTP header name (e.g. X-Upstream-Authorization)"))
        elif name.lower() in _NEVER:
            problems.append((key, f"cannot be {name}: a connection-level or cookie header is never forwarded"))
        elif key == "header" and name.lower() == "authorization":
            problems.append(
                (
                    key,
                    "cannot be Authorization: that is the client's credential for this server, and MCP forbids "
                    "passing it through (token passthrough); have clients send the upstream credential in a "
                    "dedicated header such as X-Upstream-Authorization",
                )
            )
        elif key == "header" and name.lower() in _OURS:
            problems.append((key, f"cannot be {name}: the MCP transport uses that header itself"))
    fallback = block.get("fallback", "error")
    if fallback not in FALLBACKS:
        problems.append(("fallback", "must be error (refuse the call) or auth (use the tool's own auth)"))
    elif fallback == "auth" and not has_own_auth:
        problems.append(("fallback", "is auth, but the tool has no `auth` block or `authToken` to fall back to"))
    env = block.get("stdioEnv")
    if env is not None and (not isinstance(env, str) or not _ENV_NAME.match(env)):
        problems.append(("stdioEnv", "must be an environment variable name (letters, digits, _)"))
    return problems


class ForwardCallerAuth(Auth):
    """The flow of a tool with `forwardCaller`: the caller's credential, else the fallback.

    The caller's value replaces the tool's own auth for that call (and a configured header of the
    same name); the tool's own auth is only ever the fallback. Replacing, not layering on top: the
    own flow may first ask somewhere else (a token endpoint), and the caller's credential must only
    ever reach the tool's own upstream, in the one request this flow yields.
    """

    def __init__(self, forward: ForwardCaller, own: Auth | None, environ: Mapping[str, str] = os.environ) -> None:
        self.forward, self._own, self._environ = forward, own, environ

    def describe(self) -> str:
        without = "refused" if self.forward.fallback == "error" else (self._own.describe() if self._own else "no auth")
        return f"forwardCaller, {self.forward.send_as}: {self.forward.source()}; without it: {without}"

    def preview(self, request: OutboundRequest) -> OutboundRequest:
        return request.with_header(self.forward.send_as, self.forward.source())

    def auth_flow(self, request: OutboundRequest) -> AuthFlow:
        forwarded = self._forwarded(request)
        if forwarded is not None or self._own is None:
            yield forwarded or request
        else:
            yield from self._own.auth_flow(request)

    async def async_auth_flow(self, request: OutboundRequest, *, deadline: float) -> AsyncAuthFlow:
        # The fallback may be a flow that waits (an OAuth2 token fetch): drive its own async flow.
        forwarded = self._forwarded(request)
        if forwarded is not None or self._own is None:
            yield forwarded or request
            return
        flow = self._own.async_auth_flow(request, deadline=deadline)
        try:
            sending = await anext(flow)
            while True:
                response = yield sending
                sending = await flow.asend(response)
        except StopAsyncIteration:
            return
        finally:
            await flow.aclose()

    def _forwarded(self, request: OutboundRequest) -> OutboundRequest | None:
        """The request with the caller's credential; None to fall back to the tool's own auth."""
        value, missing = self._credential()
        if value is not None:
            hide_in_this_call(value)  # before it is used: this call's texts never show it
            return request.with_header(self.forward.send_as, value)
        if self.forward.fallback == "error":
            raise RequestNotSent(missing + "; nothing was sent", attempts=0)
        return None

    def _credential(self) -> tuple[str | None, str]:
        """The value to forward, read now (never kept), or why there is none."""
        header, env = self.forward.header, self.forward.stdio_env
        inbound = INBOUND_HEADERS.get()
        if inbound is None:
            value = self._environ.get(env) if env else None
            if value:
                return _checked(value, f"environment variable {env}")
            if env:
                return None, (
                    f"this tool calls its API with the caller's own credential; over stdio it comes from the "
                    f"environment variable {env}, which is not set in the server's environment"
                )
            return None, (
                f"this tool calls its API with the caller's own credential, sent in the {header} HTTP header; "
                "this call came on no MCP HTTP request (stdio, `mcp-webtools call`, the console), so there is "
                "none. Connect over HTTP and send that header, or have the operator set forwardCaller.stdioEnv"
            )
        wanted = header.lower().encode("latin-1")
        values = [value for name, value in inbound if name.lower() == wanted]
        if len(values) > 1:
            return None, f"the {header} header was sent {len(values)} times; send it once"
        value = values[0].decode("latin-1").strip() if values else ""
        if not value:
            return None, (
                f"this tool calls its API with the caller's own credential: send it in the {header} HTTP header "
                "of your MCP requests"
            )
        return _checked(value, f"the {header} header")


def _checked(value: str, where: str) -> tuple[str | None, str]:
    if not value.isascii() or not value.isprintable():
        hide_in_this_call(value)  # never echoed, even in the refusal
        return None, f"{where} holds characters an HTTP header cannot carry (printable ASCII only)"
    return value, ""
