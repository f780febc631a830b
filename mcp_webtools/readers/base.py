"""What every reader shares: the `NormalisedEntry` it returns, `ShapeError`, our extension fields, and
the helpers for the parts all shapes write alike (headers, path defaults, `params`, messages)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..definitions import did_you_mean, slugify
from ..errors import ShapeError
from ..hamsa.format import is_number

__all__ = [
    "EXTENSION_FIELDS",
    "NEITHER_SHAPE",
    "NOT_AN_OBJECT",
    "OUR_KEYS",
    "NormalisedEntry",
    "ShapeError",
    "common_fields",
    "headers",
    "params_schema",
    "path_defaults",
    "read_or_note",
    "unknown_keys",
]

# Settings of ours that Hamsa does not have: top-level keys, the same in every shape.
EXTENSION_FIELDS = {
    "retry": "retry",
    "maxConcurrency": "max_concurrency",
    "rateLimit": "rate_limit",
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
    "tags": "tags",  # which endpoints serve the tool (endpoints.py)
    "placement": "placement",  # where arguments go (requests.py)
    "bodyArgument": "body_argument",
    "bodyEncoding": "body_encoding",
    "auth": "auth",  # upstream auth (auth.py); `authToken` stays the Hamsa way to say bearer
    "examples": "examples",  # calls for `mcp-webtools test` (examples.py); never published or sent to Hamsa
    "forwardCaller": "forward_caller",  # the caller's own credential, per call (forwarding.py)
    "requiredScopes": "required_scopes",  # OAuth scopes a caller needs for the tool (serving/resource_server.py)
}
# Top-level keys of ours that any shape may carry.
OUR_KEYS = frozenset({"mcpName", *EXTENSION_FIELDS})
NOT_AN_OBJECT = "a tool definition must be an object"
NEITHER_SHAPE = "is neither the Hamsa API shape (with `toolSettings`) nor the guide shape (with `methodType` and `url`)"


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


def unknown_keys(
    entry: dict[str, Any], known: Iterable[str], where: str = "", ignored: Iterable[str] = ()
) -> list[tuple[str, str]]:
    """A warning for each key of `entry` (at `where`) outside `known`: most likely a typo (`retries` for
    `retry`). Keys in `ignored` pass silently and are never suggested: nobody means to write those."""
    known, ignored = frozenset(known), frozenset(ignored)
    prefix = f"{where}." if where else ""
    return [
        (f"{prefix}{key}", "is not a known field; ignored" + did_you_mean(str(key), known))
        for key in entry
        if key not in known and key not in ignored
    ]


def read_or_note(problems: list[tuple[str, str]], default: Any, parse: Any, *args: Any) -> Any:
    """`parse(*args)`, or `default` after recording its `ShapeError` as a problem."""
    try:
        return parse(*args)
    except ShapeError as exc:
        problems.append((exc.field, exc.message))
        return default


def common_fields(raw: dict[str, Any], values: dict[str, Any], fields: dict[str, str], params_key: str) -> None:
    """The fields every shape writes alike: name, description, `params`, messages and our extensions."""
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


def _is_scalar(value: Any) -> bool:
    """A string or a number: what a header value or a path default may be written as."""
    return isinstance(value, str) or is_number(value)


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


def headers(items: Any, where: str) -> list[tuple[str, str]]:
    """`{name: value}` or `[{name, value}]` headers as `(name, value)` string pairs."""
    if items is None:
        return []
    pairs = _named_pairs(items, where, "value", missing="")
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
