"""The egress (SSRF) policy: where upstream calls may go, checked at load and again at connect time.

At load, every tool's URL must pass `EgressPolicy.check_url` (a config error naming file, tool and
field). At connect time `GuardedNetworkBackend` checks every address the host *resolves* to and
connects to the very address it checked, so DNS cannot answer differently in between. Name
resolution is replaced by a fake resolver in these tests: nothing here looks up an outside name.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpcore2
import httpx2
import pytest
import trustme
import uvicorn
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from support import ERAS, Upstream, bound_socket, hamsa_tool, serve_asgi, write_tools

from mcp_webtools import egress
from mcp_webtools.cli import commands as cli
from mcp_webtools.egress import LOOPBACK_HOSTS, EgressPolicy, GuardedNetworkBackend, IPAddress, is_loopback_host
from mcp_webtools.errors import ConfigErrors, EgressDenied
from mcp_webtools.loading import ConfigProblem, load_definitions
from mcp_webtools.serving.http_app import HttpSettings, build_http_app
from mcp_webtools.serving.runtime import ServerOptions, open_webtools

LINK_LOCAL = "a link-local or cloud-metadata address (refused unless --allow-link-local)"
PRIVATE = "a private, loopback or reserved address (refused by --deny-private)"
NOT_UNICAST = "not a unicast address"
METADATA_IP = "169.254.169.254"


def check(url: str, policy: EgressPolicy | None = None, **kwargs: Any) -> str | None:
    """The refusal message for `url`, or None when the policy allows it."""
    try:
        (policy or EgressPolicy()).check_url(url, **kwargs)
    except EgressDenied as exc:
        return str(exc)
    return None


# -- at load: literal addresses, in every spelling ---------------------------------------------------


def urls(problem: str, *hosts: str, scheme: str = "https", means: str = "") -> list[tuple[str, str]]:
    """(URL, refusal) pairs; `means` is the address a spelling only the resolver understands stands for."""
    said = f"means {means}, which is" if means else "is"
    return [(f"{scheme}://{host}/", f"host {host.strip('[]')!r} {said} {problem}") for host in hosts]


EMBEDS_METADATA = f"{LINK_LOCAL}; it embeds the IPv4 address {METADATA_IP}"
LINK_LOCAL_URLS = [
    *urls(LINK_LOCAL, METADATA_IP, "169.254.0.1", "169.254.255.255", "[fe80::1]", "[fe80::1%25eth0]"),
    *urls(LINK_LOCAL, "[febf:ffff::1]", "[fd00:ec2::254]", "100.100.100.200"),  # fe80::/10's top, AWS v6, Alibaba
    *urls(LINK_LOCAL, "[::ffff:169.254.169.254]", "[::ffff:a9fe:a9fe]", "[0:0:0:0:0:ffff:169.254.169.254]"),
    *urls(EMBEDS_METADATA, "[64:ff9b::a9fe:a9fe]", "[2002:a9fe:a9fe::]", "[::a9fe:a9fe]"),  # NAT64, 6to4, v4-compat
    # Spellings the system resolver reads as 169.254.169.254 (inet_aton rules) but ipaddress does not;
    # the last has ideographic full stops, which IDNA (and httpx) turn into dots.
    *urls(LINK_LOCAL, "2852039166", "0251.0376.0251.0376", "0xa9.0xfe.0xa9.0xfe", "0xa9fea9fe", means=METADATA_IP),
    *urls(LINK_LOCAL, "169.254.43518", "169.16689662", "0251.254.169.254", means=METADATA_IP),
    *urls(LINK_LOCAL, "169\u3002254\u3002169\u3002254", means=METADATA_IP),
]
FULLWIDTH = "\uff41\uff50\uff49.example.com"
OTHER_REFUSED_URLS = [
    *urls(NOT_UNICAST, "0.0.0.0", "[::]", "224.0.0.1", "[ff02::1]"),
    *urls(NOT_UNICAST, "0", means="0.0.0.0"),  # Linux delivers 0.0.0.0 to loopback
    (
        f"https://{FULLWIDTH}/",
        f"host {FULLWIDTH!r} cannot be used by the HTTP client (Invalid IDNA hostname: {FULLWIDTH!r})",
    ),
]


@pytest.mark.parametrize(("url", "message"), LINK_LOCAL_URLS + OTHER_REFUSED_URLS)
def test_link_local_metadata_and_non_unicast_hosts_are_refused_by_default(url, message):
    assert check(url) == message
    # Neither per-tool allowHttp nor --allow-http nor --deny-private changes that.
    assert check(url, EgressPolicy(allow_http=True, deny_private=True), allow_http=True) == message
    # --allow-link-local does not open the other refusals.
    if (url, message) in OTHER_REFUSED_URLS:
        assert check(url, EgressPolicy(allow_link_local=True)) == message


@pytest.mark.parametrize(("url", "message"), LINK_LOCAL_URLS)
def test_allow_link_local_lets_metadata_addresses_through(url, message):
    host = url.split("/")[2]
    if host.startswith("0251."):
        # The resolver reads octal; httpx refuses it, so the tool could never be called anyway.
        unusable = f"host {host!r} cannot be used by the HTTP client (Invalid IPv4 address: {host!r})"
        assert check(url, EgressPolicy(allow_link_local=True)) == unusable
    else:
        assert check(url, EgressPolicy(allow_link_local=True)) is None


PRIVATE_URLS = [
    *urls(PRIVATE, "10.0.0.5", "172.16.0.1", "192.168.1.10", "100.64.0.1", "192.0.2.1"),  # CGNAT, documentation
    *urls(PRIVATE, "[fc00::1]", "[::ffff:10.0.0.1]"),
    *urls(f"{PRIVATE}; it embeds the IPv4 address 10.0.0.1", "[2002:a00:1::]"),
    *urls(PRIVATE, "127.0.0.1", "[::1]", scheme="http"),
    *urls(PRIVATE, "127.1", "2130706433", "0x7f.1", scheme="http", means="127.0.0.1"),
    ("http://localhost:3000/", "host 'localhost' is a loopback name (refused by --deny-private)"),
]
PUBLIC_URLS = [
    "https://api.example.com/v1",
    "https://8.8.8.8/",
    "https://[2001:4860:4860::8888]/",
    "https://[::ffff:8.8.8.8]/",
    "https://[2002:808:808::]/",  # 6to4 around a public address
    "https://134744072/",  # 8.8.8.8 spelled as one number
]


@pytest.mark.parametrize(("url", "message"), PRIVATE_URLS)
def test_private_and_loopback_hosts_are_allowed_unless_deny_private(url, message):
    assert check(url) is None
    assert check(url, EgressPolicy(deny_private=True)) == message


@pytest.mark.parametrize("url", PUBLIC_URLS)
def test_public_hosts_pass_even_with_deny_private(url):
    assert check(url) is None
    assert check(url, EgressPolicy(deny_private=True)) is None


# -- at load: plain HTTP and the host allowlist --------------------------------------------------------

HTTP_REFUSED = (
    "plain http:// to {host!r} is refused; use https://, or set `allowHttp: true` on the tool "
    "(or --allow-http) if the network path is trusted"
)


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://api.example.com/x", "api.example.com"),
        ("http://10.0.0.5/", "10.0.0.5"),  # private is not loopback
        ("http://localhost.example.com/", "localhost.example.com"),
        ("http://127.0.0.1.example.com/", "127.0.0.1.example.com"),
    ],
)
def test_plain_http_needs_loopback_or_an_explicit_allowance(url, host):
    assert check(url) == HTTP_REFUSED.format(host=host)
    assert check(url, allow_http=True) is None  # the tool's allowHttp
    assert check(url, EgressPolicy(allow_http=True)) is None  # --allow-http
    assert check(url.replace("http://", "https://", 1)) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/x",
        "http://[::1]/",
        "http://localhost/",
        "http://127.1/",
        "http://2130706433/",
        "http://LOCALHOST.localdomain/",
        "http://[::ffff:127.0.0.1]/",
    ],
)
def test_plain_http_to_loopback_is_allowed(url):
    assert check(url) is None


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        *[(name, True) for name in ("localhost", "LocalHost", "localhost.localdomain", "ip6-localhost")],
        *[(address, True) for address in ("127.0.0.1", "127.255.0.9", "127.1", "2130706433", "0x7f000001")],
        *[(address, True) for address in ("::1", "[::1]", "::ffff:127.0.0.1", "[::ffff:7f00:1]")],
        *[(name, False) for name in ("", "example.com", "localhost.example.com", "127.0.0.1.example.com")],
        *[(name, False) for name in ("app.localhost", "localhost.")],  # resolved by someone else, maybe DNS
        *[(address, False) for address in ("0.0.0.0", "::", "10.0.0.1", "128.0.0.1", "::2", "::ffff:10.0.0.1")],
    ],
)
def test_which_hosts_are_loopback(host, loopback):
    """The one definition every loopback rule uses (plain http, unmasked hosts, accepted `Host`s)."""
    assert is_loopback_host(host) is loopback


def test_the_loopback_spellings_are_loopback():
    assert LOOPBACK_HOSTS == ("127.0.0.1", "localhost", "[::1]")
    assert all(is_loopback_host(host) for host in LOOPBACK_HOSTS)


@pytest.mark.parametrize("scheme", ["ftp", "file", "gopher", "ws"])
def test_only_http_and_https_schemes_pass(scheme):
    refusal = f"scheme {scheme!r} is not allowed; upstream URLs are https:// (or http://)"
    assert check(f"{scheme}://127.0.0.1/x", EgressPolicy(allow_http=True, allow_link_local=True)) == refusal


ALLOWLIST = EgressPolicy(allowed_hosts=frozenset({"api.example.com", ".corp.example", METADATA_IP}))


@pytest.mark.parametrize(
    "url",
    [
        "https://api.example.com/x",
        "https://API.Example.COM:8443/x",
        "https://a.corp.example/",
        "https://a.b.corp.example/",
    ],
)
def test_allowlisted_hosts_pass(url):
    assert check(url, ALLOWLIST) is None


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://example.com/", "example.com"),
        ("https://evil-api.example.com/", "evil-api.example.com"),
        ("https://api.example.com.evil.net/", "api.example.com.evil.net"),
        ("https://api.example.com./", "api.example.com."),
        ("https://corp.example/", "corp.example"),  # `.corp.example` means subdomains only
        ("https://evilcorp.example/", "evilcorp.example"),
        ("https://corp.example.evil.net/", "corp.example.evil.net"),
        ("https://10.0.0.5/", "10.0.0.5"),
    ],
)
def test_hosts_off_the_allowlist_are_refused(url, host):
    assert check(url, ALLOWLIST) == f"host {host!r} is not in the allowed upstream hosts"


def test_the_allowlist_never_lets_a_metadata_address_through():
    assert check(f"https://{METADATA_IP}/", ALLOWLIST) == f"host '{METADATA_IP}' is {LINK_LOCAL}"


# -- at load: the config error names file, tool and field; the CLI flags ---------------------------------


def test_a_config_pointing_at_metadata_fails_to_load_naming_file_tool_and_field(tmp_path):
    hamsa = write_tools(
        tmp_path, [hamsa_tool("Meta", f"http://{METADATA_IP}/latest"), hamsa_tool("Ok", "https://a.example/")]
    )
    guide = {"name": "Guide", "methodType": "GET", "url": "https://${META_HOST}/x", "parameters": {"type": "object"}}
    guide_file = write_tools(tmp_path, guide, "guide.yaml")
    with pytest.raises(ConfigErrors) as caught:
        load_definitions([hamsa, guide_file], environ={"META_HOST": "2852039166"})
    assert caught.value.errors == [
        ConfigProblem(str(hamsa), f"host '{METADATA_IP}' is {LINK_LOCAL}", "Meta", "[0].toolSettings.serverUrl"),
        # The host came from the environment, so it is hidden like any other `${...}` value.
        ConfigProblem(str(guide_file), f"host '***' means {METADATA_IP}, which is {LINK_LOCAL}", "Guide", "url"),
    ]


def test_per_tool_allow_http_is_read_from_config(tmp_path):
    config = write_tools(tmp_path, [{**hamsa_tool("Plain", "http://api.example.com/x"), "allowHttp": True}])
    assert [d.mcp_name for d in load_definitions([config], environ={}).definitions] == ["plain"]


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`cli.main(argv)` -> (exit code, stdout, stderr), leaving the test process's logging as it was."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        code = cli.main(list(argv))
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def flag_config(tmp_path, monkeypatch) -> str:
    monkeypatch.delenv("MCP_WEBTOOLS_UPSTREAM_HOSTS", raising=False)
    tools = [hamsa_tool("Meta", f"https://{METADATA_IP}/x"), hamsa_tool("Loop", "http://localhost:9/x")]
    return str(write_tools(tmp_path, tools))


def config_errors(config: str, *errors: tuple[str, str]) -> str:
    """What the CLI prints on stderr for `(tool, message)` errors in `flag_config`."""
    index = {"Meta": 0, "Loop": 1, "Plain": 0}
    lines = [f"  - {config}: tool {tool!r}: field `[{index[tool]}].toolSettings.serverUrl`: {m}" for tool, m in errors]
    return "\n".join([f"{len(errors)} config error{'s' if len(errors) > 1 else ''}:", *lines]) + "\n"


@pytest.mark.parametrize(
    ("flags", "errors"),
    [
        ([], [("Meta", f"host '{METADATA_IP}' is {LINK_LOCAL}")]),
        (["--allow-link-local"], []),
        (
            ["--allow-link-local", "--deny-private"],
            [("Loop", "host 'localhost' is a loopback name (refused by --deny-private)")],
        ),
        (
            ["--allow-link-local", "--allow-upstream-host", METADATA_IP],
            [("Loop", "host 'localhost' is not in the allowed upstream hosts")],
        ),
        (
            ["--allow-upstream-host", "localhost"],
            [("Meta", f"host '{METADATA_IP}' is not in the allowed upstream hosts")],
        ),
    ],
)
@pytest.mark.parametrize("command", ["validate", "list", "call", "serve"])
def test_egress_flags_on_every_command(capsys, flag_config, monkeypatch, command, flags, errors):
    served: list[object] = []

    async def fake_serve_stdio(webtools, reloader=None, **options) -> None:
        served.append(webtools)

    monkeypatch.setattr(cli, "serve_stdio", fake_serve_stdio)
    argv = {
        "validate": ["validate", flag_config],
        "list": ["list", flag_config],
        "call": ["call", "meta", "--dry-run", "--config", flag_config],
        "serve": ["serve", "--config", flag_config],
    }[command]
    code, out, err = run_cli(capsys, *argv, *flags)
    if errors:
        assert (code, out, err) == (1, "", config_errors(flag_config, *errors))
    else:
        assert code == 0, err
    assert len(served) == (command == "serve" and not errors)
    if command == "call" and not errors:
        assert out.startswith(f"GET /x HTTP/1.1\nHost: {METADATA_IP}\n")


def test_upstream_hosts_come_from_the_environment_too(capsys, flag_config, monkeypatch):
    monkeypatch.setenv("MCP_WEBTOOLS_UPSTREAM_HOSTS", f"{METADATA_IP}, localhost")
    assert run_cli(capsys, "validate", flag_config, "--allow-link-local")[0] == 0
    monkeypatch.setenv("MCP_WEBTOOLS_UPSTREAM_HOSTS", "localhost")
    refused = ("Meta", f"host '{METADATA_IP}' is not in the allowed upstream hosts")
    assert run_cli(capsys, "validate", flag_config, "--allow-link-local") == (
        1,
        "",
        config_errors(flag_config, refused),
    )


def test_allow_http_flag_allows_plain_http_to_any_host(capsys, tmp_path):
    config = str(write_tools(tmp_path, [hamsa_tool("Plain", "http://api.example.com/x")]))
    refused = ("Plain", HTTP_REFUSED.format(host="api.example.com"))
    assert run_cli(capsys, "validate", config) == (1, "", config_errors(config, refused))
    assert run_cli(capsys, "validate", config, "--allow-http")[0] == 0


# -- at connect time: the resolved address is checked, and it is the one connected to -----------------


class FakeDNS:
    """Stands in for the system resolver: each lookup of a name takes its next answer (the last repeats)."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self.answers = answers
        self.lookups: list[str] = []

    async def __call__(self, host: str, port: int, timeout: float | None) -> list[IPAddress]:
        self.lookups.append(host)
        if host not in self.answers:
            raise httpcore2.ConnectError(f"could not resolve host {host!r} (Name or service not known)")
        answers = self.answers[host]
        answer = answers[min(self.lookups.count(host), len(answers)) - 1]
        return [ipaddress.ip_address(a) for a in answer]


