"""Where the server may send requests: the egress (SSRF) policy.

Scheme, host and port come only from config, and the policy decides which of those are allowed:

- `check_url` runs at load on every tool's URL (scheme, host allowlist, literal addresses);
- `GuardedNetworkBackend` runs at connect time on the *resolved* addresses, and connects to the
  address it checked, so a DNS answer cannot change between the check and the use.

By default link-local and cloud-metadata addresses are refused (169.254.0.0/16, fe80::/10,
fd00:ec2::254, ...), plain HTTP is allowed only to loopback, and private ranges are allowed unless
`deny_private` is set.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import anyio
import httpcore2

__all__ = ["EgressDenied", "EgressPolicy", "GuardedNetworkBackend", "address_problem"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud metadata endpoints that do not sit in a link-local range.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "100.100.100.200",  # Alibaba Cloud metadata
    )
)
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


class EgressDenied(Exception):
    """The policy refuses this destination. The message names the host, never a path or query."""


@dataclass(frozen=True)
class EgressPolicy:
    allowed_hosts: frozenset[str] = field(default_factory=frozenset)  # empty: any host
    deny_private: bool = False
    allow_link_local: bool = False
    allow_http: bool = False

    def check_url(self, url: str, *, allow_http: bool = False) -> None:
        """Raise `EgressDenied` if a configured URL may not be called at all."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if self.allowed_hosts and not _host_allowed(host, self.allowed_hosts):
            raise EgressDenied(f"host {host!r} is not in the allowed upstream hosts")
        literal = _literal_address(host)
        if parts.scheme == "http" and not (allow_http or self.allow_http or _is_loopback_host(host, literal)):
            raise EgressDenied(
                f"plain http:// to {host!r} is refused; use https://, or set `allowHttp: true` on the tool "
                "(or --allow-http) if the network path is trusted"
            )
        if literal is not None:
            problem = address_problem(literal, self)
            if problem:
                raise EgressDenied(f"host {host!r} is {problem}")

    def check_address(self, host: str, address: IPAddress) -> None:
        problem = address_problem(address, self)
        if problem:
            raise EgressDenied(f"host {host!r} resolves to {address}, which is {problem}")


def address_problem(address: IPAddress, policy: EgressPolicy) -> str | None:
    """Why `policy` refuses `address`, or None."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES or address.is_link_local:
        if not policy.allow_link_local:
            return "a link-local or cloud-metadata address (refused unless --allow-link-local)"
        return None
    if address.is_unspecified or address.is_multicast:
        return "not a unicast address"
    if policy.deny_private and (address.is_private or address.is_loopback or address.is_reserved):
        return "a private, loopback or reserved address (refused by --deny-private)"
    return None


class GuardedNetworkBackend(httpcore2.AsyncNetworkBackend):
    """Resolves, checks every address against the policy, and connects to a checked one."""

    def __init__(self, policy: EgressPolicy, inner: httpcore2.AsyncNetworkBackend | None = None) -> None:
        self.policy = policy
        self.inner = inner or httpcore2.AnyIOBackend()

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):  # type: ignore[no-untyped-def]
        addresses = await self._resolve(host, port, timeout)
        # Every answer must pass: a name that resolves to one public and one metadata address is refused.
        for address in addresses:
            self.policy.check_address(host, address)
        last_error: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    str(address), port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except httpcore2.ConnectError as exc:
                last_error = exc
        raise httpcore2.ConnectError(_os_reason(last_error) if last_error else f"no address for {host}")

    async def connect_unix_socket(self, path, timeout=None, socket_options=None):  # type: ignore[no-untyped-def]
        raise EgressDenied("unix sockets are not an allowed upstream")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)

    async def _resolve(self, host: str, port: int, timeout: float | None) -> list[IPAddress]:
        literal = _literal_address(host)
        if literal is not None:
            return [literal]
        try:
            with anyio.fail_after(timeout):
                infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except TimeoutError:
            raise httpcore2.ConnectTimeout(f"resolving {host} timed out") from None
        except OSError as exc:
            raise httpcore2.ConnectError(f"could not resolve host {host!r} ({exc.strerror or exc})") from None
        addresses: list[IPAddress] = []
        for _family, _type, _proto, _canonical, sockaddr in infos:
            address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
            if address not in addresses:
                addresses.append(address)
        return addresses


def _os_reason(exc: BaseException) -> str:
    """The innermost OS reason ("Connection refused") behind anyio's "All connection attempts failed"."""
    reason = str(exc)
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno:
            reason = os.strerror(seen.errno)
        seen = seen.__cause__
    return reason


def _literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _is_loopback_host(host: str, literal: IPAddress | None) -> bool:
    return host in LOOPBACK_NAMES or (literal is not None and literal.is_loopback)


def _host_allowed(host: str, allowed: Iterable[str]) -> bool:
    """`api.example.com` matches itself; `.example.com` matches any subdomain."""
    for entry in allowed:
        entry = entry.lower()
        if host == entry or (entry.startswith(".") and host.endswith(entry)):
            return True
    return False
