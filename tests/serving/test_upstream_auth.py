"""The `auth` block (issue 12): bearer, basic, apiKey in a header or the query, none.

End to end with a real MCP client over stdio and Streamable HTTP, both eras, against the
recording upstream: what the upstream saw for each type. Every value is registered with the
suite's secret scan, so a result, error, log line or span showing one fails the test.
"""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from support import (
    AUTH_ENV,
    ERAS,
    TRANSPORTS,
    Upstream,
    auth_tools,
    guide_tool,
    mcp_client,
    secret,
    text_of,
    write_tools,
)

from mcp_webtools.errors import ConfigErrors
from mcp_webtools.loading import load_definitions
from mcp_webtools.redaction import RedactingFilter
from mcp_webtools.serving.runtime import open_reloader, open_webtools
from mcp_webtools.toolset import Toolset

pytestmark = pytest.mark.anyio

COMBOS = [(transport, era) for transport in TRANSPORTS for era in ERAS]
ENV = {name: secret(value) for name, value in AUTH_ENV.items()}
BASIC = secret("Basic " + base64.b64encode(f"{ENV['TWILIO_SID']}:{ENV['TWILIO_TOKEN']}".encode()).decode())



@pytest.mark.parametrize(("transport", "era"), COMBOS)
async def test_each_auth_type_reaches_the_upstream_as_configured(tmp_path: Path, upstream: Upstream, transport, era):
    config = write_tools(tmp_path, auth_tools(upstream.url))
    async with mcp_client(transport, era, config, env=ENV) as client:
        for name in ("bearer_tool", "basic_tool", "header_key_tool", "query_key_tool", "no_auth_tool"):
            result = await client.call_tool(name, {})
            assert result.is_error is False, text_of(result)
    bearer, basic, hkey, qkey, none = upstream.requests
    assert bearer.headers["authorization"] == f"Bearer {ENV['CRM_TOKEN']}"
    assert basic.headers["authorization"] == BASIC
    assert base64.b64decode(basic.headers["authorization"].removeprefix("Basic ")).decode() == (
        f"{ENV['TWILIO_SID']}:{ENV['TWILIO_TOKEN']}"
    )
    assert hkey.headers["x-api-key"] == ENV["HEADER_KEY"] and "authorization" not in hkey.headers
    assert qkey.query == "fixed=1&api_key=query%20key%26%3D%2F9021"
    assert "authorization" not in qkey.headers and "api_key" not in qkey.raw_path
    assert "authorization" not in none.headers and none.headers["x-trace"] == "t-1"


def test_a_query_key_is_added_at_send_time_so_the_url_template_never_holds_it(tmp_path: Path):
    config = write_tools(tmp_path, auth_tools("https://api.example.com"))
    toolset = Toolset.from_definitions(load_definitions([config], environ=ENV).definitions)
    tool = toolset.get("query_key_tool")
    assert tool is not None
    assert tool.send_policy.url_template == "https://api.example.com/qkey?fixed=1"
    # Every value, and the Basic header made from two of them, is hidden in every encoding.
    shown = toolset.redactor(" ".join([*ENV.values(), BASIC, "api_key=query%20key%26%3D%2F9021"]))
    assert all(value not in shown for value in [*ENV.values(), BASIC, "query%20key%26%3D%2F9021"]), shown


def problems_of(tmp_path: Path, auth: Any, **extra: Any) -> list[str]:
    config = write_tools(tmp_path, guide_tool("Bad Auth", "https://api.example.com/x", auth, **extra))
    with pytest.raises(ConfigErrors) as caught:
        load_definitions([config], environ=ENV)
    return [str(problem) for problem in caught.value.errors]


