"""Result shaping (mcp_webtools.results): what the model reads for each kind of upstream answer."""

from __future__ import annotations

import base64
import json
from typing import Any

import mcp_types as types
import pytest

from mcp_webtools.redaction import Redactor
from mcp_webtools.results import ERROR_BODY_LIMIT, META_HTTP, error_result, response_result
from mcp_webtools.sending import UpstreamResponse

SECRET = "sk_live_abc/123 é"
REDACTOR = Redactor([SECRET, "Token tok_9876"])
NONE = Redactor()


def answer(
    body: bytes | str,
    content_type: str = "application/json",
    status: int = 200,
    *,
    reason: str = "OK",
    truncated: bool = False,
    elapsed_ms: float = 12.34567,
) -> UpstreamResponse:
    data = body.encode() if isinstance(body, str) else body
    return UpstreamResponse(status, reason, content_type, data, truncated, elapsed_ms)


def texts(result: types.CallToolResult) -> list[str]:
    assert all(isinstance(block, types.TextContent) for block in result.content)
    return [block.text for block in result.content]


def wire(result: types.CallToolResult) -> dict[str, Any]:
    """The result as it goes out in JSON-RPC, to check field names and omissions."""
    return result.model_dump(by_alias=True, exclude_none=True, mode="json")


def test_json_object_becomes_structured_content_and_compact_text():
    result = response_result(answer('{ "id": 7, "name": "Zoë",\n "tags": ["a"] }'), NONE)
    assert result.structured_content == {"id": 7, "name": "Zoë", "tags": ["a"], "api_response_status": 200}
    assert texts(result) == ['{"id":7,"name":"Zoë","tags":["a"]}']
    assert result.is_error is False
    assert wire(result) == {
        "content": [{"type": "text", "text": '{"id":7,"name":"Zoë","tags":["a"]}'}],
        "structuredContent": {"id": 7, "name": "Zoë", "tags": ["a"], "api_response_status": 200},
        "isError": False,
        "resultType": "complete",
        "_meta": {META_HTTP: {"status": 200, "elapsedMs": 12.346}},
    }


@pytest.mark.parametrize(
    ("body", "text", "data"),
    [
        ('[1, 2, {"a": null}]', '[1,2,{"a":null}]', [1, 2, {"a": None}]),
        ("42", "42", 42),
        ('"hi"', '"hi"', "hi"),
        ("true", "true", True),
        ("null", "null", None),
    ],
)
def test_other_json_is_text_and_data_in_an_object_envelope(body, text, data):
    result = response_result(answer(body), NONE)
    assert texts(result) == [text]
    # structuredContent must be an object for 2025 clients: the body goes under `data`.
    assert result.structured_content == {"data": data, "api_response_status": 200}
    assert wire(result)["structuredContent"] == {"data": data, "api_response_status": 200}


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain; charset=utf-8", "Hello, Zoë"),
        ("text/html", "<p>{not json}</p>"),
        ("text/csv", "a,b\n1,2"),
        ("application/json", "{broken json"),
        ("application/json", '{"a": 1} trailing'),
        ("text/plain", '{"looks": "like json"}'),
    ],
)
def test_non_json_and_invalid_json_are_passed_as_text(content_type, body):
    result = response_result(answer(body, content_type), NONE)
    mislabelled = "[the upstream API labelled this answer application/json, but it is not valid JSON]"
    assert texts(result) == ([mislabelled, body] if "json" in content_type else [body])
    assert result.structured_content == {"data": body, "api_response_status": 200}


@pytest.mark.parametrize("content_type", ["", "application/problem+json", "application/json; charset=utf-8"])
def test_json_detected_for_json_like_or_missing_content_types(content_type):
    result = response_result(answer('{"ok": true}', content_type), NONE)
    assert result.structured_content == {"ok": True, "api_response_status": 200}


def test_charset_is_honoured():
    result = response_result(answer("café".encode("latin-1"), "text/plain; charset=ISO-8859-1"), NONE)
    assert texts(result) == ["café"]


@pytest.mark.parametrize(
    ("content_type", "media"),
    [
        ("image/png", types.ImageContent),
        ("audio/wav", types.AudioContent),
        ("Audio/OGG; codecs=opus", types.AudioContent),
    ],
)
def test_images_and_audio_become_image_and_audio_content(content_type, media):
    body = b"\x89PNG\r\n\x1a\n\x00\x01binary"
    result = response_result(answer(body, content_type), NONE)
    mime = content_type.partition(";")[0].lower()
    assert result.content == [media(data=base64.b64encode(body).decode(), mime_type=mime)]
    assert result.structured_content == {"api_response_status": 200}


