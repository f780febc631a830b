"""Where the server may send requests: the egress (SSRF) policy.

Scheme, host and port come only from config, and the policy decides which of those are allowed:

- `check_url` runs at load on every tool's URL (scheme, host allowlist, literal addresses);
- `GuardedNetworkBackend` runs at connect time on the *resolved* addresses, and connects to the
  address it checked, so a DNS answer cannot change between the check and the use.

By default link-local and cloud-metadata addresses are refused (169.254.0.0/16, fe80::/10,
fd00:ec2::254, ...), plain HTTP is allowed only to loopback, and private ranges are allowed unless
`deny_private` is set.

Addresses are never parsed by hand. A host such as `2852039166`, `0251.0376.0251.0376` or
`0xa9fea9fe` is an IPv4 address to the system resolver (inet_aton rules), so the resolver itself
(`getaddrinfo` with `AI_NUMERICHOST`, which never touches the network) says what it means; its
IDNA step also reads `169。254。169。254` as `169.254.169.254`, as httpx does.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import anyio
import httpcore2
import httpx2

from .errors import EgressDenied

__all__ = [
    "LOOPBACK_HOSTS",
    "LOOPBACK_NAMES",
    "EgressPolicy",
    "GuardedNetworkBackend",
    "Resolver",
    "address_problem",
    "is_loopback_host",
    "resolve_host",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# (host, port, timeout) -> every address the name resolves to, in the resolver's order.
Resolver = Callable[[str, int, "float | None"], Awaitable[list[IPAddress]]]

# Cloud metadata endpoints that do not sit in a link-local range.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "100.100.100.200",  # Alibaba Cloud metadata
    )
)
# What counts as this machine, for every rule that treats it apart (plain http:// allowed, a
# `${...}` host left unmasked, the `Host` headers accepted): these names, and any address in
# 127.0.0.0/8 or ::1 however it is spelled (see `is_loopback_host`). Names are taken at their
# word, never resolved; `*.localhost` is not among them, as the system resolver may ask DNS.
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
# How clients spell this machine in a URL or a `Host` header: one address per family, one name.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
# IPv6 forms that carry an IPv4 address a packet may end up at (besides ::ffff:a.b.c.d).
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


@dataclass(frozen=True)
class EgressPolicy:
    allowed_hosts: frozenset[str] = field(default_factory=frozenset)  # empty: any host
    deny_private: bool = False
    allow_link_local: bool = False
    allow_http: bool = False

    def check_url(self, url: str, *, allow_http: bool = False) -> None:
        """Raise `EgressDenied` if a configured URL may not be called at all."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise EgressDenied(f"scheme {parts.scheme!r} is not allowed; upstream URLs are https:// (or http://)")
        host = (parts.hostname or "").lower()
        if self.allowed_hosts and not _host_allowed(host, self.allowed_hosts):
            raise EgressDenied(f"host {host!r} is not in the allowed upstream hosts")
        literal = _literal_address(host)
        if literal is not None:
            problem = address_problem(literal, self)
            if problem:
                raise EgressDenied(_literal_problem(host, literal, problem))
        elif self.deny_private and host in LOOPBACK_NAMES:
            raise EgressDenied(f"host {host!r} is a loopback name (refused by --deny-private)")
        try:
            httpx2.URL(url)
        except httpx2.InvalidURL as exc:
            # e.g. `0251.0376.0251.0376`: an address to the resolver, an error to httpx. Never callable.
            raise EgressDenied(f"host {host!r} cannot be used by the HTTP client ({exc})") from None
        if parts.scheme == "http" and not (allow_http or self.allow_http or is_loopback_host(host)):
            raise EgressDenied(
                f"plain http:// to {host!r} is refused; use https://, or set `allowHttp: true` on the tool "
                "(or --allow-http) if the network path is trusted"
            )

    def check_address(self, host: str, address: IPAddress) -> None:
        problem = address_problem(address, self)
        if problem:
            raise EgressDenied(f"host {host!r} resolves to {address}, which is {problem}")


