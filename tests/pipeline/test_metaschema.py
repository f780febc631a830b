"""The bundled meta-schema check accepts and refuses exactly what jsonschema's own check does, with its errors."""

from __future__ import annotations

import json

import jsonschema
import pytest

from mcp_webtools import metaschema
from mcp_webtools.metaschema import bundled_metaschema, schema_errors

SCHEMAS = [
    True,
    False,
    {},
    {"type": "object"},
    {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0}}, "required": ["n"]},
    {"type": "object", "properties": {"$ref": {"type": "string"}, "$dynamicRef": {"type": "number"}}},
    {"type": "object", "$defs": {"id": {"type": "string"}}, "properties": {"id": {"$ref": "#/$defs/id"}}},
    {"type": "object", "additionalProperties": False, "patternProperties": {"^x-": {"type": "string"}}},
    {"type": "object", "dependentRequired": {"a": ["b"]}, "dependentSchemas": {"a": {"required": ["c"]}}},
    {"type": "object", "unevaluatedProperties": {"type": "string"}, "allOf": [{"properties": {"a": {}}}]},
    {"type": "array", "prefixItems": [{"type": "string"}], "items": False, "contains": {"const": 1}},
    {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}], "default": None},
    {"type": "string", "pattern": "^[a-z]+$", "enum": ["a", "b"], "examples": ["a"]},
    {"$dynamicAnchor": "node", "type": "object", "properties": {"next": {"$dynamicRef": "#node"}}},
    {"if": {"type": "string"}, "then": {"minLength": 1}, "else": {"type": "number"}, "not": {"const": 0}},
    {"contentMediaType": "application/json", "contentEncoding": "base64", "deprecated": True},
    {"definitions": {"old": {"type": "string"}}, "dependencies": {"a": ["b"]}},
    {"$id": "https://example.com/s", "$anchor": "a", "$comment": "c", "minContains": 2, "contains": {}},
    {"$recursiveAnchor": "x", "$recursiveRef": "#", "$vocabulary": {"https://example.com/v": True}},
    # refused
    {"$id": "https://example.com/s#frag"},
    {"minContains": -1},
    {"$recursiveRef": 3},
    {"$vocabulary": {"https://example.com/v": "yes"}},
    {"type": "obj"},
    {"type": ["string", "string"]},
    {"type": "object", "properties": {"n": {"type": 12}}},
    {"type": "object", "properties": {"n": {"minimum": "zero"}}},
    {"type": "object", "required": "n"},
    {"type": "object", "required": ["n", "n"]},
    {"type": "string", "pattern": "(unclosed"},
    {"type": "object", "patternProperties": {"[": {"type": "string"}}},
    {"type": "object", "properties": {"deep": {"properties": {"deeper": {"items": {"type": "nope"}}}}}},
    {"type": "array", "items": [{"type": "string"}]},
    {"type": "object", "additionalProperties": "no"},
    {"enum": "a"},
    {"$defs": {"x": {"type": "thing"}}},
    {"definitions": {"old": {"type": 5}}},
    {"allOf": []},
    {"anyOf": [{"type": "string"}, 3]},
    {"multipleOf": 0},
    {"maxLength": -1},
    {"minItems": 1.5},
    {"dependentRequired": {"a": "b"}},
    {"unevaluatedItems": {"type": "nah"}},
    {"$ref": 5},
    {"$anchor": "not valid!"},
    {"format": 3},
    {"contentSchema": {"type": "x"}},
]


def jsonschema_verdict(schema: object) -> list[tuple[str, list]] | None:
    """Every error `Draft202012Validator.check_schema` could raise (it raises the first); None when valid."""
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError:
        official = jsonschema.Draft202012Validator(
            jsonschema.Draft202012Validator.META_SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
        )
        return sorted((e.message, list(e.absolute_path)) for e in official.iter_errors(schema))
    return None


def our_verdict(schema: object) -> list[tuple[str, list]] | None:
    return sorted((e.message, list(e.absolute_path)) for e in schema_errors(schema)) or None


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: json.dumps(s)[:60])
def test_same_verdict_and_messages_as_jsonschema(schema: object) -> None:
    assert our_verdict(schema) == jsonschema_verdict(schema)


