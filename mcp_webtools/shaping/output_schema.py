"""A tool's optional `outputSchema`: checked at load, published with our keys, enforced per call.

The declared schema describes the structured content *without* the keys mcp-webtools adds:
`api_response_status` (always) and `api_response_truncated` (only when the result was cut to
fit `maxResultBytes`). The schema published in `tools/list` is the declared one with those two
properties added and `api_response_status` required, so a client that validates (the SDKs do)
accepts every structured result we send. It must be `"type": "object"` at the top: 2025-era
clients accept only objects, and a non-object answer is wrapped as `{"data": ...}` anyway.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema
from jsonschema import validators
from referencing import Registry
from referencing.exceptions import Unresolvable

from .paths import format_path

__all__ = [
    "DATA_KEY",
    "RESERVED_KEYS",
    "STATUS_KEY",
    "TRUNCATED_KEY",
    "TRUNCATION_SCHEMA",
    "OutputSchema",
    "check_output_schema",
]

STATUS_KEY = "api_response_status"
TRUNCATED_KEY = "api_response_truncated"
DATA_KEY = "data"
RESERVED_KEYS = (STATUS_KEY, TRUNCATED_KEY)

TRUNCATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Present only when the result was shortened to fit maxResultBytes.",
    "properties": {
        "maxResultBytes": {"type": "integer"},
        "originalBytes": {"type": "integer"},
        "droppedItems": {"type": "integer", "description": "list items and object fields left out"},
        "droppedCharacters": {"type": "integer"},
        "cuts": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "path": {"type": "string"},
                    "kept": {"type": "integer"},
                    "total": {"type": "integer"},
                    "unit": {"enum": ["items", "fields", "characters"]},
                    "places": {"type": "integer", "description": "how many places had this cut"},
                },
            },
        },
    },
}


class OutputSchema:
    """The published form of a declared outputSchema, and a validator for it (compiled once)."""

    def __init__(self, declared: dict[str, Any]) -> None:
        self.published = _published(declared)
        cls = validators.validator_for(self.published, default=jsonschema.Draft202012Validator)
        # As the SDK client does: no format assertions, and `$ref` resolves within the schema only.
        self._validator = cls(self.published, registry=Registry())

    def problem(self, structured: dict[str, Any]) -> str | None:
        """Why `structured` does not conform, in one line for the model; None when it does."""
        try:
            error = jsonschema.exceptions.best_match(self._validator.iter_errors(structured))
        except Unresolvable as exc:
            return f"its $ref {exc.ref!r} does not resolve within the schema"
        if error is None:
            return None
        where = format_path(list(error.absolute_path)) or "the top level"
        message, shown = error.message, repr(error.instance)
        if len(shown) > 60 and message.startswith(shown):  # "[0, 1, ... 999] is too short"
            message = _describe(error.instance) + message[len(shown) :]
        return f"at {where}: {message if len(message) <= 300 else message[:299] + '…'}"


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return f"an object of {len(value)} fields"
    if isinstance(value, list):
        return f"a list of {len(value)} items"
    if isinstance(value, str):
        return f"a text of {len(value)} characters"
    return type(value).__name__


def check_output_schema(schema: Any) -> None:
    """Raise ValueError unless `schema` can be a tool's outputSchema (validated once, at load)."""
    if not isinstance(schema, dict):
        raise ValueError("must be a JSON Schema object")
    try:
        json.dumps(schema)
    except (TypeError, ValueError):
        raise ValueError("must hold JSON values only (quote YAML dates and the like)") from None
    cls = validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        raise ValueError(f"is not a valid JSON Schema{' at ' + where if where else ''}: {exc.message}") from None
    if schema.get("type") != "object":
        raise ValueError(
            'must have "type": "object" at the top: structured results are objects (a non-object answer '
            f'is wrapped as {{"{DATA_KEY}": ...}}, so describe that)'
        )
    reserved = [key for key in RESERVED_KEYS if key in (schema.get("properties") or {})]
    if reserved:
        raise ValueError(f"must not declare {', '.join(reserved)}: mcp-webtools adds it to the published schema")
    for ref in _refs(schema):
        if not ref.startswith("#"):
            raise ValueError(f"has $ref {ref!r}; an outputSchema must be self-contained (refer to #/$defs/...)")


def _refs(schema: Any) -> list[str]:
    if isinstance(schema, dict):
        own = [schema["$ref"]] if isinstance(schema.get("$ref"), str) else []
        return own + [ref for value in schema.values() for ref in _refs(value)]
    if isinstance(schema, list):
        return [ref for value in schema for ref in _refs(value)]
    return []


def _published(schema: dict[str, Any]) -> dict[str, Any]:
    """The declared schema plus our keys: the status (required) and the truncation report."""
    published = copy.deepcopy(schema)
    properties = dict(published.get("properties") or {})
    properties[STATUS_KEY] = {"type": "integer", "description": "The HTTP status the upstream API answered."}
    properties[TRUNCATED_KEY] = TRUNCATION_SCHEMA
    published["properties"] = properties
    published["required"] = [*(key for key in published.get("required", []) if key != STATUS_KEY), STATUS_KEY]
    return published
