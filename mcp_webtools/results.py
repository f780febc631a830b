"""Turning an upstream answer, or the lack of one, into the MCP result the model reads.

2xx -> the body shaped per tool (see `shaping/projection.py`): `structuredContent` is always an object
holding `api_response_status`, and the body (an object body itself, any other under `data`);
the text is the (projected) body as compact JSON, or the text as received. JSON nested more than
`MAX_RESULT_DEPTH` levels goes out as text: clients could not parse it as structured content.
`image/*` and `audio/*` answers are image and audio content, unless cut off or holding a secret.
Non-2xx and failures -> `isError: true` with a message the model can act on. Every text passes
through the redactor; the HTTP status and elapsed time go in `_meta`.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import mcp_types as types

from .arguments import nested_deeper_than
from .errors import OutputMismatch
from .outcomes import Outcome
from .redaction import Redactor
from .sending import UpstreamResponse
from .shaping.projection import NO_BODY, ResponseShaping, response_shaping

__all__ = [
    "ERROR_BODY_LIMIT",
    "MAX_RESULT_DEPTH",
    "META_HTTP",
    "META_TOOL",
    "answer_outcome",
    "error_result",
    "response_result",
]

META_HTTP = "mcp-webtools/http"
META_TOOL = "mcp-webtools/tool"
ERROR_BODY_LIMIT = 4096
_TEXTUAL = ("json", "xml", "javascript", "x-www-form-urlencoded", "yaml", "csv")
_PLAIN = response_shaping()  # a tool with no shaping settings
# Structured content nested deeper than this goes out as text instead. Clients' JSON parsers stop
# well before our encoder would: the Python SDK's (pydantic) at about 200 levels of the whole
# message, serde_json at 128, and pydantic refuses to serialize a result past about 250 levels.
MAX_RESULT_DEPTH = 64
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # json.loads has already joined every valid pair
# Media types passed on as MCP content of their own (base64), when whole and free of secrets.
_MEDIA: dict[str, type[types.ImageContent] | type[types.AudioContent]] = {
    "image": types.ImageContent,
    "audio": types.AudioContent,
}


def response_result(
    response: UpstreamResponse, redactor: Redactor, shaping: ResponseShaping | None = None
) -> types.CallToolResult:
    shaping = shaping or _PLAIN
    meta: dict[str, Any] = {"status": response.status, "elapsedMs": round(response.elapsed_ms, 3)}
    if response.truncated:
        meta["truncated"] = True
    if response.attempts > 1:
        meta["attempts"] = response.attempts
    if response.retry_after is not None and not response.ok:
        meta["retryAfterSeconds"] = response.retry_after
    if not response.ok:
        return _http_error(response, redactor, meta, shaping)

    mime = _mime(response)
    media = _MEDIA.get(mime.partition("/")[0])
    if (
        media is not None
        and not _is_textual(mime)
        and not response.truncated
        and not _holds_secret(response.body, redactor)
    ):
        data = base64.b64encode(response.body).decode("ascii")
        return _shaped(shaping, NO_BODY, response, redactor, meta, [media(data=data, mime_type=mime)])
    if not _is_textual(mime):
        note = f"The upstream API answered HTTP {response.status} with {len(response.body)} bytes of {mime}"
        note += " (cut off at the response size limit)." if response.truncated else "."
        return _shaped(shaping, NO_BODY, response, redactor, meta, [_text(note)])

    text = _decode(response)
    if response.truncated:
        # Never parsed as JSON: the beginning of a document is not the document.
        if shaping.needs_whole_body:
            return _unshapeable(response, redactor, meta, shaping)
        note = (
            f"[response truncated: the upstream body exceeded {len(response.body)} bytes; "
            "only the beginning is shown]\n"
        )
        shown = _cap_text(redactor.redact_cut(text), shaping.max_result_bytes)
        return _shaped(shaping, NO_BODY, response, redactor, meta, [_text(note + shown)])
    if "json" in mime or not mime:
        try:
            # NaN and Infinity are not JSON: null, as they would go out in structuredContent anyway.
            value = _redact_json(json.loads(text, parse_constant=lambda _: None), redactor, text)
        except ValueError:
            value = _NOT_JSON
        except RecursionError:  # nested deeper than the parser goes
            return _too_deep(text, response, redactor, meta, shaping)
        if value is not _NOT_JSON:
            return _shaped(shaping, value, response, redactor, meta, source=text)
        if text.strip() and "json" in mime:
            # Not an error: the call did happen upstream, and an error invites repeating a POST.
            mislabelled = f"[the upstream API labelled this answer {mime}, but it is not valid JSON]"
            return _shaped(shaping, redactor(text), response, redactor, meta, lead=mislabelled)
    return _shaped(shaping, redactor(text) if text else NO_BODY, response, redactor, meta)


def answer_outcome(response: UpstreamResponse, result: types.CallToolResult) -> Outcome:
    """The outcome of a call the upstream answered, as `response_result` gave it."""
    if not response.ok:
        return Outcome.HTTP_ERROR
    if response.truncated:
        return Outcome.TRUNCATED
    return Outcome.INVALID_RESPONSE if result.is_error else Outcome.OK


def error_result(message: str, redactor: Redactor, **meta: Any) -> types.CallToolResult:
    """A tool error the model can act on (validation failure, timeout, unreachable upstream)."""
    return types.CallToolResult(
        content=[_text(redactor(message))],
        is_error=True,
        _meta={META_HTTP: meta} if meta else None,
    )


_NOT_JSON = object()


def _redact_json(value: Any, redactor: Redactor, source: str) -> Any:
    """`value` (parsed from `source`) with secrets masked and lone surrogates replaced."""
    if not redactor and "\\u" not in source and not _LONE_SURROGATE.search(source):
        # Nothing to hide, and no surrogate in the text nor an escape that could have made one:
        # `value` is already what the work below would return (spares re-encoding every body).
        return value
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate escape ("\ud800") parses, but no result holding it can be sent: use U+FFFD.
        text = _LONE_SURROGATE.sub("\ufffd", text)
        value = json.loads(text)
    redacted = redactor(text)
    if redacted == text:
        return value
    # A secret was echoed back. Replacing it inside the JSON text keeps the JSON valid
    # in every case but a secret spanning string boundaries; then redact value by value.
    try:
        return json.loads(redacted)
    except ValueError:
        return redactor.redact_json(value)


def _shaped(
    shaping: ResponseShaping,
    body: Any,
    response: UpstreamResponse,
    redactor: Redactor,
    meta: dict[str, Any],
    content: list[types.ContentBlock] | None = None,
    *,
    source: str | None = None,
    lead: str | None = None,
) -> types.CallToolResult:
    """A 2xx result: `content` as given (or the shaped body as text) plus the structured envelope.

    `source` is the JSON text `body` was parsed from (None: `body` is not JSON); `lead` is a note
    for the model placed before the body.
    """
    try:
        shaped = shaping.shape(body, response.status, is_json=source is not None)
    except OutputMismatch as exc:
        message = f"The upstream API answered HTTP {response.status}, but {exc}."
        return _error(message, redactor, meta, shaping.status_only(response.status))
    except RecursionError:  # only JSON nests
        assert source is not None
        return _too_deep(source, response, redactor, meta, shaping)
    # Nesting never exceeds the brackets in the text: most answers are cleared without a walk.
    if (
        source is not None
        and source.count("[") + source.count("{") >= MAX_RESULT_DEPTH
        and nested_deeper_than(shaped.structured, MAX_RESULT_DEPTH)
    ):
        return _too_deep(source, response, redactor, meta, shaping)
    if content is None:
        content = [_text(shaped.text or "")]
    if lead:
        content = [_text(lead), *content]
    if shaped.note:
        content = [*content, _text(shaped.note)]
    return _result(content, meta, structured=shaped.structured)


def _unshapeable(
    response: UpstreamResponse, redactor: Redactor, meta: dict[str, Any], shaping: ResponseShaping
) -> types.CallToolResult:
    message = (
        f"The upstream API answered HTTP {response.status} with more than {len(response.body)} bytes, the "
        "response size limit (maxResponseBytes); the answer was cut off, so this tool's responseFields, "
        "flatten or outputSchema cannot be applied to it. Raise the tool's maxResponseBytes."
    )
    return _error(message, redactor, meta, shaping.status_only(response.status))


def _too_deep(
    text: str, response: UpstreamResponse, redactor: Redactor, meta: dict[str, Any], shaping: ResponseShaping
) -> types.CallToolResult:
    """A JSON answer too deeply nested for structured content: its text, or an error if the tool needs its structure."""
    deep = f"JSON nested more than {MAX_RESULT_DEPTH} levels deep, too deep to pass on as structured content"
    if shaping.needs_whole_body:
        message = (
            f"The upstream API answered HTTP {response.status} with {deep}, so this tool's responseFields, "
            "flatten or outputSchema cannot be applied to it."
        )
        return _error(message, redactor, meta, shaping.status_only(response.status))
    lead = f"[the upstream API answered with {deep}: it is passed on as text]"
    return _shaped(shaping, redactor(text), response, redactor, meta, lead=lead)


def _error(
    message: str, redactor: Redactor, meta: dict[str, Any], structured: dict[str, Any] | None
) -> types.CallToolResult:
    return types.CallToolResult(
        content=[_text(redactor(message))], structured_content=structured, is_error=True, _meta={META_HTTP: meta}
    )


def _cap_text(text: str, max_bytes: int) -> str:
    """At most `max_bytes` of UTF-8 (plain text, never parsed), marked when cut."""
    if len(text.encode("utf-8", "surrogatepass")) <= max_bytes:
        return text
    kept = text.encode("utf-8", "surrogatepass")[: max_bytes - 64].decode("utf-8", "ignore")
    return f"{kept}…[+{len(text) - len(kept)} chars]"


def _http_error(
    response: UpstreamResponse, redactor: Redactor, meta: dict[str, Any], shaping: ResponseShaping
) -> types.CallToolResult:
    reason = f" {redactor(response.reason)}" if response.reason else ""
    message = f"The upstream API answered HTTP {response.status}{reason}"
    message += f" (after {response.attempts} attempts)." if response.attempts > 1 else "."
    if response.note:
        message += f" {redactor(response.note)}"  # a note may quote the upstream (a redirect's Location)
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
    # The status for flows to route on (404 vs 5xx), unless the tool's outputSchema would not allow it.
    structured = shaping.status_only(response.status)
    return types.CallToolResult(
        content=[_text(message)], structured_content=structured, is_error=True, _meta={META_HTTP: meta}
    )


def _result(
    content: list[types.ContentBlock], meta: dict[str, Any], *, structured: dict[str, Any] | None = None
) -> types.CallToolResult:
    return types.CallToolResult(content=content, structured_content=structured, _meta={META_HTTP: meta})


def _text(text: str) -> types.TextContent:
    return types.TextContent(type="text", text=text)


def _holds_secret(body: bytes, redactor: Redactor) -> bool:
    """Whether raw bytes contain a secret (an image is passed on base64-encoded, beyond redaction)."""
    text = body.decode("latin-1")
    return redactor(text) != text


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
