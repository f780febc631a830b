"""Checking a call's arguments against the tool's JSON Schema, and filling its defaults.

A validator is compiled once per tool at load (`ArgumentValidator(schema)`), then used on every
call. Problems are reported per field, so the model can correct exactly what it got wrong.
"""

from __future__ import annotations

import ast
import copy
import datetime
import math
import re
from collections.abc import Mapping
from itertools import chain
from typing import Any

import jsonschema
from jsonschema import Draft202012Validator, FormatChecker

from .errors import ArgumentError
from .shaping.paths import format_path

__all__ = ["ArgumentValidator", "fill_defaults", "nested_deeper_than"]

_FORMAT_CHECKER = FormatChecker()
MAX_DEPTH = 64  # levels of nested objects/arrays in one call's arguments

# jsonschema checks `date-time`, `uri`, `uri-reference` and `hostname` only when optional packages
# are installed, and otherwise lets any string through. These stdlib checks fill the gap (an
# installed package's check is kept), so a format in a tool's schema is always enforced.
_RFC3339_DATE_TIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$",
    re.IGNORECASE,
)
_URI_CHARS = re.compile(r"^(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*$")
_URI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_HOSTNAME_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    match = _RFC3339_DATE_TIME.match(value)
    if match is None:
        return False
    try:
        datetime.date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:  # 2026-02-30
        return False
    return True


def _uri_reference(value: object) -> bool:
    return not isinstance(value, str) or bool(_URI_CHARS.match(value))


def _uri(value: object) -> bool:
    return not isinstance(value, str) or (bool(_URI_SCHEME.match(value)) and _uri_reference(value))


def _hostname(value: object) -> bool:
    if not isinstance(value, str):
        return True
    labels = value[:-1].split(".") if value.endswith(".") else value.split(".")
    return 0 < len(value) <= 253 and all(_HOSTNAME_LABEL.match(label) for label in labels)


for _name, _check in (
    ("date-time", _date_time),
    ("uri", _uri),
    ("uri-reference", _uri_reference),
    ("hostname", _hostname),
):
    if _name not in _FORMAT_CHECKER.checkers:
        _FORMAT_CHECKER.checks(_name)(_check)


class ArgumentValidator:
    """A compiled JSON Schema (2020-12, with format checking) for one tool's arguments."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self.schema = schema
        # Made on the first call, not at load: it costs a few microseconds to make, but about a
        # kilobyte to keep, and most of a large toolset's tools are never called in a process.
        self._validator: Draft202012Validator | None = None

    def validate(self, arguments: Mapping[str, Any] | None) -> dict[str, Any]:
        """Return the arguments with schema defaults filled in, or raise `ArgumentError`."""
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, Mapping):
            raise ArgumentError([("arguments", "must be a JSON object")])
        if nested_deeper_than(dict(arguments), MAX_DEPTH):
            # Checked without recursion: everything after this (copying, schema checks, JSON
            # encoding) recurses, and a deep enough value would exhaust the stack.
            raise ArgumentError([("arguments", f"are nested more than {MAX_DEPTH} levels deep")])
        filled = fill_defaults(self.schema, copy.deepcopy(dict(arguments)))
        # JSON has no NaN or Infinity, yet JSON-RPC parsers accept them; they slip past
        # minimum/maximum (comparisons with NaN are false) and crash jsonschema's multipleOf.
        # Refuse them before the schema sees them.
        non_finite = [(format_path(path), "must be a finite number") for path in _non_finite(filled, [])]
        if non_finite:
            raise ArgumentError(non_finite)
        if self._validator is None:
            self._validator = Draft202012Validator(self.schema, format_checker=_FORMAT_CHECKER)
        errors = sorted(self._validator.iter_errors(filled), key=lambda e: (list(e.absolute_path), e.message))
        if errors:
            raise ArgumentError([problem for error in errors for problem in _describe(error)])
        return filled


def fill_defaults(schema: Mapping[str, Any], instance: Any, root: Mapping[str, Any] | None = None) -> Any:
    """Fill `default`s of absent properties, recursing into nested objects and array items.

    Plain `properties`/`items`/`allOf` and local `$ref`s (`#/$defs/...`) are followed: defaults
    under `anyOf`/`oneOf` depend on which branch matches, and guessing would invent values the
    caller did not mean.
    """
    return _fill(schema, instance, root if root is not None else schema, depth=0)


_MAX_REF_DEPTH = 64  # a recursive schema meets a finite instance; this only stops a $ref cycle


def _fill(schema: Any, instance: Any, root: Mapping[str, Any], depth: int) -> Any:
    if not isinstance(schema, Mapping) or depth > _MAX_REF_DEPTH:
        return instance
    ref = schema.get("$ref")
    if isinstance(ref, str):
        instance = _fill(_resolve_local(root, ref), instance, root, depth + 1)
    if isinstance(instance, dict):
        for name, subschema in (schema.get("properties") or {}).items():
            if not isinstance(subschema, Mapping):
                continue
            subschema = _with_ref_default(subschema, root)
            if name not in instance and "default" in subschema:
                instance[name] = copy.deepcopy(subschema["default"])
            if name in instance:
                instance[name] = _fill(subschema, instance[name], root, depth + 1)
    elif isinstance(instance, list) and isinstance(schema.get("items"), Mapping):
        instance[:] = [_fill(schema["items"], item, root, depth + 1) for item in instance]
    for subschema in schema.get("allOf") or ():
        instance = _fill(subschema, instance, root, depth + 1)
    return instance


def _with_ref_default(subschema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    """A property that is only a `$ref` takes the referenced schema's `default`."""
    if "default" not in subschema and isinstance(subschema.get("$ref"), str):
        target = _resolve_local(root, subschema["$ref"])
        if isinstance(target, Mapping) and "default" in target:
            return {**subschema, "default": target["default"]}
    return subschema


