"""Response shaping (shaping/projection.py): paths, projection, the variables view, the budget, outputSchema."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_webtools.errors import PathError
from mcp_webtools.shaping.projection import NO_BODY, ResponseShaping, format_path, parse_path

# The guide's "Response Handling" example, and the variables it says are auto-created.
GUIDE = {
    "customer": {
        "id": "CUST-12345",
        "name": "John Smith",
        "email": "john@example.com",
        "tier": "gold",
        "balance": 1250.5,
    },
    "orders": [{"id": "ORD-11111", "status": "shipped", "total": 99.99}],
}
GUIDE_VARIABLES = {
    "customer.id": "CUST-12345",
    "customer.name": "John Smith",
    "customer.email": "john@example.com",
    "customer.tier": "gold",
    "customer.balance": 1250.5,
    "orders[0].id": "ORD-11111",
    "orders[0].status": "shipped",
    "orders[0].total": 99.99,
}
SYNTAX = 'write paths like customer.name, orders[0].status, orders[*].id or customer["first name"]'
ORDERS = {"orders": [{"id": 1, "x": "a"}, {"id": 2, "x": "b"}, {"id": 3, "x": "c"}]}


def shape(body: Any, *fields: str, status: int = 200, is_json: bool = True, **settings: Any) -> Any:
    return ResponseShaping(fields, **settings).shape(body, status, is_json=is_json)


def body_of(body: Any, *fields: str, **settings: Any) -> dict[str, Any]:
    structured = dict(shape(body, *fields, **settings).structured)
    assert structured.pop("api_response_status") == 200
    return structured


def size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


# --- paths ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("customer.name", ("customer", "name")),
        ("orders[0].status", ("orders", 0, "status")),
        ("orders[*].id", ("orders", None, "id")),
        ("orders[-1]", ("orders", -1)),
        ("[0].id", (0, "id")),
        ("a[0][1]", ("a", 0, 1)),
        ('["a.b"].c', ("a.b", "c")),
        ('customer["first name"]', ("customer", "first name")),
        ('["*"]', ("*",)),
        ('[""]', ("",)),
        ('["\\u00e9\\""]', ('é"',)),
        ("x-y.$ref.@id.123", ("x-y", "$ref", "@id", "123")),
    ],
)
def test_paths_parse(text, path):
    assert parse_path(text) == path
    assert parse_path(format_path(path)) == path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", f"must be a non-empty path; {SYNTAX}"),
        (".a", f"must not start with '.'; {SYNTAX}"),
        ("a..b", f"has an empty or invalid key at character 3; {SYNTAX}"),
        ("a.", f"has an empty or invalid key at character 3; {SYNTAX}"),
        ("a[0]b", f"needs '.' or '[' before 'b' at character 5; {SYNTAX}"),
        ('a["b"]]', f"needs '.' or '[' before ']' at character 7; {SYNTAX}"),
        ('a["b', f"has an unfinished quoted key at character 2; {SYNTAX}"),
        ('a["b"c', f"needs ']' after the quoted key at character 6; {SYNTAX}"),
        ("first name", 'has a space at character 6; quote such keys: customer["first name"]'),
        ("a.*", 'uses * as a key; write [*] for every item of a list, or ["*"] for a key named *'),
        *(
            (bad, f"has {bad[1:]!r} at character 2: brackets hold a list index such as [0] or [-1], [*] for every "
             'item, or a quoted key such as ["a.b"]')
            for bad in ("a[x]", "a[]", "a[+1]", "a[0.5]")
        ),
    ],
)  # fmt: skip
def test_bad_paths_say_what_is_wrong(text, message):
    with pytest.raises(PathError) as raised:
        parse_path(text)
    assert str(raised.value) == message


SEGMENTS = st.lists(st.one_of(st.text(), st.integers(-5, 10**6), st.none()), min_size=1, max_size=6)


@given(SEGMENTS)
def test_every_path_round_trips_through_its_text(segments):
    assert parse_path(format_path(segments)) == tuple(segments)


# --- projection ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "fields", "kept"),
    [
        (
            GUIDE,
            ("customer.name", "orders[0].status", "orders[*].id"),
            {"customer": {"name": "John Smith"}, "orders": [{"id": "ORD-11111", "status": "shipped"}]},
        ),
        # The response's order, not the list's; a whole branch wins over a path inside it.
        (GUIDE, ("orders[0].total", "customer", "customer.name"), {"customer": GUIDE["customer"], "orders": [
            {"total": 99.99}]}),
        # Missing paths are absent; containers on the way that exist are kept.
        (GUIDE, ("customer.phone", "nope", "orders[5].id", "customer.name.first", "customer[*]"),
         {"customer": {}, "orders": []}),
        # [*] keeps one element per item (so the count survives), {} where the field is missing.
        ({"orders": [{"id": 1}, {"x": 2}, {"id": 3}]}, ("orders[*].id",), {"orders": [{"id": 1}, {}, {"id": 3}]}),
        # Chosen elements in their original order, each with the union of its paths; -1 is the last.
        (ORDERS, ("orders[-1].x", "orders[0].id", "orders[2].id", "orders[-9].id"),
         {"orders": [{"id": 1}, {"id": 3, "x": "c"}]}),
        ({"a": {"b": [[1, 2], [3, 4]]}}, ("a.b[*][1]",), {"a": {"b": [[2], [4]]}}),
        ({"a.b": 1, "a": {"b": 2}, "first name": 3}, ('["a.b"]', '["first name"]'), {"a.b": 1, "first name": 3}),
    ],
)  # fmt: skip
def test_projection_keeps_only_the_listed_branches(body, fields, kept):
    shaped = shape(body, *fields)
    assert shaped.structured == {**kept, "api_response_status": 200}
    assert shaped.text == json.dumps(kept, separators=(",", ":"))


@pytest.mark.parametrize(
    ("body", "fields", "structured", "text"),
    [
        ([{"id": 1, "n": "a"}, {"id": 2}], ("[*].id",), {"data": [{"id": 1}, {"id": 2}]}, '[{"id":1},{"id":2}]'),
        ([{"id": 1}, {"id": 2}], ("[1]",), {"data": [{"id": 2}]}, '[{"id":2}]'),
        (42, ("a.b",), {"data": 42}, "42"),  # a scalar has no fields to pick: kept whole
    ],
)
def test_projection_of_lists_and_scalars(body, fields, structured, text):
    shaped = shape(body, *fields)
    assert (shaped.structured, shaped.text) == ({**structured, "api_response_status": 200}, text)


def test_a_text_answer_is_not_projected():
    shaped = shape("plain <b>text</b>", "a.b", is_json=False, flatten=True)
    assert (shaped.structured, shaped.text) == (
        {"data": "plain <b>text</b>", "api_response_status": 200},
        "plain <b>text</b>",
    )


# --- the variables view --------------------------------------------------------------------------


def test_flatten_gives_the_guides_variables():
    shaped = shape(GUIDE, flatten=True)
    assert shaped.structured == {**GUIDE_VARIABLES, "api_response_status": 200}
    assert list(shaped.structured) == [*GUIDE_VARIABLES, "api_response_status"]
    assert shaped.text == json.dumps(GUIDE, separators=(",", ":"))  # the model reads the nested body


@pytest.mark.parametrize(
    ("body", "fields", "variables"),
    [
        # Original indexes, whatever the path said.
        (ORDERS, ("orders[-1].x", "orders[0].id"), {"orders[0].id": 1, "orders[2].x": "c"}),
        (
            {"a.b": 1, "tags": [], "meta": {}, "first name": "x", "n": None, "deep": [[{"k": True}]]},
            (),
            {'["a.b"]': 1, "tags": [], "meta": {}, '["first name"]': "x", "n": None, "deep[0][0].k": True},
        ),
        ([{"id": 1}, {"id": 2}], (), {"[0].id": 1, "[1].id": 2}),
        ("scalar", (), {"data": "scalar"}),
        ({}, (), {}),
    ],
)
def test_flatten_keys_are_paths(body, fields, variables):
    assert body_of(body, *fields, flatten=True) == variables


def reference_leaves(value: Any, path: tuple) -> dict[str, Any]:
    if isinstance(value, dict) and value:
        return {k: v for key, child in value.items() for k, v in reference_leaves(child, (*path, key)).items()}
    if isinstance(value, list) and value:
        return {k: v for i, child in enumerate(value) for k, v in reference_leaves(child, (*path, i)).items()}
    return {format_path(path): value}


def get(value: Any, path: tuple) -> Any:
    for segment in path:
        value = value[segment]
    return value


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=40,
)
RESERVED = {"api_response_status", "api_response_truncated"}


@given(st.dictionaries(st.text(max_size=8).filter(lambda k: k not in RESERVED), JSON, min_size=1, max_size=5))
def test_every_variable_names_its_value(body):
    variables = body_of(body, flatten=True)
    assert variables == reference_leaves(body, ())
    for key, value in variables.items():
        assert get(body, parse_path(key)) == value


def test_our_keys_replace_the_bodys_and_come_last():
    shaped = shape({"api_response_status": "mine", "api_response_truncated": 1, "data": 2}, status=404)
    assert list(shaped.structured.items()) == [("data", 2), ("api_response_status", 404)]


def test_no_body_is_the_status_alone():
    shaped = shape(NO_BODY, status=204)
    assert (shaped.structured, shaped.text, shaped.note) == ({"api_response_status": 204}, None, None)


# --- the size budget -----------------------------------------------------------------------------

MARKER = re.compile(r"…\[\+(\d+) chars\]$")


def test_over_budget_lists_and_strings_are_cut_and_the_cut_is_reported():
    body = {"title": "t" * 2000, "items": [{"id": i, "note": "x" * 300} for i in range(100)], "ok": True}
    shaped = shape(body, max_result_bytes=2048)
    report = {
        "maxResultBytes": 2048,
        "originalBytes": size(body) + len(',"api_response_status":200'),
        "droppedItems": 89,
        "droppedCharacters": (2000 - 88) + 11 * (300 - 88),
        "cuts": [
            {"path": "title", "kept": 88, "total": 2000, "unit": "characters", "places": 1},
            {"path": "items", "kept": 11, "total": 100, "unit": "items", "places": 1},
            {"path": "items[*].note", "kept": 88, "total": 300, "unit": "characters", "places": 11},
        ],
    }
    kept = {
        "title": "t" * 88 + "…[+1912 chars]",
        "items": [{"id": i, "note": "x" * 88 + "…[+212 chars]"} for i in range(11)],
        "ok": True,
    }
    assert shaped.structured == {**kept, "api_response_status": 200, "api_response_truncated": report}
    assert size(shaped.structured) <= 2048
    assert shaped.text == json.dumps(kept, ensure_ascii=False, separators=(",", ":"))
    assert shaped.note == (
        f"[Shortened to fit this tool's result budget of 2048 bytes (the full result is {report['originalBytes']} "
        "bytes). title: kept 88 of 2000 characters; items: kept 11 of 100 items; items[*].note: kept 88 of up to "
        "300 characters (11 places). Lists keep their first items; cut text ends with …[+N chars].]"
    )


def test_the_budget_is_inclusive():
    status = len(',"api_response_status":200')
    exact = {"pad": "y" * (1024 - status - len('{"pad":""}'))}
    assert size({**exact, "api_response_status": 200}) == 1024
    assert shape(exact, max_result_bytes=1024).structured == {**exact, "api_response_status": 200}
    over = shape({"pad": exact["pad"] + "y"}, max_result_bytes=1024).structured
    assert over["api_response_truncated"]["droppedCharacters"] > 0


def test_a_long_text_answer_is_cut_with_a_marker():
    shaped = shape("é" * 5000, is_json=False, max_result_bytes=1024)
    kept = shaped.structured["data"]
    assert shaped.text == kept and MARKER.search(kept)
    assert kept == "é" * (len(kept) - len(MARKER.search(kept).group())) + f"…[+{5000 - kept.index('…')} chars]"
    assert size(shaped.structured) <= 1024 and len(shaped.text.encode()) <= 1024


def test_the_flat_view_is_cut_like_the_body():
    body = {"orders": [{"id": f"ORD-{i}", "status": "shipped"} for i in range(200)]}
    shaped = shape(body, "orders[*].id", flatten=True, max_result_bytes=1024)
    kept = shaped.structured["api_response_truncated"]["cuts"][0]["kept"]
    assert [key for key in shaped.structured if key.startswith("orders")] == [f"orders[{i}].id" for i in range(kept)]
    assert json.loads(shaped.text) == {"orders": [{"id": f"ORD-{i}"} for i in range(kept)]}
    assert size(shaped.structured) <= 1024


def assert_cut_of(original: Any, shown: Any) -> tuple[int, int]:
    """`shown` is `original` cut as documented; returns (items, characters) dropped."""
    if isinstance(original, dict):
        assert isinstance(shown, dict) and list(shown) == list(original)[: len(shown)]
        parts = [assert_cut_of(original[key], shown[key]) for key in shown]
        return len(original) - len(shown) + sum(p[0] for p in parts), sum(p[1] for p in parts)
    if isinstance(original, list):
        assert isinstance(shown, list) and len(shown) <= len(original)
        parts = [assert_cut_of(o, s) for o, s in zip(original, shown, strict=False)]
        return len(original) - len(shown) + sum(p[0] for p in parts), sum(p[1] for p in parts)
    if isinstance(original, str) and shown != original:
        dropped = int(MARKER.search(shown).group(1))
        assert shown == original[: len(original) - dropped] + f"…[+{dropped} chars]"
        return 0, dropped
    assert shown == original
    return 0, 0


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(st.text(max_size=8).filter(lambda k: k not in RESERVED | {"data"}), JSON, max_size=6),
    st.integers(1024, 3000),
    st.integers(1, 30),
)
def test_any_answer_fits_its_budget_as_valid_json_and_says_what_was_dropped(body, budget, repeat):
    body = {**body, "bulk": ["z" * 50] * repeat * 10, "long": "w" * 300 * repeat}
    shaped = shape(body, max_result_bytes=budget)
    structured = dict(shaped.structured)
    assert structured.pop("api_response_status") == 200
    report = structured.pop("api_response_truncated", None)
    assert size(shaped.structured) <= budget and len(shaped.text.encode()) <= budget
    assert json.loads(shaped.text) == structured  # never a cut JSON document
    items, characters = assert_cut_of(body, structured)
    if report is None:
        assert structured == body
    else:
        assert (report["droppedItems"], report["droppedCharacters"]) == (items, characters)
        assert report["maxResultBytes"] == budget and report["originalBytes"] > budget
