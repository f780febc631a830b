"""outputSchema, the shaping settings in config files, and how results.py applies the shaping."""

from __future__ import annotations

import base64
import datetime
import json
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest

from mcp_webtools.errors import ConfigErrors, OutputMismatch
from mcp_webtools.loading import load_definitions
from mcp_webtools.redaction import Redactor
from mcp_webtools.results import META_HTTP, response_result
from mcp_webtools.sending import UpstreamResponse
from mcp_webtools.shaping.projection import ResponseShaping, check_output_schema, response_shaping


def shape(body: Any, *fields: str, status: int = 200, **settings: Any) -> Any:
    return ResponseShaping(fields, **settings).shape(body, status, is_json=True)


# --- outputSchema --------------------------------------------------------------------------------

ORDER_SCHEMA = {
    "type": "object",
    "properties": {"id": {"type": "string"}, "items": {"type": "array", "items": {"type": "integer"}}},
    "required": ["id"],
    "additionalProperties": False,
}


def test_the_published_schema_adds_our_keys():
    published = ResponseShaping(output_schema=ORDER_SCHEMA).output_schema
    assert published == {
        "type": "object",
        "properties": {
            **ORDER_SCHEMA["properties"],
            "api_response_status": {"type": "integer", "description": "The HTTP status the upstream API answered."},
            "api_response_truncated": published["properties"]["api_response_truncated"],
        },
        "required": ["id", "api_response_status"],
        "additionalProperties": False,
    }
    assert published["properties"]["api_response_truncated"]["type"] == "object"
    assert ResponseShaping().output_schema is None


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"items": [1]}, "at the top level: 'id' is a required property"),
        ({"id": "A", "items": [1, "2"]}, "at items[1]: '2' is not of type 'integer'"),
        ({"id": "A", "extra": 1}, "at the top level: Additional properties are not allowed ('extra' was unexpected)"),
        ([1, 2], "at the top level: 'id' is a required property"),
    ],
)
def test_an_answer_that_does_not_match_the_schema_is_refused(body, problem):
    with pytest.raises(OutputMismatch) as raised:
        shape(body, output_schema=ORDER_SCHEMA)
    assert str(raised.value) == f"the answer does not match this tool's outputSchema: {problem}"


def test_a_cut_that_would_break_the_schema_is_refused_not_returned():
    schema = {"type": "object", "properties": {"items": {"type": "array", "minItems": 500}}}
    body = {"items": list(range(1000))}
    assert shape(body, output_schema=schema).structured == {**body, "api_response_status": 200}
    with pytest.raises(OutputMismatch) as raised:
        shape(body, output_schema=schema, max_result_bytes=1024)
    assert str(raised.value) == (
        "the answer is larger than this tool's maxResultBytes (1024 bytes) and the shortened answer does not match "
        "its outputSchema: at items: a list of 224 items is too short"
    )
    fits = shape(body, output_schema={"type": "object"}, max_result_bytes=1024).structured
    assert fits["api_response_truncated"]["cuts"][0]["path"] == "items"


def test_schema_refs_and_error_results():
    schema = {"type": "object", "properties": {"o": {"$ref": "#/$defs/o"}}, "$defs": {"o": {"type": "integer"}}}
    assert shape({"o": 1}, output_schema=schema).structured == {"o": 1, "api_response_status": 200}
    with pytest.raises(OutputMismatch):
        shape({"o": "x"}, output_schema=schema)
    # The status alone goes out on errors only where the schema allows it.
    assert ResponseShaping(output_schema=schema).status_only(404) == {"api_response_status": 404}
    assert ResponseShaping(output_schema=ORDER_SCHEMA).status_only(404) is None
    assert ResponseShaping().status_only(500) == {"api_response_status": 500}


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ([], "must be a JSON Schema object"),
        ({"type": "objekt"},
         "is not a valid JSON Schema at type: 'objekt' is not valid under any of the given schemas"),
        ({"type": "array"}, 'must have "type": "object" at the top: structured results are objects (a non-object '
         'answer is wrapped as {"data": ...}, so describe that)'),
        ({"type": "object", "properties": {"api_response_status": {}}},
         "must not declare api_response_status: mcp-webtools adds it to the published schema"),
        ({"type": "object", "properties": {"a": {"$ref": "https://example.com/s.json"}}},
         "has $ref 'https://example.com/s.json'; an outputSchema must be self-contained (refer to #/$defs/...)"),
        ({"type": "object", "default": {"when": datetime.date(2024, 1, 18)}},
         "must hold JSON values only (quote YAML dates and the like)"),
    ],
)  # fmt: skip
def test_bad_output_schemas_are_refused(schema, message):
    with pytest.raises(ValueError) as raised:
        check_output_schema(schema)
    assert str(raised.value) == message


