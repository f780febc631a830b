"""Sending a built request upstream and reading its answer, within limits.

One `httpx2.AsyncClient` (one connection pool) serves the whole process; `create_http_client`
makes it with the settings a proxy for many callers needs. `Executor.send` returns an
`UpstreamResponse` or raises one of the specific `UpstreamError`s; it never follows redirects,
never keeps cookies, and stops reading a body at the size cap.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx2

from .requests import OutboundRequest

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "Executor",
    "RequestNotSent",
    "UpstreamError",
    "UpstreamResponse",
    "UpstreamTimeout",
    "UpstreamUnreachable",
    "create_http_client",
]

DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024


class UpstreamError(Exception):
    """The upstream could not give an HTTP answer. The message is safe to show the model."""


class UpstreamTimeout(UpstreamError):
    pass


class UpstreamUnreachable(UpstreamError):
    pass


class RequestNotSent(UpstreamError):
    """The request could not even be built, so nothing reached the upstream."""


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    status: int
    reason: str
    content_type: str
    body: bytes
    truncated: bool
    elapsed_ms: float

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def create_http_client(*, max_connections: int = 100) -> httpx2.AsyncClient:
    """The process-wide upstream client.

    `trust_env=False`: no proxy or `.netrc` credentials picked up from the environment behind
    the config's back. The cookie jar refuses every cookie: one caller's upstream session must
    never ride along on another caller's request.
    """
    return httpx2.AsyncClient(
        follow_redirects=False,
        trust_env=False,
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
        limits=httpx2.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        timeout=httpx2.Timeout(30.0),
    )


class Executor:
    """Sends `OutboundRequest`s over the shared client."""

    def __init__(self, client: httpx2.AsyncClient, *, max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES) -> None:
        self.client = client
        self.max_response_bytes = max_response_bytes

    async def send(self, request: OutboundRequest, *, timeout: float) -> UpstreamResponse:
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
                body, truncated = await self._read_capped(response)
            finally:
                await response.aclose()
            return UpstreamResponse(
                status=response.status_code,
                reason=response.reason_phrase,
                content_type=response.headers.get("content-type", ""),
                body=body,
                truncated=truncated,
                elapsed_ms=(time.perf_counter() - started) * 1000,
            )
        except httpx2.TimeoutException:
            raise UpstreamTimeout(f"timed out after {timeout:g} s") from None
        except httpx2.ConnectError as exc:
            raise UpstreamUnreachable(f"could not connect to the upstream API ({_reason(exc)})") from None
        except httpx2.HTTPError as exc:
            raise UpstreamError(f"the upstream connection failed ({type(exc).__name__}: {_reason(exc)})") from None

    async def _read_capped(self, response: httpx2.Response) -> tuple[bytes, bool]:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            if size + len(chunk) > self.max_response_bytes:
                chunks.append(chunk[: self.max_response_bytes - size])
                return b"".join(chunks), True
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks), False


def _reason(exc: Exception) -> str:
    # httpx errors carry the OS reason ("Connection refused"); the URL is not included,
    # so no secret that lives in a URL reaches the message.
    return str(exc) or type(exc).__name__
