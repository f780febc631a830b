"""Checking a call's arguments against the tool's JSON Schema, and filling its defaults.

A validator is compiled once per tool at load (`ArgumentValidator(schema)`), then used on every
call. Problems are reported per field, so the model can correct exactly what it got wrong.
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Mapping
from typing import Any

import jsonschema
from jsonschema import Draft202012Validator, FormatChecker

__all__ = ["ArgumentError", "ArgumentValidator", "fill_defaults", "field_path"]

_FORMAT_CHECKER = FormatChecker()


class ArgumentError(ValueError):
    """The arguments do not satisfy the schema; `problems` is a list of (field, message)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{name}: {message}" for name, message in problems))


class ArgumentValidator:
    """A compiled JSON Schema (2020-12, with format checking) for one tool's arguments."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self.schema = schema
        self._validator = Draft202012Validator(schema, format_checker=_FORMAT_CHECKER)

    def validate(self, arguments: Mapping[str, Any] | None) -> dict[str, Any]:
        """Return the arguments with schema defaults filled in, or raise `ArgumentError`."""
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, Mapping):
            raise ArgumentError([("arguments", "must be a JSON object")])
        filled = fill_defaults(self.schema, copy.deepcopy(dict(arguments)))
        errors = sorted(self._validator.iter_errors(filled), key=lambda e: (list(e.absolute_path), e.message))
        if errors:
            raise ArgumentError([_describe(error) for error in errors])
        return filled


def fill_defaults(schema: Mapping[str, Any], instance: Any) -> Any:
    """Fill `default`s of absent properties, recursing into nested objects and array items.

    Only plain `properties`/`items`/`allOf` are followed: defaults under `anyOf`/`oneOf` depend
    on which branch matches, and guessing would invent values the caller did not mean.
    """
    if not isinstance(schema, Mapping):
        return instance
    if isinstance(instance, dict):
        for name, subschema in (schema.get("properties") or {}).items():
            if not isinstance(subschema, Mapping):
                continue
            if name not in instance and "default" in subschema:
                instance[name] = copy.deepcopy(subschema["default"])
            if name in instance:
                instance[name] = fill_defaults(subschema, instance[name])
    elif isinstance(instance, list) and isinstance(schema.get("items"), Mapping):
        instance[:] = [fill_defaults(schema["items"], item) for item in instance]
    for subschema in schema.get("allOf") or ():
        instance = fill_defaults(subschema, instance)
    return instance


def field_path(path: Any) -> str:
    """`["orders", 0, "id"]` -> `"orders[0].id"`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _describe(error: jsonschema.ValidationError) -> tuple[str, str]:
    path = list(error.absolute_path)
    if error.validator == "required":
        missing = _missing_property(error)
        if missing is not None:
            return field_path([*path, missing]), "is required"
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set((error.schema.get("properties") or {}).keys())
        extras = sorted(k for k in error.instance if k not in allowed)
        if extras:
            return field_path([*path, extras[0]]) if len(extras) == 1 else field_path(path) or "arguments", (
                "is not an accepted parameter" if len(extras) == 1 else f"unexpected parameters {extras}"
            )
    message = error.message
    if len(message) > 300:
        message = message[:300] + "..."
    return field_path(path) or "arguments", message


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
