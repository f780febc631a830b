"""The three shapes users write tool definitions in, read into `ToolDefinition` fields.

Users arrive with one of:

1. the Hamsa create-web-tool API body (`toolSettings{serverUrl, methodType, ...}`, `params`);
2. the Hamsa integration guide's shape (`methodType`, `url`, `authType`, `headers[]`, `parameters`);
3. a Hamsa API response envelope `{"success", "message", "data"}` wrapping (1), where
   `toolSettings.timeout` is in milliseconds.

`normalise_entry` turns any of them into the fields of `ToolDefinition`, and remembers which
field each came from, so an error can name the field the user actually wrote.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .definitions import did_you_mean, slugify
from .errors import ShapeError

__all__ = [
    "EXTENSION_FIELDS",
    "HAMSA_RECORD_KEYS",
    "SETTINGS_KEYS",
    "NormalisedEntry",
    "params_schema",
    "path_defaults",
    "entries_in_document",
    "normalise_entry",
    "unwrapped",
]

# Settings of ours that Hamsa does not have: top-level keys, the same in every shape.
EXTENSION_FIELDS = {
    "retry": "retry",
    "maxConcurrency": "max_concurrency",
    "followRedirects": "follow_redirects",
    "allowHttp": "allow_http",
    "maxRequestBytes": "max_request_bytes",
    "maxResponseBytes": "max_response_bytes",
    "responseFields": "response_fields",
    "flatten": "flatten",
    "maxResultBytes": "max_result_bytes",
    "outputSchema": "output_schema",
    "progressIntervalSeconds": "progress_interval_seconds",
    "delayedMessageSeconds": "delayed_message_seconds",
}


@dataclass
class NormalisedEntry:
    """`ToolDefinition` fields from one entry, before `${ENV}` substitution and validation.

    `fields` maps each canonical field to the user's own field path, for error messages.
    `problems` are `(user field, message)` pairs for parts that could not be read; the rest of
    the entry is still validated so that one pass reports everything.
    `skip_reason` is set for entries that are not FUNCTION tools (e.g. `type: MCP`).
    """

    values: dict[str, Any]
    fields: dict[str, str]
    shape: str
    skip_reason: str | None = None
    warnings: list[tuple[str, str]] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)


def entries_in_document(document: Any) -> list[tuple[str, Any]]:
    """Split one parsed file into `(location, entry)` pairs.

    A file holds one tool, a list of tools, `{"tools": [...]}`, or a Hamsa response
    envelope whose `data` is one tool or a list. The three shapes mix freely: a list (or
    `tools`) may hold envelopes too, each contributing what its `data` holds.
    """
    if isinstance(document, list):
        return [found for i, item in enumerate(document) for found in _tool_or_envelope(f"[{i}]", item)]
    if isinstance(document, dict):
        if "tools" in document and "name" not in document:
            tools = document["tools"]
            if not isinstance(tools, list):
                raise ShapeError("tools", "must be a list of tool definitions")
            return [found for i, item in enumerate(tools) for found in _tool_or_envelope(f"tools[{i}]", item)]
        return _tool_or_envelope("", document)
    expected = 'a tool definition (an object), a list of them, or {"tools": [...]}'
    if document is None:  # an empty YAML file, or one holding only comments
        raise ShapeError("", f"is empty (or null); it must hold {expected}")
    raise ShapeError("", f"must hold {expected}")


def _tool_or_envelope(location: str, item: Any) -> list[tuple[str, Any]]:
    """`item` as one entry, or the entries of its `data` when it is a response envelope."""
    if not (isinstance(item, dict) and _is_envelope(item)):
        return [(location, item)]
    where = f"{location}.data" if location else "data"
    data = item["data"]
    if isinstance(data, list):
        return [(f"{where}[{i}]", _EnvelopeEntry(entry)) for i, entry in enumerate(data)]
    return [(where, _EnvelopeEntry(data))]


class _EnvelopeEntry:
    """Marks an entry that came out of a response envelope (timeouts there are in ms)."""

    def __init__(self, entry: Any) -> None:
        self.entry = entry


def unwrapped(entry: Any) -> Any:
    """An entry of `entries_in_document` as the file has it (out of its envelope, if any)."""
    return entry.entry if isinstance(entry, _EnvelopeEntry) else entry


def _is_envelope(document: dict[str, Any]) -> bool:
    return "data" in document and ("success" in document or "message" in document) and "name" not in document


def normalise_entry(entry: Any) -> NormalisedEntry:
    """Read one entry of any shape into canonical `ToolDefinition` fields.

    Raises `ShapeError` only when the entry cannot be read at all; smaller problems are
    collected in `NormalisedEntry.problems`.
    """
    from_envelope = isinstance(entry, _EnvelopeEntry)
    raw = unwrapped(entry)
    if not isinstance(raw, dict):
        raise ShapeError("", "a tool definition must be an object")
    # Decide on the type first: an MCP entry has its own shape and is never parsed as a web tool.
    tool_type = raw.get("type", "FUNCTION")
    if isinstance(tool_type, str) and tool_type.upper() == "MCP":
        return NormalisedEntry(
            {"name": raw.get("name")}, {}, shape="mcp", skip_reason='has `type: "MCP"`; only FUNCTION tools are served'
        )
    if "toolSettings" in raw:
        normalised = _from_hamsa_api(raw, timeout_in_ms=from_envelope)
    elif "url" in raw or "methodType" in raw:
        normalised = _from_guide(raw)
    else:
        raise ShapeError(
            "",
            "is neither the Hamsa API shape (with `toolSettings`) nor the guide shape (with `methodType` and `url`)",
        )
    if not (isinstance(tool_type, str) and tool_type.upper() == "FUNCTION"):
        normalised.problems.append(("type", f'must be "FUNCTION" or "MCP", not {tool_type!r}'))
    normalised.warnings += _unknown_keys(raw, normalised.shape)
    headers = normalised.values.get("headers") or []
    if normalised.values.get("auth_token") and any(name.lower() == "authorization" for name, _ in headers):
        normalised.warnings.append(
            (f"{normalised.fields['headers']}.Authorization", "is replaced by the tool's authToken")
        )
    return normalised


# Keys each shape understands; anything else is most likely a typo (`retries` for `retry`).
_COMMON_KEYS = frozenset({"type", "name", "mcpName", "description", "async", "messages", *EXTENSION_FIELDS})
_API_KEYS = _COMMON_KEYS | {"toolSettings", "params"}
_GUIDE_KEYS = _COMMON_KEYS | {
    "methodType", "url", "authType", "authToken", "headers", "pathParameters", "parameters", "params",
    "timeoutSeconds", "timeOut",
}  # fmt: skip
SETTINGS_KEYS = frozenset(
    {"serverUrl", "methodType", "authToken", "timeOut", "timeout", "httpHeaders", "pathParameters"}
)
# What Hamsa's API adds to a stored tool: bookkeeping, not behaviour.
HAMSA_RECORD_KEYS = frozenset(
    {"id", "persistentId", "version", "userId", "projectId", "isActive", "collectionId", "createdAt", "updatedAt"}
)


def _unknown_keys(raw: dict[str, Any], shape: str) -> list[tuple[str, str]]:
    keys = _API_KEYS if shape.startswith("hamsa-api") else _GUIDE_KEYS
    warnings = [(str(key), _unknown(key, keys)) for key in raw if key not in keys and key not in HAMSA_RECORD_KEYS]
    settings = raw.get("toolSettings")
    if isinstance(settings, dict):
        unknown = [key for key in settings if key not in SETTINGS_KEYS]
        warnings += [(f"toolSettings.{key}", _unknown(key, SETTINGS_KEYS)) for key in unknown]
    return warnings


def _unknown(key: Any, known: Iterable[str]) -> str:
    # Hamsa's bookkeeping fields are never suggested: nobody means to write those.
    return "is not a known field; ignored" + did_you_mean(str(key), known)


def _read(problems: list[tuple[str, str]], default: Any, parse: Any, *args: Any) -> Any:
    """`parse(*args)`, or `default` after recording its `ShapeError` as a problem."""
    try:
        return parse(*args)
    except ShapeError as exc:
        problems.append((exc.field, exc.message))
        return default


def _common(raw: dict[str, Any], values: dict[str, Any], fields: dict[str, str], params_key: str) -> None:
    values["name"] = raw.get("name")
    fields["name"] = "name"
    values["mcp_name"] = (
        raw["mcpName"] if "mcpName" in raw else slugify(raw["name"]) if isinstance(raw.get("name"), str) else ""
    )
    fields["mcp_name"] = "mcpName" if "mcpName" in raw else "name"
    if raw.get("description") is not None:
        values["description"] = raw["description"]
    fields["description"] = "description"
    if "async" in raw:
        values["is_async"] = raw["async"]
    fields["is_async"] = "async"
    values["params"] = params_schema(raw.get(params_key))
    fields["params"] = params_key
    if raw.get("messages") is not None:
        values["messages"] = _messages(raw["messages"])
    fields["messages"] = "messages"
    for key, canonical in EXTENSION_FIELDS.items():
        if key in raw:
            values[canonical] = raw[key]
        fields[canonical] = key


def _from_hamsa_api(raw: dict[str, Any], *, timeout_in_ms: bool) -> NormalisedEntry:
    settings = raw["toolSettings"]
    if not isinstance(settings, dict):
        raise ShapeError("toolSettings", "must be an object")
    values: dict[str, Any] = {}
    fields: dict[str, str] = {}
    problems: list[tuple[str, str]] = []
    _common(raw, values, fields, "params")
    values["url"] = settings.get("serverUrl")
    fields["url"] = "toolSettings.serverUrl"
    values["method"] = settings.get("methodType")
    fields["method"] = "toolSettings.methodType"
    if settings.get("authToken") not in (None, ""):
        values["auth_token"] = settings["authToken"]
    fields["auth_token"] = "toolSettings.authToken"
    values["headers"] = _read(problems, [], _headers, settings.get("httpHeaders"), "toolSettings.httpHeaders")
    fields["headers"] = "toolSettings.httpHeaders"
    values["path_defaults"] = _read(
        problems, {}, path_defaults, settings.get("pathParameters"), "toolSettings.pathParameters"
    )
    fields["path_defaults"] = "toolSettings.pathParameters"
    if "timeOut" in settings:
        values["timeout_seconds"] = settings["timeOut"]
        fields["timeout_seconds"] = "toolSettings.timeOut"
    elif "timeout" in settings:
        # The API's responses carry `timeout` in milliseconds; its request bodies `timeOut` in seconds.
        timeout = settings["timeout"]
        values["timeout_seconds"] = timeout / 1000 if timeout_in_ms and _is_number(timeout) else timeout
        fields["timeout_seconds"] = "toolSettings.timeout"
    shape = "hamsa-api" + (" (response envelope)" if timeout_in_ms else "")
    return NormalisedEntry(values, fields, shape=shape, problems=problems)


def _from_guide(raw: dict[str, Any]) -> NormalisedEntry:
    values: dict[str, Any] = {}
    fields: dict[str, str] = {}
    warnings: list[tuple[str, str]] = []
    problems: list[tuple[str, str]] = []
    _common(raw, values, fields, "parameters" if "parameters" in raw else "params")
    values["url"] = raw.get("url")
    fields["url"] = "url"
    values["method"] = raw.get("methodType")
    fields["method"] = "methodType"
    auth_type = raw.get("authType", "jwtAuth" if raw.get("authToken") else "none")
    if auth_type not in ("jwtAuth", "none"):
        problems.append(("authType", f'must be "jwtAuth" or "none", not {auth_type!r}'))
    elif auth_type == "jwtAuth" and raw.get("authToken") not in (None, ""):
        values["auth_token"] = raw["authToken"]
    elif auth_type == "none" and raw.get("authToken"):
        warnings.append(("authToken", 'is ignored because authType is "none"'))
    fields["auth_token"] = "authToken"
    values["headers"] = _read(problems, [], _headers, raw.get("headers"), "headers")
    fields["headers"] = "headers"
    values["path_defaults"] = _read(problems, {}, path_defaults, raw.get("pathParameters"), "pathParameters")
    fields["path_defaults"] = "pathParameters"
    for key in ("timeoutSeconds", "timeOut"):
        if key in raw:
            values["timeout_seconds"] = raw[key]
            fields["timeout_seconds"] = key
            break
    return NormalisedEntry(values, fields, shape="guide", warnings=warnings, problems=problems)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_scalar(value: Any) -> bool:
    """A string or a number: what a header value or a path default may be written as."""
    return isinstance(value, str) or _is_number(value)


def params_schema(params: Any) -> Any:
    if params is None:
        return {"type": "object", "properties": {}, "additionalProperties": False}
    if (
        isinstance(params, dict)
        and params
        and "type" not in params
        and "properties" not in params
        and all(isinstance(v, dict) and "type" in v for v in params.values())
    ):
        # Hamsa's API responses show `params` as a bare map of properties.
        return {"type": "object", "properties": params}
    return params


def _messages(messages: Any) -> Any:
    if isinstance(messages, dict):  # {"Request Start": "Let me look that up..."}
        return [{"type": str(k), "content": v} for k, v in messages.items()]
    return messages


def _named_pairs(items: Any, where: str, value_key: str, missing: Any) -> list[tuple[str, Any]]:
    """`{name: value}` or `[{name, <value_key>}]` -> `(name, value)` pairs, each name a string.

    A list item without `value_key` gets `missing`.
    """
    if isinstance(items, dict):
        return [(str(name), value) for name, value in items.items()]  # YAML may give `1:` as a key
    if not isinstance(items, list):
        raise ShapeError(where, f"must be an object of name: value, or a list of {{name, {value_key}}}")
    pairs: list[tuple[str, Any]] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or "name" not in item:
            raise ShapeError(f"{where}[{i}]", f"must be an object with `name` and `{value_key}`")
        if not isinstance(item["name"], str) or not item["name"]:
            raise ShapeError(f"{where}[{i}].name", "must be a non-empty string")
        pairs.append((item["name"], item.get(value_key, missing)))
    return pairs


def _headers(headers: Any, where: str) -> list[tuple[str, str]]:
    if headers is None:
        return []
    pairs = _named_pairs(headers, where, "value", missing="")
    for name, value in pairs:
        if not _is_scalar(value):
            raise ShapeError(f"{where}.{name}", "a header value must be a string or a number")
    return [(name, str(value)) for name, value in pairs]


def path_defaults(parameters: Any, where: str) -> dict[str, str]:
    if parameters is None:
        return {}
    defaults: dict[str, str] = {}
    for name, value in _named_pairs(parameters, where, "defaultValue", missing=None):
        if value is None and not isinstance(parameters, dict):
            continue  # a list entry may declare a parameter without a default
        if not _is_scalar(value):
            raise ShapeError(f"{where}.{name}", "a path parameter default must be a string or a number")
        defaults[name] = str(value)
    return defaults
