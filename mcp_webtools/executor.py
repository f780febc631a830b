"""Sending a built request upstream and reading its answer, within limits: the one `Sender`.

`Executor` implements `sending.Sender`, the seam every wrapper (auth, tracing) delegates to; it is
the one implementation that touches the network (`cassettes.ReplayingSender` stands in for it in
`mcp-webtools test --replay`).

One `httpx2.AsyncClient` (one connection pool) serves the whole process; `create_http_client`
makes it with the settings a proxy for many callers needs, and with the egress policy checked on
every resolved address. `Executor.send` runs the attempts a tool's `RetryPolicy` allows inside
its deadline, follows same-origin redirects only when the tool asks, stops reading a body at the
size cap, and returns an `UpstreamResponse` or raises one of the specific `SendError`s.

Time: every attempt (its redirects and its whole body read included) is bounded as a whole by
`attemptTimeoutSeconds` and by the deadline, not just per socket read, so a body trickled one
byte at a time cannot hold an attempt open past either.
"""

from __future__ import annotations

import dataclasses
import os
import random
import ssl
import time
import uuid
from http.cookiejar import CookieJar, DefaultCookiePolicy
from urllib.parse import urljoin, urlsplit

import anyio
import httpx2

from .egress import EgressPolicy, GuardedNetworkBackend
from .errors import (
    EgressDenied,
    RequestNotSent,
    SendError,
    UpstreamConnectionLost,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnreachable,
)
from .ratelimit import Pauses
from .requests import OutboundRequest
from .retries import IDEMPOTENT_METHODS, RETRYABLE_STATUSES, parse_retry_after
from .sending import AttemptCount, SendPolicy, UpstreamResponse

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "Executor",
    "create_http_client",
]

DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024
MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_LOCATION_SHOWN = 200  # characters of a redirect's Location quoted to the model


def create_http_client(*, max_connections: int = 100, egress: EgressPolicy | None = None) -> httpx2.AsyncClient:
    """The process-wide upstream client.

    `trust_env=False`: no proxy or `.netrc` credentials picked up from the environment behind
    the config's back. The cookie jar refuses every cookie: one caller's upstream session must
    never ride along on another caller's request. Every connection goes through the egress
    policy's check of the resolved address.
    """
    transport = httpx2.AsyncHTTPTransport(
        trust_env=False,
        # Idle connections are dropped before 5 s, the keep-alive of many servers (uvicorn, Node):
        # reusing one the server is closing at that moment would break a request.
        limits=httpx2.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections, keepalive_expiry=3.0
        ),
    )
    # httpx2 has no public seam for the network backend; the pool's attribute is it (tested).
    transport._pool._network_backend = GuardedNetworkBackend(egress or EgressPolicy())
    return httpx2.AsyncClient(
        transport=transport,
        follow_redirects=False,
        trust_env=False,
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
        timeout=httpx2.Timeout(30.0),
    )