def _resolve_local(root: Mapping[str, Any], ref: str) -> Any:
    if not ref.startswith("#"):
        return None  # remote refs are never fetched
    node: Any = root
    for token in ref[1:].lstrip("/").split("/") if ref != "#" else ():
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return None
    return node


def _describe(error: jsonschema.ValidationError) -> list[tuple[str, str]]:
    """One (field, message) per bad field; an error about several extra fields names each."""
    path = list(error.absolute_path)
    if error.validator == "required":
        missing = _missing_property(error)
        if missing is not None:
            return [(format_path([*path, missing]), "is required")]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        extras = _extra_properties(error.schema, error.instance)
        if extras:
            return [(format_path([*path, extra]), "is not an accepted parameter") for extra in extras]
    message = error.message
    if len(message) > 300:
        message = message[:300] + "..."
    return [(format_path(path) or "arguments", message)]


def _extra_properties(schema: Mapping[str, Any], instance: Mapping[str, Any]) -> list[str]:
    """The keys `additionalProperties` refused: neither a property nor matching a patternProperty."""
    allowed = set((schema.get("properties") or {}).keys())
    patterns = [re.compile(p) for p in (schema.get("patternProperties") or {})]
    return sorted(k for k in instance if k not in allowed and not any(p.search(k) for p in patterns))


def nested_deeper_than(value: Any, limit: int) -> bool:
    """Whether a JSON value nests objects (dicts) and arrays (lists) more than `limit` levels deep, itself level 1.

    Level by level, without recursion (a value too deep to recurse into is what it looks for),
    and in comprehensions: this runs on every JSON answer of any size.
    """
    level = [value] if isinstance(value, (dict, list)) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        children = chain.from_iterable(item.values() if isinstance(item, dict) else item for item in level)
        level = [child for child in children if isinstance(child, (dict, list))]
    return False


def _non_finite(value: Any, path: list[Any]) -> list[list[Any]]:
    if isinstance(value, float) and not math.isfinite(value):
        return [path]
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in _non_finite(item, [*path, key])]
    if isinstance(value, list):
        return [found for i, item in enumerate(value) for found in _non_finite(item, [*path, i])]
    return []


def _missing_property(error: jsonschema.ValidationError) -> str | None:
    # jsonschema raises one `required` error per missing name, as "'name' is a required property".
    literal, sep, _ = error.message.partition(" is a required property")
    if sep:
        try:
            name = ast.literal_eval(literal)
        except (ValueError, SyntaxError):
            return None
        return name if isinstance(name, str) else None
    return None
