"""OpenTelemetry tracing: the tool call's span, its upstream HTTP child span, and the setup.

The MCP SDK already opens one SERVER span per request (`tools/call <tool>`, in
`mcp.server._otel`), continuing the `traceparent` a client put in the request's `_meta`. We
build on it rather than open a second one: `annotate_call` adds the call's audit fields to that
span (an observer of every finished call), and `TracingSender`, a wrapper in the sender chain
(sending.py), opens a CLIENT span around the upstream exchange (all its attempts) as its child.

Off and free when absent: without `opentelemetry` importable every function here is a no-op,
and without a configured SDK the spans are the API's non-recording ones (nothing is recorded
or exported, and the call's attributes are not set). `configure_tracing` sets the SDK up from the standard
`OTEL_*` variables when the `otel` extra is installed and an exporter is configured.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import Any

from ..errors import SendError
from ..outcomes import CallRecord
from ..requests import OutboundRequest
from ..sending import AttemptCount, Sender, SendPolicy, UpstreamResponse

try:
    from opentelemetry import trace
except ImportError:  # pragma: no cover - opentelemetry-api comes with mcp; kept optional all the same
    trace = None  # type: ignore[assignment]

__all__ = ["TracingSender", "annotate_call", "configure_tracing", "tracing_configured"]

logger = logging.getLogger("mcp_webtools.telemetry")
SERVICE_NAME = "mcp-webtools"


def annotate_call(record: CallRecord) -> None:
    """Add the call's audit fields (already redacted) to the current tool-call span (a `CallObserver`)."""
    if trace is None:
        return
    span = trace.get_current_span()
    if not span.is_recording():
        return
    span.set_attributes(_record_attributes(record))


class TracingSender:
    """A `Sender` that puts the upstream exchange in a CLIENT span, a child of the tool-call span.

    One span for the whole exchange, every attempt included (`http.request.resend_count` says how
    many more there were). It carries the URL template (`SendPolicy.url_template`, secrets masked
    at load), never the resolved URL, which may hold secrets.
    """

    def __init__(self, inner: Sender) -> None:
        self.inner = inner

    async def send(
        self,
        request: OutboundRequest,
        policy: SendPolicy,
        *,
        deadline: float,
        count: AttemptCount | None = None,
    ) -> UpstreamResponse:
        # The fast path, taken on every call when no SDK is set up: under a span that records
        # nothing (the API's no-op span, or one sampled out), a child would record nothing either.
        if trace is None or not trace.get_current_span().is_recording():
            return await self.inner.send(request, policy, deadline=deadline, count=count)
        method, template = request.method, policy.url_template
        with _tracer().start_as_current_span(
            f"{method} {template}",
            kind=trace.SpanKind.CLIENT,
            attributes={"http.request.method": method, "url.template": template},
            # An exception's text is for the model and the audit log (shaped and redacted there);
            # the span gets only its type.
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                response = await self.inner.send(request, policy, deadline=deadline, count=count)
            except SendError as exc:
                _finish(span, status=None, attempts=exc.attempts, error=exc)
                raise
            _finish(span, status=response.status, attempts=response.attempts)
            return response


def _tracer() -> Any:
    # Looked up on first use, not per call (get_tracer reads the environment each time); later
    # calls reach the same provider, as tracing is configured once, before serving.
    global _TRACER
    if _TRACER is None:
        _TRACER = trace.get_tracer("mcp_webtools")
    return _TRACER


_TRACER: Any = None


def _finish(span: Any, *, status: int | None, attempts: int, error: BaseException | None = None) -> None:
    if not span.is_recording():
        return
    if attempts > 1:
        span.set_attribute("http.request.resend_count", attempts - 1)
    if status is not None:
        span.set_attribute("http.response.status_code", status)
        if status >= 400:
            span.set_attribute("error.type", str(status))
            span.set_status(trace.StatusCode.ERROR)
    elif error is not None:
        span.set_attribute("error.type", type(error).__qualname__)
        span.set_status(trace.StatusCode.ERROR)


def _record_attributes(record: CallRecord) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "mcp_webtools.tool": record.tool,
        "mcp_webtools.outcome": record.outcome,
        "mcp_webtools.attempts": record.attempts,
        "http.request.method": record.method,
        "url.template": record.url_template,
    }
    if record.status is not None:
        attributes["http.response.status_code"] = record.status
    if record.client is not None:
        attributes["mcp_webtools.client"] = record.client  # a configured client's id, never a token
    return attributes


def tracing_configured() -> bool:
    """Whether a tracer provider that records is set (by `configure_tracing` or by someone else)."""
    if trace is None:
        return False
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider | trace.NoOpTracerProvider)


def configure_tracing(environ: Mapping[str, str] | None = None) -> bool:
    """Set up the OpenTelemetry SDK from the standard `OTEL_*` variables; say whether tracing is on.

    On when `OTEL_TRACES_EXPORTER` names an exporter (`otlp`, `console`) or an OTLP endpoint is
    set, unless `OTEL_SDK_DISABLED=true`. A tracer provider set up already (e.g. by
    `opentelemetry-instrument`) is left alone. `console` writes one JSON span per line to stderr
    (stdout belongs to the stdio transport).
    """
    environ = os.environ if environ is None else environ
    if trace is None or environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = [name.strip() for name in environ.get("OTEL_TRACES_EXPORTER", "").split(",") if name.strip()]
    if not exporters and (
        environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    ):
        exporters = ["otlp"]
    exporters = [name for name in exporters if name != "none"]
    if not exporters:
        return False
    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        return True  # configured by someone else (opentelemetry-instrument, an embedding app)
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor
    except ImportError:
        logger.warning("OpenTelemetry is configured but its SDK is not installed: pip install 'mcp-webtools[otel]'")
        return False
    # Resource.create reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; ours is only the default.
    resource = Resource.create({"service.name": SERVICE_NAME, **_resource_from(environ)})
    processors = []
    for name in exporters:
        if name == "console":
            exporter = ConsoleSpanExporter(out=sys.stderr, formatter=lambda span: span.to_json(indent=None) + "\n")
            processors.append(SimpleSpanProcessor(exporter))
        elif name == "otlp":
            try:
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            except ImportError:
                logger.warning("OTEL_TRACES_EXPORTER=otlp needs the OTLP exporter: pip install 'mcp-webtools[otel]'")
                continue
            processors.append(BatchSpanProcessor(OTLPSpanExporter()))
        else:
            logger.warning("unknown OTEL_TRACES_EXPORTER %r ignored (known: otlp, console, none)", name)
    if not processors:
        return False  # spans nobody exports would only cost: stay with the no-op provider
    provider = TracerProvider(resource=resource)
    for processor in processors:
        provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    logger.info("OpenTelemetry tracing on (exporters: %s)", ", ".join(exporters))
    return True


def _resource_from(environ: Mapping[str, str]) -> dict[str, str]:
    # Resource.create reads os.environ itself; a service name passed in `environ` (tests) wins.
    name = environ.get("OTEL_SERVICE_NAME")
    return {"service.name": name} if name else {}