class RecordingBackend(httpcore2.AsyncNetworkBackend):
    """Records where it is asked to connect; refuses the hosts in `refuse` like a closed port."""

    def __init__(self, refuse: tuple[str, ...] = ()) -> None:
        self.connects: list[tuple[str, int]] = []
        self.refuse = refuse
        self.stream = object()

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):  # type: ignore[no-untyped-def]
        self.connects.append((host, port))
        if host in self.refuse:
            raise httpcore2.ConnectError("All connection attempts failed")
        return self.stream


def guarded(dns: FakeDNS | None = None, policy: EgressPolicy | None = None, **inner: Any):
    backend = RecordingBackend(**inner)
    return GuardedNetworkBackend(policy or EgressPolicy(), backend, resolver=dns), backend


async def refusal(backend: GuardedNetworkBackend, host: str, port: int = 443) -> str:
    with pytest.raises(EgressDenied) as caught:
        await backend.connect_tcp(host, port)
    return str(caught.value)


@pytest.mark.anyio
async def test_connects_to_the_checked_address_so_a_rebinding_answer_is_never_used():
    # A rebinding DNS server: a harmless answer first, the metadata address on every later lookup.
    dns = FakeDNS({"rebind.test": [["127.0.0.1"], [METADATA_IP]]})
    backend, inner = guarded(dns)
    assert await backend.connect_tcp("rebind.test", 443) is inner.stream
    # The inner backend got the address literal: it has nothing left to resolve, so no second lookup.
    assert (inner.connects, dns.lookups) == ([("127.0.0.1", 443)], ["rebind.test"])
    # The next connection resolves again, and the new answer is checked before any use.
    assert (
        await refusal(backend, "rebind.test") == f"host 'rebind.test' resolves to {METADATA_IP}, which is {LINK_LOCAL}"
    )
    assert (inner.connects, dns.lookups) == ([("127.0.0.1", 443)], ["rebind.test", "rebind.test"])


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("answer", "policy", "message"),
    [
        (["93.184.216.34", METADATA_IP], EgressPolicy(), f"resolves to {METADATA_IP}, which is {LINK_LOCAL}"),
        (["::ffff:169.254.169.254"], EgressPolicy(), f"resolves to ::ffff:a9fe:a9fe, which is {LINK_LOCAL}"),
        (["fd00:ec2::254"], EgressPolicy(), f"resolves to fd00:ec2::254, which is {LINK_LOCAL}"),
        (["fe80::1"], EgressPolicy(), f"resolves to fe80::1, which is {LINK_LOCAL}"),
        (["0.0.0.0"], EgressPolicy(), f"resolves to 0.0.0.0, which is {NOT_UNICAST}"),
        (["10.1.2.3"], EgressPolicy(deny_private=True), f"resolves to 10.1.2.3, which is {PRIVATE}"),
        (["8.8.8.8", "127.0.0.1"], EgressPolicy(deny_private=True), f"resolves to 127.0.0.1, which is {PRIVATE}"),
    ],
)
async def test_a_name_is_refused_when_any_address_it_resolves_to_is(answer, policy, message):
    dns = FakeDNS({"api.test": [answer]})
    backend, inner = guarded(dns, policy)
    assert await refusal(backend, "api.test") == f"host 'api.test' {message}"
    assert inner.connects == []


