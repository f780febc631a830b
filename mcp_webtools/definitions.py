"""The one normalised tool model: `ToolDefinition`, and the rules every tool must meet.

Whichever format a tool was written in (see `readers/`), it ends up here.
This module knows nothing of files, HTTP or MCP.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import jsonschema
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from .errors import PathError, SchemaProblems
from .metaschema import schema_errors
from .ratelimit import RateLimit
from .retries import RetryPolicy
from .shaping.projection import (
    MIN_MAX_RESULT_BYTES,
    ResponseShaping,
    check_output_schema,
    parse_path,
    response_shaping,
)

__all__ = [
    "DEFAULT_TIMEOUT_SECONDS",
    "did_you_mean",
    "EXPECT_KEYS",
    "Example",
    "Expect",
    "FORBIDDEN_ARGUMENT_HEADERS",
    "is_scope_token",
    "Message",
    "Placement",
    "ToolDefinition",
    "VISIBLE_HEADER_VALUE",
    "placeholder_spellings",
    "placeholders_in",
    "with_required_placeholders",
    "slugify",
    "url_problems",
]

DEFAULT_TIMEOUT_SECONDS = 10.0
MAX_TIMEOUT_SECONDS = 3600.0
MCP_NAME_RULE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
# RFC 9110 field-value: visible ASCII, with spaces and tabs only inside.
VISIBLE_HEADER_VALUE = re.compile(r"^(?:[\x21-\x7e](?:[\x20\x09\x21-\x7e]*[\x21-\x7e])?)?$")
HEADER_NAME_RULE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# `:name` or `{name}`; a name starts with a letter or `_`, so `host:8080` is never a placeholder.
PLACEHOLDER = re.compile(r":([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Whitespace (`\s` is `str.isspace`'s set: both ask `Py_UNICODE_ISSPACE`) and control characters.
_URL_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")

# The retry settings of a tool that sets none: one frozen object every such tool shares.
_NO_RETRY_SETTINGS = RetryPolicy()

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
BODY_METHOD_NAMES = frozenset({"POST", "PUT", "PATCH"})
# Headers an argument may never fill: who we are talking to, credentials (the `auth` block's job) and
# the hop-by-hop headers of RFC 9110 section 7.6.1, plus the framing headers the HTTP client writes itself.
FORBIDDEN_ARGUMENT_HEADERS = frozenset({
    "authorization", "proxy-authorization", "host", "cookie", "set-cookie", "connection", "keep-alive",
    "proxy-authenticate", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "content-length",
    "content-type",
})  # fmt: skip
JSON_SCHEMA_TYPES = ("array", "boolean", "integer", "null", "number", "object", "string")


def _schema_problem(error: jsonschema.ValidationError) -> str:
    """jsonschema's message, but a misspelt `type` says which type was meant (its message would not)."""
    path, value = error.absolute_path, error.instance
    if error.validator == "anyOf" and path and path[-1] == "type" and isinstance(value, str):
        hint = did_you_mean(value, JSON_SCHEMA_TYPES)
        return f"{value!r} is not a JSON Schema type{hint}; the types are {', '.join(JSON_SCHEMA_TYPES)}"
    return error.message


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


# What an example's `expect` may say about the call's result (docs/configuration.md, "Examples").
EXPECT_KEYS = ("status", "isError", "fields", "contains")
EXAMPLE_KEYS = ("name", "arguments", "expect")


def _known_keys(value: Any, known: tuple[str, ...], what: str) -> Any:
    """`value`, or a ValueError naming its first unknown key, with a "did you mean" for a typo."""
    if isinstance(value, dict):
        for key in value:
            if key not in known:
                hint = did_you_mean(str(key), known)
                raise ValueError(f"`{key}` is not a key of {what}{hint}; it takes {', '.join(known)}")
    return value


