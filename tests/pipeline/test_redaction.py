"""Secret redaction (mcp_webtools.redaction): every echo of a secret becomes `***`."""

from __future__ import annotations

import contextvars
import io
import logging
from collections.abc import Iterator

import pytest

from mcp_webtools.redaction import (
    MASK,
    MIN_SECRET_LENGTH,
    RedactingFilter,
    Redactor,
    call_secrets,
    configured_secrets,
    hide_in_this_call,
    secret_header_values,
)

TOKEN = "sk_live_a/b+c d"


@pytest.mark.parametrize(
    "echo",
    [
        "sk_live_a/b+c d",  # raw
        "sk_live_a%2Fb%2Bc%20d",  # URL-encoded, nothing safe
        "sk_live_a/b%2Bc%20d",  # URL-encoded, "/" kept
        "sk_live_a%2Fb%2Bc+d",  # form-encoded
    ],
)
def test_encoded_echoes_are_masked(echo):
    assert Redactor([TOKEN])(f"before {echo} after") == "before *** after"


@pytest.mark.parametrize(
    ("secret", "echo"),
    [
        ('pa"ss\\word', 'pa\\"ss\\\\word'),  # JSON-escaped quote and backslash
        ("pässwörd", "p\\u00e4ssw\\u00f6rd"),  # JSON with ensure_ascii
        ("abc/def/ghi", "abc\\/def\\/ghi"),  # JSON with "/" escaped
        ("tab\there", "tab\\there"),
    ],
)
def test_json_escaped_echoes_are_masked(secret, echo):
    assert Redactor([secret])(f'{{"echo":"{echo}"}}') == '{"echo":"***"}'


def test_credential_without_its_scheme_is_masked():
    redactor = Redactor(["Bearer sk_abcdef"])
    assert redactor("header was Bearer sk_abcdef") == "header was ***"
    assert redactor("token=sk_abcdef") == "token=***"


def test_short_credential_part_is_not_a_variant():
    # "Token abc": the credential "abc" alone is too short to mask without mangling text.
    redactor = Redactor(["Token abc"])
    assert redactor("Token abc and abc") == "*** and abc"


def test_longest_secret_wins():
    redactor = Redactor(["abcd", "abcdefgh"])
    assert redactor("xabcdefghx abcdx") == "x***x ***x"
    assert Redactor(["abcdefgh", "abcd"])("xabcdefghx") == "x***x"


def test_short_values_are_ignored():
    assert MIN_SECRET_LENGTH == 4
    redactor = Redactor(["abc", "on", ""])
    assert not redactor
    assert redactor("abc on") == "abc on"
    assert Redactor(["abcd"])("abcd") == MASK


def test_regex_characters_in_secrets_are_literal():
    redactor = Redactor(["a.b*c(d)"])
    assert redactor("a.b*c(d) aXbbc(d)") == "*** aXbbc(d)"


def test_empty_redactor_and_empty_text():
    assert Redactor()("anything") == "anything"
    assert Redactor(["secret-1"])("") == ""


def test_redact_json_keys_strings_and_numbers():
    redactor = Redactor(["s3cr3t", "98765432"])
    value = {"s3cr3t-key": ["x s3cr3t y", 98765432, 123, 1.5, True, None], "n": {"id": 198765432}}
    assert redactor.redact_json(value) == {"***-key": ["x *** y", "***", 123, 1.5, True, None], "n": {"id": "1***"}}
    assert Redactor().redact_json(value) is value


def test_redact_cut_masks_a_secret_cut_at_the_end():
    redactor = Redactor(["sk_live_123456"])
    assert redactor.redact_cut("token: sk_live_12") == "token: ***"
    assert redactor.redact_cut("token: sk_live_123456 and s") == "token: *** and ***"
    assert redactor.redact_cut("token: done") == "token: done"
    assert Redactor().redact_cut("sk_") == "sk_"


@pytest.mark.parametrize(
    ("headers", "secrets"),
    [
        ([("Authorization", "Token a1"), ("X-Api-Key", "k"), ("Content-Type", "application/json")], ["Token a1", "k"]),
        ([("accept", "text/csv"), ("User-Agent", "me"), ("Cache-Control", "no-cache")], []),
    ],
)
def test_secret_header_values(headers, secrets):
    assert secret_header_values(headers) == secrets