@pytest.mark.anyio
async def test_every_checked_address_is_tried_in_order():
    dns = FakeDNS({"api.test": [["127.0.0.1", "::1"]], "down.test": [["127.0.0.1"]]})
    backend, inner = guarded(dns, refuse=("127.0.0.1",))
    assert await backend.connect_tcp("api.test", 8080) is inner.stream
    assert inner.connects == [("127.0.0.1", 8080), ("::1", 8080)]
    with pytest.raises(httpcore2.ConnectError, match="^All connection attempts failed$"):
        await backend.connect_tcp("down.test", 8080)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("2852039166", f"resolves to {METADATA_IP}, which is {LINK_LOCAL}"),
        ("0xa9fea9fe", f"resolves to {METADATA_IP}, which is {LINK_LOCAL}"),
        ("::ffff:169.254.169.254", f"resolves to ::ffff:a9fe:a9fe, which is {LINK_LOCAL}"),
        ("0", f"resolves to 0.0.0.0, which is {NOT_UNICAST}"),
    ],
)
async def test_numeric_hosts_are_read_by_the_resolver_rules_without_a_lookup(host, message):
    dns = FakeDNS({})
    backend, inner = guarded(dns)
    assert await refusal(backend, host, 80) == f"host {host!r} {message}"
    assert (dns.lookups, inner.connects) == ([], [])