def test_svg_is_text_so_it_is_redacted():
    svg = f"<svg><text>{SECRET}</text></svg>"
    assert texts(response_result(answer(svg, "image/svg+xml"), REDACTOR)) == ["<svg><text>***</text></svg>"]


@pytest.mark.parametrize(
    ("content_type", "truncated", "note"),
    [
        ("application/pdf", False, "The upstream API answered HTTP 200 with 6 bytes of application/pdf."),
        (
            "application/octet-stream",
            True,
            "The upstream API answered HTTP 200 with 6 bytes of application/octet-stream"
            " (cut off at the response size limit).",
        ),
        (
            "image/png",
            True,
            "The upstream API answered HTTP 200 with 6 bytes of image/png (cut off at the response size limit).",
        ),
        (
            "audio/wav",
            True,
            "The upstream API answered HTTP 200 with 6 bytes of audio/wav (cut off at the response size limit).",
        ),
    ],
)
def test_binary_becomes_a_note(content_type, truncated, note):
    assert texts(response_result(answer(b"\x00\x01\x02\xff\xfe\x03", content_type, truncated=truncated), NONE)) == [
        note
    ]


def test_meta_carries_status_and_elapsed_ms():
    result = response_result(answer("{}", status=201, reason="Created", elapsed_ms=5.0), NONE)
    assert result.meta == {META_HTTP: {"status": 201, "elapsedMs": 5.0}}
    assert wire(result)["_meta"] == {META_HTTP: {"status": 201, "elapsedMs": 5.0}}


@pytest.mark.parametrize(
    ("status", "reason", "body", "content_type", "text"),
    [
        (
            404,
            "Not Found",
            '{"error": "no such order"}',
            "application/json",
            'The upstream API answered HTTP 404 Not Found.\nResponse body:\n{"error": "no such order"}',
        ),
        (500, "Internal Server Error", "", "text/plain", "The upstream API answered HTTP 500 Internal Server Error."),
        (503, "", "  busy\n", "text/plain", "The upstream API answered HTTP 503.\nResponse body:\nbusy"),
        (
            400,
            "Bad Request",
            b"\x00\x01",
            "application/octet-stream",
            "The upstream API answered HTTP 400 Bad Request.",
        ),
        (301, "Moved Permanently", "", "", "The upstream API answered HTTP 301 Moved Permanently."),
    ],
)
def test_non_2xx_is_an_error_naming_status_reason_and_body(status, reason, body, content_type, text):
    result = response_result(answer(body, content_type, status, reason=reason, elapsed_ms=1), NONE)
    assert result.is_error is True
    assert texts(result) == [text]
    assert result.structured_content == {"api_response_status": status}
    assert result.meta == {META_HTTP: {"status": status, "elapsedMs": 1}}


def test_error_body_is_capped_at_4_kb():
    body = "x" * (ERROR_BODY_LIMIT + 100)
    [text] = texts(response_result(answer(body, "text/plain", 502, reason="Bad Gateway"), NONE))
    assert ERROR_BODY_LIMIT == 4096
    assert (
        text
        == "The upstream API answered HTTP 502 Bad Gateway.\nResponse body:\n"
        + f"{'x' * 4096}... [100 more characters not shown]"
    )


def test_error_body_cap_never_cuts_a_secret_in_two():
    # The secret straddles the cap: before, its first half showed in the text.
    body = "x" * (ERROR_BODY_LIMIT - 5) + SECRET + "y" * 10
    [text] = texts(response_result(answer(body, "text/plain", 500, reason="Oops"), REDACTOR))
    assert text.endswith("x" * (ERROR_BODY_LIMIT - 5) + "***yy... [8 more characters not shown]")
    assert "sk_l" not in text


def test_truncated_error_body_says_so():
    result = response_result(answer("partial", "text/plain", 500, reason="Oops", truncated=True), NONE)
    assert texts(result) == [
        "The upstream API answered HTTP 500 Oops.\nResponse body:\npartial [cut off at the response size limit]"
    ]
    assert result.meta[META_HTTP]["truncated"] is True