class Executor:
    """Sends `OutboundRequest`s over the shared client (a `sending.Sender`).

    `rng` draws the backoff jitter; pass a seeded or stub `random.Random` for reproducible waits.
    """

    def __init__(
        self,
        client: httpx2.AsyncClient,
        *,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        rng: random.Random | None = None,
        pauses: Pauses | None = None,
    ) -> None:
        self.client = client
        self.max_response_bytes = max_response_bytes
        self.rng = rng or random.Random()
        # Where a 429's Retry-After pauses the tool for every caller (ratelimit.RateLimits); a retry
        # waits out a pause too, whichever call's 429 started it.
        self.pauses = pauses

    async def send(
        self,
        request: OutboundRequest,
        policy: SendPolicy,
        *,
        deadline: float | None = None,
        count: AttemptCount | None = None,
    ) -> UpstreamResponse:
        """Every attempt the policy allows before `deadline` (an `anyio.current_time()` value).

        `count`, if given, counts each attempt as it starts (added to what it holds already: a
        wrapper may send more than once per call). `policy.auth` is not this method's business:
        `auth.AuthenticatingSender` runs the flow around it.
        """
        count = count or AttemptCount()
        if deadline is None:
            deadline = anyio.current_time() + policy.timeout
        retry = policy.retry
        allowed = retry.max_attempts(request.method)
        if retry.needs_idempotency_key(request.method):
            request = _with_idempotency_key(request, retry.idempotency_header)
        started = time.perf_counter()
        attempt = 0
        while True:
            attempt += 1
            remaining = deadline - anyio.current_time()
            if remaining <= 0:
                raise _gave_up(UpstreamTimeout(_timed_out(policy.timeout)), request, attempt - 1)
            attempt_timeout = min(remaining, retry.attempt_timeout_seconds or remaining)
            count.sent += 1
            try:
                response = await self._attempt(request, policy, attempt_timeout)
            except SendError as exc:
                if exc.transient and attempt < allowed:
                    if await _wait(await self._before_retry(policy, retry.backoff(attempt, self.rng)), deadline):
                        continue
                if isinstance(exc, UpstreamTimeout) and attempt_timeout >= remaining:
                    exc = UpstreamTimeout(_timed_out(policy.timeout))  # the tool's deadline, not this attempt's
                raise _gave_up(exc, request, attempt) from None
            if response.status == 429 and response.retry_after and self.pauses is not None and policy.upstream:
                await self.pauses.pause(policy.upstream, response.retry_after)
            if response.status in RETRYABLE_STATUSES and attempt < allowed:
                delay = response.retry_after if response.retry_after is not None else retry.backoff(attempt, self.rng)
                if await _wait(await self._before_retry(policy, delay), deadline):
                    continue
            # The time the whole call took upstream: every attempt, redirect and wait.
            elapsed_ms = (time.perf_counter() - started) * 1000
            return dataclasses.replace(response, attempts=attempt, elapsed_ms=elapsed_ms)

    async def _before_retry(self, policy: SendPolicy, delay: float) -> float:
        """The wait before a retry: `delay`, or longer while the upstream's 429 pause lasts."""
        if self.pauses is None or not policy.upstream:
            return delay
        return max(delay, await self.pauses.paused_for(policy.upstream))

    async def _attempt(self, request: OutboundRequest, policy: SendPolicy, timeout: float) -> UpstreamResponse:
        """One attempt, bounded as a whole: httpx's own timeouts only bound each socket operation."""
        with anyio.move_on_after(timeout):
            return await self._exchange(request, policy, timeout)
        raise UpstreamTimeout(_timed_out(timeout))

    async def _exchange(self, request: OutboundRequest, policy: SendPolicy, timeout: float) -> UpstreamResponse:
        """One attempt: the request, and the same-origin redirects the tool allows."""
        current = request
        for _ in range(MAX_REDIRECTS + 1):
            response, location = await self._send_once(current, timeout, policy.max_response_bytes)
            if response.status not in REDIRECT_STATUSES or not location:
                return response
            if not policy.follow_redirects:
                return dataclasses.replace(response, note=_not_followed(location))
            target = urljoin(current.url, location)
            change = _origin_change(request.url, target)
            if change:
                note = f"The redirect points to another {change}, so it was not followed."
                return dataclasses.replace(response, note=note)
            current = _redirected(current, response.status, target)
        return dataclasses.replace(response, note=f"More than {MAX_REDIRECTS} redirects; stopped following.")

    async def _send_once(
        self, request: OutboundRequest, timeout: float, max_bytes: int | None
    ) -> tuple[UpstreamResponse, str | None]:
        started = time.perf_counter()
        try:
            built = self.client.build_request(
                request.method, request.url, headers=list(request.headers), content=request.body, timeout=timeout
            )
        except httpx2.InvalidURL as exc:
            # e.g. long arguments in a GET query push the URL over httpx's length limit.
            raise RequestNotSent(f"the HTTP request could not be built ({_reason(exc)})") from None
        except UnicodeEncodeError:
            # httpx sends header values as ASCII; the value itself may be a secret, so never show it.
            raise RequestNotSent(
                "the HTTP request could not be built (a configured header or authToken value is not ASCII)"
            ) from None
        try:
            response = await self.client.send(built, stream=True)
            try:
                body, truncated = await _read_capped(response, max_bytes or self.max_response_bytes)
            finally:
                await response.aclose()
        except EgressDenied as exc:
            raise UpstreamError(f"the egress policy refused the connection: {exc}") from None
        except httpx2.TimeoutException:
            raise UpstreamTimeout(_timed_out(timeout)) from None
        except httpx2.ConnectError as exc:
            if _is_tls_failure(exc):
                raise UpstreamError(f"the TLS handshake with the upstream API failed ({_reason(exc)})") from None
            raise UpstreamUnreachable(f"could not connect to the upstream API ({_reason(exc)})") from None
        except (httpx2.ReadError, httpx2.WriteError, httpx2.RemoteProtocolError) as exc:
            raise UpstreamConnectionLost(
                f"the connection to the upstream API broke before the answer was complete ({_reason(exc)})"
            ) from None
        except httpx2.DecodingError:
            raise UpstreamError(
                "the upstream API's answer could not be decoded (its Content-Encoding does not match the body)"
            ) from None
        except httpx2.LocalProtocolError:
            # h11 quotes the offending header value, which may be a secret: say what, never the value.
            raise RequestNotSent("the HTTP request could not be sent (a header or the URL is not valid HTTP)") from None
        except httpx2.HTTPError as exc:
            raise UpstreamError(f"the upstream connection failed ({type(exc).__name__}: {_reason(exc)})") from None
        upstream = UpstreamResponse(
            status=response.status_code,
            reason=response.reason_phrase,
            content_type=response.headers.get("content-type", ""),
            body=body,
            truncated=truncated,
            elapsed_ms=(time.perf_counter() - started) * 1000,
            retry_after=parse_retry_after(response.headers.get("retry-after")),
            headers=tuple(response.headers.multi_items()),
        )
        return upstream, response.headers.get("location")