@pytest.mark.anyio
async def test_the_allowlist_is_checked_again_before_any_lookup():
    dns = FakeDNS({"api.test": [["8.8.8.8"]], "other.test": [["8.8.8.8"]]})
    backend, inner = guarded(dns, EgressPolicy(allowed_hosts=frozenset({"api.test"})))
    assert await refusal(backend, "other.test") == "host 'other.test' is not in the allowed upstream hosts"
    assert await backend.connect_tcp("api.test", 443) is inner.stream
    assert (dns.lookups, inner.connects) == (["api.test"], [("8.8.8.8", 443)])


@pytest.mark.anyio
async def test_unix_sockets_are_refused():
    backend, _ = guarded()
    with pytest.raises(EgressDenied, match="^unix sockets are not an allowed upstream$"):
        await backend.connect_unix_socket("/var/run/docker.sock")


@pytest.mark.anyio
async def test_localhost_is_refused_at_connect_time_with_deny_private():
    # The system resolver (localhost is answered from the hosts file, never from DNS).
    backend, inner = guarded(policy=EgressPolicy(deny_private=True))
    message = await refusal(backend, "localhost", 80)
    assert message in {f"host 'localhost' resolves to {ip}, which is {PRIVATE}" for ip in ("127.0.0.1", "::1")}
    assert inner.connects == []


