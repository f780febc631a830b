"""What the console's pages show, as JSON: tools, the config and its last reload.

A tool is shown twice: as the model sees it (its `tools/list` entry, exactly as published, so
already redacted) and as it is sent (method, URL template, where each argument goes, auth,
headers, limits). Credentials are never values here: the auth token and every configured header
value but plain protocol headers are written `***` whatever their length, and the console passes
every view through the toolset's redactor on top (see `Console.redactor`).
"""

from __future__ import annotations

import time
from typing import Any

from ...auth import authorization_value
from ...endpoints import EndpointConfig
from ...forwarding import ForwardCallerAuth
from ...loading import ConfigProblem
from ...redaction import MASK, NON_SECRET_HEADERS
from ...requests import BODY_METHODS, OutboundRequest
from ...toolset import PreparedTool, Toolset
from ..reload import Reloader, ReloadOutcome

__all__ = ["config_view", "endpoint_paths", "error_view", "reload_view", "tool_view"]


def endpoint_paths(config: EndpointConfig, tool: str | None = None) -> list[str]:
    """The paths that serve `tool` (every path when None): `/mcp` and `/sse` unless `defaultEndpoint:
    none`, then `/mcp/<name>` and `/sse/<name>` of each endpoint that serves it (endpoints.py)."""
    paths = ["/mcp", "/sse"] if config.serves_default else []
    for endpoint in config.endpoints.values():
        if tool is None or tool in endpoint.tools:
            paths += [f"/mcp/{endpoint.name}", f"/sse/{endpoint.name}"]
    return paths


def tool_view(tool: PreparedTool, listed: dict[str, Any], endpoints: EndpointConfig) -> dict[str, Any]:
    """One tool: `listed` is its wire `tools/list` entry (what the model sees); `endpoints`: the config's."""
    definition, template = tool.definition, tool.template
    params = definition.params
    return {
        "name": tool.name,
        "model": listed,
        "examples": [e for e in params.get("examples", ()) if isinstance(e, dict)],
        "sent": {
            "method": definition.method,
            "url": definition.url_template or definition.url,
            "arguments": _argument_places(tool),
            "auth": _auth(tool),
            "headers": [[name, _shown_header(name, value, tool)] for name, value in _sent_headers(tool)],
            "timeoutSeconds": definition.timeout_seconds,
            "retry": definition.retry.model_dump(by_alias=True),
            "maxAttempts": definition.retry.max_attempts(definition.method),
            "maxConcurrency": definition.max_concurrency,
            "followRedirects": definition.follow_redirects,
            "maxRequestBytes": template.max_body_bytes,
            "maxResponseBytes": definition.max_response_bytes,
            "responseFields": list(definition.response_fields),
            "flatten": definition.flatten,
            "maxResultBytes": definition.max_result_bytes,
            "async": definition.is_async,
            "progressIntervalSeconds": definition.progress_interval_seconds,
            "delayedMessageSeconds": definition.delayed_message_seconds,
        },
        "source": definition.source,
        "endpoints": endpoint_paths(endpoints, tool.name),
    }


def _argument_places(tool: PreparedTool) -> list[dict[str, Any]]:
    """Where each argument goes: the URL path, the query string, a header or the body (requests.py)."""
    definition = tool.definition
    properties = definition.params.get("properties") or {}
    required = set(definition.params.get("required") or ())
    filled = definition.placeholder_arguments
    has_body = definition.method in BODY_METHODS
    rest = "body" if has_body and definition.body_argument is None else "query"

    def place(name: str) -> str:
        if name in filled.values():
            return "path"
        if name == definition.body_argument:
            return "body (all of it)"
        chosen = definition.placement.get(name)
        return f"{chosen.in_} {chosen.wire_name(name)}" if chosen and chosen.name else (chosen.in_ if chosen else rest)

    places = [{"name": name, "in": place(name), "required": name in required} for name in properties]
    placeholders = {p for p, argument in filled.items() if argument not in properties}
    for name in sorted(placeholders):  # filled from config: a path default
        places.append({"name": name, "in": "path", "required": False, "fromConfig": True})
    if tool.definition.params.get("additionalProperties", True) is not False:
        places.append({"name": "(any other argument)", "in": rest, "required": False})
    return places


