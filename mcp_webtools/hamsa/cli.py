"""`mcp-webtools hamsa payload | register | import`: the sub-commands; the logic is in register.py and importer.py."""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import anyio

from ..endpoints import EndpointConfig
from ..errors import ApiRefused, ApiUnavailable, ConfigErrors, HamsaError, UnusableAnswer, UsageError
from ..loading import load_definitions
from . import importer
from . import register as registration

__all__ = ["EXIT_CODES", "add_hamsa_commands", "exit_code", "report_import"]

# What a failed `hamsa` command returns, so a script can tell a mistake of its own (2) from an
# outage worth retrying (3) and from an answer that leaves the outcome unknown (4). The most
# specific class listed wins; any other `HamsaError` returns 1.
EXIT_CODES: dict[type[HamsaError], int] = {
    HamsaError: 1,
    UsageError: 2,
    ApiRefused: 1,
    ApiUnavailable: 3,
    UnusableAnswer: 4,
}


def add_hamsa_commands(
    commands: argparse._SubParsersAction, *, default_config: str, parents: Sequence[argparse.ArgumentParser] = ()
) -> None:
    """`parents`: options every command takes (the global ones), given to `hamsa` and to each action."""
    group = commands.add_parser(
        "hamsa", parents=parents, help="register this server in Hamsa, or import tools exported from it"
    )
    subparsers = group.add_subparsers(dest="hamsa_command", required=True, metavar="ACTION")
    action = functools.partial(subparsers.add_parser, parents=parents)
    # allow_abbrev=False: `--token <value>` must not pass as `--token-env`; secrets never go on the command line.
    payload = action("payload", allow_abbrev=False, help="print the body that registers the server")
    _mcp_tool_options(payload)
    payload.add_argument("--redact", action="store_true", help="print *** in place of the token")
    payload.set_defaults(handler=_hamsa_payload, default_config=default_config)
    register = action("register", allow_abbrev=False, help="create the MCP web tool via the Hamsa API")
    _mcp_tool_options(register)
    register.add_argument(
        "--api-key-env", default=registration.DEFAULT_API_KEY_ENV, metavar="NAME", help="env var with the Hamsa API key"
    )
    register.add_argument("--base-url", help=f"default ${registration.BASE_URL_ENV} or {registration.DEFAULT_BASE_URL}")
    register.add_argument("--api-timeout", type=float, default=30.0, metavar="SECONDS", help="default 30")
    register.set_defaults(handler=_hamsa_register, default_config=default_config)
    importer = action("import", help="write config files from an exported Hamsa tool list")
    importer.add_argument("source", metavar="FILE", help="the export (JSON); - reads stdin")
    importer.add_argument("--out", default=default_config, metavar="DIR", help=f"default {default_config}/")
    importer.add_argument("--force", action="store_true", help="overwrite existing files")
    importer.set_defaults(handler=_hamsa_import)


class _RefuseSecretValue(argparse.Action):
    """`--token VALUE` / `--api-key VALUE`: refused without echoing VALUE (argparse would print it back)."""

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: object, values: object, option: object = None
    ) -> None:
        parser.error(
            f"{option} is not accepted: put the value in an environment variable and pass its NAME with {option}-env"
        )


def _mcp_tool_options(parser: argparse.ArgumentParser) -> None:
    for refused in ("--token", "--api-key"):
        parser.add_argument(refused, nargs="?", action=_RefuseSecretValue, help=argparse.SUPPRESS)
    parser.add_argument("--url", required=True, help="the server's MCP endpoint, e.g. https://host/mcp")
    parser.add_argument(
        "--token-env",
        metavar="NAME",
        help="env var holding the token the server requires (e.g. MCP_WEBTOOLS_AUTH_TOKEN)",
    )
    parser.add_argument(
        "--endpoint",
        metavar="NAME",
        help="register this endpoint of the config: --url's /mcp/NAME, with its client's token from the config",
    )
    parser.add_argument("--client", metavar="ID", help="with --endpoint: the client whose token to send")
    parser.add_argument(
        "--config", action="append", metavar="PATH", help="with --endpoint: config file or folder (default config/)"
    )
    parser.add_argument(
        "--name", default=registration.DEFAULT_TOOL_NAME, help=f"default {registration.DEFAULT_TOOL_NAME}"
    )
    parser.add_argument("--description", default=registration.DEFAULT_DESCRIPTION)
    parser.add_argument(
        "--timeout", type=int, default=registration.DEFAULT_TIMEOUT_SECONDS, metavar="SECONDS", help="default 30"
    )


def _hamsa_errors(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except HamsaError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return exit_code(exc)

    return run


def exit_code(error: HamsaError) -> int:
    """What the command returns after `error` (see `EXIT_CODES`)."""
    return next(EXIT_CODES[cls] for cls in type(error).__mro__ if cls in EXIT_CODES)


def _hamsa_payload_of(args: argparse.Namespace, *, redact: bool = False) -> registration.Payload:
    url, token = args.url, None
    if args.endpoint:
        url = registration.endpoint_url(args.url, args.endpoint)
        if not args.token_env:
            token = registration.endpoint_client_token(_endpoints(args), args.endpoint, args.client)
    elif args.client or args.config:
        raise UsageError("--client and --config go with --endpoint")
    spec = registration.McpToolSpec(url, args.name, args.description, args.timeout, args.token_env, token)
    payload = registration.build_payload(spec, os.environ, redact=redact)
    for note in payload.notes:
        print(f"note: {note}", file=sys.stderr)
    return payload


def _endpoints(args: argparse.Namespace) -> EndpointConfig:
    """The endpoints and clients of the config (`--config`, default config/); its errors as a `UsageError`."""
    paths = args.config or [args.default_config]
    try:
        return load_definitions(paths).endpoints
    except ConfigErrors as exc:
        raise UsageError("the config does not load:\n" + "\n".join(f"  - {e}" for e in exc.errors)) from None


@_hamsa_errors
def _hamsa_payload(args: argparse.Namespace) -> int:
    payload = _hamsa_payload_of(args, redact=args.redact)
    if args.token_env and not args.redact:
        print(f"note: the body holds the token from ${args.token_env}: treat it as a secret (--redact hides it)",
              file=sys.stderr)  # fmt: skip
    elif payload.secrets and not args.redact:
        print(f"note: the body holds the token of endpoint {args.endpoint!r}'s client: treat it as a secret "
              "(--redact hides it)", file=sys.stderr)  # fmt: skip
    print(json.dumps(payload.body, indent=2, ensure_ascii=False))
    return 0


@_hamsa_errors
def _hamsa_register(args: argparse.Namespace) -> int:
    target = registration.api_target(args.base_url, args.api_key_env, os.environ, args.api_timeout)
    payload = _hamsa_payload_of(args, redact=False)
    created = anyio.run(registration.register, payload, target)
    print(f"created MCP web tool {created.name or args.name!r} in Hamsa; its id:", file=sys.stderr)
    print(created.id)
    return 0


@_hamsa_errors
def _hamsa_import(args: argparse.Namespace) -> int:
    document = importer.read_export(args.source, sys.stdin.buffer)
    result = importer.import_tools(document, Path(args.out), force=args.force, source=args.source)
    return report_import(result)


def report_import(result: importer.ImportResult) -> int:
    """Print what an import wrote and what to set; exit 1 when the written files do not load yet."""
    print("\n".join(result.lines()))
    if result.load_problems:
        print("the written files do not load yet; fix these, then run `mcp-webtools validate`:", file=sys.stderr)
        print("\n".join(f"  - {problem}" for problem in result.load_problems), file=sys.stderr)
        return 1
    return 0