# -- at connect time, through the whole server ------------------------------------------------------------


@asynccontextmanager
async def served_client(config: Path, era: str, options: ServerOptions | None = None) -> AsyncIterator[Client]:
    """A real MCP client over in-process Streamable HTTP, against a server built with `options`."""
    webtools = open_webtools([str(config)], environ=os.environ, options=options or ServerOptions())
    async with serve_asgi(build_http_app(webtools, HttpSettings())) as base:
        http = httpx2.AsyncClient(timeout=httpx2.Timeout(30, read=60))
        async with http, Client(streamable_http_client(f"{base}/mcp", http_client=http), mode=era) as client:
            yield client


def port_of(url: str) -> int:
    return httpx2.URL(url).port or 80


@pytest.mark.anyio
@pytest.mark.parametrize("era", ERAS)
async def test_the_server_connects_to_the_resolved_address_and_sends_the_configured_host(
    upstream: Upstream, tmp_path, monkeypatch, era
):
    dns = FakeDNS({"upstream.test": [["127.0.0.1"], [METADATA_IP]]})
    monkeypatch.setattr(egress, "resolve_host", dns)
    port = port_of(upstream.url)
    config = write_tools(tmp_path, [{**hamsa_tool("Pinned", f"http://upstream.test:{port}/pinned"), "allowHttp": True}])
    async with served_client(config, era) as client:
        result = await client.call_tool("pinned", {})
    assert result.is_error is False, result.content
    assert [(r.method, r.raw_path, r.headers["host"]) for r in upstream.requests] == [
        ("GET", "/pinned", f"upstream.test:{port}")
    ]
    assert dns.lookups == ["upstream.test"]


