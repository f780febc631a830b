"""The one normalised tool model, and the parsers of the three shapes users write.

Users arrive with one of:

1. the Hamsa create-web-tool API body (`toolSettings{serverUrl, methodType, ...}`, `params`);
2. the Hamsa integration guide's shape (`methodType`, `url`, `authType`, `headers[]`, `parameters`);
3. a Hamsa API response envelope `{"success", "message", "data"}` wrapping (1), where
   `toolSettings.timeout` is in milliseconds.

`normalise_entry` turns any of them into the fields of `ToolDefinition`, and remembers which
field each came from, so an error can name the field the user actually wrote. This module knows
nothing of files, HTTP or MCP.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import jsonschema
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "DEFAULT_TIMEOUT_SECONDS",
    "Message",
    "NormalisedEntry",
    "ShapeError",
    "ToolDefinition",
    "entries_in_document",
    "normalise_entry",
    "placeholders_in",
    "slugify",
]

DEFAULT_TIMEOUT_SECONDS = 10.0
MAX_TIMEOUT_SECONDS = 3600.0
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
MCP_NAME_RULE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
HEADER_NAME_RULE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# `:name` or `{name}`; a name starts with a letter or `_`, so `host:8080` is never a placeholder.
PLACEHOLDER = re.compile(r":([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z_][A-Za-z0-9_]*)\}")

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]


class ShapeError(ValueError):
    """A tool entry is not any shape we understand; `field` is the user's field path."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class Message(BaseModel):
    """A spoken message of the tool (`request-start`, `Request Complete`, ...)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str = Field(min_length=1)
    content: str


class ToolDefinition(BaseModel):
    """One FUNCTION web tool, whichever shape it was written in.

    `url`, `auth_token`, `headers` and `path_defaults` hold values after `${ENV}`
    substitution; `secrets` lists every value that must never be shown.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=250)
    mcp_name: str
    description: str = Field(default="", max_length=1000)
    method: Method
    url: str
    url_template: str = ""  # the URL as written, before `${ENV}` substitution: safe to show
    auth_token: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    path_defaults: dict[str, str] = Field(default_factory=dict)
    params: dict[str, Any]
    # Strict: `"yes"` or `true` where a number belongs are mistakes to report, not to coerce.
    is_async: bool = Field(default=False, strict=True)
    timeout_seconds: float = Field(default=DEFAULT_TIMEOUT_SECONDS, gt=0, le=MAX_TIMEOUT_SECONDS, strict=True)
    messages: tuple[Message, ...] = ()
    source: str = ""
    secrets: frozenset[str] = frozenset()

    @field_validator("method", mode="before")
    @classmethod
    def _upper_method(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("mcp_name")
    @classmethod
    def _mcp_name_rule(cls, value: str) -> str:
        if not MCP_NAME_RULE.match(value):
            raise ValueError(
                f"MCP tool name {value!r} must be 1-128 characters of A-Z a-z 0-9 _ - . "
                "(set `mcpName` to choose one)"
            )
        return value

    @field_validator("url")
    @classmethod
    def _absolute_http_url(cls, value: str) -> str:
        # urlsplit silently drops CR, LF and tabs, so look before it does (never echo the URL:
        # it may hold a `${SECRET}` value).
        if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
            raise ValueError("must not contain spaces or control characters (CR, LF, tab, ...)")
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an absolute http:// or https:// URL")
        try:
            parts.port  # noqa: B018 - raises on a port that is not a number in 0-65535
        except ValueError:
            raise ValueError("has an invalid port (it must be a number from 0 to 65535)") from None
        if parts.fragment:
            raise ValueError("must not contain a #fragment")
        if "@" in parts.netloc:
            # httpx would turn user:pass@ into its own Authorization header, silently replacing authToken.
            raise ValueError("must not contain user:password@; put credentials in authToken or headers")
        if PLACEHOLDER.search(parts.netloc.rsplit("@", 1)[-1].split(":", 1)[0]) or "{" in parts.netloc:
            raise ValueError("placeholders are only allowed in the path; the host comes from config alone")
        return value

    @field_validator("headers")
    @classmethod
    def _header_rules(cls, value: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
        for name, header_value in value:
            if not HEADER_NAME_RULE.match(name):
                raise ValueError(f"header name {name!r} is not a valid HTTP header name")
            if any(ch in header_value for ch in "\r\n\0"):
                raise ValueError(f"header {name!r} has a value containing CR, LF or NUL")
            if not header_value.isascii():
                raise ValueError(f"header {name!r} has a non-ASCII value, which HTTP headers cannot carry")
        return value

    @field_validator("auth_token")
    @classmethod
    def _auth_token_rules(cls, value: str | None) -> str | None:
        if value is not None and any(ch in value for ch in "\r\n\0"):
            raise ValueError("contains CR, LF or NUL")
        if value is not None and not value.isascii():
            raise ValueError("contains non-ASCII characters, which HTTP headers cannot carry")
        return value

    @field_validator("params")
    @classmethod
    def _params_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            jsonschema.Draft202012Validator.check_schema(value)
        except jsonschema.SchemaError as exc:
            where = "/".join(str(p) for p in exc.absolute_path)
            raise ValueError(f"is not a valid JSON Schema{' at ' + where if where else ''}: {exc.message}") from None
        if value.get("type") != "object":
            raise ValueError('must be a JSON Schema with "type": "object"')
        return value

    @field_validator("messages")
    @classmethod
    def _unique_message_types(cls, value: tuple[Message, ...]) -> tuple[Message, ...]:
        seen: set[str] = set()
        for message in value:
            if message.type in seen:
                raise ValueError(f"message type {message.type!r} appears more than once")
            seen.add(message.type)
        return value

    @model_validator(mode="after")
    def _placeholders_fillable(self) -> ToolDefinition:
        properties = self.params.get("properties") or {}
        missing = [p for p in placeholders_in(self.url) if p not in properties and p not in self.path_defaults]
        if missing:
            raise ValueError(
                "URL placeholder(s) "
                + ", ".join(f":{name}" for name in missing)
                + " have neither a parameter of that name nor a pathParameters default"
            )
        return self

    @property
    def path_placeholders(self) -> tuple[str, ...]:
        return placeholders_in(self.url)


def placeholders_in(url: str) -> tuple[str, ...]:
    """The placeholder names in the path of `url`, in order, without repeats."""
    path = urlsplit(url).path
    names: list[str] = []
    for match in PLACEHOLDER.finditer(path):
        name = match.group(1) or match.group(2)
        if name not in names:
            names.append(name)
    return tuple(names)


def slugify(name: str) -> str:
    """`"Lookup Customer by Phone"` -> `"lookup_customer_by_phone"`; `"Café"` -> `"cafe"`."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "_", ascii_name.lower()).strip("_")


# --- the three input shapes ------------------------------------------------------------------


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
    envelope whose `data` is one tool or a list.
    """
    if isinstance(document, list):
        return [(f"[{i}]", entry) for i, entry in enumerate(document)]
    if isinstance(document, dict):
        if "tools" in document and "name" not in document:
            tools = document["tools"]
            if not isinstance(tools, list):
                raise ShapeError("tools", "must be a list of tool definitions")
            return [(f"tools[{i}]", entry) for i, entry in enumerate(tools)]
        if _is_envelope(document):
            data = document["data"]
            if isinstance(data, list):
                return [(f"data[{i}]", _EnvelopeEntry(entry)) for i, entry in enumerate(data)]
            return [("data", _EnvelopeEntry(data))]
        return [("", document)]
    expected = 'a tool definition (an object), a list of them, or {"tools": [...]}'
    if document is None:  # an empty YAML file, or one holding only comments
        raise ShapeError("", f"is empty (or null); it must hold {expected}")
    raise ShapeError("", f"must hold {expected}")


class _EnvelopeEntry:
    """Marks an entry that came out of a response envelope (timeouts there are in ms)."""

    def __init__(self, entry: Any) -> None:
        self.entry = entry


def _is_envelope(document: dict[str, Any]) -> bool:
    return "data" in document and ("success" in document or "message" in document) and "name" not in document


def normalise_entry(entry: Any) -> NormalisedEntry:
    """Read one entry of any shape into canonical `ToolDefinition` fields.

    Raises `ShapeError` only when the entry cannot be read at all; smaller problems are
    collected in `NormalisedEntry.problems`.
    """
    from_envelope = isinstance(entry, _EnvelopeEntry)
    raw = entry.entry if isinstance(entry, _EnvelopeEntry) else entry
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
    headers = normalised.values.get("headers") or []
    if normalised.values.get("auth_token") and any(name.lower() == "authorization" for name, _ in headers):
        normalised.warnings.append(
            (f"{normalised.fields['headers']}.Authorization", "is replaced by the tool's authToken")
        )
    return normalised


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
    values["mcp_name"] = raw["mcpName"] if "mcpName" in raw else slugify(raw["name"]) if isinstance(raw.get("name"), str) else ""
    fields["mcp_name"] = "mcpName" if "mcpName" in raw else "name"
    if raw.get("description") is not None:
        values["description"] = raw["description"]
    fields["description"] = "description"
    if "async" in raw:
        values["is_async"] = raw["async"]
    fields["is_async"] = "async"
    values["params"] = _params_schema(raw.get(params_key))
    fields["params"] = params_key
    if raw.get("messages") is not None:
        values["messages"] = _messages(raw["messages"])
    fields["messages"] = "messages"


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
        problems, {}, _path_defaults, settings.get("pathParameters"), "toolSettings.pathParameters"
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
    values["path_defaults"] = _read(problems, {}, _path_defaults, raw.get("pathParameters"), "pathParameters")
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


def _params_schema(params: Any) -> Any:
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


def _path_defaults(parameters: Any, where: str) -> dict[str, str]:
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