# --- the settings in config files ----------------------------------------------------------------


def test_settings_load_in_every_shape(tmp_path: Path):
    api = {
        "type": "FUNCTION", "name": "Api Tool", "params": {"type": "object"},
        "toolSettings": {"serverUrl": "https://x.test/a", "methodType": "GET"},
        "responseFields": ["customer.name"], "flatten": True, "maxResultBytes": 2048,
        "outputSchema": {"type": "object"},
    }  # fmt: skip
    guide = {"name": "Guide Tool", "methodType": "GET", "url": "https://x.test/g", "responseFields": ["orders[*].id"]}
    (tmp_path / "tools.json").write_text(json.dumps([api, guide]))
    loaded = load_definitions([tmp_path], environ={})
    assert loaded.warnings == []
    first, second = loaded.definitions
    assert (first.response_fields, first.flatten, first.max_result_bytes) == (("customer.name",), True, 2048)
    assert first.shaping.paths == (("customer", "name"),) and first.shaping.max_result_bytes == 2048
    assert first.shaping.output_schema["required"] == ["api_response_status"]
    assert second.shaping.paths == (("orders", None, "id"),) and second.shaping.output_schema is None
    assert second.shaping.max_result_bytes == 64 * 1024 and second.shaping.flatten is False
    assert first.shaping is first.model_copy().shaping  # compiled once per distinct settings


def test_bad_settings_are_config_errors_naming_file_tool_and_field(tmp_path: Path):
    bad = {
        "name": "Lookup", "methodType": "GET", "url": "https://x.test/l",
        "responseFields": ["customer.name", "orders[x]", 7], "flatten": "yes", "maxResultBytes": 100,
        "outputSchema": {"type": "array"},
    }  # fmt: skip
    path = tmp_path / "bad.yaml"
    path.write_text(json.dumps(bad))
    with pytest.raises(ConfigErrors) as raised:
        load_definitions([path], environ={})
    assert [str(error) for error in raised.value.errors] == [
        f"{path}: tool 'Lookup': field `responseFields[1]`: is not a valid path: has '[x]' at character 7: brackets "
        'hold a list index such as [0] or [-1], [*] for every item, or a quoted key such as ["a.b"]',
        f"{path}: tool 'Lookup': field `responseFields[2]`: must be a string",
        f"{path}: tool 'Lookup': field `flatten`: must be true or false",
        f"{path}: tool 'Lookup': field `maxResultBytes`: must be at least 1024",
        f'{path}: tool \'Lookup\': field `outputSchema`: must have "type": "object" at the top: structured results '
        'are objects (a non-object answer is wrapped as {"data": ...}, so describe that)',
    ]


# --- results.py with a tool's shaping ------------------------------------------------------------

NONE = Redactor()


def answer(body: bytes | str, content_type: str = "application/json", status: int = 200, **kw: Any) -> UpstreamResponse:
    data = body.encode() if isinstance(body, str) else body
    return UpstreamResponse(status, kw.pop("reason", "OK"), content_type, data, kw.pop("truncated", False), 1.0)


def texts(result: types.CallToolResult) -> list[str]:
    return [block.text for block in result.content]


@pytest.mark.parametrize(
    ("schema", "structured"), [(ORDER_SCHEMA, None), ({"type": "object"}, {"api_response_status": 200})]
)
def test_an_answer_off_schema_is_a_tool_error_whose_structured_content_still_conforms(schema, structured):
    result = response_result(answer('{"items": [1]}'), NONE, response_shaping(output_schema=schema))
    if schema is ORDER_SCHEMA:
        assert result.is_error is True
        assert texts(result) == [
            "The upstream API answered HTTP 200, but the answer does not match this tool's outputSchema: at the top "
            "level: 'id' is a required property."
        ]
    else:
        assert result.is_error is False
    assert result.structured_content == (structured and {"items": [1], **structured})
    assert result.meta == {META_HTTP: {"status": 200, "elapsedMs": 1.0}}


@pytest.mark.parametrize(("schema", "structured"), [(ORDER_SCHEMA, None), (None, {"api_response_status": 404})])
def test_http_errors_carry_the_status_unless_the_schema_forbids_it(schema, structured):
    result = response_result(
        answer('{"e": 1}', status=404, reason="Not Found"), NONE, response_shaping(output_schema=schema)
    )
    assert result.is_error is True
    assert texts(result) == ['The upstream API answered HTTP 404 Not Found.\nResponse body:\n{"e": 1}']
    assert result.structured_content == structured