class Expect(BaseModel):
    """What one example's call must give: kept small on purpose (docs/configuration.md, "Examples").

    `is_error` None means "as `status` implies": an error for a non-2xx status, else a success.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    status: int | None = Field(default=None, ge=100, le=599, strict=True)
    is_error: bool | None = Field(default=None, alias="isError", strict=True)
    fields: dict[ResponsePath, Any] = Field(default_factory=dict)
    contains: tuple[str, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _only_known_keys(cls, value: Any) -> Any:
        value = _known_keys(value, EXPECT_KEYS, "expect")
        if isinstance(value, dict) and isinstance(value.get("contains"), str):
            value = {**value, "contains": [value["contains"]]}  # one text, or a list of them
        return value

    @property
    def wants_error(self) -> bool:
        if self.is_error is not None:
            return self.is_error
        return self.status is not None and not 200 <= self.status < 300


class Example(BaseModel):
    """A call of the tool to try with `mcp-webtools test`: never published, never sent to Hamsa."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    arguments: dict[str, Any] = Field(default_factory=dict)
    expect: Expect = Field(default_factory=Expect)

    @model_validator(mode="before")
    @classmethod
    def _only_known_keys(cls, value: Any) -> Any:
        return _known_keys(value, EXAMPLE_KEYS, "an example")


def is_scope_token(scope: str) -> bool:
    """RFC 6749 appendix A.4: printable ASCII but space, `"` and `\\` (a challenge quotes scopes)."""
    return bool(scope) and all("!" <= ch <= "~" and ch not in '"\\' for ch in scope)