@pytest.mark.parametrize(
    ("auth", "field", "message"),
    [
        ({"type": "digest"}, "auth.type", "must be one of bearer, basic, apiKey, oauth2ClientCredentials, none"),
        (
            "Bearer x",
            "auth",
            "must be an object with `type`: one of bearer, basic, apiKey, oauth2ClientCredentials, none",
        ),
        ({"type": "basic", "username": "u"}, "auth.password", "is required for auth type basic, as a non-empty string"),
        (
            {"type": "apiKey", "in": "cookie", "name": "k", "value": "v"},
            "auth.in",
            "must be header or query (a key in a cookie is not supported)",
        ),
        (
            {"type": "bearer", "token": "t", "username": "u"},
            "auth.username",
            "is not a field of auth type bearer; it takes token",
        ),
    ],
)
def test_a_bad_auth_block_is_a_config_error_saying_what_is_allowed(tmp_path: Path, auth, field, message):
    config = tmp_path / "tools.json"
    assert problems_of(tmp_path, auth) == [f"{config}: tool 'Bad Auth': field `{field}`: {message}"]


def test_auth_and_auth_token_together_are_a_config_error(tmp_path: Path):
    config = tmp_path / "tools.json"
    token = secret("both-token-given-4410")
    assert problems_of(tmp_path, {"type": "bearer", "token": "${CRM_TOKEN}"}, authToken=token) == [
        f"{config}: tool 'Bad Auth': field `auth`: and `authToken` are both given; keep one "
        "(authToken is auth type bearer)"
    ]


def test_an_unset_variable_in_the_auth_block_names_its_field(tmp_path: Path):
    config = tmp_path / "tools.json"
    assert problems_of(tmp_path, {"type": "bearer", "token": "${NOT_SET_ANYWHERE}"}) == [
        f"{config}: tool 'Bad Auth': field `auth.token`: environment variable NOT_SET_ANYWHERE is not set",
        f"{config}: tool 'Bad Auth': field `auth.token`: is required for auth type bearer, as a non-empty string",
    ]


# --- `${file:/path}` secrets -----------------------------------------------------------------------


def test_a_secret_file_fills_the_auth_block_and_is_a_secret(tmp_path: Path):
    path = tmp_path / "crm_token"
    path.write_text(secret("file-token-value-0001") + "\n")
    auth = {"type": "bearer", "token": f"${{file:{path}}}"}
    config = write_tools(tmp_path, guide_tool("File Tool", "https://api.example.com/x", auth))
    [definition] = load_definitions([config], environ={}).definitions
    assert definition.auth == {"type": "bearer", "token": "file-token-value-0001"}  # one trailing newline stripped
    assert "file-token-value-0001" in definition.secrets


def test_a_missing_secret_file_is_a_config_error_naming_tool_and_path(tmp_path: Path):
    missing = tmp_path / "no_such_secret"
    assert problems_of(tmp_path, {"type": "bearer", "token": f"${{file:{missing}}}"}) == [
        f"{tmp_path / 'tools.json'}: tool 'Bad Auth': field `auth.token`: secret file {missing} cannot be read "
        "(No such file or directory); check the path",
        f"{tmp_path / 'tools.json'}: tool 'Bad Auth': field `auth.token`: is required for auth type bearer, "
        "as a non-empty string",
    ]


async def test_a_rotated_secret_file_is_used_after_a_reload_and_the_old_value_stays_masked(
    tmp_path: Path, upstream: Upstream
):
    old, new = secret("rotated-old-secret-1111"), secret("rotated-new-secret-2222")
    path = tmp_path / "secrets" / "token"
    path.parent.mkdir()
    path.write_text(old + "\n")
    auth = {"type": "bearer", "token": f"${{file:{path}}}"}
    config = write_tools(tmp_path / "config", guide_tool("Rotating", f"{upstream.url}/r", auth))
    log_filter = RedactingFilter()
    webtools = open_webtools([str(config)], log_filter=log_filter)
    reloader = open_reloader(webtools, [str(config)], log_filter=log_filter)
    async with Client(webtools.server) as client:
        assert (await client.call_tool("rotating", {})).is_error is False
        path.write_text(new + "\n")
        assert (await reloader.reload()).changed == ("rotating",)
        assert (await client.call_tool("rotating", {})).is_error is False
    assert [seen.headers["authorization"] for seen in upstream.requests] == [f"Bearer {old}", f"Bearer {new}"]
    record = logging.LogRecord("mcp_webtools", logging.WARNING, __file__, 1, "saw %s and %s", (old, new), None)
    log_filter.filter(record)
    assert record.getMessage() == "saw *** and ***"

