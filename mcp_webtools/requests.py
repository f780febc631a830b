"""Turning a tool and its validated arguments into the exact HTTP request to send.

`RequestTemplate.from_definition` does the per-tool work once at load (URL split into origin,
path pieces and fixed query; static headers). `build_request` then only fills in values. Upstream
auth is not baked in here: the tool's auth flow (auth.py) adds its header to each call's request
on its way out, through `OutboundRequest.with_header`.

Where each argument goes is the tool's `placement` (definitions.Placement): by default a URL
placeholder's argument fills the path, and the rest go in the query for GET/DELETE and in the body
for POST/PUT/PATCH; `placement` may send any of them to the path, the query (on any method), a
header or the body, and `bodyArgument` makes one argument's value the whole body. The body is JSON,
or `application/x-www-form-urlencoded` with `bodyEncoding: form` (see `form_pairs`).

Argument values are confined to their place: a path value is percent-encoded as exactly one
segment, a header value never holds CR, LF, NUL or non-ASCII text, and nothing an argument holds
can change the scheme, host or port.

Encoding is not enough on its own: a reverse proxy in front of the upstream (nginx with
`proxy_pass http://backend/public/;`, for one) decodes `..%2Fadmin` and resolves the `..`, so the
backend serves `/public/admin`. A path value holding a `.` or `..` segment in any form a server on
the way might decode (percent-encoded, double-encoded, overlong UTF-8, Unicode dots and slashes
that NFKC turns into `.`, `/` or `\\`) is refused instead.
"""

from __future__ import annotations

import dataclasses
import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote_to_bytes, urlencode, urlsplit

from . import __version__
from .definitions import PLACEHOLDER, VISIBLE_HEADER_VALUE, ToolDefinition
from .errors import RequestBuildError

__all__ = [
    "BODY_METHODS",
    "DEFAULT_MAX_REQUEST_BYTES",
    "MAX_URL_CHARS",
    "OutboundRequest",
    "RequestTemplate",
    "build_request",
    "form_pairs",
]

DEFAULT_MAX_REQUEST_BYTES = 1024 * 1024
# httpx refuses longer URLs at send time; refusing them here names the argument and sends nothing.
MAX_URL_CHARS = 65536
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
FORM = "application/x-www-form-urlencoded"
USER_AGENT = f"mcp-webtools/{__version__}"
# Segment separators for servers on the way: '/', and '\\' for those that read it as one (IIS, Tomcat).
_SEPARATORS = re.compile(r"[/\\]")
# Overlong UTF-8 (C0 AE for '.'): refused by strict decoders, read as the character by lenient ones.
_OVERLONG = re.compile(rb"[\xc0\xc1][\x80-\xbf]|\xe0[\x80-\x9f][\x80-\xbf]")
# IIS's own escape, %u002e.
_PERCENT_U = re.compile(r"%u([0-9A-Fa-f]{4})")
MAX_DECODINGS = 8  # a value still changing after this many rounds of decoding is refused outright


