"""Checking that a tool's `params` is a valid JSON Schema (2020-12), fast enough for 1000 tools.

`jsonschema`'s own `Draft202012Validator.check_schema` validates against the official
meta-schema, which is split into seven vocabulary documents tied together with `$dynamicRef`;
resolving those references on every keyword is most of the cost of loading a large config.

`schema_errors` gives the same answer from one document: the vocabularies bundled under `$defs`,
every `$dynamicRef: "#meta"` replaced by `$ref: "#"`, then every other `$ref` replaced by what it
points to (merged with its sibling keywords where none overlap and none depends on its siblings,
as `additionalProperties` does), so that the only reference left is the recursion to the root.
When validating a schema against the standard meta-schema (no extension meta-schema in play) the
dynamic anchor `meta` always resolves to the root, and a `$ref` applies its target in place, so
the two documents accept exactly the same schemas; the format checker is the one `check_schema`
uses. A schema this refuses is checked again by `jsonschema` itself, so the errors returned are
exactly `jsonschema`'s: all of them, for a person to fix in one pass, in the order they appear in
the schema. The seven vocabularies, which the root applies one by one (`allOf`), are then merged
into one `properties` map (`_merged_vocabularies`: no keyword belongs to two of them). For 1000
small schemas of as many shapes, one run: `check_schema` 593-720 ms, the bundle 235-250 ms, the
bundle with its vocabularies merged 76-127 ms.

A shape found valid is remembered: all the meta-schema asks of a `title`, a `description` or a
`$comment` is that it be a string, and wherever else a key of that name sits (a property named
"description", inside an `enum` or a `default`, under a keyword nobody defined) a string there is
valid or invalid whatever it says. So two schemas that differ only in those strings are valid or
invalid together: the tools of a large config, which mostly share their parameter shapes and
differ in descriptions, are checked once per shape (`_shape`; 1000 tools of one shape: 128 to
6 ms; 1000 tools of as many shapes: 8 % more than without it). What is remembered is a 16-byte
digest per valid shape, at most `MAX_REMEMBERED` of them.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, Final

from jsonschema import Draft202012Validator, ValidationError
from jsonschema_specifications import REGISTRY

__all__ = ["bundled_metaschema", "schema_errors"]

_VOCABULARY_BASE = "https://json-schema.org/draft/2020-12/"
# Keywords whose value maps names (not keywords) to subschemas.
_SCHEMA_MAPS = frozenset({"properties", "$defs", "patternProperties", "dependentSchemas"})
# Keywords whose meaning depends on sibling keywords: a `$ref` next to them is left as it is.
_SIBLING_SENSITIVE = frozenset(
    {
        "additionalProperties",
        "unevaluatedProperties",
        "unevaluatedItems",
        "items",
        "prefixItems",
        "properties",
        "patternProperties",
        "contains",
        "minContains",
        "maxContains",
        "if",
        "then",
        "else",
    }
)
# Identity keywords of the separate documents; in the bundle, all of it is one resource.
_DROPPED = frozenset({"$id", "$schema", "$vocabulary", "$dynamicAnchor"})
# Keys whose string values the meta-schema asks nothing more of, wherever they sit (see above).
_FREE_TEXT = frozenset({"title", "description", "$comment"})
MAX_REMEMBERED: Final = 10_000
_valid_shapes: set[bytes] = set()


def schema_errors(schema: Any) -> list[ValidationError]:
    """Every way `schema` breaks the 2020-12 meta-schema, in document order; `[]` (fast) when it is valid."""
    # repr, not JSON: it keeps 1, "1", 1.0 and True apart, in keys as in values.
    shape = hashlib.blake2b(repr(_shape(schema)).encode(), digest_size=16).digest()
    if shape in _valid_shapes:
        return []
    if _bundled_validator().is_valid(schema):
        if len(_valid_shapes) >= MAX_REMEMBERED:
            _valid_shapes.clear()
        _valid_shapes.add(shape)
        return []
    # jsonschema's own order depends on set iteration (it varies from run to run): sort it.
    errors = _official_validator().iter_errors(schema)
    return sorted(errors, key=lambda error: (_position(schema, error.absolute_path), error.message))


def _shape(node: Any) -> Any:
    """`node` with every string under a `title`, `description` or `$comment` key made empty."""
    if isinstance(node, dict):
        return {
            key: "" if key in _FREE_TEXT and isinstance(value, str) else _shape(value) for key, value in node.items()
        }
    if isinstance(node, list):
        return [_shape(item) for item in node]
    return node


def _position(schema: Any, path: Sequence[str | int]) -> list[int]:
    """Where `path` sits in `schema`, as the index of each step among its siblings."""
    position: list[int] = []
    node = schema
    for step in path:
        position.append(list(node).index(step) if isinstance(node, Mapping) else int(step))
        node = node[step]
    return position


def bundled_metaschema() -> dict[str, Any]:
    """The 2020-12 meta-schema as one document whose only reference is `$ref: "#"` (see above)."""
    root = Draft202012Validator.META_SCHEMA
    defs: dict[str, Any] = {}
    for part in root["allOf"]:
        name = part["$ref"].removeprefix("meta/")
        defs[name] = _rewrite(REGISTRY.contents(f"{_VOCABULARY_BASE}meta/{name}"), f"#/$defs/{name}")
    bundled = _rewrite(root, "#")
    bundled["$defs"] = {**bundled.get("$defs", {}), **defs}
    return _merged_vocabularies(_inline(bundled, bundled))


# What a vocabulary's part of the root `allOf` may hold for its keywords to be merged into the root.
_MERGEABLE = frozenset({"title", "$comment", "type", "properties", "$defs"})


def _merged_vocabularies(bundled: dict[str, Any]) -> dict[str, Any]:
    """`bundled` with its `allOf` of the seven vocabularies (inlined by now) made one `properties`.

    Each vocabulary says only that a schema is an object or a boolean and how each of its own
    keywords' values must look; no keyword belongs to two of them. Applying them one after the
    other (`allOf`: seven more steps into the meta-schema for every object in a schema) or as one
    `properties` map accepts exactly the same schemas; the second is about half the cost. When a
    part holds anything else, or two parts name the same keyword, the `allOf` stays.
    """
    parts = bundled.get("allOf")
    if not isinstance(parts, list):
        return bundled
    properties = dict(bundled.get("properties", {}))
    for part in parts:
        if not isinstance(part, Mapping) or set(part) - _MERGEABLE or part.get("type") != bundled.get("type"):
            return bundled
        if set(part.get("properties", {})) & set(properties):
            return bundled
        properties.update(part.get("properties", {}))
    merged = {key: value for key, value in bundled.items() if key != "allOf"}
    merged["properties"] = properties
    return merged


def _rewrite(node: Any, base: str) -> Any:
    if isinstance(node, list):
        return [_rewrite(item, base) for item in node]
    if not isinstance(node, Mapping):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED:
            continue
        if key == "$dynamicRef":
            if value != "#meta":
                raise ValueError(f"unexpected $dynamicRef {value!r} in the 2020-12 meta-schema")
            out["$ref"] = "#"
        elif key == "$ref":
            if value.startswith("meta/"):  # "meta/validation" or "meta/validation#/$defs/stringArray"
                name, _, pointer = value.removeprefix("meta/").partition("#")
                out["$ref"] = f"#/$defs/{name}{pointer}"
            elif value.startswith("#/$defs/"):
                out["$ref"] = base + value[1:]  # local to its vocabulary document
            else:
                raise ValueError(f"unexpected $ref {value!r} in the 2020-12 meta-schema")
        elif key in _SCHEMA_MAPS and isinstance(value, Mapping):
            out[key] = {name: _rewrite(sub, base) for name, sub in value.items()}
        else:
            out[key] = _rewrite(value, base)
    return out


def _inline(node: Any, root: dict[str, Any]) -> Any:
    """`node` with each `$ref` other than "#" replaced by its (inlined) target, where that is exact."""
    if isinstance(node, list):
        return [_inline(item, root) for item in node]
    if not isinstance(node, Mapping):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _SCHEMA_MAPS and isinstance(value, Mapping):
            out[key] = {name: _inline(sub, root) for name, sub in value.items()}
        elif key == "$ref":
            out[key] = value
        else:
            out[key] = _inline(value, root)
    ref = out.get("$ref")
    if not isinstance(ref, str) or ref == "#":
        return out
    target = _inline(_pointer(root, ref), root)
    siblings = {key: value for key, value in out.items() if key != "$ref"}
    if not isinstance(target, Mapping) or set(target) & set(siblings):
        return out
    if siblings and (set(target) | set(siblings)) & _SIBLING_SENSITIVE:
        return out
    return {**target, **siblings}


def _pointer(root: dict[str, Any], ref: str) -> Any:
    node: Any = root
    for token in ref.removeprefix("#/").split("/"):
        node = node[token]
    return node


@functools.cache
def _bundled_validator() -> Draft202012Validator:
    return Draft202012Validator(bundled_metaschema(), format_checker=Draft202012Validator.FORMAT_CHECKER)


@functools.cache
def _official_validator() -> Draft202012Validator:
    """The validator `Draft202012Validator.check_schema` builds (anew on each call)."""
    return Draft202012Validator(Draft202012Validator.META_SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)
