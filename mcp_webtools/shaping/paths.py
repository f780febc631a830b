"""Paths into a JSON answer, as written in `responseFields` and as the keys of the variables view.

    customer.name   orders[0].status   orders[-1].id   orders[*].id   customer["first name"]

A plain key is any run of characters but `.`, `[`, `]`, `"`, spaces and control characters;
anything else is quoted as a JSON string in brackets. `[n]` indexes a list (negative counts
from the end) and `[*]` means every item. `format_path` writes the canonical text, which
`parse_path` reads back to the same path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from ..errors import PathError

__all__ = ["Path", "Segment", "format_path", "parse_path"]

Segment = str | int | None  # an object key, a list index (negative counts from the end), or None for [*]
Path = tuple[Segment, ...]


_PLAIN_KEY = re.compile(r'[^.\[\]"\s\x00-\x1f\x7f]+')
_BRACKET = re.compile(r"\[(-?[0-9]+|\*)\]")
_DECODER = json.JSONDecoder()
_SYNTAX = 'write paths like customer.name, orders[0].status, orders[*].id or customer["first name"]'


def parse_path(text: str) -> Path:
    """`'orders[0].status'` -> `('orders', 0, 'status')`; `[*]` is None; `["a.b"]` quotes a key."""
    if not isinstance(text, str) or not text:
        raise PathError(f"must be a non-empty path; {_SYNTAX}")
    segments: list[Segment] = []
    pos = 0
    while pos < len(text):
        if text.startswith('["', pos):
            try:
                key, end = _DECODER.raw_decode(text, pos + 1)
            except ValueError:
                raise PathError(f"has an unfinished quoted key at character {pos + 1}; {_SYNTAX}") from None
            if not text.startswith("]", end):
                raise PathError(f"needs ']' after the quoted key at character {end + 1}; {_SYNTAX}")
            segments.append(key)
            pos = end + 1
            continue
        if text[pos] == "[":
            match = _BRACKET.match(text, pos)
            if not match:
                raise PathError(
                    f"has {text[pos : pos + 12]!r} at character {pos + 1}: brackets hold a list index such as [0] "
                    'or [-1], [*] for every item, or a quoted key such as ["a.b"]'
                )
            segments.append(None if match.group(1) == "*" else int(match.group(1)))
            pos = match.end()
            continue
        if text[pos] == ".":
            if not segments:
                raise PathError(f"must not start with '.'; {_SYNTAX}")
            pos += 1
        elif text[pos].isspace():
            raise PathError(f'has a space at character {pos + 1}; quote such keys: customer["first name"]')
        elif segments:
            raise PathError(f"needs '.' or '[' before {text[pos : pos + 12]!r} at character {pos + 1}; {_SYNTAX}")
        match = _PLAIN_KEY.match(text, pos)
        if not match:
            raise PathError(f"has an empty or invalid key at character {pos + 1}; {_SYNTAX}")
        if match.group() == "*":
            raise PathError('uses * as a key; write [*] for every item of a list, or ["*"] for a key named *')
        segments.append(match.group())
        pos = match.end()
    return tuple(segments)


def format_path(path: Iterable[Segment], under: str = "") -> str:
    """The inverse of `parse_path`; the root (an empty path) is `''`.

    The one way we write a path into JSON, also for the field an error names: `under` is the
    field the path starts in (`format_path(["id", 0], under="params")` is `params.id[0]`).
    """
    out: list[str] = [under] if under else []
    for segment in path:
        if segment is None:
            out.append("[*]")
        elif isinstance(segment, int):
            out.append(f"[{segment}]")
        elif segment != "*" and _PLAIN_KEY.fullmatch(segment):
            out.append(f".{segment}" if out else segment)
        else:
            out.append(f"[{json.dumps(segment, ensure_ascii=False)}]")
    return "".join(out)