# Free text (`title`, `description`, `$comment`) where it is a keyword, a property's name, data, or
# not a string: a valid shape is remembered, so these check that no verdict leaks to another.
FREE_TEXT = [
    {"type": "object", "description": "one", "properties": {"n": {"type": "integer", "title": "N"}}},
    {"type": "object", "description": "two", "properties": {"n": {"type": "integer", "title": "M"}}},
    {"type": "object", "description": 2, "properties": {"n": {"type": "integer", "title": "N"}}},
    {"type": "object", "properties": {"description": {"type": "string", "description": "a property"}}},
    {"type": "object", "properties": {"description": "not a schema"}},
    {"type": "object", "properties": {"title": "another text"}},
    {"enum": [{"description": "data"}, {"description": 1}], "$comment": "x"},
    {"const": {"title": ["data"]}, "default": {"$comment": 3}},
    {"$comment": ["not a string"]},
    {"title": None},
    {"x-ours": {"description": "unknown keyword"}, "title": "t"},
    {"dependentRequired": {"description": "a string, not an array"}},
    {"dependentRequired": {"description": ["b"]}},
    {"$vocabulary": {1: True}},
    {"$vocabulary": {"1": True}},
    {"properties": {1: {"type": "string"}}, "description": "an int key"},
    {"properties": {"1": {"type": "string"}}, "description": "a str key"},
]


@pytest.mark.parametrize("order", ["forward", "backward"])
def test_remembered_shapes_never_change_a_verdict(order: str) -> None:
    metaschema._valid_shapes.clear()
    for schema in FREE_TEXT if order == "forward" else FREE_TEXT[::-1]:
        assert our_verdict(schema) == jsonschema_verdict(schema), schema
    assert [jsonschema_verdict(schema) is None for schema in FREE_TEXT].count(False) >= 6


def test_tools_that_differ_only_in_free_text_are_checked_once(monkeypatch) -> None:
    metaschema._valid_shapes.clear()
    bundled = metaschema._bundled_validator()
    checked = []

    class Counting:
        def is_valid(self, schema: object) -> bool:
            checked.append(schema)
            return bundled.is_valid(schema)

    monkeypatch.setattr(metaschema, "_bundled_validator", Counting)
    for i in range(50):
        item = {"type": "integer", "description": f"Which item (variant {i})", "title": f"Item {i}"}
        assert schema_errors({"type": "object", "properties": {"n": item}, "$comment": str(i)}) == []
    assert len(checked) == 1
    assert schema_errors({"type": "object", "properties": {"m": {"type": "integer"}}}) == []  # another shape
    assert len(checked) == 2
    assert [e.message for e in schema_errors({"type": "object", "properties": {"n": {"type": "int"}}})]
    assert len(checked) == 3


def test_schema_errors_come_in_document_order() -> None:
    schema = {
        "required": "b",
        "properties": {"z": {"type": "strin", "minimum": "zero"}, "a": {"items": {"type": 3}}},
        "type": "obj",
    }
    assert [list(e.absolute_path) for e in schema_errors(schema)] == [
        ["required"],
        ["properties", "z", "type"],
        ["properties", "z", "minimum"],
        ["properties", "a", "items", "type"],
        ["type"],
    ]


def test_the_corpus_has_both_verdicts() -> None:
    verdicts = [jsonschema_verdict(schema) is None for schema in SCHEMAS]
    assert verdicts.count(True) >= 15 and verdicts.count(False) >= 20


def references(node: object, keyword: str) -> list[str]:
    """Every string value of `keyword` in `node` (a keyword's own definition, a dict, is skipped)."""
    if isinstance(node, list):
        return [ref for item in node for ref in references(item, keyword)]
    if not isinstance(node, dict):
        return []
    own = [node[keyword]] if isinstance(node.get(keyword), str) else []
    return own + [ref for value in node.values() for ref in references(value, keyword)]


def test_the_only_reference_left_is_the_recursion_to_the_root() -> None:
    bundle = bundled_metaschema()
    assert references(bundle, "$dynamicRef") == []
    refs = references(bundle, "$ref")
    assert len(refs) > 20 and set(refs) == {"#"}


def test_the_bundle_validates_instances_like_the_official_meta_schema() -> None:
    # The same validator class and formats: only the document differs.
    official = jsonschema.Draft202012Validator(
        jsonschema.Draft202012Validator.META_SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    bundled = jsonschema.Draft202012Validator(
        bundled_metaschema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    for schema in SCHEMAS:
        assert bundled.is_valid(schema) == official.is_valid(schema), schema


def test_the_vocabularies_are_one_properties_map() -> None:
    """Every keyword of the seven vocabularies checked in one step (no `allOf` to walk per schema object)."""
    bundle = bundled_metaschema()
    assert "allOf" not in bundle and bundle["type"] == ["object", "boolean"]
    vocabularies = [vocabulary["properties"] for vocabulary in bundle["$defs"].values() if "properties" in vocabulary]
    assert len(vocabularies) == 7
    for keywords in vocabularies:
        assert set(keywords) <= set(bundle["properties"])
    assert {"$ref", "properties", "unevaluatedItems", "maximum", "title", "format", "contentSchema"} <= set(
        bundle["properties"]
    )