def _auth(tool: PreparedTool) -> dict[str, str]:
    """The tool's auth as `list` says it: the type and where the credential goes, never a value.

    `fallback`, for a `forwardCaller` tool: what a call without the caller's header does.
    """
    token, auth = tool.definition.auth_token, tool.send_policy.auth
    if token and tool.definition.forward_caller is None:
        scheme = authorization_value(token).split(" ", 1)[0]
        return {"type": f"{scheme} token (authToken)", "header": f"Authorization: {scheme} {MASK}"}
    if auth is not None:
        # `Auth.describe()`: "<type>, <where it goes>", and for forwardCaller "...; without it: <fallback>".
        described, _, fallback = auth.describe().partition("; without it: ")
        kind, _, where = described.partition(", ")
        return {"type": kind, "header": where, **({"fallback": fallback} if fallback else {})}
    for name, _ in tool.definition.headers:
        if name.lower() == "authorization":
            return {"type": "Authorization header (httpHeaders)", "header": f"Authorization: {MASK}"}
    return {"type": "none", "header": ""}


def _shown_header(name: str, value: str, tool: PreparedTool) -> str:
    forward = tool.send_policy.auth
    if isinstance(forward, ForwardCallerAuth) and name.lower() == forward.forward.send_as.lower():
        return forward.forward.source()  # a placeholder naming the caller's header, not a value
    if name.lower() in NON_SECRET_HEADERS:
        return value
    if name.lower() == "authorization":
        return f"{value.split(' ', 1)[0]} {MASK}" if " " in value else MASK
    return MASK


def error_view(error: ConfigProblem) -> dict[str, Any]:
    return {"file": error.file, "tool": error.tool, "field": error.field, "message": error.message, "text": str(error)}


def reload_view(outcome: ReloadOutcome, at: float) -> dict[str, Any]:
    return {
        "at": round(at, 3),
        "trigger": outcome.trigger,
        "ok": outcome.ok,
        "tools": outcome.tools,
        "added": list(outcome.added),
        "removed": list(outcome.removed),
        "changed": list(outcome.changed),
        "notified": outcome.notified,
        "errors": [error_view(e) for e in outcome.errors],
        "warnings": [error_view(w) for w in outcome.warnings],
        "summary": outcome.describe().split("\n", 1)[0],
    }


def config_view(
    toolset: Toolset, reloader: Reloader | None, loaded_at: float, last_reload: dict[str, Any] | None
) -> dict[str, Any]:
    """The files serving now and the tools each gave, and the last reload (None before the first)."""
    by_file: dict[str, list[str]] = {}
    for tool in toolset:
        by_file.setdefault(tool.definition.source, []).append(tool.name)
    files = [{"path": file, "tools": by_file.pop(file, [])} for file in toolset.files]
    files += [{"path": file, "tools": names} for file, names in by_file.items()]  # built in memory
    watching = reloader is not None and reloader.watch
    return {
        "paths": [str(p) for p in reloader.watcher.paths] if reloader is not None else [],
        "files": files,
        "tools": len(toolset),
        "warnings": [error_view(w) for w in toolset.warnings],
        "loaded_at": round(loaded_at, 3),
        "watching": watching,
        "watch_interval": reloader.interval if watching and reloader is not None else None,
        "reloads": reloader is not None,
        "last_reload": last_reload,
        "now": round(time.time(), 3),
    }


def _sent_headers(tool: PreparedTool) -> tuple[tuple[str, str], ...]:
    """The headers every call of `tool` sends, its auth flow's included (as `call --dry-run` shows them)."""
    template = tool.template
    request = OutboundRequest(tool.definition.method, "", template.headers, defaults=template.default_headers)
    auth = tool.send_policy.auth
    return (auth.preview(request) if auth is not None else request).headers
