"""The command line's shared options, their value types, and how they become settings.

`commands.py` builds the commands from these; `server_options` and `config_paths` turn parsed
arguments into what `runtime` takes.
"""

from __future__ import annotations

import argparse
import math
import os
import re
from collections.abc import Mapping
from typing import Any

from ..egress import EgressPolicy
from ..executor import DEFAULT_MAX_RESPONSE_BYTES
from ..limits import DEFAULT_MAX_CONCURRENCY, DEFAULT_MAX_QUEUE
from ..requests import DEFAULT_MAX_REQUEST_BYTES
from ..serving.jsonrpc_input import DEFAULT_MAX_BODY_BYTES
from ..serving.resource_server import OAuthSettings, settings_problems
from ..serving.runtime import DEFAULT_SHUTDOWN_GRACE, ServerOptions, env_list
from ..serving.state import state_url_problem

__all__ = [
    "DEFAULT_CONFIG",
    "config_option",
    "config_paths",
    "egress_options",
    "http_options",
    "limit_options",
    "oauth_settings",
    "non_negative_float",
    "non_negative_int",
    "port_number",
    "positive_float",
    "positive_int",
    "server_options",
    "state_url",
]

DEFAULT_CONFIG = "config"


def config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        action="append",
        metavar="PATH",
        help="a tool definition file or folder; repeatable (default: $MCP_WEBTOOLS_CONFIG or config/)",
    )


def http_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=port_number, default=8000, help="HTTP port (default 8000; 0: any free port)")
    parser.add_argument(
        "--auth-token",
        default=os.environ.get("MCP_WEBTOOLS_AUTH_TOKEN"),
        help="require `Authorization: Bearer <token>` on HTTP (prefer $MCP_WEBTOOLS_AUTH_TOKEN)",
    )
    _repeatable(
        parser, "--allowed-host", "MCP_WEBTOOLS_ALLOWED_HOSTS", "HOST",
        "an extra Host header to accept (DNS-rebinding protection); repeatable",
    )  # fmt: skip
    _repeatable(
        parser, "--allowed-origin", "MCP_WEBTOOLS_ALLOWED_ORIGINS", "ORIGIN",
        "an extra Origin to accept, e.g. https://app.example.com; repeatable",
    )  # fmt: skip
    parser.add_argument("--stateless", action="store_true", help="no legacy sessions (any replica can answer)")
    parser.add_argument(
        "--hot-path",
        action=argparse.BooleanOptionalAction,
        default=os.environ.get("MCP_WEBTOOLS_HOT_PATH", "on").strip().lower() not in ("off", "0", "false", "no"),
        help="answer tools/call and tools/list without the SDK's per-request machinery, stdio and HTTP "
        "(default on; --no-hot-path or MCP_WEBTOOLS_HOT_PATH=off: the SDK answers everything)",
    )
    parser.add_argument(
        "--metrics-public",
        action="store_true",
        help="serve /metrics without the --auth-token (it lists tool names and call counts)",
    )
    parser.add_argument(
        "--ui",
        action="store_true",
        help="serve the web console at /ui (HTTP only; behind --auth-token like /mcp)",
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=os.environ.get("MCP_WEBTOOLS_WORKERS", "1"),
        metavar="N",
        help="HTTP worker processes sharing the port; needs --stateless (default 1 or $MCP_WEBTOOLS_WORKERS)",
    )
    oauth = parser.add_argument_group("OAuth resource server (docs/security.md)")
    for option, variable, described in (
        ("--oauth-issuer", "MCP_WEBTOOLS_OAUTH_ISSUER", "accept access tokens of this authorization server"),
        ("--oauth-audience", "MCP_WEBTOOLS_OAUTH_AUDIENCE", "this server's resource URL, e.g. https://mcp.example.com/mcp"),
        ("--oauth-introspection-url", "MCP_WEBTOOLS_OAUTH_INTROSPECTION_URL", "RFC 7662 endpoint for opaque tokens"),
        ("--oauth-client-id", "MCP_WEBTOOLS_OAUTH_CLIENT_ID", "our client id at the introspection endpoint"),
        ("--oauth-client-secret", "MCP_WEBTOOLS_OAUTH_CLIENT_SECRET", "its secret; ${NAME} reads $NAME"),
    ):  # fmt: skip
        oauth.add_argument(option, default=os.environ.get(variable), metavar="V", help=f"{described} (or ${variable})")
    _repeatable(
        oauth, "--oauth-token-audience", "MCP_WEBTOOLS_OAUTH_TOKEN_AUDIENCES", "AUD",
        "also accept tokens whose aud is AUD (Entra ID: the API's application id); repeatable",
    )  # fmt: skip
    oauth.add_argument(
        "--oauth-scopes",
        nargs="+",
        default=os.environ.get("MCP_WEBTOOLS_OAUTH_SCOPES", "").split(),
        metavar="SCOPE",
        help="scopes to advertise (scopes_supported) and ask for in a 401 (or $MCP_WEBTOOLS_OAUTH_SCOPES)",
    )
    parser.add_argument(
        "--state",
        type=state_url,
        default=os.environ.get("MCP_WEBTOOLS_STATE") or None,
        metavar="URL",
        help="share rate limits, 429 pauses and task handles across replicas on Redis, e.g. redis://host:6379/0 "
        "(needs mcp-webtools[redis]; default: per process, or $MCP_WEBTOOLS_STATE)",
    )
    parser.add_argument(
        "--shutdown-grace",
        type=non_negative_float,
        default=DEFAULT_SHUTDOWN_GRACE,
        metavar="SECONDS",
        help="on SIGTERM, how long in-flight calls may finish before they are cancelled "
        f"(default {DEFAULT_SHUTDOWN_GRACE:g})",
    )
    parser.add_argument(
        "--max-inbound-bytes",
        type=positive_int,
        default=DEFAULT_MAX_BODY_BYTES,
        metavar="N",
        help="answer 413 to HTTP request bodies (JSON-RPC messages) over N bytes "
        f"(default {_mib(DEFAULT_MAX_BODY_BYTES)})",
    )