class Placement(BaseModel):
    """Where one argument goes on the wire (`placement: {limit: query, rid: {in: header, name: X-Request-Id}}`).

    `name` is the name on the wire when it differs from the argument's: a header name, a query key,
    a body key, or the URL placeholder the argument fills.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    in_: Literal["path", "query", "header", "body"] = Field(alias="in")
    name: str | None = Field(default=None, min_length=1)
    # A list in the query: `ids=1&ids=2` (true, the default) or `ids=1,2` (false; OpenAPI's `explode: false`).
    explode: bool = Field(default=True, strict=True)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"in": value} if isinstance(value, str) else value

    def wire_name(self, argument: str) -> str:
        return self.name or argument


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
    auth: dict[str, Any] | None = None  # the `auth` block, `${...}` filled in, checked by auth.auth_block_problems
    # `forwardCaller` (forwarding.py), checked by forwarding.forward_caller_problems; holds names, never a value.
    forward_caller: dict[str, Any] | None = None
    headers: tuple[tuple[str, str], ...] = ()
    path_defaults: dict[str, str] = Field(default_factory=dict)
    params: dict[str, Any]
    # Strict: `"yes"` or `true` where a number belongs are mistakes to report, not to coerce.
    is_async: bool = Field(default=False, strict=True)
    timeout_seconds: float = Field(default=DEFAULT_TIMEOUT_SECONDS, gt=0, le=MAX_TIMEOUT_SECONDS, strict=True)
    messages: tuple[Message, ...] = ()
    # Extensions of ours, the same in every shape (see docs/configuration.md, "Reliability settings").
    retry: RetryPolicy = _NO_RETRY_SETTINGS
    max_concurrency: int | None = Field(default=None, ge=1, le=100_000, strict=True)
    rate_limit: RateLimit | None = None  # a token bucket on the tool's calls (ratelimit.py)
    follow_redirects: bool = Field(default=False, strict=True)
    allow_http: bool = Field(default=False, strict=True)
    max_request_bytes: int | None = Field(default=None, ge=1, strict=True)
    max_response_bytes: int | None = Field(default=None, ge=1, strict=True)
    # Response shaping (see shaping/projection.py and docs/configuration.md, "Responses an LLM can use").
    response_fields: tuple[ResponsePath, ...] = ()
    flatten: bool = Field(default=False, strict=True)
    max_result_bytes: int | None = Field(default=None, ge=MIN_MAX_RESULT_BYTES, strict=True)
    output_schema: dict[str, Any] | None = None
    # Where arguments go (see requests.py and docs/configuration.md, "Where arguments go").
    placement: dict[str, Placement] = Field(default_factory=dict)
    body_argument: str | None = Field(default=None, min_length=1)
    body_encoding: Literal["json", "form"] = "json"
    # Progress while a call runs (see voice.py and docs/hamsa-and-voice.md, "Async tools and spoken messages").
    progress_interval_seconds: float | None = Field(default=None, gt=0, le=MAX_TIMEOUT_SECONDS, strict=True)
    delayed_message_seconds: float | None = Field(default=None, gt=0, le=MAX_TIMEOUT_SECONDS, strict=True)
    # Calls to try with `mcp-webtools test` (examples.py); not part of the MCP listing.
    examples: tuple[Example, ...] = ()
    # Tags an endpoint may select the tool by (endpoints.py); no effect on the call.
    tags: tuple[Annotated[str, Field(min_length=1, max_length=100, strict=True)], ...] = ()
    # OAuth scopes an HTTP caller's access token must grant to see and call the tool (docs/security.md).
    required_scopes: tuple[str, ...] = ()
    source: str = ""
    secrets: frozenset[str] = frozenset()
    # Each secret value read through a `${...}` reference -> that reference as written, so a recording
    # can say `${API_KEY}` where the value went (cassettes.py); derived values (a Basic credential) too.
    references: tuple[tuple[str, str], ...] = ()

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
        # Never echo the URL: it may hold a `${SECRET}` value.
        problems = url_problems(value)
        if problems:
            raise ValueError(_URL_MESSAGES[problems[0]])
        parts = urlsplit(value)
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
            if not VISIBLE_HEADER_VALUE.match(header_value):
                raise ValueError(f"header {name!r} has a value with control characters or leading/trailing whitespace")
        return value

    @field_validator("auth_token")
    @classmethod
    def _auth_token_rules(cls, value: str | None) -> str | None:
        if value is not None and any(ch in value for ch in "\r\n\0"):
            raise ValueError("contains CR, LF or NUL")
        if value is not None and not value.isascii():
            raise ValueError("contains non-ASCII characters, which HTTP headers cannot carry")
        if value is not None and not VISIBLE_HEADER_VALUE.match(value):
            raise ValueError("contains control characters or leading/trailing whitespace")
        return value

    @field_validator("required_scopes")
    @classmethod
    def _scope_tokens(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for scope in value:
            if not is_scope_token(scope):
                raise ValueError(f"{scope!r} is not an OAuth scope (printable ASCII, no space, quote or backslash)")
        return tuple(dict.fromkeys(value))

    @field_validator("params")
    @classmethod
    def _params_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        # jsonschema's check, from a bundled meta-schema (metaschema.py); all problems at once.
        problems = schema_errors(value)
        if problems:
            raise SchemaProblems([(tuple(error.absolute_path), _schema_problem(error)) for error in problems])
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

    @field_validator("examples")
    @classmethod
    def _unique_example_names(cls, value: tuple[Example, ...]) -> tuple[Example, ...]:
        # Each example has a cassette file named after it: names equal once slugged would share one.
        seen: dict[str, str] = {}
        for example in value:
            key = slugify(example.name) or "example"
            if key in seen:
                raise ValueError(
                    f"example names {seen[key]!r} and {example.name!r} are the same (or give the same "
                    "cassette file name); give each example of a tool its own name"
                )
            seen[key] = example.name
        return value

    @field_validator("placement")
    @classmethod
    def _placement_rules(cls, value: dict[str, Placement], info: ValidationInfo) -> dict[str, Placement]:
        if "params" not in info.data or "url" not in info.data:
            return value  # their own errors are reported; nothing to check against
        properties = (info.data.get("params") or {}).get("properties") or {}
        url, method = info.data.get("url", ""), info.data.get("method")
        placeholders = set(placeholders_in(url))
        for argument, place in value.items():
            if argument not in properties:
                known = ", ".join(properties) or "none"
                raise ValueError(
                    f"{argument!r} is not an argument of this tool{did_you_mean(argument, properties)}; "
                    f"the arguments (params.properties) are: {known}"
                )
            wire = place.wire_name(argument)
            if not place.explode and place.in_ != "query":
                raise ValueError(
                    f"{argument}: `explode` is about lists in the query; this argument goes in the {place.in_}"
                )
            if place.in_ == "path" and wire not in placeholders:
                raise ValueError(f"{argument}: the URL has no placeholder {{{wire}}} for this argument to fill")
            if place.in_ == "header":
                if not HEADER_NAME_RULE.match(wire):
                    raise ValueError(f"{argument}: {wire!r} is not a valid HTTP header name")
                if wire.lower() in FORBIDDEN_ARGUMENT_HEADERS:
                    raise ValueError(
                        f"{argument}: an argument may not fill the {wire} header (credentials go in `auth`; "
                        "Host, Cookie, framing and hop-by-hop headers are never an argument's)"
                    )
                if any(name.lower() == wire.lower() for name, _ in info.data.get("headers", ())):
                    raise ValueError(f"{argument}: the {wire} header is also one of the tool's headers; keep one")
            if place.in_ == "body" and method not in BODY_METHOD_NAMES:
                raise ValueError(f"{argument}: a {method} request has no body; place it in the query or a header")
        return value

    @field_validator("body_argument")
    @classmethod
    def _body_argument_rules(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or "params" not in info.data:
            return value
        properties = (info.data.get("params") or {}).get("properties") or {}
        if value not in properties:
            raise ValueError(f"{value!r} is not an argument of this tool{did_you_mean(value, properties)}")
        if info.data.get("method") not in BODY_METHOD_NAMES:
            raise ValueError(f"a {info.data.get('method')} request has no body; use POST, PUT or PATCH")
        placed = [name for name, place in (info.data.get("placement") or {}).items() if place.in_ == "body"]
        if placed:
            raise ValueError(f"{value!r} is the whole body, so {placed[0]!r} cannot be placed in the body too")
        return value

    @property
    def placeholder_arguments(self) -> dict[str, str]:
        """Each URL placeholder -> the argument that fills it (itself, unless `placement` says otherwise)."""
        filled = {p: p for p in placeholders_in(self.url)}
        for argument, place in self.placement.items():
            if place.in_ == "path":
                filled[place.wire_name(argument)] = argument
        return filled

    @model_validator(mode="after")
    def _placeholders_fillable(self) -> ToolDefinition:
        properties = self.params.get("properties") or {}
        written = placeholder_spellings(self.url)
        filled = self.placeholder_arguments
        missing = [written[p] for p in written if filled[p] not in properties and p not in self.path_defaults]
        if missing:
            raise ValueError(
                f"URL placeholder(s) {', '.join(missing)} have neither a parameter of that name "
                "nor a pathParameters default"
            )
        return self

    @property
    def path_placeholders(self) -> tuple[str, ...]:
        return placeholders_in(self.url)

    @property
    def unrequired_placeholders(self) -> tuple[str, ...]:
        """Placeholders without a default that `params` does not list in `required`, as written (`{postId}`).

        A call cannot go without them, so the published `inputSchema` requires them (`input_schema`).
        """
        written = placeholder_spellings(self.url)
        filled = self.placeholder_arguments
        required = set(self.params.get("required") or ())
        return tuple(
            written[name] for name in written if name not in self.path_defaults and filled[name] not in required
        )

    @property
    def input_schema(self) -> dict[str, Any]:
        """`params` as published: with every placeholder that has no default in `required`."""
        if not any(place.in_ == "path" and place.name for place in self.placement.values()):
            return with_required_placeholders(self.params, self.url, self.path_defaults)
        filled = self.placeholder_arguments
        required = list(self.params.get("required") or ())
        missing = [filled[p] for p in filled if p not in self.path_defaults and filled[p] not in required]
        return {**self.params, "required": [*required, *missing]} if missing else self.params

    @property
    def shaping(self) -> ResponseShaping:
        """The compiled response shaping, shared by tools with the same settings.

        Compiled once per tool at load (`PreparedTool.shaping`); a call uses that, never this.
        """
        return response_shaping(self.response_fields, self.flatten, self.max_result_bytes, self.output_schema)


def url_problems(url: str) -> list[str]:
    """What keeps `url` from being a plain absolute http(s) URL, as kinds (`control`, `not-absolute`,
    `port`, `fragment`, `credentials`) in the order they are looked for; `[]` when nothing does.

    One check for every URL we are given (a tool's `url`, `hamsa register --url`, an imported
    `serverUrl`); each caller words the kinds for its reader. The URL itself is never quoted.
    """
    problems: list[str] = []
    # urlsplit silently drops CR, LF and tabs, so look before it does.
    if _URL_CONTROL.search(url):
        problems.append("control")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        problems.append("not-absolute")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number in 0-65535
    except ValueError:
        problems.append("port")
    if parts.fragment:
        problems.append("fragment")
    if "@" in parts.netloc:
        problems.append("credentials")
    return problems


_URL_MESSAGES = {
    "control": "must not contain spaces or control characters (CR, LF, tab, ...)",
    "not-absolute": "must be an absolute http:// or https:// URL",
    "port": "has an invalid port (it must be a number from 0 to 65535)",
    "fragment": "must not contain a #fragment",
    # httpx would turn user:pass@ into its own Authorization header, silently replacing authToken.
    "credentials": "must not contain user:password@; put credentials in authToken or headers",
}


def placeholders_in(url: str) -> tuple[str, ...]:
    """The placeholder names in the path of `url`, in order, without repeats."""
    return tuple(placeholder_spellings(url))


def placeholder_spellings(url: str) -> dict[str, str]:
    """Each placeholder name in the path of `url` -> the placeholder as written (`:id` or `{id}`), in order."""
    written: dict[str, str] = {}
    for match in PLACEHOLDER.finditer(urlsplit(url).path):
        written.setdefault(match.group(1) or match.group(2), match.group())
    return written


def _required_placeholders(names: Iterable[str], defaults: Mapping[str, Any], params: Any) -> list[str]:
    """The placeholder `names` without a default that the `params` schema does not list in `required`."""
    required = params.get("required") if isinstance(params, dict) else None
    listed = {name for name in required if isinstance(name, str)} if isinstance(required, list) else set()
    return [name for name in names if name not in defaults and name not in listed]


def with_required_placeholders(params: Any, url: str, defaults: Mapping[str, Any]) -> Any:
    """`params` with the placeholders of `url` that have no default added to its `required` (a new dict).

    A `params` that is not an object schema with a list (or no) `required` is returned as it is.
    """
    if not isinstance(params, dict) or not isinstance(params.get("required", []), list):
        return params
    missing = _required_placeholders(placeholders_in(url), defaults, params)
    return {**params, "required": [*params.get("required", []), *missing]} if missing else params


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """` (did you mean `parameters`?)` for a typo of one of `known`, else `""`.

    Case is ignored when comparing (`methodtype` -> `methodType`), not when suggesting.
    """
    by_lower = {name.lower(): name for name in known}
    match = difflib.get_close_matches(word.lower(), by_lower, n=1)
    return f" (did you mean `{by_lower[match[0]]}`?)" if match else ""


def slugify(name: str) -> str:
    """`"Lookup Customer by Phone"` -> `"lookup_customer_by_phone"`; `"Café"` -> `"cafe"`."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "_", ascii_name.lower()).strip("_")
