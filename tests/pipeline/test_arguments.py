"""Argument validation and default filling (mcp_webtools.arguments), without a network."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mcp_webtools.arguments import ArgumentValidator
from mcp_webtools.errors import ArgumentError
from mcp_webtools.shaping.paths import format_path

ORDER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["customer", "email", "quantity"],
    "additionalProperties": False,
    "properties": {
        "customer": {"type": "string", "minLength": 1},
        "email": {"type": "string", "format": "email"},
        "delivery_date": {"type": "string", "format": "date"},
        "quantity": {"type": "integer", "minimum": 1, "maximum": 10},
        "weight": {"type": "number", "multipleOf": 0.5},
        "priority": {"type": "string", "enum": ["low", "normal", "high"], "default": "normal"},
        "gift": {"type": "boolean", "default": False},
        "shipping_address": {
            "type": "object",
            "required": ["zip"],
            "additionalProperties": False,
            "properties": {
                "zip": {"type": "string", "pattern": "^[0-9]{5}$"},
                "country": {"type": "string", "default": "US"},
                "geo": {
                    "type": "object",
                    "default": {},
                    "properties": {"precision": {"type": "integer", "default": 6}},
                },
            },
        },
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id"],
                "properties": {"id": {"type": "integer"}, "count": {"type": "integer", "default": 1}},
            },
        },
        "x-trace": {"type": "string"},
    },
}
VALID = {"customer": "Ada", "email": "ada@example.com", "quantity": 2}


@pytest.fixture(scope="module")
def validator() -> ArgumentValidator:
    return ArgumentValidator(ORDER_SCHEMA)


def problems(validator: ArgumentValidator, arguments: Any) -> list[tuple[str, str]]:
    with pytest.raises(ArgumentError) as caught:
        validator.validate(arguments)
    return caught.value.problems


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"quantity": "2"}, [("quantity", "'2' is not of type 'integer'")]),
        ({"quantity": True}, [("quantity", "True is not of type 'integer'")]),
        ({"customer": 7}, [("customer", "7 is not of type 'string'")]),
        ({"customer": ""}, [("customer", "'' should be non-empty")]),
        ({"quantity": 0}, [("quantity", "0 is less than the minimum of 1")]),
        ({"quantity": 11}, [("quantity", "11 is greater than the maximum of 10")]),
        ({"weight": 0.3}, [("weight", "0.3 is not a multiple of 0.5")]),
        ({"priority": "urgent"}, [("priority", "'urgent' is not one of ['low', 'normal', 'high']")]),
        ({"email": "not-an-address"}, [("email", "'not-an-address' is not a 'email'")]),
        ({"delivery_date": "2024-02-30"}, [("delivery_date", "'2024-02-30' is not a 'date'")]),
        ({"delivery_date": "tomorrow"}, [("delivery_date", "'tomorrow' is not a 'date'")]),
        ({"shipping_address": {"zip": "1234"}}, [("shipping_address.zip", "'1234' does not match '^[0-9]{5}$'")]),
        ({"shipping_address": {}}, [("shipping_address.zip", "is required")]),
        ({"shipping_address": "Main St"}, [("shipping_address", "'Main St' is not of type 'object'")]),
        ({"items": [{"id": 1}, {"id": "b"}]}, [("items[1].id", "'b' is not of type 'integer'")]),
        ({"items": [{"id": 1}, {}]}, [("items[1].id", "is required")]),
        ({"items": {"id": 1}}, [("items", "{'id': 1} is not of type 'array'")]),
        ({"coupon": "X1"}, [("coupon", "is not an accepted parameter")]),
        (
            {"shipping_address": {"zip": "12345", "floor": 3}},
            [("shipping_address.floor", "is not an accepted parameter")],
        ),
    ],
)
def test_one_bad_field_is_named_with_its_path(validator, change, expected):
    assert problems(validator, {**VALID, **change}) == expected


def test_valid_formats_pass(validator):
    filled = validator.validate({**VALID, "delivery_date": "2024-02-29", "email": "a.b+c@example.co.uk"})
    assert filled["delivery_date"] == "2024-02-29"


def test_every_missing_required_field_is_named_once(validator):
    assert problems(validator, {"quantity": 3}) == [("customer", "is required"), ("email", "is required")]
    assert problems(validator, {}) == [
        ("customer", "is required"),
        ("email", "is required"),
        ("quantity", "is required"),
    ]


def test_several_extra_fields_are_each_named(validator):
    found = problems(validator, {**VALID, "zeta": 1, "alpha": 2, "shipping_address": {"zip": "12345", "a": 1, "b": 2}})
    assert found == [
        ("alpha", "is not an accepted parameter"),
        ("zeta", "is not an accepted parameter"),
        ("shipping_address.a", "is not an accepted parameter"),
        ("shipping_address.b", "is not an accepted parameter"),
    ]


def test_pattern_properties_are_not_reported_as_extra():
    validator = ArgumentValidator(
        {"type": "object", "additionalProperties": False, "properties": {"a": {}}, "patternProperties": {"^x-": {}}}
    )
    assert validator.validate({"a": 1, "x-id": 2}) == {"a": 1, "x-id": 2}
    assert problems(validator, {"a": 1, "x-id": 2, "y-id": 3}) == [("y-id", "is not an accepted parameter")]


def test_many_problems_in_one_call_are_all_listed(validator):
    bad = {
        "customer": 1,
        "email": "nope",
        "quantity": 99,
        "priority": "x",
        "shipping_address": {"zip": 12345},
        "items": [{"id": 1}, {"id": None}],
    }
    found = problems(validator, bad)
    assert [name for name, _ in found] == [
        "customer",
        "email",
        "items[1].id",
        "priority",
        "quantity",
        "shipping_address.zip",
    ]
    error = ArgumentError(found)
    assert str(error).startswith("customer: 1 is not of type 'string'; email: 'nope' is not a 'email'; ")


def test_defaults_are_filled_at_top_level_and_in_nested_objects(validator):
    arguments = {**VALID, "shipping_address": {"zip": "12345"}, "items": [{"id": 1}, {"id": 2, "count": 5}]}
    before = copy.deepcopy(arguments)
    assert validator.validate(arguments) == {
        **VALID,
        "priority": "normal",
        "gift": False,
        "shipping_address": {"zip": "12345", "country": "US", "geo": {"precision": 6}},
        "items": [{"id": 1, "count": 1}, {"id": 2, "count": 5}],
    }
    assert arguments == before  # the caller's dict is left alone


def test_given_values_win_over_defaults(validator):
    arguments = {
        **VALID,
        "priority": "high",
        "gift": True,
        "shipping_address": {"zip": "12345", "country": "FR", "geo": {"precision": 2}},
    }
    assert validator.validate(arguments) == arguments


def test_an_absent_nested_object_without_a_default_is_not_invented(validator):
    assert validator.validate(VALID) == {**VALID, "priority": "normal", "gift": False}


def test_defaults_are_copied_not_shared():
    validator = ArgumentValidator({"type": "object", "properties": {"tags": {"type": "array", "default": []}}})
    first = validator.validate({})
    first["tags"].append("mutated")
    assert validator.validate({}) == {"tags": []}


def test_defaults_are_validated_like_given_values():
    validator = ArgumentValidator({"type": "object", "properties": {"n": {"type": "integer", "default": "x"}}})
    assert problems(validator, {}) == [("n", "'x' is not of type 'integer'")]


def test_none_means_no_arguments():
    validator = ArgumentValidator({"type": "object", "properties": {"page": {"type": "integer", "default": 1}}})
    assert validator.validate(None) == {"page": 1}
    assert problems(ArgumentValidator(ORDER_SCHEMA), None)[0] == ("customer", "is required")


@pytest.mark.parametrize("arguments", [[1, 2], "text", 3, True])
def test_non_object_arguments_are_refused(validator, arguments):
    assert problems(validator, arguments) == [("arguments", "must be a JSON object")]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_numbers_are_refused_before_the_schema_sees_them(validator, bad):
    # NaN slips past minimum/maximum, and crashed jsonschema's multipleOf with ValueError.
    assert problems(validator, {**VALID, "weight": bad}) == [("weight", "must be a finite number")]
    assert problems(validator, {**VALID, "items": [{"id": 1, "count": bad}]}) == [
        ("items[0].count", "must be a finite number")
    ]


def test_long_messages_are_capped():
    validator = ArgumentValidator({"type": "object", "properties": {"code": {"type": "integer"}}})
    [(name, message)] = problems(validator, {"code": "x" * 1000})
    assert name == "code"
    assert message == repr("x" * 1000)[:300] + "..."


@pytest.mark.parametrize(
    ("path", "text"),
    [([], ""), (["a"], "a"), (["a", "b"], "a.b"), (["items", 1, "id"], "items[1].id"), (["m", 0, 2], "m[0][2]")],
)
def test_field_path(path, text):
    assert format_path(path) == text


def test_defaults_are_filled_through_local_refs():
    schema = {
        "type": "object",
        "$defs": {
            "contact": {"type": "object", "properties": {"channel": {"type": "string", "default": "email"}}},
            "tier": {"type": "string", "default": "silver"},
        },
        "properties": {"contact": {"$ref": "#/$defs/contact"}, "tier": {"$ref": "#/$defs/tier"}},
    }
    assert ArgumentValidator(schema).validate({"contact": {}}) == {"contact": {"channel": "email"}, "tier": "silver"}


def test_a_recursive_ref_schema_fills_a_finite_instance():
    schema = {
        "type": "object",
        "$defs": {"node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/node"}, "v": {"default": 1}}}},
        "properties": {"head": {"$ref": "#/$defs/node"}},
    }
    assert ArgumentValidator(schema).validate({"head": {"next": {}}}) == {"head": {"next": {"v": 1}, "v": 1}}


def test_argument_paths_quote_keys_that_are_not_plain():
    """The same path text as `responseFields` and config errors: `a.b` names two keys, `["a.b"]` one."""
    validator = ArgumentValidator({"type": "object", "additionalProperties": False, "properties": {"x": {}}})
    assert problems(validator, {"a.b": 1}) == [('["a.b"]', "is not an accepted parameter")]
    customer = {"type": "object", "required": ["first name"]}
    nested = ArgumentValidator({"type": "object", "properties": {"customer": customer}})
    assert problems(nested, {"customer": {}}) == [('customer["first name"]', "is required")]
