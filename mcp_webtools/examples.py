"""A tool's `examples`: checked at load against the tool itself, and judged against a call's result.

An example is a call (`arguments`) and what its result must be (`expect`: `status`, `isError`,
`fields`, `contains`; the models are in definitions.py). `example_problems` runs each example's
arguments through the tool's own validation and request building at load, so a broken example is
a config error naming its field, not a surprise in CI. `first_difference` compares a result with
what the example expects and says the first thing that differs, in one line `mcp-webtools test`
prints. The values compared are the ones the model reads: the result after shaping, redacted.
"""

from __future__ import annotations

import json
from typing import Any

import mcp_types as types

from .arguments import ArgumentValidator
from .definitions import Expect, ToolDefinition
from .errors import ArgumentError, RequestBuildError
from .requests import RequestTemplate, build_request
from .results import META_HTTP
from .shaping.paths import Path, parse_path

__all__ = ["example_problems", "first_difference", "value_at"]

MAX_SHOWN_CHARS = 120  # of a value or text quoted in a difference


def example_problems(definition: ToolDefinition) -> list[tuple[str, str]]:
    """`(field under examples, message)` for each example whose arguments the tool would refuse.

    The same checks a call meets (the published input schema, then request building), so an
    example that loads is one the tool can send.
    """
    if not definition.examples:
        return []
    validator = ArgumentValidator(definition.input_schema)
    template = RequestTemplate.from_definition(definition)
    problems: list[tuple[str, str]] = []
    for i, example in enumerate(definition.examples):
        where = f"[{i}].arguments"
        try:
            build_request(template, validator.validate(example.arguments))
        except ArgumentError as exc:
            problems += [(_under(where, field), message) for field, message in exc.problems]
        except RequestBuildError as exc:
            problems.append((_under(where, exc.field), exc.message))
    return problems


def _under(where: str, field: str) -> str:
    return where if field in ("", "arguments") else f"{where}.{field}"


def first_difference(expect: Expect, result: types.CallToolResult) -> str | None:
    """The first way `result` differs from `expect`, as one line; None when it is as expected.

    Checked in order: `status`, `isError`, each of `fields` (in the order written), `contains`.
    """
    meta = (result.meta or {}).get(META_HTTP) or {}
    status = meta.get("status")
    if expect.status is not None and status != expect.status:
        got = f"HTTP {status}" if status is not None else f"no HTTP answer ({_first_text(result)})"
        return f"status: expected {expect.status}, got {got}"
    if bool(result.is_error) != expect.wants_error:
        said = f" ({_first_text(result)})" if result.is_error else ""
        return f"isError: expected {_json(expect.wants_error)}, got {_json(bool(result.is_error))}{said}"
    body = result.structured_content
    for written, expected in expect.fields.items():
        if isinstance(body, dict) and written in body:  # a `flatten` tool's map is keyed by the paths
            found, actual = True, body[written]
        else:
            found, actual = value_at(body, parse_path(written))
        if not found:
            return f"fields.{written}: expected {_json(expected)}, but the result has no such field"
        if not _same(actual, expected):
            return f"fields.{written}: expected {_json(expected)}, got {_json(actual)}"
    text = "\n".join(item.text for item in result.content if isinstance(item, types.TextContent))
    for wanted in expect.contains:
        if wanted not in text:
            return f"contains: {_json(wanted)} is not in the result text ({_shorten(text)})"
    return None


def value_at(value: Any, path: Path) -> tuple[bool, Any]:
    """`(found, the value at path)` in a JSON value; `[*]` gives the list of every item's value."""
    for position, segment in enumerate(path):
        if segment is None:
            if not isinstance(value, list):
                return False, None
            found = [value_at(item, path[position + 1 :]) for item in value]
            return True, [item for ok, item in found if ok]
        if isinstance(segment, int):
            if not isinstance(value, list) or not -len(value) <= segment < len(value):
                return False, None
            value = value[segment]
        elif isinstance(value, dict) and segment in value:
            value = value[segment]
        else:
            return False, None
    return True, value


def _same(actual: Any, expected: Any) -> bool:
    """JSON equality: `1` equals `1.0`, but `true` is not `1`."""
    if isinstance(actual, bool) or isinstance(expected, bool):
        return type(actual) is type(expected) and actual == expected
    if isinstance(actual, list) and isinstance(expected, list):
        return len(actual) == len(expected) and all(map(_same, actual, expected))
    if isinstance(actual, dict) and isinstance(expected, dict):
        return actual.keys() == expected.keys() and all(_same(actual[k], expected[k]) for k in actual)
    return bool(actual == expected)


def _first_text(result: types.CallToolResult) -> str:
    texts = [item.text for item in result.content if isinstance(item, types.TextContent)]
    return _shorten(texts[0] if texts else "no text")


def _json(value: Any) -> str:
    return _shorten(json.dumps(value, ensure_ascii=False))


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_SHOWN_CHARS else text[: MAX_SHOWN_CHARS - 3] + "..."