@pytest.mark.anyio
@pytest.mark.parametrize("era", ERAS)
async def test_names_resolving_to_refused_addresses_are_tool_errors(upstream: Upstream, tmp_path, monkeypatch, era):
    port = port_of(upstream.url)
    dns = FakeDNS({"metadata.test": [[METADATA_IP]], "private.test": [["10.1.2.3"]], "loop.test": [["127.0.0.1"]]})
    monkeypatch.setattr(egress, "resolve_host", dns)
    tools = [
        hamsa_tool("Metadata", "https://metadata.test/latest/meta-data"),
        hamsa_tool("Private", "https://private.test/x", "POST"),
        {**hamsa_tool("Loop", f"http://loop.test:{port}/x"), "allowHttp": True},  # the live upstream, refused
    ]
    options = ServerOptions(egress=EgressPolicy(deny_private=True))
    async with served_client(write_tools(tmp_path, tools), era, options) as client:
        results = {name: await client.call_tool(name, {}) for name in ("metadata", "private", "loop")}
    refused = "failed: the egress policy refused the connection: host"
    assert {name: (r.is_error, r.content[0].text) for name, r in results.items()} == {
        "metadata": (
            True,
            f"Calling 'metadata' {refused} 'metadata.test' resolves to {METADATA_IP}, which is {LINK_LOCAL}.",
        ),
        "private": (True, f"Calling 'private' {refused} 'private.test' resolves to 10.1.2.3, which is {PRIVATE}."),
        "loop": (True, f"Calling 'loop' {refused} 'loop.test' resolves to 127.0.0.1, which is {PRIVATE}."),
    }
    # A refusal is final: no retry, one lookup per call, and nothing reached the upstream.
    assert (dns.lookups, upstream.requests) == (["metadata.test", "private.test", "loop.test"], [])


