"""OpenAPI operations -> tools (mcp_webtools.readers.openapi): each mapping rule of issue 13, on the real
documents in documents/ and, where no real document has the case, on a small one written here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from support import OPENAPI_DOCUMENTS, secret

from mcp_webtools.errors import ConfigErrors
from mcp_webtools.loading import load_definitions
from mcp_webtools.readers.openapi import MANY_TOOLS, Options, Selection, cut_description, map_document
from mcp_webtools.requests import RequestTemplate, build_request

PETSTORE = OPENAPI_DOCUMENTS / "petstore3.yaml"
TWILIO = OPENAPI_DOCUMENTS / "twilio_api_v2010.json"
TWILIO_ENV = {
    "ACCOUNT_SID_AUTH_TOKEN_USERNAME": "AC" + "a" * 32,
    "ACCOUNT_SID_AUTH_TOKEN_PASSWORD": secret("twilio-auth-token-9f8e7d"),
}
PETSTORE_ENV = {"API_KEY": secret("petstore-api-key-41b2"), "PS_TOKEN": secret("petstore-oauth-token-77aa")}


def by_name(definitions) -> dict[str, Any]:
    return {d.mcp_name: d for d in definitions}


def source(tmp_path: Path, spec: str | Path, **settings: Any) -> Path:
    """A file of ours that references `spec`."""
    path = tmp_path / "source.yaml"
    path.write_text(yaml.safe_dump({"openapi": str(spec), **settings}), encoding="utf-8")
    return path


def write_spec(folder: Path, document: dict[str, Any], name: str = "spec.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def assert_2020_12(schema: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator.check_schema(schema)
    assert "nullable" not in json.dumps(schema) and "#/components" not in json.dumps(schema)


# --- the Swagger Petstore 3 ---------------------------------------------------------------------


def test_petstore_served_as_it_is_names_from_operation_ids_and_skips_what_it_cannot_authenticate(caplog):
    found = load_definitions([PETSTORE], environ=PETSTORE_ENV)
    tools = by_name(found.definitions)
    assert sorted(tools) == [
        "createUser", "createUsersWithListInput", "deleteOrder", "deleteUser", "getInventory", "getOrderById",
        "getPetById", "getUserByName", "loginUser", "logoutUser", "placeOrder", "updateUser",
    ]  # fmt: skip
    skipped = [str(w) for w in found.warnings if "skipped" in str(w)]
    assert len(skipped) == 7
    assert any(
        "tool 'deletePet': skipped: DELETE /pet/{petId}: no security scheme of it can be served: petstore_auth "
        "(OAuth2 implicit, which needs a person to sign in)" in line
        for line in skipped
    ), skipped
    pet = tools["getPetById"]
    assert pet.name == "Find pet by ID." and pet.description == "Returns a single pet."
    assert pet.url == "https://petstore3.swagger.io/api/v3/pet/{petId}" and pet.method == "GET"
    # The first alternative the server can serve: api_key, never a value in the definition.
    assert pet.auth == {"type": "apiKey", "in": "header", "name": "api_key", "value": PETSTORE_ENV["API_KEY"]}
    assert pet.input_schema["required"] == ["petId"]


def test_petstore_body_side_by_side_refs_in_defs_and_examples(tmp_path):
    config = source(tmp_path, PETSTORE, auth={"petstore_auth": {"type": "bearer", "token": "${PS_TOKEN}"}})
    tools = by_name(load_definitions([config], environ=PETSTORE_ENV).definitions)
    assert len(tools) == 19
    update = tools["updatePet"]
    assert update.method == "PUT" and update.body_encoding == "json" and update.body_argument is None
    params = update.params
    assert list(params["properties"]) == ["id", "name", "category", "photoUrls", "tags", "status"]
    assert params["required"] == ["name", "photoUrls"]
    assert params["properties"]["category"] == {"$ref": "#/$defs/Category"}
    assert params["properties"]["tags"]["items"] == {"$ref": "#/$defs/Tag"}
    assert params["$defs"]["Category"]["properties"]["name"] == {"type": "string", "examples": ["Dogs"]}
    assert "xml" not in json.dumps(params) and "x-swagger-router-model" not in json.dumps(params)
    assert_2020_12(params)
    assert update.auth == {"type": "bearer", "token": PETSTORE_ENV["PS_TOKEN"]}


def test_petstore_query_on_post_and_header_parameters(tmp_path):
    config = source(tmp_path, PETSTORE, auth={"petstore_auth": {"type": "bearer", "token": "${PS_TOKEN}"}})
    tools = by_name(load_definitions([config], environ=PETSTORE_ENV).definitions)
    form = tools["updatePetWithForm"]
    assert {k: v.in_ for k, v in form.placement.items()} == {"name": "query", "status": "query"}
    delete = tools["deletePet"]
    assert delete.placement["api_key"].in_ == "header" and delete.placement["api_key"].name == "api_key"
    assert delete.input_schema["required"] == ["petId"]


def test_petstore_unsupported_request_body_is_left_out_with_a_note(tmp_path):
    config = source(tmp_path, PETSTORE, auth={"petstore_auth": {"type": "bearer", "token": "${PS_TOKEN}"}})
    found = load_definitions([config], environ=PETSTORE_ENV)
    upload = by_name(found.definitions)["uploadFile"]
    assert list(upload.params["properties"]) == ["petId", "additionalMetadata"]
    notes = [str(w) for w in found.warnings if "uploadImage" in str(w)]
    assert any("its request body (application/octet-stream) is left out" in n for n in notes), notes


def test_include_exclude_rename_defaults(tmp_path):
    config = source(
        tmp_path,
        PETSTORE,
        baseUrl="http://127.0.0.1:9/v3",
        include={"tags": ["store"], "operations": ["getUserByName"], "paths": ["/user/log*"], "methods": ["GET"]},
        exclude={"operations": ["logoutUser"]},
        rename={"getUserByName": "get_user"},
        defaults={"timeOut": 3, "retry": {"retries": 1}, "allowHttp": True},
    )
    tools = by_name(load_definitions([config], environ=PETSTORE_ENV).definitions)
    assert sorted(tools) == ["getInventory", "getOrderById", "get_user", "loginUser"]
    user = tools["get_user"]
    assert user.url == "http://127.0.0.1:9/v3/user/{username}"
    assert user.timeout_seconds == 3 and user.retry.retries == 1


def test_reference_file_errors_name_the_field(tmp_path):
    for settings, field, words in [
        ({"inclde": {}}, "inclde", "did you mean `include`"),
        ({"include": {"tag": ["x"]}}, "include.tag", "did you mean `tags`"),
        ({"defaults": {"timeout_s": 1}}, "defaults.timeout_s", "is not a per-tool setting"),
    ]:
        config = source(tmp_path, PETSTORE, **settings)
        with pytest.raises(ConfigErrors) as caught:
            load_definitions([config], environ=PETSTORE_ENV)
        assert f"source.yaml: field `{field}`" in str(caught.value) and words in str(caught.value)
    config = source(tmp_path, "specs/missing.yaml")
    with pytest.raises(ConfigErrors) as caught:
        load_definitions([config], environ={})
    assert "missing.yaml cannot be read (No such file or directory)" in str(caught.value)


def test_a_document_without_an_absolute_server_asks_for_base_url():
    with pytest.raises(ConfigErrors) as caught:
        load_definitions([OPENAPI_DOCUMENTS / "oai-v3.1-tictactoe.yaml"], environ={})
    assert "gives no absolute URL for GET /board" in str(caught.value) and "baseUrl" in str(caught.value)


# --- the OpenAPI Initiative's examples ------------------------------------------------------------


def test_oai_31_tictactoe_keeps_its_2020_12_schemas_and_bearer_auth(tmp_path):
    config = source(tmp_path, OPENAPI_DOCUMENTS / "oai-v3.1-tictactoe.yaml", baseUrl="https://ttt.example")
    env = {"BEARER_HTTP_AUTHENTICATION_TOKEN": secret("ttt-bearer-5c5c"), "DEFAULT_API_KEY": secret("ttt-key-6d6d")}
    tools = by_name(load_definitions([config], environ=env).definitions)
    assert sorted(tools) == ["get-board", "get-square", "put-square"]
    put = tools["put-square"]
    assert put.url == "https://ttt.example/board/{row}/{column}"
    assert put.body_argument == "body" and put.params["properties"]["body"] == {"$ref": "#/$defs/mark"}
    assert put.params["$defs"]["mark"]["enum"] == [".", "X", "O"]
    assert put.params["$defs"]["coordinate"] == {"type": "integer", "minimum": 1, "maximum": 3, "examples": [1]}
    assert_2020_12(put.params)


def test_oai_30_petstore_expanded_and_uspto():
    tools = by_name(load_definitions([OPENAPI_DOCUMENTS / "oai-v3.0-petstore-expanded.yaml"], environ={}).definitions)
    assert sorted(tools) == ["addPet", "deletePet", "findPets", "find_pet_by_id"]
    add = tools["addPet"]
    # NewPet is allOf-free here: its properties sit beside (no) parameters; required carried over.
    assert add.params["required"] == ["name"] and set(add.params["properties"]) == {"name", "tag"}
    find = tools["findPets"]
    assert find.params["properties"]["tags"]["type"] == "array" and find.placement == {}
    uspto = by_name(load_definitions([OPENAPI_DOCUMENTS / "oai-v3.0-uspto.yaml"], environ={}).definitions)
    search = uspto["perform-search"]
    assert search.body_encoding == "form" and search.params["required"] == ["version", "dataset", "criteria"]


# --- Twilio: a large real API with form bodies and Basic auth ------------------------------------


def test_twilio_loads_every_operation_with_form_bodies_and_basic_auth():
    found = load_definitions([TWILIO], environ=TWILIO_ENV)
    tools = by_name(found.definitions)
    assert len(tools) == 197
    message = tools["CreateMessage"]
    assert message.url == "https://api.twilio.com/2010-04-01/Accounts/{AccountSid}/Messages.json"
    assert message.body_encoding == "form" and message.method == "POST"
    assert message.params["required"] == ["AccountSid", "To"]
    assert message.params["properties"]["MediaUrl"]["type"] == "array"
    assert message.auth == {
        "type": "basic",
        "username": TWILIO_ENV["ACCOUNT_SID_AUTH_TOKEN_USERNAME"],
        "password": TWILIO_ENV["ACCOUNT_SID_AUTH_TOKEN_PASSWORD"],
    }
    assert all(len(d.description) <= 1000 for d in found.definitions)
    many = [str(w) for w in found.warnings if "operations selected" in str(w)]
    assert len(many) == 1 and f"197 operations selected: past {MANY_TOOLS} tools" in many[0]
    assert "--tags, --operations, --paths, --methods, --exclude-operations" in many[0]


def test_twilio_output_schemas_turn_nullable_into_null_types():
    document = json.loads(TWILIO.read_text())
    options = Options(selection=Selection(operations=("CreateMessage",)), output_schemas=True)
    (mapped,) = map_document(document, TWILIO.as_uri(), options).tools
    output = mapped.tool["outputSchema"]
    assert output["type"] == "object" and output["properties"]["body"]["type"] == ["string", "null"]
    assert_2020_12(output)
    assert (
        "outputSchema"
        not in map_document(document, TWILIO.as_uri(), Options(selection=options.selection)).tools[0].tool
    )


# --- rules no real document here shows: a small document of our own ------------------------------

SHOP = {
    "openapi": "3.0.3",
    "info": {"title": "Shop", "version": "1"},
    "servers": [{"url": "https://{region}.shop.example/v1", "variables": {"region": {"default": "eu"}}}],
    "components": {
        "securitySchemes": {
            "cookieKey": {"type": "apiKey", "in": "cookie", "name": "sid"},
            "machine": {
                "type": "oauth2",
                "flows": {"clientCredentials": {"tokenUrl": "https://auth.shop.example/token", "scopes": {"a": ""}}},
            },
            "queryKey": {"type": "apiKey", "in": "query", "name": "key"},
        },
        "schemas": {
            "Node": {
                "type": "object",
                "properties": {
                    "id": {"type": "string", "readOnly": True},
                    "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}},
                },
            },
            "Price": {"type": "number", "minimum": 0, "exclusiveMinimum": True, "nullable": True, "example": 9.5},
        },
    },  # fmt: skip
    "paths": {
        "/items/{id}": {
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "put": {
                "operationId": "putItem",
                "parameters": [
                    {"name": "X-Trace", "in": "header", "schema": {"type": "string"}},
                    {"name": "ids", "in": "query", "explode": False, "schema": {"type": "array", "items": {}}},
                    {"name": "Cookie", "in": "header", "schema": {"type": "string"}},
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": "./common.yaml#/Item"}}},
                },
            },
            "patch": {
                "operationId": "renameItem",
                "requestBody": {
                    "content": {"application/json": {"schema": {"type": "object", "properties": {"id": {}}}}}
                },
            },
            "delete": {"deprecated": True, "operationId": "dropItem"},
        },
        "/tree": {
            "post": {
                "description": "Plants a tree. " * 100,
                "security": [{"cookieKey": []}, {"machine": ["a"]}],
                "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Node"}}}},
            },
            "get": {"operationId": "only-cookie", "security": [{"cookieKey": []}]},
        },
        "/a": {"get": {"operationId": "same"}},
        "/b": {"get": {"operationId": "same", "security": [{"queryKey": []}]}},
    },
}
COMMON = {
    "Item": {
        "type": "object",
        "required": ["title", "sku"],
        "properties": {
            "title": {"type": "string"},
            "price": {"$ref": "spec.yaml#/components/schemas/Price"},
            "sku": {"type": "string", "readOnly": True},
        },
    }
}


@pytest.fixture
def shop(tmp_path) -> Path:
    write_spec(tmp_path / "specs", COMMON, "common.yaml")
    return write_spec(tmp_path / "specs", SHOP)


def shop_tools(shop: Path, **options: Any) -> dict[str, Any]:
    document = yaml.safe_load(shop.read_text())
    mapping = map_document(document, shop.as_uri(), Options(**options))
    return {m.name: m for m in mapping.tools}


def test_relative_file_refs_nullable_exclusive_minimum_example_and_read_only(shop):
    put = shop_tools(shop)["putItem"].tool
    params = put["params"]
    assert list(params["properties"]) == ["id", "X-Trace", "ids", "title", "price"]  # `sku` is readOnly: out
    assert params["required"] == ["id", "title"]
    assert params["$defs"]["Price"] == {
        "type": ["number", "null"], "exclusiveMinimum": 0, "examples": [9.5]
    }  # fmt: skip
    assert put["placement"] == {
        "X-Trace": {"in": "header", "name": "X-Trace"},
        "ids": {"in": "query", "explode": False},
    }
    assert put["toolSettings"]["serverUrl"] == "https://eu.shop.example/v1/items/{id}"
    assert_2020_12(params)
    notes = shop_tools(shop)["putItem"].notes
    assert any("parameter Cookie (in header) left out" in note for note in notes)
    assert not any("query parameter" in note for note in notes)  # form, explode false: sent as documented


def test_a_clash_puts_the_body_under_body(shop):
    rename = shop_tools(shop)["renameItem"].tool
    assert rename["bodyArgument"] == "body" and set(rename["params"]["properties"]) == {"id", "body"}


def test_recursive_schema_stays_a_recursion_and_oauth2_client_credentials_is_emitted(shop):
    tree = shop_tools(shop)["post_tree"].tool  # no operationId: method and path
    assert tree["params"]["properties"]["children"] == {"type": "array", "items": {"$ref": "#/$defs/Node"}}
    assert tree["params"]["$defs"]["Node"]["properties"] == {
        "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}
    }
    assert_2020_12(tree["params"])
    assert tree["auth"] == {
        "type": "oauth2ClientCredentials",
        "tokenUrl": "https://auth.shop.example/token",
        "clientId": "${MACHINE_CLIENT_ID}",
        "clientSecret": "${MACHINE_CLIENT_SECRET}",
        "scopes": ["a"],
    }
    assert len(tree["description"]) <= 1000 and tree["description"].endswith("Plants a tree.")


def test_cookie_only_auth_skips_deprecated_skips_and_collisions_are_resolved(shop):
    tools = shop_tools(shop)
    assert "API key in a cookie" in tools["only-cookie"].skip and tools["only-cookie"].tool is None
    assert tools["dropItem"].skip.startswith("deprecated")
    assert shop_tools(shop, include_deprecated=True)["dropItem"].tool["toolSettings"]["methodType"] == "DELETE"
    assert tools["same"].operation.path == "/a" and tools["same_2"].operation.path == "/b"
    assert tools["same_2"].notes == ["named same_2: same is GET /a's name"]
    assert tools["same_2"].tool["auth"] == {"type": "apiKey", "in": "query", "name": "key", "value": "${QUERY_KEY}"}


def test_the_variables_to_set(shop):
    document = yaml.safe_load(shop.read_text())
    assert map_document(document, shop.as_uri(), Options()).variables == [
        "MACHINE_CLIENT_ID", "MACHINE_CLIENT_SECRET", "QUERY_KEY"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "cut"),
    [
        ("Short.", "Short."),
        ("First sentence. " + "word " * 300, "First sentence."),
        ("A" * 600 + ". " + "b " * 300, "A" * 600 + "."),
        ("word " * 300, ("word " * 199).strip() + "…"),
    ],
)
def test_descriptions_cut_at_a_sentence_or_a_word(text, cut):
    result = cut_description(text)
    assert len(result) <= 1000
    if cut != "First sentence.":
        assert result == cut
    else:  # half the limit at least is kept: the last sentence end past 500 characters, else a word
        assert result.endswith("…") and len(result) > 500


def test_a_path_parameter_name_that_is_no_identifier_fills_a_renamed_placeholder(tmp_path):
    document = {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "servers": [{"url": "https://api.example.com"}],
        "paths": {
            "/items/{item-id}": {
                "get": {
                    "operationId": "get item!",
                    "parameters": [{"name": "item-id", "in": "path", "required": True, "schema": {"type": "string"}}],
                }
            }
        },
    }
    spec = write_spec(tmp_path, document)
    (definition,) = load_definitions([spec], environ={}).definitions
    assert definition.mcp_name == "get_item" and definition.url == "https://api.example.com/items/{item_id}"
    assert definition.input_schema["required"] == ["item-id"]
    built = build_request(RequestTemplate.from_definition(definition), {"item-id": "a/b"})
    assert built.url == "https://api.example.com/items/a%2Fb"


@pytest.mark.parametrize(
    ("ref", "words"),
    [
        ("#/components/schemas/Nope", "$ref '#/components/schemas/Nope' points to nothing in"),
        ("https://schemas.example.com/x.yaml#/A", "only files next to the document are read, never URLs"),
        ("./missing.yaml#/A", "missing.yaml cannot be read (No such file or directory)"),
    ],
)
def test_a_broken_ref_is_a_config_error_naming_the_operation(tmp_path, ref, words):
    document = {
        "openapi": "3.0.3",
        "info": {"title": "t", "version": "1"},
        "servers": [{"url": "https://api.example.com"}],
        "paths": {"/x": {"post": {"operationId": "x", "requestBody": {
            "content": {"application/json": {"schema": {"$ref": ref}}}}}}},
    }  # fmt: skip
    spec = write_spec(tmp_path, document)
    with pytest.raises(ConfigErrors) as caught:
        load_definitions([spec], environ={})
    text = str(caught.value)
    assert "spec.yaml: field `paths./x.post`: POST /x: " in text and words in text, text


def test_the_past_forty_warning_is_given_once_even_when_the_first_operation_is_skipped(tmp_path):
    paths = {f"/r{i}": {"get": {"operationId": f"r{i}"}} for i in range(MANY_TOOLS + 1)}
    paths = {"/old": {"get": {"operationId": "old", "deprecated": True}}, **paths}
    document = {"openapi": "3.1.0", "info": {"title": "t", "version": "1"},
                "servers": [{"url": "https://api.example.com"}], "paths": paths}  # fmt: skip
    found = load_definitions([write_spec(tmp_path, document)], environ={})
    assert len(found.definitions) == MANY_TOOLS + 1
    many = [str(w) for w in found.warnings if "operations selected" in str(w)]
    assert len(many) == 1 and "41 operations selected" in many[0] and "tool 'r0'" in many[0]
