"""`mcp-webtools`: argument parsing and printing; the work happens in the modules it calls."""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import anyio

from .. import __version__
from ..calls import PreparedCall
from ..errors import ConfigErrors
from ..hamsa.cli import add_hamsa_commands
from ..observe.logformat import LOG_FORMATS
from ..observe.telemetry import configure_tracing
from ..serving.listening import ListenError, listen
from ..serving.reload import DEFAULT_WATCH_INTERVAL
from ..serving.runtime import (
    configure_logging,
    load_toolset,
    open_reloader,
    open_webtools,
    serve_http,
    serve_stdio,
)
from ..serving.workers import run_workers, worker_sockets
from ..toolset import PreparedTool, Toolset
from .openapi_import import add_import_commands
from .options import (
    DEFAULT_CONFIG,
    config_option,
    config_paths,
    egress_options,
    http_options,
    limit_options,
    oauth_from_config,
    oauth_settings,
    port_number,
    positive_float,
    server_options,
)

__all__ = ["main"]

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.log_level not in LOG_LEVELS:  # argparse checks choices on the command line, not defaults
        parser.error(f"MCP_WEBTOOLS_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, not {args.log_level!r}")
    if args.log_format not in LOG_FORMATS:
        parser.error(f"MCP_WEBTOOLS_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {args.log_format!r}")
    # What every log line hides: told the server's own secrets and each toolset's as they load.
    args.log_filter = configure_logging(args.log_level, args.log_format)
    configure_tracing()
    args.argv = list(sys.argv[1:] if argv is None else argv)  # what `serve --workers N` runs in each worker
    try:
        return args.handler(args)
    except ConfigErrors as exc:
        print(exc.describe(), file=sys.stderr)
        return 1
    except ListenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception:
        # A bug of ours: the traceback goes through the redacting log filter, never raw to the terminal.
        logging.getLogger("mcp_webtools").exception("mcp-webtools failed unexpectedly")
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mcp-webtools",
        description="Serve HTTP web tools (Hamsa FUNCTION tool definitions) as MCP tools.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _global_options(parser, defaults=True)
    # The same options after the command (`serve --log-format json`), listed in each command's --help.
    # Their defaults there are SUPPRESS: a default set by a sub-command would overwrite a value
    # given before it (`--log-level DEBUG serve`), as argparse copies every sub-command attribute.
    everywhere = argparse.ArgumentParser(add_help=False)
    _global_options(everywhere, defaults=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    command = functools.partial(commands.add_parser, parents=[everywhere])

    serve = command("serve", help="run the MCP server over stdio or Streamable HTTP")
    config_option(serve)
    serve.add_argument("--transport", choices=("stdio", "http"), default="stdio", help="default stdio")
    http_options(serve)
    limit_options(serve)
    egress_options(serve)
    serve.add_argument(
        "--endpoint",
        metavar="NAME",
        help="over stdio: serve only the tools of this endpoint (endpoints: in the config)",
    )
    serve.add_argument(
        "--tasks",
        action="store_true",
        help="answer tools/call with a task handle for 2026-07-28 clients that declare the tasks extension",
    )
    serve.add_argument(
        "--watch",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="reload the config when its files change (default: on; SIGHUP reloads either way)",
    )
    serve.add_argument(
        "--watch-interval",
        type=positive_float,
        default=DEFAULT_WATCH_INTERVAL,
        metavar="SECONDS",
        help=f"how often to look at the config files (default {DEFAULT_WATCH_INTERVAL:g})",
    )
    serve.set_defaults(handler=_serve)

    validate = command("validate", help="check tool definitions; exit 1 listing every error")
    validate.add_argument("paths", nargs="*", metavar="PATH", help="files or folders (default: config/)")
    egress_options(validate)
    validate.set_defaults(handler=_validate)

    listing = command("list", help="show MCP names, methods and URL templates")
    listing.add_argument("paths", nargs="*", metavar="PATH", help="files or folders (default: config/)")
    egress_options(listing)
    listing.set_defaults(handler=_list)

    call = command("call", help="run one tool call and print the MCP result as JSON")
    call.add_argument("tool", help="the MCP tool name (see `mcp-webtools list`)")
    call.add_argument("--args", default="{}", metavar="JSON", help="the arguments as a JSON object")
    config_option(call)
    call.add_argument("--dry-run", action="store_true", help="print the HTTP request (secrets redacted); send nothing")
    limit_options(call)
    egress_options(call)
    call.set_defaults(handler=_call)

    test = command(
        "test",
        help="run every tool's examples against the upstream (or recorded answers); exit 1 if one fails",
        description="Run each example of each tool through the whole call path and check what it expects. "
        "Exit codes: 0 every example passed; 1 an example failed, or the config cannot be loaded; "
        "2 nothing to run (no examples, an unknown --tool) or a usage error.",
    )
    test.add_argument("paths", nargs="*", metavar="PATH", help="files or folders (default: config/)")
    config_option(test)
    test.add_argument(
        "--tool", action="append", default=[], metavar="NAME", help="only this tool's examples; repeatable"
    )
    test.add_argument("--junit", type=Path, metavar="FILE", help="also write the results as JUnit XML for CI")
    answers = test.add_mutually_exclusive_group()
    answers.add_argument(
        "--record", type=Path, metavar="DIR", help="keep each exchange in DIR/<tool>/<example>.json, secrets as ${NAME}"
    )
    answers.add_argument(
        "--replay",
        type=Path,
        metavar="DIR",
        help="answer from the cassettes in DIR, no network; fail with a diff when a request no longer matches",
    )
    test.add_argument(
        "--show-request", action="store_true", help="print each example's request as `call --dry-run` does"
    )
    limit_options(test)
    egress_options(test)
    test.set_defaults(handler=_test)

    demo = command("demo", help="start a sample API and the MCP server over HTTP, wired together")
    config_option(demo)
    demo.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1")
    demo.add_argument("--port", type=port_number, default=8000, help="MCP server port (default 8000)")
    demo.add_argument("--api-port", type=port_number, default=8900, help="sample API port (default 8900)")
    demo.add_argument(
        "--ui", action=argparse.BooleanOptionalAction, default=True, help="the web console at /ui (default: on)"
    )
    demo.set_defaults(handler=_demo)
    add_hamsa_commands(commands, default_config=DEFAULT_CONFIG, parents=[everywhere])
    add_import_commands(commands, default_config=DEFAULT_CONFIG, parents=[everywhere])
    return parser


def _global_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    group = parser.add_argument_group("global options (before or after the command)")
    for option, convert, choices, variable, default, described in (
        ("--log-level", str.upper, LOG_LEVELS, "MCP_WEBTOOLS_LOG_LEVEL", "INFO", "default INFO"),
        ("--log-format", str.lower, LOG_FORMATS, "MCP_WEBTOOLS_LOG_FORMAT", "text",
         "text (readable) or json (one object per line); default text"),
    ):  # fmt: skip
        group.add_argument(
            option,
            type=convert,
            choices=choices,
            default=convert(os.environ.get(variable, default)) if defaults else argparse.SUPPRESS,
            help=f"{described} (or ${variable})",
        )


def _serve(args: argparse.Namespace) -> int:
    args.log_filter.hide(getattr(args, "auth_token", None))
    try:
        oauth = oauth_settings(args)
    except ValueError as problems:
        print(f"serve: {problems}", file=sys.stderr)
        return 2
    args.log_filter.hide(oauth.client_secret if oauth else None)
    if oauth is not None and args.transport != "http":
        print("--oauth-issuer needs --transport http (OAuth guards HTTP requests)", file=sys.stderr)
        return 2
    if args.state:
        args.log_filter.hide(urlsplit(args.state).password)  # the URL is only ever shown without it
    options = server_options(args)
    if args.ui and args.transport != "http":
        print("--ui needs --transport http (the console is a web page served next to /mcp)", file=sys.stderr)
        return 2
    sockets = worker_sockets()  # set when this process is one of `--workers N`
    if args.workers > 1 and sockets is None:
        if args.transport != "http":
            print("--workers needs --transport http", file=sys.stderr)
            return 2
        if not args.stateless:
            # A legacy-era session lives in one process; the client's next connection may reach another.
            print("--workers needs --stateless (legacy-era sessions cannot span processes)", file=sys.stderr)
            return 2
        if args.tasks and not args.state:
            print(
                "--workers with --tasks needs --state redis://... (task handles otherwise live in one process)",
                file=sys.stderr,
            )
            return 2
        sockets = listen(args.host, args.port)  # first: a port in use is one line, before anything is logged
        # Config errors print once, before any worker starts.
        load_toolset(config_paths(args), options=options, log_filter=args.log_filter)
        return run_workers(args.workers, sockets, args.argv)
    if args.endpoint and args.transport != "stdio":
        print("--endpoint is for stdio; over HTTP each endpoint is served at /mcp/<name>", file=sys.stderr)
        return 2
    if args.transport == "http" and sockets is None:
        sockets = listen(args.host, args.port)  # as above
    paths = config_paths(args)
    webtools = open_webtools(paths, options=options, log_filter=args.log_filter, metrics=args.transport == "http")
    configured = webtools.toolset.endpoints
    if oauth is None and configured.oauth is not None:  # flags and environment win over the config file
        if args.transport != "http":
            where = configured.oauth_source
            print(f"{where}: oauth needs --transport http (OAuth guards HTTP requests)", file=sys.stderr)
            return 2
        try:
            oauth = oauth_from_config(configured.oauth, configured.oauth_source)
        except ValueError as problems:
            print(f"serve: {problems}", file=sys.stderr)
            return 2
    if args.endpoint:
        known = webtools.toolset.endpoints.endpoints
        if args.endpoint not in known:
            defined = ", ".join(sorted(known)) or "none (add endpoints: to a config file)"
            print(f"--endpoint {args.endpoint}: no such endpoint; defined: {defined}", file=sys.stderr)
            return 2
        webtools.endpoint = args.endpoint
    reloader = open_reloader(
        webtools, paths, options=options, watch=args.watch, interval=args.watch_interval, log_filter=args.log_filter
    )
    if args.transport == "stdio":
        anyio.run(functools.partial(serve_stdio, hot_path=args.hot_path), webtools, reloader)
    else:
        from ..serving.http_app import HttpSettings, bind_host_allowance  # here: a stdio server never loads it

        settings = HttpSettings(
            auth_token=args.auth_token or None,
            allowed_hosts=(*bind_host_allowance(args.host), *args.allowed_host),
            allowed_origins=tuple(args.allowed_origin),
            stateless=args.stateless,
            hot_path=args.hot_path,
            max_body_bytes=args.max_inbound_bytes,
            metrics_public=args.metrics_public,
            ui=args.ui,
            workers=args.workers,
            oauth=oauth,
        )
        anyio.run(
            functools.partial(
                serve_http,
                shutdown_grace_seconds=options.shutdown_grace_seconds,
                sockets=sockets,
                reloader=reloader,
            ),
            webtools,
            args.host,
            args.port,
            settings,
        )
    return 0


def _validate(args: argparse.Namespace) -> int:
    toolset, loaded = load_toolset(config_paths(args), options=server_options(args), log_filter=args.log_filter)
    for tool in toolset:
        d = tool.definition
        print(f"ok  {d.mcp_name}  {d.method} {d.url_template}  ({d.source}){_auth_note(tool)}")
    # Warnings were logged once already (stderr), as for every command that loads the config.
    for note in loaded.notes:
        print(f"note: {note}")
    print(f"{len(toolset)} tool(s) valid in {len(loaded.files)} file(s)")
    _print_endpoints(toolset)
    return 0


def _print_endpoints(toolset: Toolset) -> None:
    """Each endpoint's path, tools and clients, and each client's kind of token (never a token)."""
    config = toolset.endpoints
    if config.oauth is not None:  # never the client secret
        issuer, audience = config.oauth.get("issuer"), config.oauth.get("audience")
        print(f"oauth: issuer {issuer}  audience {audience}  ({config.oauth_source})")
    if not config.endpoints and not config.clients:
        return
    default = "every tool" if config.serves_default else "nothing (defaultEndpoint: none)"
    print(f"/mcp serves {default}")
    for endpoint in config.endpoints.values():
        tools = ", ".join(endpoint.tools) or "no tools"
        clients = ", ".join(endpoint.clients) or "only the --auth-token"
        print(f"endpoint {endpoint.name}  /mcp/{endpoint.name}  tools: {tools}  clients: {clients}")
    for client in config.clients.values():
        kind = "tokenSha256" if client.hashed else "token"
        endpoints = ", ".join(config.endpoints_of(client.id)) or "no endpoint"
        print(f"client {client.id}  ({kind})  endpoints: {endpoints}")


def _list(args: argparse.Namespace) -> int:
    toolset, _ = load_toolset(config_paths(args), options=server_options(args), log_filter=args.log_filter)
    rows = [(t.name, t.definition.method, t.definition.url_template + _auth_note(t)) for t in toolset]
    width = max(len(name) for name, _, _ in rows)
    for name, method, url in rows:
        print(f"{name:<{width}}  {method:<6}  {url}")
    return 0


def _auth_note(tool: PreparedTool) -> str:
    """`  auth: basic, Authorization: Basic ***`: the tool's auth type and where it goes, never a value."""
    auth = tool.send_policy.auth
    return f"  auth: {auth.describe()}" if auth is not None else ""


def _call(args: argparse.Namespace) -> int:
    try:
        arguments = json.loads(args.args)
    except json.JSONDecodeError as exc:
        print(f"--args is not valid JSON: {exc.msg} (column {exc.colno})", file=sys.stderr)
        return 2
    if not isinstance(arguments, dict):
        # A usage mistake, like bad JSON: say so plainly instead of printing a tool-error result.
        print(f"--args must be a JSON object, not {_json_type(arguments)}: {args.args}", file=sys.stderr)
        return 2
    webtools = open_webtools(config_paths(args), options=server_options(args), log_filter=args.log_filter)
    if webtools.toolset.get(args.tool) is None:
        known = ", ".join(t.name for t in webtools.toolset)
        print(f"unknown tool {args.tool!r}; known tools: {known}", file=sys.stderr)
        return 2

    if args.dry_run:
        prepared = webtools.calls.prepare(args.tool, arguments)
        if not isinstance(prepared, PreparedCall):
            _print_result(prepared)
            return 1
        print(prepared.dry_run(), end="")
        return 0

    async def run() -> object:
        async with webtools.executor.client:
            return await webtools.calls.call(args.tool, arguments)

    result = anyio.run(run)
    _print_result(result)
    return 1 if result.is_error else 0


def _test(args: argparse.Namespace) -> int:
    from .testing import Mode, run_examples  # cassettes and JUnit: loaded for `test` only, not at every start-up

    paths = [*args.paths, *(args.config or [])] or config_paths(args)
    mode = Mode(record=args.record, replay=args.replay, show_request=args.show_request)
    return run_examples(paths, server_options(args), args.log_filter, args.tool, mode, args.junit)


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return "a string" if isinstance(value, str) else "an array"


def _print_result(result: object) -> None:
    print(json.dumps(result.model_dump(by_alias=True, exclude_none=True, mode="json"), indent=2, ensure_ascii=False))


def _demo(args: argparse.Namespace) -> int:
    from ..demo import run_demo

    return anyio.run(run_demo, config_paths(args), args.host, args.port, args.api_port, args.ui, args.log_filter)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