# -- pinning keeps TLS honest: the certificate is verified against the name, not the address -------------


@asynccontextmanager
async def tls_upstream(cert: trustme.LeafCert) -> AsyncIterator[tuple[Upstream, int]]:
    app = Upstream()
    sock = bound_socket()
    with cert.private_key_and_cert_chain_pem.tempfile() as pem:
        config = uvicorn.Config(app, log_config=None, lifespan="off", ssl_certfile=pem, ssl_keyfile=pem)
        server = uvicorn.Server(config)
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve, [sock])
            try:
                yield app, sock.getsockname()[1]
            finally:
                server.should_exit = True


@pytest.mark.anyio
async def test_a_pinned_tls_connection_still_verifies_the_certificate_against_the_name():
    ca = trustme.CA()
    context = ssl.create_default_context()
    ca.configure_trust(context)
    dns = FakeDNS({"upstream.test": [["127.0.0.1"]], "impostor.test": [["127.0.0.1"]]})
    transport = httpx2.AsyncHTTPTransport(verify=context, trust_env=False)
    transport._pool._network_backend = GuardedNetworkBackend(EgressPolicy(), resolver=dns)
    async with (
        tls_upstream(ca.issue_cert("upstream.test")) as (app, port),
        httpx2.AsyncClient(transport=transport) as http,
    ):
        response = await http.get(f"https://upstream.test:{port}/tls")
        assert (response.status_code, response.json()["path"]) == (200, "/tls")
        # Same address, another name: the certificate does not match it, so the handshake fails.
        with pytest.raises(httpx2.ConnectError, match="certificate verify failed: Hostname mismatch"):
            await http.get(f"https://impostor.test:{port}/tls")
    assert [r.headers["host"] for r in app.requests] == [f"upstream.test:{port}"]
    assert dns.lookups == ["upstream.test", "impostor.test"]
