"""Turning a tool and its validated arguments into the exact HTTP request to send.

`RequestTemplate.from_definition` does the per-tool work once at load (URL split into origin,
path pieces and fixed query; static headers). `build_request` then only fills in values. Upstream
auth is not baked in here: the tool's auth flow (auth.py) adds its header to each call's request
on its way out, through `OutboundRequest.with_header`.

Argument values are confined to their place: a path value is percent-encoded as exactly one
segment, and nothing an argument holds can change the scheme, host or port.

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
from urllib.parse import quote, unquote_to_bytes, urlsplit

from . import __version__
from .definitions import PLACEHOLDER, ToolDefinition
from .errors import RequestBuildError

__all__ = [
    "BODY_METHODS",
    "DEFAULT_MAX_REQUEST_BYTES",
    "MAX_URL_CHARS",
    "OutboundRequest",
    "RequestTemplate",
    "build_request",
]

DEFAULT_MAX_REQUEST_BYTES = 1024 * 1024
# httpx refuses longer URLs at send time; refusing them here names the argument and sends nothing.
MAX_URL_CHARS = 65536
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
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
        name = piece[0]
        # An argument named after a placeholder belongs to the path, even when it is null
        # and the default fills in: it is never sent a second time in the query or body.
        used.add(name)
        if arguments.get(name) is not None:
            value = _path_value(name, arguments[name])
        elif name in template.path_defaults:
            value = template.path_defaults[name]
        else:
            raise RequestBuildError(name, "is required: it fills the URL path")
        segment = _path_segment(name, value)
        url_chars[name] = url_chars.get(name, 0) + len(segment)
        path += segment

    remaining = {k: v for k, v in arguments.items() if k not in used}
    query = [template.fixed_query] if template.fixed_query else []
    body: bytes | None = None
    if template.method in BODY_METHODS:
        body = _body(remaining)
        if len(body) > template.max_body_bytes:
            raise RequestBuildError(
                "arguments",
                f"the request body would be {len(body)} bytes; this tool accepts at most {template.max_body_bytes}",
            )
    else:
        for name, value in _query_pairs(remaining):
            pair = f"{quote(name, safe='')}={quote(value, safe='')}"
            url_chars[name] = url_chars.get(name, 0) + len(pair) + 1
            query.append(pair)

    url = template.origin + (path or "/")
    if query:
        url += "?" + "&".join(query)
    if len(url) > MAX_URL_CHARS:
        culprit = max(url_chars, key=lambda name: url_chars[name]) if url_chars else "arguments"
        raise RequestBuildError(
            culprit, f"makes the URL {len(url)} characters long (encoded); at most {MAX_URL_CHARS} fit in a URL"
        )
    return OutboundRequest(
        method=template.method, url=url, headers=template.headers, body=body, defaults=template.default_headers
    )


def _static_headers(definition: ToolDefinition) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    """Our default headers that the config does not replace, and the configured headers."""
    configured = definition.headers
    names = {name.lower() for name, _ in configured}
    defaults = [("User-Agent", USER_AGENT), ("Accept", "application/json")]
    if definition.method in BODY_METHODS:
        defaults.append(("Content-Type", "application/json"))
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


def _body(arguments: Mapping[str, Any]) -> bytes:
    try:
        return json.dumps(arguments, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except ValueError:
        for name, value in arguments.items():
            _json(name, value)  # raises, naming the argument at fault
        raise


def _json(name: str, value: Any) -> str:
    """Compact JSON; NaN and Infinity have no JSON form, so they are refused, not sent."""
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError:
        raise RequestBuildError(name, "must be a finite number (JSON has no NaN or Infinity)") from None
