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
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Generator

from .requests import OutboundRequest
from .sending import AttemptCount, Sender, SendPolicy, UpstreamResponse

__all__ = ["Auth", "AuthFlow", "AuthenticatingSender", "BearerAuth", "authorization_value"]

AuthFlow = Generator[OutboundRequest, UpstreamResponse, None]
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

    def preview(self, request: OutboundRequest) -> OutboundRequest:
        """The call's request as this flow sends it, for `call --dry-run` (nothing is sent).

        A flow that first asks somewhere else (a token endpoint) overrides this.
        """
        return next(self.auth_flow(request))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"  # a flow holds credentials: never in a repr or log


class BearerAuth(Auth):
    """`authToken`: `Authorization: Bearer <token>` (or the token as is, with its own scheme).

    The explicit auth setting: it wins over an `Authorization` header configured in `headers`.
    """

    def __init__(self, token: str) -> None:
        self._header = authorization_value(token)  # once per tool, not per call

    def auth_flow(self, request: OutboundRequest) -> AuthFlow:
        yield request.with_header("Authorization", self._header)


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
        flow = policy.auth.auth_flow(request)
        try:
            request = next(flow)
            while True:
                response = await self.inner.send(request, policy, deadline=deadline, count=count)
                sends += 1
                try:
                    request = flow.send(response)
                except StopIteration:
                    break
        finally:
            flow.close()
        if sends == 1:
            return response
        # The call's answer is the last one; it took every exchange the flow made, and their attempts.
        elapsed_ms = (time.perf_counter() - started) * 1000
        return dataclasses.replace(response, attempts=count.sent, elapsed_ms=elapsed_ms)
