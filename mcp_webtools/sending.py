"""The seam around the upstream call: "send this prepared request under this policy by this deadline".

`Sender` is the one interface for it, after httpx's transports (`httpx2/_transports/base.py`): one
async method, and the values it speaks in (`SendPolicy`, `UpstreamResponse`, `AttemptCount`).
`executor.Executor` is its only implementation that touches the network (`cassettes.ReplayingSender`
stands in for it in `mcp-webtools test --replay`, answering from recordings). Everything that
must sit around the send is a wrapper: a `Sender` that holds the next one and delegates to it, in
a module of its own, composed once where the service is assembled (`serving/runtime.open_webtools`):

    sender = TracingSender(AuthenticatingSender(executor))      # outermost first

`auth.AuthenticatingSender` runs each tool's auth flow (a token fetched at run time, a retry after
401); `observe/telemetry.TracingSender` puts the exchange in a CLIENT span. A rate limit, a
response cache or per-caller credentials is one more module like those plus one more word in that
line; `calls.ToolCalls` only ever sees a `Sender`.

The contract every `Sender` keeps:

- Return the upstream's answer, any status, as an `UpstreamResponse`; raise an
  `executor.UpstreamError` when there is none (its message is safe to show the model).
- Stop by `deadline` (an `anyio.current_time()` value): that is the tool's timeout.
- Count every request it puts on the wire in `count` as it starts, so a call cancelled while an
  attempt is at the upstream still knows how many went out. A wrapper that sends more than one
  request per call (a retry after 401) passes the same `count` on and reports the total in the
  response's `attempts`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from .requests import OutboundRequest
from .retries import RetryPolicy

if TYPE_CHECKING:  # auth.py builds on this module; the policy only names its flow
    from .auth import Auth

__all__ = ["AttemptCount", "SendPolicy", "Sender", "UpstreamResponse"]


@dataclass(frozen=True, slots=True)
class SendPolicy:
    """How one tool's requests are sent: prepared once per tool at load."""

    timeout: float
    retry: RetryPolicy = dataclasses.field(default_factory=RetryPolicy)
    follow_redirects: bool = False
    max_response_bytes: int | None = None  # None: the executor's default
    auth: Auth | None = None  # the tool's upstream auth flow (auth.py); None: the request goes as built
    # The tool's URL as written (before `${ENV}`), its secrets masked: what a span may show.
    url_template: str = ""
    # Whose pause an upstream's 429 with Retry-After starts (ratelimit.py): the tool's MCP name.
    upstream: str = ""


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    status: int
    reason: str
    content_type: str
    body: bytes
    truncated: bool
    elapsed_ms: float
    attempts: int = 1
    retry_after: float | None = None  # seconds, from a Retry-After header
    note: str = ""  # something the model should know, e.g. a redirect that was not followed
    headers: tuple[tuple[str, str], ...] = ()  # as received: what a recording keeps (cassettes.py)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass(slots=True)
class AttemptCount:
    """How many requests of one call have been sent so far.

    Kept outside `Sender.send`, so that it can still be read when the call is cancelled while an
    attempt is at the upstream (neither a response nor an `UpstreamError` then says how many).
    """

    sent: int = 0


class Sender(Protocol):
    """Sends one call's prepared request upstream (see the module docstring for the contract)."""

    async def send(
        self,
        request: OutboundRequest,
        policy: SendPolicy,
        *,
        deadline: float,
        count: AttemptCount | None = None,
    ) -> UpstreamResponse: ...