def _repeatable(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup, option: str, variable: str, metavar: str, help: str
) -> None:
    """A repeatable option whose default is the comma-separated list in `$variable`."""
    parser.add_argument(option, action="append", default=env_list(variable), metavar=metavar, help=help)


def limit_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("limits")
    group.add_argument(
        "--max-response-bytes",
        type=positive_int,
        default=DEFAULT_MAX_RESPONSE_BYTES,
        metavar="N",
        help=f"stop reading an upstream body after N bytes (default {_mib(DEFAULT_MAX_RESPONSE_BYTES)}; "
        "per tool: maxResponseBytes)",
    )
    group.add_argument(
        "--max-request-bytes",
        type=positive_int,
        default=DEFAULT_MAX_REQUEST_BYTES,
        metavar="N",
        help=f"refuse calls whose request body would exceed N bytes (default {_mib(DEFAULT_MAX_REQUEST_BYTES)}; "
        "per tool: maxRequestBytes)",
    )
    group.add_argument(
        "--max-concurrency",
        type=positive_int,
        default=DEFAULT_MAX_CONCURRENCY,
        metavar="N",
        help=f"upstream calls in flight at once, all tools together (default {DEFAULT_MAX_CONCURRENCY}; "
        "per tool: maxConcurrency)",
    )
    group.add_argument(
        "--max-queue",
        type=non_negative_int,
        default=DEFAULT_MAX_QUEUE,
        metavar="N",
        help=f"calls that may wait for a slot; past that: a 'busy, try again' tool error (default {DEFAULT_MAX_QUEUE})",
    )


def egress_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("egress policy (where upstream calls may go)")
    group.add_argument(
        "--allow-upstream-host",
        action="append",
        default=env_list("MCP_WEBTOOLS_UPSTREAM_HOSTS"),
        metavar="HOST",
        help="only these upstream hosts (.example.com: any subdomain); repeatable",
    )
    group.add_argument("--deny-private", action="store_true", help="refuse private, loopback and reserved addresses")
    group.add_argument(
        "--allow-link-local",
        action="store_true",
        help="allow link-local and cloud-metadata addresses (refused by default)",
    )
    group.add_argument(
        "--allow-http",
        action="store_true",
        help="allow plain http:// to any host (default: loopback only; per tool: allowHttp)",
    )