def test_truncated_json_is_text_that_says_so_never_structured():
    result = response_result(answer('{"items": [1, 2', truncated=True), NONE)
    assert texts(result) == [
        '[response truncated: the upstream body exceeded 15 bytes; only the beginning is shown]\n{"items": [1, 2'
    ]
    assert result.structured_content == {"api_response_status": 200}  # the status only: the body is not JSON
    assert result.meta == {META_HTTP: {"status": 200, "elapsedMs": 12.346, "truncated": True}}


def test_truncated_body_ending_inside_a_secret_masks_the_start():
    [text] = texts(response_result(answer('{"token": "sk_live_a', truncated=True), REDACTOR))
    assert text.endswith('\n{"token": "***')


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"echo": SECRET, "auth": "Token tok_9876", "nested": [{"t": "tok_9876"}]}),  # \u00e9 escapes
        json.dumps({"echo": SECRET, "auth": "Token tok_9876", "nested": [{"t": "tok_9876"}]}, ensure_ascii=False),
        '{"echo": "sk_live_abc\\/123 \\u00e9", "auth": "Token tok_9876", "nested": [{"t": "tok_9876"}]}',
    ],
)
def test_secrets_echoed_in_json_are_masked_in_text_and_structured_content(body):
    result = response_result(answer(body), REDACTOR)
    expected = {"echo": "***", "auth": "***", "nested": [{"t": "***"}]}
    assert result.structured_content == {**expected, "api_response_status": 200}
    assert texts(result) == [json.dumps(expected, separators=(",", ":"))]


def test_secret_spanning_json_syntax_falls_back_to_value_by_value():
    redactor = Redactor(['a","b'])  # matches across two strings of the compact text
    result = response_result(answer('{"x": "a", "b": "c", "y": "keep a\\",\\"b"}'), redactor)
    assert result.structured_content == {"x": "a", "b": "c", "y": "keep ***", "api_response_status": 200}
    assert texts(result) == ['{"x":"a","b":"c","y":"keep ***"}']


def test_numeric_secret_echoed_as_a_json_number_is_masked():
    redactor = Redactor(["31415926"])
    result = response_result(answer('{"pin": 31415926, "n": 1}'), redactor)
    assert result.structured_content == {"pin": "***", "n": 1, "api_response_status": 200}
    assert texts(result) == ['{"pin":"***","n":1}']


@pytest.mark.parametrize(
    ("content_type", "body", "text"),
    [
        ("text/plain", "Your key is sk_live_abc/123 é.", "Your key is ***."),
        ("text/plain", "next=/cb?t=sk_live_abc%2F123%20%C3%A9&x=1", "next=/cb?t=***&x=1"),
        ("application/x-www-form-urlencoded", "t=sk_live_abc%2F123+%C3%A9", "t=***"),
        ("text/plain", "Authorization: tok_9876", "Authorization: ***"),
    ],
)
def test_secrets_echoed_in_text_are_masked(content_type, body, text):
    assert texts(response_result(answer(body, content_type), REDACTOR)) == [text]


def test_secrets_in_error_bodies_and_reasons_are_masked():
    result = response_result(answer('{"bad_token": "tok_9876"}', status=401, reason="tok_9876 rejected"), REDACTOR)
    assert texts(result) == ['The upstream API answered HTTP 401 *** rejected.\nResponse body:\n{"bad_token": "***"}']


def test_error_result():
    result = error_result("Calling 'x' failed: timed out after 0.5 s (key tok_9876).", REDACTOR, status=None)
    assert result.is_error is True
    assert texts(result) == ["Calling 'x' failed: timed out after 0.5 s (key ***)."]
    assert result.meta == {META_HTTP: {"status": None}}
    plain = error_result("Invalid arguments", NONE)
    assert plain.meta is None
    assert wire(plain) == {
        "content": [{"type": "text", "text": "Invalid arguments"}],
        "isError": True,
        "resultType": "complete",
    }


@pytest.mark.parametrize(("content_type", "kind"), [("image/png", "image"), ("audio/mpeg", "audio")])
def test_an_image_or_audio_holding_a_secret_is_described_not_passed_on(content_type, kind):
    # Base64 would carry the secret past the text redactor, so the image or audio itself is withheld.
    body = b"\x89PNG\r\n\x1a\n..sk_live_inside_image_123.."
    result = response_result(answer(body, content_type), Redactor(["sk_live_inside_image_123"]))
    assert texts(result) == [f"The upstream API answered HTTP 200 with {len(body)} bytes of {content_type}."]
    clean = response_result(answer(body, content_type), NONE)
    assert [block.type for block in clean.content] == [kind]
