"""Turning an upstream answer, or the lack of one, into the MCP result the model reads.

2xx + JSON object -> `structuredContent` and a compact JSON text; other JSON -> JSON text;
anything else -> text. Non-2xx and failures -> `isError: true` with a message the model can act
on. Every text passes through the redactor; the HTTP status and elapsed time go in `_meta`.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import mcp_types as types

from .executor import UpstreamResponse
from .redaction import Redactor

__all__ = ["ERROR_BODY_LIMIT", "META_HTTP", "META_TOOL", "error_result", "response_result"]

META_HTTP = "mcp-webtools/http"
META_TOOL = "mcp-webtools/tool"
ERROR_BODY_LIMIT = 4096
_TEXTUAL = ("json", "xml", "javascript", "x-www-form-urlencoded", "yaml", "csv")


def response_result(response: UpstreamResponse, redactor: Redactor) -> types.CallToolResult:
    meta: dict[str, Any] = {"status": response.status, "elapsedMs": round(response.elapsed_ms, 3)}
    if response.truncated:
        meta["truncated"] = True
    if response.attempts > 1:
        meta["attempts"] = response.attempts
    if response.retry_after is not None and not response.ok:
        meta["retryAfterSeconds"] = response.retry_after
    if not response.ok:
        return _http_error(response, redactor, meta)

    mime = _mime(response)
    if mime.startswith("image/") and not _is_textual(mime) and not response.truncated:
        data = base64.b64encode(response.body).decode("ascii")
        return _result([types.ImageContent(type="image", data=data, mime_type=mime)], meta)
    if not _is_textual(mime):
        note = f"The upstream API answered HTTP {response.status} with {len(response.body)} bytes of {mime}"
        note += " (cut off at the response size limit)." if response.truncated else "."
        return _result([_text(note)], meta)

    text = _decode(response)
    if response.truncated:
        # Never parsed as JSON: the beginning of a document is not the document.
        note = (
            f"[response truncated: the upstream body exceeded {len(response.body)} bytes; "
            "only the beginning is shown]\n"
        )
        return _result([_text(note + redactor.redact_cut(text))], meta)
    if "json" in mime or not mime:
        try:
            value = json.loads(text)
        except ValueError:
            value = _NOT_JSON
        if value is not _NOT_JSON:
            return _json_result(value, redactor, meta)
    return _result([_text(redactor(text))], meta)


def error_result(message: str, redactor: Redactor, **meta: Any) -> types.CallToolResult:
    """A tool error the model can act on (validation failure, timeout, unreachable upstream)."""
    return types.CallToolResult(
        content=[_text(redactor(message))],
        is_error=True,
        _meta={META_HTTP: meta} if meta else None,
    )


_NOT_JSON = object()


def _json_result(value: Any, redactor: Redactor, meta: dict[str, Any]) -> types.CallToolResult:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    redacted = redactor(text)
    if redacted != text:
        # A secret was echoed back. Replacing it inside the JSON text keeps the JSON valid
        # in every case but a secret spanning string boundaries; then redact value by value.
        try:
            value = json.loads(redacted)
        except ValueError:
            value = redactor.redact_json(value)
            redacted = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    structured = value if isinstance(value, dict) else None
    return _result([_text(redacted)], meta, structured=structured)


def _http_error(response: UpstreamResponse, redactor: Redactor, meta: dict[str, Any]) -> types.CallToolResult:
    reason = f" {redactor(response.reason)}" if response.reason else ""
    message = f"The upstream API answered HTTP {response.status}{reason}"
    message += f" (after {response.attempts} attempts)." if response.attempts > 1 else "."
    if response.note:
        message += f" {response.note}"
    if response.retry_after is not None:
        message += f" It asked to retry after {response.retry_after:g} s."
    if _is_textual(_mime(response)):
        # Redact before capping, so the cap can never cut a secret in two and show its first half.
        text = _decode(response).strip()
        body = redactor.redact_cut(text) if response.truncated else redactor(text)
        if len(body) > ERROR_BODY_LIMIT:
            body = body[:ERROR_BODY_LIMIT] + f"... [{len(body) - ERROR_BODY_LIMIT} more characters not shown]"
        elif response.truncated:
            body += " [cut off at the response size limit]"
        if body:
            message += f"\nResponse body:\n{body}"
    return types.CallToolResult(content=[_text(message)], is_error=True, _meta={META_HTTP: meta})


def _result(
    content: list[types.ContentBlock], meta: dict[str, Any], *, structured: dict[str, Any] | None = None
) -> types.CallToolResult:
    return types.CallToolResult(content=content, structured_content=structured, _meta={META_HTTP: meta})


def _text(text: str) -> types.TextContent:
    return types.TextContent(type="text", text=text)


def _mime(response: UpstreamResponse) -> str:
    return response.content_type.split(";", 1)[0].strip().lower()


def _is_textual(mime: str) -> bool:
    return not mime or mime.startswith("text/") or any(marker in mime for marker in _TEXTUAL)


def _decode(response: UpstreamResponse) -> str:
    charset = "utf-8"
    for param in response.content_type.split(";")[1:]:
        key, _, value = param.strip().partition("=")
        if key.lower() == "charset" and value:
            charset = value.strip('"')
    try:
        return response.body.decode(charset, errors="replace")
    except LookupError:
        return response.body.decode("utf-8", errors="replace")
