"""Assembling the service and running it on a transport.

`open_webtools` goes config paths -> definitions -> `Toolset` -> `WebTools`, and composes what a
call goes through: the sender chain around the executor (one shared HTTP client; see sending.py)
and the observers of every finished call. `serve_stdio` and `serve_http` run it. The CLI and the
demo call these.

Logging is the process's, so its redaction is made where the process is assembled (the CLI's
`main`): `configure_logging` returns the `RedactingFilter` it put on the stderr handler, and the
CLI hands it to `open_webtools`, `open_reloader` and `load_toolset`, which tell it each toolset's
secrets. Without one (an embedding application, the tests) nothing here touches logging.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import socket
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import uvicorn
from sse_starlette.sse import AppStatus

from ..auth import AuthenticatingSender
from ..calls import ToolCalls
from ..egress import EgressPolicy
from ..endpoints import OPERATOR_CLIENT
from ..executor import DEFAULT_MAX_RESPONSE_BYTES, Executor, create_http_client
from ..limits import DEFAULT_MAX_CONCURRENCY, DEFAULT_MAX_QUEUE, CallLimits
from ..loading import LoadResult, load_definitions
from ..oauth2 import TokenCache
from ..observe.audit import log_call
from ..observe.logformat import formatter_for
from ..observe.telemetry import TracingSender, annotate_call, tracing_configured
from ..outcomes import CallObserver
from ..ratelimit import RateLimits
from ..redaction import LearnedSecrets, RedactingFilter
from ..requests import DEFAULT_MAX_REQUEST_BYTES
from ..sending import Sender
from ..toolset import Toolset
from .reload import DEFAULT_WATCH_INTERVAL, Reloader
from .server import WebTools
from .state import RedisState
from .stdio import StdioHotPath, stdio_streams
from .tasks import TaskStore

if TYPE_CHECKING:
    from .http_app import HttpSettings

__all__ = [
    "DEFAULT_SHUTDOWN_GRACE",
    "ServerOptions",
    "configure_logging",
    "env_list",
    "load_toolset",
    "open_reloader",
    "open_webtools",
    "reloading",
    "running_tasks",
    "serve_http",
    "serve_stdio",
    "start_http",
    "GracefulServer",
]

logger = logging.getLogger("mcp_webtools")
# Under Docker's default 10 s stop timeout, so the cancelled calls still get their answers.
DEFAULT_SHUTDOWN_GRACE = 8.0


def configure_logging(level: str = "INFO", log_format: str = "text") -> RedactingFilter:
    """Log to stderr (stdout belongs to the stdio transport), every line through the redactor.

    `log_format` is "text" (readable lines) or "json" (one JSON object per line, see logformat.py).
    Returns the handler's `RedactingFilter`: give it the server's own secrets (`hide`, e.g. the
    inbound token) and pass it to `open_webtools`, which gives it the toolset's.
    """
    log_filter = RedactingFilter()
    handler = logging.StreamHandler()
    handler.setFormatter(formatter_for(log_format))
    handler.addFilter(log_filter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # A handler that fails to write would print the raw record (secrets included) via
    # handleError; Python warnings bypass logging unless captured.
    logging.raiseExceptions = False
    logging.captureWarnings(True)
    root.setLevel(level.upper())
    for noisy in ("httpx2", "httpcore2", "mcp", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    return log_filter


@dataclass(frozen=True)
class ServerOptions:
    """Server-wide settings (per-tool ones live in the tool definitions)."""

    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    egress: EgressPolicy = field(default_factory=EgressPolicy)
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    max_queue: int = DEFAULT_MAX_QUEUE
    shutdown_grace_seconds: float = DEFAULT_SHUTDOWN_GRACE
    # Task-style calls for 2026-07-28 clients that declare the tasks extension (tasks.py).
    tasks: bool = False
    # The shared store (state.py): a redis:// URL, or None to keep everything in this process.
    state: str | None = None


def load_toolset(
    paths: Iterable[str],
    environ: Mapping[str, str] | None = None,
    options: ServerOptions | None = None,
    *,
    log_filter: RedactingFilter | None = None,
    learned: LearnedSecrets | None = None,
    tokens: TokenCache | None = None,
) -> tuple[Toolset, LoadResult]:
    """Raises `ConfigErrors` listing every problem.

    `log_filter` (see `configure_logging`) hides the toolset's secrets from then on; `learned`:
    the secrets learned at run time so far, to keep hiding, and `tokens`: the OAuth2 tokens
    fetched so far, to keep using (a reload passes the current toolset's).
    """
    options = options or ServerOptions()
    loaded = load_definitions(paths, environ, egress=options.egress)
    toolset = Toolset.from_definitions(
        loaded.definitions,
        max_request_bytes=options.max_request_bytes,
        files=[str(file) for file in loaded.files],
        warnings=loaded.warnings,
        learned=learned,
        tokens=tokens,
        endpoints=loaded.endpoints,
    )
    if log_filter is not None:
        # Added to, not replaced: calls still running on an old toolset may log its secrets.
        log_filter.add(toolset.redactor)
    return toolset, loaded


def open_reloader(
    webtools: WebTools,
    paths: Iterable[str],
    *,
    environ: Mapping[str, str] | None = None,
    options: ServerOptions | None = None,
    watch: bool = True,
    interval: float = DEFAULT_WATCH_INTERVAL,
    log_filter: RedactingFilter | None = None,
) -> Reloader:
    """Hot reload for `webtools`, loading `paths` exactly as `open_webtools` did (see reload.py)."""
    paths = list(paths)

    def load() -> Toolset:
        # Secrets learned at run time stay hidden in the new toolset's redactor too, and the
        # OAuth2 tokens fetched so far stay in use: a reload asks no token endpoint for a new one.
        current = webtools.toolset
        toolset, _ = load_toolset(
            paths, environ, options, log_filter=log_filter, learned=current.redactor.learned, tokens=current.tokens
        )
        return toolset

    # Every outcome (swapped in, unchanged, or rejected) feeds the reload metrics, where there are metrics.
    exposed = webtools.metrics
    observe = [lambda outcome: exposed.observe_reload(outcome.ok)] if exposed is not None else []
    return Reloader(webtools, paths, load, watch=watch, interval=interval, on_reload=observe)


def open_webtools(
    paths: Iterable[str],
    *,
    environ: Mapping[str, str] | None = None,
    options: ServerOptions | None = None,
    log_filter: RedactingFilter | None = None,
    innermost: Callable[[Executor], Sender] | None = None,
    metrics: bool = True,
) -> WebTools:
    """The service for the config at `paths` (raises `ConfigErrors`); `log_filter`: see `configure_logging`.

    `metrics`: Prometheus metrics fed by every call, for `GET /metrics` and the console; `serve`
    over stdio has no way to show them and goes without (nor imports prometheus-client).

    `innermost`: given the executor, the sender to put in its place at the end of the chain
    (`mcp-webtools test` records each exchange there, or replays recorded answers without network).
    """
    options = options or ServerOptions()
    toolset, loaded = load_toolset(paths, environ, options, log_filter=log_filter)
    logger.info("loaded %d tool(s) from %d file(s)", len(toolset), len(loaded.files))
    # The pool is sized to the concurrency cap: every admitted call can have its own connection.
    client = create_http_client(max_connections=options.max_concurrency, egress=options.egress)
    # Rate limits and upstream pauses: the executor records a 429's pause where calls check it.
    shared = RedisState(options.state) if options.state else None
    if shared is not None:
        logger.info("shared state (rate limits, 429 pauses, task handles, resumable streams) on %s", shared.url)
    rate_limits = RateLimits(shared)
    executor = Executor(client, max_response_bytes=options.max_response_bytes, pauses=rate_limits)
    # The sender chain, outermost first (sending.py): what wraps the send is one more word here.
    sender = TracingSender(AuthenticatingSender(innermost(executor) if innermost is not None else executor))
    limits = CallLimits(global_limit=options.max_concurrency, max_waiting=options.max_queue)
    # Every finished call's record goes to these: the audit log, the metrics, the trace span.
    observers: list[CallObserver] = [log_call, annotate_call]
    exposed = None
    if metrics:
        from ..observe.metrics import Metrics  # here: prometheus-client is for a server that can show it

        # The `client` label's values: the configured clients now, and `serve --auth-token`'s.
        exposed = Metrics(
            in_flight=lambda: len(calls.in_flight),
            tools_loaded=lambda: len(calls.toolset),
            clients=lambda: calls.toolset.endpoints.clients.keys() | {OPERATOR_CLIENT},
        )
        observers.insert(1, exposed.observe_call)
    calls = ToolCalls(toolset, sender, limits, observers=observers, rate_limits=rate_limits)
    return WebTools(calls, executor, exposed, TaskStore(board=shared) if options.tasks else None, shared=shared)


@contextlib.asynccontextmanager
async def running_tasks(webtools: WebTools) -> AsyncIterator[None]:
    """While open, `webtools` can run calls as tasks (when enabled); the rest are cancelled on exit."""
    if webtools.tasks is None:
        yield
        return
    async with webtools.tasks.running():
        yield


def reloading(reloader: Reloader | None) -> contextlib.AbstractAsyncContextManager[None]:
    """While open, `reloader` (if any) watches the config and handles SIGHUP."""
    return reloader.running() if reloader is not None else contextlib.nullcontext()


async def serve_stdio(webtools: WebTools, reloader: Reloader | None = None, *, hot_path: bool = True) -> None:
    # The common requests answered beside the SDK's session (hot_path.py), unless turned off.
    hot = StdioHotPath(webtools, tracing=tracing_configured) if hot_path else None
    if hot is not None:
        webtools.server.middleware.append(hot.remember_connection)
    async with (
        webtools.executor.client,
        running_tasks(webtools),
        reloading(reloader),
        stdio_streams(hot) as (read, write),  # the SDK transport without a thread per message
    ):
        await _check_state(webtools)
        _freeze_startup_objects()
        # Started by hand, the server would otherwise sit silent; stdout belongs to the protocol.
        logger.info("serving MCP over stdio: waiting for an MCP client on stdin (Ctrl+C stops)")
        await webtools.server.run(read, write, webtools.server.create_initialization_options())


# After the drain, what is left is answers on their way out (and legacy /sse streams, which the
# server cannot tell idle from busy): this long for them, then everything still open is cancelled.
FLUSH_SECONDS = 1.0


class GracefulServer(uvicorn.Server):
    """uvicorn, with a shutdown that waits for tool calls rather than for connections.

    On SIGTERM/SIGINT: stop accepting connections, end the idle legacy `GET /mcp` streams, let
    the calls in flight finish for up to `shutdown_grace_seconds`, then cancel the rest (each
    answers with a tool error, and its upstream request is closed). uvicorn's own grace only
    starts after that, as a short flush for answers still being written.
    """

    def __init__(
        self,
        config: uvicorn.Config,
        webtools: WebTools,
        shutdown_grace_seconds: float,
        reloader: Reloader | None = None,
    ) -> None:
        super().__init__(config)
        self.webtools = webtools
        self.shutdown_grace_seconds = shutdown_grace_seconds
        self.reloader = reloader
        self.console = False  # whether the web console is served at /ui (logged at start-up)

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        # sse-starlette would close every SSE response (including a legacy call's own answer
        # stream) about half a second after the signal; the drain below decides instead.
        AppStatus.disable_automatic_graceful_drain()
        try:
            async with running_tasks(self.webtools), reloading(self.reloader):
                await super().serve(sockets)
        finally:
            AppStatus.enable_automatic_graceful_drain_mode()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self.servers and self.servers[0].sockets:
            host, port = self.servers[0].sockets[0].getsockname()[:2]
            logger.info("serving MCP at http://%s:%d/mcp (legacy SSE at /sse)", _display_host(host), port)
            if self.console:
                logger.info("web console at http://%s:%d/ui", _display_host(host), port)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        in_flight = self.webtools.in_flight
        logger.info(
            "shutting down: no new connections; waiting up to %g s for %d call(s) in flight",
            self.shutdown_grace_seconds,
            len(in_flight),
        )
        for server in self.servers:
            server.close()
        self.webtools.tool_list.close()  # 2026-07-28 listen streams end cleanly, now, not at the flush
        for connection in list(self.server_state.connections):
            connection.shutdown()  # closes idle keep-alive connections; busy ones close after their answer
        cancelled = await in_flight.drain(self.shutdown_grace_seconds, forced=lambda: self.force_exit)
        if cancelled:
            logger.warning("cancelled %d call(s) in flight: %s", cancelled, in_flight.cancel_reason)
        self.config.timeout_graceful_shutdown = min(FLUSH_SECONDS, self.shutdown_grace_seconds)
        await super().shutdown(sockets)


def start_http(
    webtools: WebTools,
    host: str,
    port: int,
    settings: HttpSettings,
    *,
    shutdown_grace_seconds: float = DEFAULT_SHUTDOWN_GRACE,
    reloader: Reloader | None = None,
) -> GracefulServer:
    """A configured server for `webtools` (not yet running); see `GracefulServer` for shutdown."""
    from .http_app import build_http_app  # here: a stdio server never loads the HTTP layer

    app = build_http_app(webtools, settings, reloader)
    config = uvicorn.Config(app, host=host, port=port, log_config=None, lifespan="on")
    server = GracefulServer(config, webtools, shutdown_grace_seconds, reloader)
    server.console = settings.ui
    return server


async def serve_http(
    webtools: WebTools,
    host: str,
    port: int,
    settings: HttpSettings,
    *,
    shutdown_grace_seconds: float = DEFAULT_SHUTDOWN_GRACE,
    sockets: list[socket.socket] | None = None,
    reloader: Reloader | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT; on `sockets` already listening (a worker's, see workers.py) if given."""
    server = start_http(
        webtools, host, port, settings, shutdown_grace_seconds=shutdown_grace_seconds, reloader=reloader
    )
    await _check_state(webtools)
    _freeze_startup_objects()
    await server.serve(sockets)


async def _check_state(webtools: WebTools) -> None:
    """With `--state`, find out at start whether Redis answers, rather than at the first call."""
    store = webtools.calls.rate_limits.store
    if isinstance(store, RedisState):
        await store.check()


def _freeze_startup_objects() -> None:
    # Everything made so far (modules, the SDK's models, the toolset) lives about as long as the
    # process: out of the garbage collector's generations, no collection walks it again while
    # calls are served (bench/compare.py: about 10 % less server CPU per call at 32 concurrent
    # HTTP callers). Start-up leaves no cyclic garbage to collect first (a collection finds none).
    gc.freeze()


def _display_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def env_list(name: str) -> list[str]:
    """A comma-separated environment variable as a list."""
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]
