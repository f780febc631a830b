"""The web console (`serve --ui`, on in `demo`): what the model sees, what would be sent, what came back.

A page at `/ui` (plain HTML, CSS and JavaScript shipped in `static/`: no build step, no CDN, works
offline) and a small JSON API under `/ui/api/` on the same server as `/mcp`, behind the same
token and Host/Origin checks. Its pages:

- Tools: every tool as published in `tools/list`, and as it is sent (method, URL template, where
  each argument goes, auth and headers with credentials as `***`); searchable.
- Try: a form made from the input schema, checked by the tool's own validator as it is filled;
  "Dry run" shows the request exactly as `mcp-webtools call --dry-run` prints it, "Call" runs it
  through the same path as an MCP `tools/call` and streams the spoken messages, then the result.
- Calls: the last calls, from a ring of audit records (recent.py), updated live.
- Config: the files serving and their tools, the last reload with every error and warning.
- Health: calls/s, error rate, p50/p95 latency and calls in flight, from the Prometheus metrics
  already kept (health.py).

Nothing here changes how calls run: the ring is one more observer of each call's `CallRecord`,
the health charts read the metrics registry, and the config page reads the reloader's outcomes.
Everything the API answers passes through the toolset's redactor plus the inbound token's.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import anyio
from mcp.server.transport_security import TransportSecurityMiddleware

from ...redaction import Redactor
from ...toolset import Toolset
from ..reload import Reloader, ReloadOutcome
from ..server import WebTools
from .health import HealthSampler
from .recent import RecentCalls
from .routes import PAGE_PATHS, console_routes
from .views import reload_view, tool_view

if TYPE_CHECKING:
    from ..http_app import HttpSettings

__all__ = ["Console"]


class Console:
    """The console of one server process: its routes, and the state its pages read."""

    def __init__(
        self,
        webtools: WebTools,
        settings: HttpSettings,
        guard: TransportSecurityMiddleware,
        reloader: Reloader | None = None,
    ) -> None:
        self.webtools = webtools
        self.guard = guard
        self.reloader = reloader
        self.auth = bool(settings.auth_token)
        self.workers = settings.workers
        self.max_body_bytes = settings.max_body_bytes
        # The inbound token is hidden from the console as from the logs (the audit log's filter).
        self._own_secrets = Redactor([settings.auth_token] if settings.auth_token else [])
        self._redactor: tuple[Toolset | None, Redactor] = (None, Redactor())
        self._views: tuple[Toolset | None, list[dict[str, Any]]] = (None, [])
        self.started = self.loaded_at = time.time()
        self.last_reload: dict[str, Any] | None = None
        self.recent = RecentCalls(self.redactor)
        webtools.calls.observers.append(self.recent.observe)
        assert webtools.metrics is not None, "the console is served over HTTP, which has metrics"
        self.health = HealthSampler(webtools.metrics)
        if reloader is not None:
            reloader.on_reload.append(self._reloaded)
        self.routes = console_routes(self)
        self.public_paths = PAGE_PATHS

    def redactor(self) -> Redactor:
        """What the console hides: the serving toolset's secrets and the inbound token."""
        toolset = self.webtools.toolset
        if self._redactor[0] is not toolset:
            self._redactor = (toolset, toolset.redactor | self._own_secrets)
        return self._redactor[1]

    def tool_views(self) -> list[dict[str, Any]]:
        """Every tool as the Tools page shows it, made once per toolset."""
        toolset = self.webtools.toolset
        if self._views[0] is not toolset:
            listed = toolset.list_wire["tools"]
            views = [tool_view(tool, entry, toolset.endpoints) for tool, entry in zip(toolset, listed, strict=True)]
            self._views = (toolset, views)
        return self._views[1]

    def _reloaded(self, outcome: ReloadOutcome) -> None:
        at = time.time()
        if outcome.swapped:
            self.loaded_at = at
        self.last_reload = reload_view(outcome, at)
        self.recent.publish({"type": "reload", "reload": self.last_reload})

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """While open, the health sampler keeps a past for the charts."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(self.health.run)
            try:
                yield
            finally:
                tg.cancel_scope.cancel()