def address_problem(address: IPAddress, policy: EgressPolicy) -> str | None:
    """Why `policy` refuses `address`, or None.

    An IPv6 address that carries an IPv4 one (::ffff:a.b.c.d, 6to4, NAT64, IPv4-compatible) is
    judged by the IPv4 address as well, since that is where such a packet can be delivered.
    """
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return _problem(address.ipv4_mapped, policy)  # the socket really talks IPv4
        embedded = _embedded_ipv4(address)
        if embedded is not None and (problem := _problem(embedded, policy)):
            return f"{problem}; it embeds the IPv4 address {embedded}"
    return _problem(address, policy)


def _problem(address: IPAddress, policy: EgressPolicy) -> str | None:
    if address in METADATA_ADDRESSES or address.is_link_local:
        if not policy.allow_link_local:
            return "a link-local or cloud-metadata address (refused unless --allow-link-local)"
        return None
    if address.is_unspecified or address.is_multicast:
        return "not a unicast address"
    # `is_global` is false for every private, loopback, reserved, shared (100.64/10), documentation
    # and benchmarking range: what "not the public internet" means.
    if policy.deny_private and not address.is_global:
        return "a private, loopback or reserved address (refused by --deny-private)"
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):  # not :: or ::1
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


async def resolve_host(host: str, port: int, timeout: float | None) -> list[IPAddress]:
    """The system resolver: every address `host` has, in its order, without repeats."""
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


class GuardedNetworkBackend(httpcore2.AsyncNetworkBackend):
    """Resolves, checks every address against the policy, and connects to a checked one.

    `resolver` defaults to `resolve_host` (looked up at each connect, so tests can stand in for DNS).
    """

    def __init__(
        self,
        policy: EgressPolicy,
        inner: httpcore2.AsyncNetworkBackend | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        self.policy = policy
        self.inner = inner or httpcore2.AnyIOBackend()
        self.resolver = resolver

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):  # type: ignore[no-untyped-def]
        # The allowlist was checked at load; checking again here keeps it true whatever built the URL.
        if self.policy.allowed_hosts and not _host_allowed(host.lower(), self.policy.allowed_hosts):
            raise EgressDenied(f"host {host!r} is not in the allowed upstream hosts")
        addresses = await self._resolve(host, port, timeout)
        # Every answer must pass: a name that resolves to one public and one metadata address is refused.
        for address in addresses:
            self.policy.check_address(host, address)
        last_error: Exception | None = None
        for address in addresses:
            try:
                # The checked address itself, never the name: a second lookup could answer differently.
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
        return await (self.resolver or resolve_host)(host, port, timeout)


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
    """The address `host` spells, by the resolver's own reading of numbers; None for a name."""
    text = host.strip("[]")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if not text or any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in text):
        return None  # the C resolver would stop at a NUL and read only the part before it
    try:
        infos = socket.getaddrinfo(text, None, flags=socket.AI_NUMERICHOST)
    except (OSError, UnicodeError, ValueError):
        return None
    return ipaddress.ip_address(str(infos[0][4][0]).split("%", 1)[0])


def _literal_problem(host: str, address: IPAddress, problem: str) -> str:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:  # a spelling only the resolver reads as an address: say which address
        return f"host {host!r} means {address}, which is {problem}"
    return f"host {host!r} is {problem}"


def is_loopback_host(host: str) -> bool:
    """Whether `host` (a URL's host: any case, an IPv6 address with or without brackets) is this machine.

    One of `LOOPBACK_NAMES`, or an address in 127.0.0.0/8 or ::1 in any spelling the resolver
    reads (`127.1`, `2130706433`, `::ffff:127.0.0.1`: an IPv4-mapped address is its IPv4 one).
    """
    host = host.lower()
    if host in LOOPBACK_NAMES:
        return True
    address = _literal_address(host)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address is not None and address.is_loopback


def _host_allowed(host: str, allowed: Iterable[str]) -> bool:
    """`api.example.com` matches itself; `.example.com` matches any subdomain."""
    for entry in allowed:
        entry = entry.lower()
        if host == entry or (entry.startswith(".") and host.endswith(entry)):
            return True
    return False