def _gave_up(exc: SendError, request: OutboundRequest, attempts: int) -> SendError:
    """The error to report after the last attempt, saying how many there were."""
    message = str(exc)
    if exc.maybe_received and request.method not in IDEMPOTENT_METHODS:
        # The model's natural next move is to call again, which for a POST may duplicate the effect.
        message += f"; the {request.method} may still have taken effect upstream, so check before calling again"
    return type(exc)(message, attempts=attempts)


async def _read_capped(response: httpx2.Response, limit: int) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        if size + len(chunk) > limit:
            chunks.append(chunk[: limit - size])
            return b"".join(chunks), True
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks), False


async def _wait(delay: float, deadline: float) -> bool:
    """Sleep `delay` seconds if that leaves time before `deadline`; say whether it did."""
    if anyio.current_time() + delay >= deadline:
        return False
    await anyio.sleep(delay)
    return True


def _with_idempotency_key(request: OutboundRequest, header: str) -> OutboundRequest:
    if any(name.lower() == header.lower() for name, _ in request.headers):
        return request  # configured by the operator: theirs wins
    # One key per call, the same on every attempt, so the upstream can spot the repeats.
    key = str(uuid.uuid4())
    return dataclasses.replace(request, headers=(*request.headers, (header, key)))


def _not_followed(location: str) -> str:
    """Why a redirect was handed back as the answer, for a tool that does not follow redirects."""
    # A long Location is left out rather than cut: a cut could split a secret past the redactor.
    to = f" to {location}" if len(location) <= MAX_LOCATION_SHOWN else ""
    return (
        f"The redirect{to} was not followed: this tool does not follow redirects (followRedirects: true in its "
        "definition follows them within the same origin)."
    )


def _redirected(request: OutboundRequest, status: int, target: str) -> OutboundRequest:
    if status == 303 or (status in (301, 302) and request.method == "POST"):
        # What browsers and httpx do: the follow-up is a GET without the body.
        headers = tuple((n, v) for n, v in request.headers if n.lower() not in ("content-type", "content-length"))
        return OutboundRequest(method="GET", url=target, headers=headers, body=None)
    return dataclasses.replace(request, url=target)


def _origin_change(url: str, target: str) -> str | None:
    """What differs between the origins of `url` and `target` ("host", "port", "scheme"), or None."""
    old, new = urlsplit(url), urlsplit(target)
    try:
        new_port = new.port
    except ValueError:  # a port that is not a number: certainly not our origin
        return "port"
    if (new.hostname or "").lower() != (old.hostname or "").lower():
        return "host"
    if new.scheme.lower() != old.scheme.lower():
        return "scheme"
    defaults = {"http": 80, "https": 443}
    if (new_port or defaults.get(new.scheme.lower())) != (old.port or defaults.get(old.scheme.lower())):
        return "port"
    return None


def _timed_out(seconds: float) -> str:
    return f"timed out after {seconds:g} s"


def _is_tls_failure(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return "SSL" in str(exc) or "certificate" in str(exc).lower()


def _reason(exc: Exception) -> str:
    """httpx's own text ("Connection refused"), else the OS reason beneath it, else the class name.

    Neither includes the URL, so no secret that lives in a URL reaches the message. A reset
    arrives as a `ReadError` with no text; the `ConnectionResetError` behind it says what happened.
    """
    if str(exc):
        return str(exc)
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno:
            return os.strerror(seen.errno)
        seen = seen.__cause__ or seen.__context__
    return type(exc).__name__