def config_paths(args: argparse.Namespace) -> list[str]:
    paths = getattr(args, "config", None) or getattr(args, "paths", None)
    if paths:
        return list(paths)
    from_env = os.environ.get("MCP_WEBTOOLS_CONFIG")
    return [p for p in from_env.split(os.pathsep) if p] if from_env else [DEFAULT_CONFIG]


def oauth_settings(args: argparse.Namespace) -> OAuthSettings | None:
    """The resource-server settings of `serve`, or None without `--oauth-issuer`/`--oauth-audience`.

    Raises `ValueError` naming each option that is wrong (main prints it, exit 2).
    """
    if not (args.oauth_issuer or args.oauth_audience):
        return None
    problems = [] if args.oauth_issuer and args.oauth_audience else ["--oauth-issuer and --oauth-audience go together"]
    secret = args.oauth_client_secret
    reference = re.fullmatch(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", secret or "")
    if reference:
        secret = os.environ.get(reference.group(1))
        if not secret:
            problems.append(f"--oauth-client-secret: ${reference.group(1)} is not set")
    settings = OAuthSettings(
        issuer=args.oauth_issuer or "",
        audience=args.oauth_audience or "",
        scopes=tuple(args.oauth_scopes),
        introspection_url=args.oauth_introspection_url or None,
        client_id=args.oauth_client_id or None,
        client_secret=secret or None,
        token_audiences=tuple(args.oauth_token_audience),
    )
    problems += settings_problems(settings) if not problems else []
    if problems:
        raise ValueError("; ".join(problems))
    return settings


def oauth_from_config(block: Mapping[str, Any], source: str) -> OAuthSettings:
    """`oauth:` of a config file as the settings `--oauth-*` would give; raises `ValueError` naming the
    file and each field that is wrong (main prints it, exit 2)."""
    settings = OAuthSettings(
        issuer=block.get("issuer", ""),
        audience=block.get("audience", ""),
        scopes=tuple(block.get("scopes", ())),
        introspection_url=block.get("introspectionUrl"),
        client_id=block.get("clientId"),
        client_secret=block.get("clientSecret"),
        token_audiences=tuple(block.get("tokenAudiences", ())),
    )
    problems = settings_problems(settings)
    if problems:
        raise ValueError(f"{source}: field `oauth`: " + "; ".join(problems))
    return settings


def server_options(args: argparse.Namespace) -> ServerOptions:
    egress = EgressPolicy(
        allowed_hosts=frozenset(h.lower() for h in args.allow_upstream_host),
        deny_private=args.deny_private,
        allow_link_local=args.allow_link_local,
        allow_http=args.allow_http,
    )
    if not hasattr(args, "max_concurrency"):
        return ServerOptions(egress=egress)
    return ServerOptions(
        max_response_bytes=args.max_response_bytes,
        max_request_bytes=args.max_request_bytes,
        egress=egress,
        max_concurrency=args.max_concurrency,
        max_queue=args.max_queue,
        shutdown_grace_seconds=getattr(args, "shutdown_grace", DEFAULT_SHUTDOWN_GRACE),
        tasks=getattr(args, "tasks", False),
        state=getattr(args, "state", None) or None,
    )


# Value types for numeric options: a number that makes no sense there (a negative grace, port
# 99999) is a usage error (exit 2) naming the option, not a crash or a silent misbehaviour later.


def state_url(text: str) -> str:
    problem = state_url_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)  # never quotes the URL: it may hold a password
    return text


def positive_int(text: str) -> int:
    return _int_at_least(text, 1)


def non_negative_int(text: str) -> int:
    return _int_at_least(text, 0)


def port_number(text: str) -> int:
    value = _int_at_least(text, 0)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"must be a TCP port number from 0 to 65535, not {value}")
    return value


def positive_float(text: str) -> float:
    value = _finite_float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, not {text}")
    return value


def non_negative_float(text: str) -> float:
    value = _finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


def _int_at_least(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
    return value


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, not {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text}")
    return value


def _mib(size: int) -> str:
    """A default size as its help text says it: `1 MiB`."""
    return f"{size / 2**20:g} MiB"