@dataclass(frozen=True, slots=True)
class OutboundRequest:
    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: bytes | None = None
    # How many of `headers`, at the front, are our own defaults (User-Agent, Accept, Content-Type).
    defaults: int = 0

    def with_header(self, name: str, value: str) -> OutboundRequest:
        """This request with `name: value` instead of any header of that name (in any case).

        It goes right after our default headers, before the configured ones: where the
        `authToken` header has always been sent.
        """
        lower = name.lower()
        own = [(n, v) for n, v in self.headers[: self.defaults] if n.lower() != lower]
        configured = [(n, v) for n, v in self.headers[self.defaults :] if n.lower() != lower]
        return dataclasses.replace(self, headers=(*own, (name, value), *configured), defaults=len(own))

    def as_text(self, *, absolute: bool = False) -> str:
        """The request as an HTTP/1.1 message, for dry runs (redact before showing).

        `absolute`: the whole URL on the request line and no Host line, so that a URL read from
        `${...}` can be shown as its reference (a recording, cassettes.py).
        """
        parts = urlsplit(self.url)
        if absolute:
            lines = [f"{self.method} {self.url} HTTP/1.1"]
        else:
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            # The Host header never carries the URL's user:password part.
            host = parts.netloc.rpartition("@")[2]
            lines = [f"{self.method} {target} HTTP/1.1", f"Host: {host}"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        text = "\n".join(lines) + "\n"
        if self.body is not None:
            text += "\n" + self.body.decode("utf-8") + "\n"
        return text


@dataclass(frozen=True, slots=True)
class RequestTemplate:
    """Everything about a tool's request that does not depend on the call."""

    method: str
    origin: str
    path_pieces: tuple[str | tuple[str], ...]  # literal text, or (placeholder name,)
    fixed_query: str  # as written in the config, sent verbatim before the arguments
    headers: tuple[tuple[str, str], ...]
    path_defaults: Mapping[str, str]
    max_body_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    default_headers: int = 0  # how many of `headers`, at the front, are ours (see `OutboundRequest.defaults`)
    # argument -> (where: path | query | header | body, name on the wire); the arguments `placement` names.
    places: Mapping[str, tuple[str, str]] = dataclasses.field(default_factory=dict)
    joined: frozenset[str] = frozenset()  # query arguments whose list is sent comma-joined (`explode: false`)
    placeholder_arguments: Mapping[str, str] = dataclasses.field(default_factory=dict)  # placeholder -> argument
    body_argument: str | None = None
    form: bool = False

    @classmethod
    def from_definition(
        cls, definition: ToolDefinition, *, max_body_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    ) -> RequestTemplate:
        parts = urlsplit(definition.url)
        pieces: list[str | tuple[str]] = []
        position = 0
        for match in PLACEHOLDER.finditer(parts.path):
            pieces.append(parts.path[position : match.start()])
            pieces.append((match.group(1) or match.group(2),))
            position = match.end()
        pieces.append(parts.path[position:])
        default_headers, configured = _static_headers(definition)
        return cls(
            method=definition.method,
            origin=f"{parts.scheme}://{parts.netloc}",
            path_pieces=tuple(p for p in pieces if p != ""),
            fixed_query=parts.query,
            headers=default_headers + configured,
            path_defaults=dict(definition.path_defaults),
            max_body_bytes=definition.max_request_bytes or max_body_bytes,
            default_headers=len(default_headers),
            places={arg: (place.in_, place.wire_name(arg)) for arg, place in definition.placement.items()},
            joined=frozenset(arg for arg, place in definition.placement.items() if not place.explode),
            placeholder_arguments=definition.placeholder_arguments,
            body_argument=definition.body_argument,
            form=definition.body_encoding == "form",
        )

    @property
    def placeholders(self) -> frozenset[str]:
        return frozenset(p[0] for p in self.path_pieces if isinstance(p, tuple))


def build_request(template: RequestTemplate, arguments: Mapping[str, Any]) -> OutboundRequest:
    """The request for one call; raises `RequestBuildError` naming the argument at fault."""
    path = ""
    used: set[str] = set()
    url_chars: dict[str, int] = {}  # how much of the URL each argument takes, to name the culprit
    for piece in template.path_pieces:
        if isinstance(piece, str):
            path += piece
            continue
        placeholder = piece[0]
        name = template.placeholder_arguments.get(placeholder, placeholder)
        # An argument named after a placeholder belongs to the path, even when it is null
        # and the default fills in: it is never sent a second time in the query or body.
        used.add(name)
        if arguments.get(name) is not None:
            value = _path_value(name, arguments[name])
        elif placeholder in template.path_defaults:
            value = template.path_defaults[placeholder]
        else:
            raise RequestBuildError(name, "is required: it fills the URL path")
        segment = _path_segment(name, value)
        url_chars[name] = url_chars.get(name, 0) + len(segment)
        path += segment

    has_body = template.method in BODY_METHODS
    # Without `placement`, the rest go where they always have; next to a `bodyArgument`, in the query.
    rest = "body" if has_body and template.body_argument is None else "query"
    query_args: list[tuple[str, str, Any]] = []  # (argument, wire name, value)
    body_args: dict[str, Any] = {}
    headers = list(template.headers)
    for name, value in arguments.items():
        if name in used or name == template.body_argument:
            continue
        where, wire = template.places.get(name, (rest, name))
        if where == "header":
            if value is not None:
                headers.append((wire, _header_value(name, wire, value)))
        elif where == "body":
            body_args[wire] = value
        else:
            query_args.append((name, wire, value))

    query = [template.fixed_query] if template.fixed_query else []
    for name, wire, value in query_args:
        texts = [quote(text, safe="") for _, text in _query_pairs({name: value})]
        if name in template.joined and isinstance(value, list) and texts:
            texts = [",".join(texts)]  # the commas between items literal, those inside an item encoded
        for text in texts:
            pair = f"{quote(wire, safe='')}={text}"
            url_chars[name] = url_chars.get(name, 0) + len(pair) + 1
            query.append(pair)

    body: bytes | None = None
    if has_body:
        whole = arguments.get(template.body_argument) if template.body_argument else body_args
        if template.body_argument and whole is None:
            whole = {}
        body = _form_body(template.body_argument, whole) if template.form else _body(whole, template.body_argument)
        if len(body) > template.max_body_bytes:
            raise RequestBuildError(
                template.body_argument or "arguments",
                f"the request body would be {len(body)} bytes; this tool accepts at most {template.max_body_bytes}",
            )

    url = template.origin + (path or "/")
    if query:
        url += "?" + "&".join(query)
    if len(url) > MAX_URL_CHARS:
        culprit = max(url_chars, key=lambda name: url_chars[name]) if url_chars else "arguments"
        raise RequestBuildError(
            culprit, f"makes the URL {len(url)} characters long (encoded); at most {MAX_URL_CHARS} fit in a URL"
        )
    return OutboundRequest(
        method=template.method, url=url, headers=tuple(headers), body=body, defaults=template.default_headers
    )


def _header_value(name: str, header: str, value: Any) -> str:
    """An argument's value as the `header` it fills: a scalar (or a list, comma-joined), one clean line."""
    items = value if isinstance(value, list) else [value]
    if any(isinstance(item, (dict, list)) for item in items):
        raise RequestBuildError(name, f"fills the {header} header, so it must be a string, number or boolean")
    text = ",".join(_query_value(name, item) for item in items if item is not None)
    if any(ch in text for ch in "\r\n\0"):
        raise RequestBuildError(name, f"fills the {header} header, so it must not contain CR, LF or NUL")
    if not text.isascii() or not VISIBLE_HEADER_VALUE.match(text):
        raise RequestBuildError(
            name, f"fills the {header} header, so it must be printable ASCII without leading/trailing spaces"
        )
    return text


def form_pairs(name: str, value: Any) -> list[tuple[str, str]]:
    """`value` as `application/x-www-form-urlencoded` pairs under the key `name`, as form APIs read them.

    A list of scalars repeats the key (`To=a&To=b`, Twilio's way); an object nests with brackets
    (`metadata[order]=7`, Stripe's and Rails' way); a list holding objects or lists is indexed
    (`items[0][price]=p1`). Booleans are `true`/`false`, numbers their JSON text; null sends nothing.
    """
    if value is None:
        return []
    if isinstance(value, dict):
        return [pair for key, item in value.items() for pair in form_pairs(f"{name}[{key}]", item)]
    if isinstance(value, list):
        if any(isinstance(item, (dict, list)) for item in value):
            return [pair for i, item in enumerate(value) for pair in form_pairs(f"{name}[{i}]", item)]
        return [pair for item in value for pair in form_pairs(name, item)]
    return [(name, _query_value(name, value))]


def _form_body(body_argument: str | None, value: Any) -> bytes:
    if not isinstance(value, dict):
        raise RequestBuildError(body_argument or "arguments", "is sent as a form, so it must be an object")
    pairs = [pair for key, item in value.items() for pair in form_pairs(str(key), item)]
    return urlencode(pairs, quote_via=quote).encode("ascii")


def _static_headers(definition: ToolDefinition) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    """Our default headers that the config does not replace, and the configured headers."""
    configured = definition.headers
    names = {name.lower() for name, _ in configured}
    defaults = [("User-Agent", USER_AGENT), ("Accept", "application/json")]
    if definition.method in BODY_METHODS:
        defaults.append(("Content-Type", FORM if definition.body_encoding == "form" else "application/json"))
    return tuple((name, value) for name, value in defaults if name.lower() not in names), configured


def _path_value(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return _json(name, value)
    if isinstance(value, str):
        return value
    raise RequestBuildError(name, "fills a URL path segment, so it must be a string, number or boolean")


def _path_segment(name: str, value: str) -> str:
    if value == "":
        raise RequestBuildError(name, "must not be empty: it fills a URL path segment")
    if _holds_dot_segment(value):
        raise RequestBuildError(
            name,
            "must not contain a '.' or '..' path segment (split on '/' or '\\', encoded or not): a proxy that "
            "decodes the URL would resolve it to another path",
        )
    # safe="" encodes "/", "?", "#", "%", CR/LF and NUL, so the value stays one segment.
    return quote(value, safe="")


def _holds_dot_segment(value: str) -> bool:
    """Whether `value`, or any decoding of it a server on the way might make, has a '.' or '..' segment.

    Every form is checked: as given, after NFKC (fullwidth '．', '‥', '／', '＼'), and after each
    round of percent-decoding (`%2e`, `%252e`, overlong `%c0%ae`, IIS's `%u002e`). A segment counts up to a ';'
    (`..;/admin`: Tomcat drops path parameters before resolving dots).
    """
    form = value
    for _ in range(MAX_DECODINGS):
        for candidate in (form, unicodedata.normalize("NFKC", form)):
            if any(segment.partition(";")[0] in (".", "..") for segment in _SEPARATORS.split(candidate)):
                return True
        decoded = _percent_decoded(candidate)
        if decoded == candidate:
            return False
        form = decoded
    return True  # encoded over and over: no name or id is


def _percent_decoded(text: str) -> str:
    """`text` percent-decoded once, as a lenient server would: `%uXXXX` and overlong UTF-8 read as characters."""
    if "%" not in text:
        return text
    text = _PERCENT_U.sub(lambda match: quote(chr(int(match.group(1), 16)), safe=""), text)
    raw = _OVERLONG.sub(_overlong_char, unquote_to_bytes(text))
    return raw.decode("utf-8", errors="replace")


def _overlong_char(match: re.Match[bytes]) -> bytes:
    lead, *rest = match.group()
    code = lead & (0x1F if len(rest) == 1 else 0x0F)
    for byte in rest:
        code = code << 6 | byte & 0x3F
    return chr(code).encode("utf-8")


def _query_pairs(arguments: Mapping[str, Any]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for name, value in arguments.items():
        if value is None:
            continue
        for item in value if isinstance(value, list) else [value]:
            if item is None:
                continue
            pairs.append((name, _query_value(name, item)))
    return pairs


def _query_value(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return _json(name, value)


def _body(value: Any, body_argument: str | None = None) -> bytes:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except ValueError:
        if body_argument is not None:
            _json(body_argument, value)
        for name, item in value.items():
            _json(name, item)  # raises, naming the argument at fault
        raise


def _json(name: str, value: Any) -> str:
    """Compact JSON; NaN and Infinity have no JSON form, so they are refused, not sent."""
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError:
        raise RequestBuildError(name, "must be a finite number (JSON has no NaN or Infinity)") from None
