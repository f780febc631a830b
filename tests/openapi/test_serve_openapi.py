"""Imported operations served end to end: a real MCP client calls OpenAPI operations and the recording upstream
sees the path, query, headers and JSON or form body exactly as the document says."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
import yaml
from support import OPENAPI_DOCUMENTS, Upstream, mcp_client, secret, serve_asgi

from mcp_webtools.cli.commands import main

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

ACCOUNT = "AC" + "0123456789abcdef" * 2
ENV = {
    "API_KEY": secret("petstore-api-key-e2e-31"),
    "PS_TOKEN": secret("petstore-oauth-token-e2e-32"),
    "TWILIO_SID": ACCOUNT,
    "TWILIO_TOKEN": secret("twilio-auth-token-e2e-33"),
}


def write_source(folder: Path, name: str, **settings) -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return path


@pytest.mark.parametrize(("transport", "era"), [("stdio", "legacy"), ("http", "auto")])
async def test_petstore_and_twilio_operations_reach_the_upstream_as_documented(tmp_path, transport, era):
    upstream = Upstream()
    upstream.reply_json("POST", f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json", {"sid": "SM1"}, status=201)
    async with serve_asgi(upstream) as url:
        config = tmp_path / "config"
        config.mkdir()
        write_source(
            config, "petstore.yaml", openapi=str(OPENAPI_DOCUMENTS / "petstore3.yaml"), baseUrl=f"{url}/api/v3",
            defaults={"allowHttp": True},
            auth={"petstore_auth": {"type": "bearer", "token": "${PS_TOKEN}"}},
            include={"operations": ["getPetById", "updatePetWithForm", "addPet", "deletePet", "loginUser"]},
        )  # fmt: skip
        write_source(
            config, "twilio.yaml", openapi=str(OPENAPI_DOCUMENTS / "twilio_api_v2010.json"), baseUrl=url,
            defaults={"allowHttp": True}, include={"operations": ["CreateMessage"]},
            auth={"accountSid_authToken": {"type": "basic", "username": "${TWILIO_SID}",
                                           "password": "${TWILIO_TOKEN}"}},
        )  # fmt: skip
        async with mcp_client(transport, era, config, env=ENV) as client:
            listed = {tool.name: tool for tool in (await client.list_tools()).tools}
            assert sorted(listed) == [
                "CreateMessage",
                "addPet",
                "deletePet",
                "getPetById",
                "loginUser",
                "updatePetWithForm",
            ]
            assert listed["getPetById"].title == "Find pet by ID." and listed["getPetById"].annotations.read_only_hint
            assert listed["deletePet"].annotations.destructive_hint
            calls = [
                ("getPetById", {"petId": 7}),
                ("updatePetWithForm", {"petId": 7, "name": "Rex", "status": "sold"}),
                ("addPet", {"name": "Rex", "photoUrls": ["u1"], "category": {"id": 1, "name": "Dogs"}}),
                ("deletePet", {"petId": 7, "api_key": "k-1"}),
                ("loginUser", {"username": "ann", "password": "p w"}),
                ("CreateMessage", {"AccountSid": ACCOUNT, "To": "+15551230000", "From": "+15559870000",
                                   "Body": "Hi & bye", "MediaUrl": ["https://m/1.png", "https://m/2.png"]}),
            ]  # fmt: skip
            for name, arguments in calls:
                result = await client.call_tool(name, arguments)
                assert not result.is_error, (name, result)
    get, form, add, delete, login, message = upstream.requests
    bearer = f"Bearer {ENV['PS_TOKEN']}"
    assert (get.method, get.raw_path, get.query, get.body) == ("GET", "/api/v3/pet/7", "", b"")
    assert get.headers["api_key"] == ENV["API_KEY"] and "authorization" not in get.headers
    assert (form.method, form.raw_path, form.query) == ("POST", "/api/v3/pet/7", "name=Rex&status=sold")
    assert form.headers["authorization"] == bearer and form.body == b"{}"
    assert (add.method, add.raw_path, add.query) == ("POST", "/api/v3/pet", "")
    assert add.headers["content-type"] == "application/json"
    assert json.loads(add.body) == {"name": "Rex", "photoUrls": ["u1"], "category": {"id": 1, "name": "Dogs"}}
    assert (delete.method, delete.raw_path, delete.headers["api_key"]) == ("DELETE", "/api/v3/pet/7", "k-1")
    assert delete.headers["authorization"] == bearer
    assert (login.method, login.raw_path, login.query_pairs) == (
        "GET", "/api/v3/user/login", [("username", "ann"), ("password", "p w")]
    )  # fmt: skip
    assert (message.method, message.raw_path) == ("POST", f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json")
    assert message.headers["content-type"] == "application/x-www-form-urlencoded"
    basic = base64.b64encode(f"{ACCOUNT}:{ENV['TWILIO_TOKEN']}".encode()).decode()
    assert message.headers["authorization"] == f"Basic {basic}"
    assert parse_qsl(message.body.decode()) == [
        ("To", "+15551230000"), ("From", "+15559870000"), ("Body", "Hi & bye"),
        ("MediaUrl", "https://m/1.png"), ("MediaUrl", "https://m/2.png"),
    ]  # fmt: skip


async def test_imported_twilio_files_serve_all_197_tools_and_send_the_form_body(tmp_path):
    out = tmp_path / "config"
    document = OPENAPI_DOCUMENTS / "twilio_api_v2010.json"
    assert main(["import", "openapi", str(document), "--out", str(out), "--base-url", "${TWILIO_URL}"]) == 0
    upstream = Upstream()
    upstream.reply_json("POST", f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json", {"sid": "SM2"}, status=201)
    async with serve_asgi(upstream) as url:
        env = {
            "TWILIO_URL": url,
            "ACCOUNT_SID_AUTH_TOKEN_USERNAME": ACCOUNT,
            "ACCOUNT_SID_AUTH_TOKEN_PASSWORD": ENV["TWILIO_TOKEN"],
        }
        for path in out.iterdir():  # the upstream is plain http on loopback: allow it, as a user would
            tool = json.loads(path.read_text())
            path.write_text(json.dumps({**tool, "allowHttp": True}))
        async with mcp_client("stdio", "auto", out, env=env) as client:
            tools = (await client.list_tools()).tools
            assert len(tools) == 197
            result = await client.call_tool("CreateMessage", {"AccountSid": ACCOUNT, "To": "+1555", "Body": "x"})
            assert not result.is_error, result
    (message,) = upstream.requests
    assert (message.method, message.raw_path) == ("POST", f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json")
    assert message.body == b"To=%2B1555&Body=x"
    basic = base64.b64encode(f"{ACCOUNT}:{ENV['TWILIO_TOKEN']}".encode()).decode()
    assert message.headers["authorization"] == f"Basic {basic}"


async def test_an_oauth2_client_credentials_scheme_fetches_its_token_from_the_documented_token_url(
    tmp_path, upstream, oauth_server
):
    """A document whose only scheme is OAuth2 client credentials (issue 12's auth, mapped by issue 13):
    the tool asks the documented token URL for the operation's scopes and sends the token upstream."""
    client_id, client_secret = "orders-openapi-client", secret("orders-openapi-secret-never-shown")
    await oauth_server.require_client(client_id, client_secret)
    upstream.reply_json("GET", "/orders/42", {"id": "42", "status": "shipped"})
    document = {
        "openapi": "3.1.0",
        "info": {"title": "Orders", "version": "1"},
        "servers": [{"url": upstream.url}],
        "components": {"securitySchemes": {"orders_cc": {"type": "oauth2", "flows": {"clientCredentials": {
            "tokenUrl": oauth_server.token_url, "scopes": {"orders.read": "read orders"}}}}}},
        "paths": {"/orders/{orderId}": {"get": {
            "operationId": "getOrder", "summary": "Get an order",
            "parameters": [{"name": "orderId", "in": "path", "required": True, "schema": {"type": "string"}}],
            "security": [{"orders_cc": ["orders.read"]}],
            "responses": {"200": {"description": "the order"}}}}},
    }  # fmt: skip
    config = tmp_path / "config"
    config.mkdir()
    (config / "orders.openapi.json").write_text(json.dumps(document), encoding="utf-8")
    env = {"ORDERS_CC_CLIENT_ID": client_id, "ORDERS_CC_CLIENT_SECRET": client_secret}
    async with mcp_client("http", "auto", config, env=env) as client:
        result = await client.call_tool("getOrder", {"orderId": "42"})
    assert result.is_error is False, result
    [token_request] = await oauth_server.token_requests()
    assert (token_request.client_id, token_request.form["scope"], token_request.status) == (
        client_id, "orders.read", 200
    )  # fmt: skip
    [seen] = upstream.requests
    assert seen.raw_path == "/orders/42" and seen.headers["authorization"].startswith("Bearer ey")