@pytest.mark.parametrize(
    "settings", [{"response_fields": ("a",)}, {"flatten": True}, {"output_schema": {"type": "object"}}]
)
def test_a_body_cut_at_max_response_bytes_cannot_be_shaped(settings):
    result = response_result(answer('{"a": [1, 2', truncated=True), NONE, response_shaping(**settings))
    assert result.is_error is True
    assert texts(result) == [
        "The upstream API answered HTTP 200 with more than 11 bytes, the response size limit (maxResponseBytes); the "
        "answer was cut off, so this tool's responseFields, flatten or outputSchema cannot be applied to it. Raise "
        "the tool's maxResponseBytes."
    ]
    assert result.structured_content == {"api_response_status": 200}
    assert result.meta[META_HTTP]["truncated"] is True


def test_a_cut_body_without_shaping_is_text_within_the_budget():
    body = '{"a": "' + "x" * 5000
    result = response_result(answer(body, truncated=True), NONE, response_shaping(max_result_bytes=1024))
    [text] = texts(result)
    shown = "x" * (1024 - 64 - len('{"a": "'))
    assert text == (
        "[response truncated: the upstream body exceeded 5007 bytes; only the beginning is shown]\n"
        f'{{"a": "{shown}…[+{5007 - 1024 + 64} chars]'
    )
    assert result.structured_content == {"api_response_status": 200}


def test_over_budget_the_note_follows_the_json():
    result = response_result(
        answer(json.dumps({"rows": list(range(2000))})), NONE, response_shaping(max_result_bytes=1024)
    )
    body, note = texts(result)
    kept = result.structured_content["api_response_truncated"]["cuts"][0]["kept"]
    assert json.loads(body) == {"rows": list(range(kept))}
    assert note.startswith("[Shortened to fit this tool's result budget of 1024 bytes")
    assert f"rows: kept {kept} of 2000 items" in note


def test_secrets_are_masked_before_anything_is_cut_or_flattened():
    secret = "sk_live_abc/123"
    body = {"echo": f"{secret} " * 300, secret: 1, "nested": [{"t": secret}] * 50}
    result = response_result(
        answer(json.dumps(body)), Redactor([secret]), response_shaping(flatten=True, max_result_bytes=1024)
    )
    wire = result.model_dump_json(by_alias=True)
    assert "sk_l" not in wire and "abc/1" not in wire
    assert result.structured_content["***"] == 1
    assert result.structured_content["echo"].startswith("*** *** ")


@pytest.mark.parametrize(("schema", "error"), [(None, False), (ORDER_SCHEMA, True)])
def test_an_image_has_the_status_and_the_schema_decides(schema, error):
    png = b"\x89PNG\r\n\x1a\n\x00"
    result = response_result(answer(png, "image/png"), NONE, response_shaping(output_schema=schema))
    assert result.is_error is error
    if error:
        assert texts(result) == [
            "The upstream API answered HTTP 200, but the answer does not match this tool's outputSchema: at the top "
            "level: 'id' is a required property."
        ]
    else:
        assert result.content == [
            types.ImageContent(type="image", data=base64.b64encode(png).decode(), mime_type="image/png")
        ]
        assert result.structured_content == {"api_response_status": 200}


def test_json_nested_deeper_than_the_parser_goes_is_text():
    deep = "[" * 100_000 + "]" * 100_000
    result = response_result(answer(deep), NONE, response_shaping(max_result_bytes=1024))
    assert result.is_error is False
    data = result.structured_content["data"]
    kept = data.index("…")
    assert data == "[" * kept + f"…[+{200_000 - kept} chars]" and kept > 500


def test_json_a_client_could_not_receive_is_made_sendable():
    # A lone surrogate escape parses but cannot be encoded; NaN and Infinity are not JSON.
    body = b'{"a": "\\ud800x\\ud83d\\ude00", "\\udfff": 1, "n": NaN, "i": -Infinity}'
    result = response_result(answer(body), NONE)
    expected = {"a": "\ufffdx\U0001f600", "\ufffd": 1, "n": None, "i": None}
    assert result.structured_content == {**expected, "api_response_status": 200}
    assert texts(result) == [json.dumps(expected, ensure_ascii=False, separators=(",", ":"))]
    assert json.loads(result.model_dump_json(by_alias=True))["structuredContent"] == result.structured_content
