"""The one normalised tool model: `ToolDefinition`, and the rules every tool must meet.

Whichever of the three input shapes a tool was written in (see `shapes.py`), it ends up here.
This module knows nothing of files, HTTP or MCP.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import jsonschema
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from .metaschema import check_schema
from .retries import RetryPolicy
from .shaping.projection import (
    MIN_MAX_RESULT_BYTES,
    PathError,
    ResponseShaping,
    check_output_schema,
    parse_path,
    response_shaping,
)

__all__ = [
    "DEFAULT_TIMEOUT_SECONDS",
    "Message",
    "ToolDefinition",
    "placeholders_in",
    "slugify",
]

DEFAULT_TIMEOUT_SECONDS = 10.0
MAX_TIMEOUT_SECONDS = 3600.0
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
MCP_NAME_RULE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
# RFC 9110 field-value: visible ASCII, with spaces and tabs only inside.
_VISIBLE_HEADER_VALUE = re.compile(r"^(?:[\x21-\x7e](?:[\x20\x09\x21-\x7e]*[\x21-\x7e])?)?$")
HEADER_NAME_RULE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# `:name` or `{name}`; a name starts with a letter or `_`, so `host:8080` is never a placeholder.
PLACEHOLDER = re.compile(r":([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z_][A-Za-z0-9_]*)\}")

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]


def _response_path(text: str) -> str:
    try:
        parse_path(text)
    except PathError as exc:
        raise ValueError(f"is not a valid path: {exc}") from None
    return text


# Each entry checked on its own, so an error names `responseFields[2]`.
ResponsePath = Annotated[str, AfterValidator(_response_path)]


START, COMPLETE, FAILED, DELAYED = "request-start", "request-complete", "request-failed", "request-response-delayed"
SPOKEN_TYPES = (START, COMPLETE, FAILED, DELAYED)
# Forms people write for the same four moments, after lower-casing and turning spaces/_ into `-`.
_ALIASES = {"request-delayed": DELAYED, "request-response-delay": DELAYED, "response-delayed": DELAYED}


def canonical_type(message_type: str) -> str:
    """`"Request Start"`, `"request_start"`, `"request-start"` -> `"request-start"`.

    A type outside the spoken vocabulary (say `system`) comes back as written: it is published
    but never sent.
    """
    key = re.sub(r"[\s_-]+", "-", message_type.strip().lower())
    key = _ALIASES.get(key, key)
    return key if key in SPOKEN_TYPES else message_type


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
    # Extensions of ours, the same in every shape (see the README's "Reliability settings").
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    max_concurrency: int | None = Field(default=None, ge=1, le=100_000, strict=True)
    follow_redirects: bool = Field(default=False, strict=True)
    allow_http: bool = Field(default=False, strict=True)
    max_request_bytes: int | None = Field(default=None, ge=1, strict=True)
    max_response_bytes: int | None = Field(default=None, ge=1, strict=True)
    # Response shaping (see shaping/projection.py and the README's "Responses an LLM can use").
    response_fields: tuple[ResponsePath, ...] = ()
    flatten: bool = Field(default=False, strict=True)
    max_result_bytes: int | None = Field(default=None, ge=MIN_MAX_RESULT_BYTES, strict=True)
    output_schema: dict[str, Any] | None = None
    # Progress while a call runs (see voice.py and the README's "Async tools and spoken messages").
    progress_interval_seconds: float | None = Field(default=None, gt=0, le=MAX_TIMEOUT_SECONDS, strict=True)
    delayed_message_seconds: float | None = Field(default=None, gt=0, le=MAX_TIMEOUT_SECONDS, strict=True)
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
                f"MCP tool name {value!r} must be 1-128 characters of A-Z a-z 0-9 _ - . (set `mcpName` to choose one)"
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
            if not _VISIBLE_HEADER_VALUE.match(header_value):
                raise ValueError(f"header {name!r} has a value with control characters or leading/trailing whitespace")
        return value

    @field_validator("auth_token")
    @classmethod
    def _auth_token_rules(cls, value: str | None) -> str | None:
        if value is not None and any(ch in value for ch in "\r\n\0"):
            raise ValueError("contains CR, LF or NUL")
        if value is not None and not value.isascii():
            raise ValueError("contains non-ASCII characters, which HTTP headers cannot carry")
        if value is not None and not _VISIBLE_HEADER_VALUE.match(value):
            raise ValueError("contains control characters or leading/trailing whitespace")
        return value

    @field_validator("params")
    @classmethod
    def _params_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            check_schema(value)  # jsonschema's check, from a bundled meta-schema (metaschema.py)
        except jsonschema.SchemaError as exc:
            where = "/".join(str(p) for p in exc.absolute_path)
            raise ValueError(f"is not a valid JSON Schema{' at ' + where if where else ''}: {exc.message}") from None
        if value.get("type") != "object":
            raise ValueError('must be a JSON Schema with "type": "object"')
        return value

    @field_validator("output_schema")
    @classmethod
    def _output_schema_rules(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            check_output_schema(value)
        return value

    @field_validator("messages")
    @classmethod
    def _unique_message_types(cls, value: tuple[Message, ...]) -> tuple[Message, ...]:
        seen: set[str] = set()
        for message in value:
            # "Request Start" and "request-start" are the same moment: one message for it.
            kind = canonical_type(message.type)
            if kind in seen:
                raise ValueError(f"message type {message.type!r} appears more than once")
            seen.add(kind)
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

    @property
    def shaping(self) -> ResponseShaping:
        """The compiled response shaping, shared by tools with the same settings.

        Compiled once per tool at load (`PreparedTool.shaping`); a call uses that, never this.
        """
        return response_shaping(self.response_fields, self.flatten, self.max_result_bytes, self.output_schema)


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