def test_configured_secrets_are_the_environment_values_the_token_and_the_secret_headers():
    headers = [("Accept", "application/json"), ("X-Api-Key", "key-123456"), ("X-Tenant", "${TENANT}")]
    assert configured_secrets("Bearer tok-123456", headers, {"acme-tenant"}) == {
        "Bearer tok-123456",
        "key-123456",
        "${TENANT}",
        "acme-tenant",
    }
    assert configured_secrets(None, [("Content-Type", "text/csv")]) == set()


@pytest.fixture
def log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(RedactingFilter(Redactor(["sk_live_secret"])))
    logger = logging.getLogger("test_redaction")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield logger, stream
    logger.removeHandler(handler)


def test_filter_redacts_the_formatted_message_with_args(log):
    logger, stream = log
    logger.info("calling %s with %r", "https://x/?k=sk_live_secret", {"token": "sk_live_secret"})
    assert stream.getvalue() == "INFO calling https://x/?k=*** with {'token': '***'}\n"


def test_filter_redacts_exception_text(log):
    logger, stream = log
    try:
        raise RuntimeError("upstream said sk_live_secret")
    except RuntimeError:
        logger.exception("failed for %s", "sk_live_secret")
    text = stream.getvalue()
    assert "sk_live_secret" not in text
    assert text.startswith("ERROR failed for ***\nTraceback (most recent call last):\n")
    assert text.endswith("RuntimeError: upstream said ***\n")


def test_filter_redacts_stack_info(log):
    logger, stream = log
    # The stack dump quotes this source line, secret and all.
    logger.warning("here", stack_info=True, extra={"note": "sk_live_secret"})
    text = stream.getvalue()
    assert text.startswith("WARNING here\nStack (most recent call last):\n")
    assert 'extra={"note": "***"})' in text
    assert "sk_live_secret" not in text


def test_filter_redacts_every_structured_field_numbers_included():
    # The audit line's fields (extra=) reach the JSON log format as they are: each one is redacted,
    # an int whose digits hold a secret too (an int's JSON is its str), the rest keep their type.
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    fields = {"status": 200, "id": 98765432, "dur": 1.5, "url": "https://x/sk_live_secret", "n": {"k": 98765432}}
    record.__dict__.update(fields, ok=True, none=None)
    assert RedactingFilter(Redactor(["sk_live_secret", "98765432"])).filter(record) is True
    seen = {key: getattr(record, key) for key in (*fields, "ok", "none")}
    assert seen == {
        "status": 200, "id": "***", "dur": 1.5, "url": "https://x/***", "n": {"k": "***"}, "ok": True, "none": None,
    }  # fmt: skip
    assert Redactor().redact_fields(fields) is fields  # nothing to hide: not even a copy


def test_filter_survives_a_bad_format_string(log):
    logger, stream = log
    logger.info("two %s %s", "sk_live_secret")  # one argument missing
    assert stream.getvalue() == "INFO two %s %s (arguments: ('***',))\n"


def test_empty_filter_leaves_records_alone():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "a %s", ("b",), None)
    assert RedactingFilter().filter(record) is True
    assert (record.msg, record.args) == ("a %s", ("b",))


# --- secrets of one call (a caller's forwarded credential) ----------------------------------------


def test_a_call_secret_is_hidden_by_every_redactor_in_that_call_and_nowhere_else():
    toolset, logs = Redactor(["configured-secret"]), RedactingFilter(Redactor(["configured-secret"]))
    value = "caller-credential-1234"
    with call_secrets():
        hide_in_this_call(value)
        assert toolset(f"got {value}") == f"got {MASK}"
        assert toolset.redact_json({"token": value}) == {"token": MASK}
        assert toolset.redact_cut(f"got {value[:9]}") == f"got {MASK}"
        record = logging.LogRecord("x", logging.INFO, __file__, 1, "sent %s", (value,), None)
        logs.filter(record)
        assert record.getMessage() == f"sent {MASK}"
        # Another call, running at the same time in its own context, neither hides nor learns it.
        assert contextvars.Context().run(toolset, value) == value
    # Never added to anything shared: once the call ends, it is nobody's secret.
    assert toolset(value) == value and toolset.learned is None
    assert Redactor()(value) == value


def test_hiding_a_call_secret_outside_a_call_is_refused_rather_than_silently_shown():
    with pytest.raises(RuntimeError, match="outside call_secrets"):
        hide_in_this_call("caller-credential-5678")
