"""`mcp-webtools import openapi`: one definition file per operation, the Hamsa API shape, `${...}` credentials,
all or nothing."""

from __future__ import annotations

import json

from support import OPENAPI_DOCUMENTS, secret

from mcp_webtools.cli.commands import main
from mcp_webtools.hamsa.format import TOOL_KEYS
from mcp_webtools.loading import load_definitions

PETSTORE = OPENAPI_DOCUMENTS / "petstore3.yaml"
TWILIO = OPENAPI_DOCUMENTS / "twilio_api_v2010.json"


def test_petstore_import_writes_reviewable_files_and_prints_the_variables(tmp_path, capsys):
    out = tmp_path / "config"
    assert main(["import", "openapi", str(PETSTORE), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    files = sorted(path.name for path in out.iterdir())
    assert len(files) == 12 and "getPetById.json" in files
    assert f"wrote {out / 'getPetById.json'}  (getPetById)" in printed
    assert "skipped DELETE /pet/{petId} (deletePet): no security scheme of it can be served: petstore_auth" in printed
    assert printed.endswith(
        "Set these environment variables (the API's credentials and URL; no value is written in the files):\n"
        "  API_KEY  getPetById (and 1 more tools): auth.value\n"
    )
    written = json.loads((out / "getPetById.json").read_text())
    assert list(written)[: len(["type", "name", "mcpName"])] == ["type", "name", "mcpName"]
    assert set(written) <= {*TOOL_KEYS, "mcpName", "auth", "placement", "bodyArgument", "bodyEncoding"}
    assert written["auth"] == {"type": "apiKey", "in": "header", "name": "api_key", "value": "${API_KEY}"}
    key = secret("imported-petstore-key-55")
    definitions = load_definitions([out], environ={"API_KEY": key}).definitions
    assert len(definitions) == 12 and key not in json.dumps([json.loads(p.read_text()) for p in out.iterdir()])


def test_selection_flags_and_output_schemas(tmp_path, capsys):
    out = tmp_path / "config"
    argv = ["import", "openapi", str(PETSTORE), "--out", str(out), "--tags", "store", "user", "--methods", "GET",
            "--exclude-operations", "logoutUser", "--output-schemas"]  # fmt: skip
    assert main(argv) == 0
    assert sorted(p.stem for p in out.iterdir()) == ["getInventory", "getOrderById", "getUserByName", "loginUser"]
    order = json.loads((out / "getOrderById.json").read_text())
    assert order["outputSchema"]["properties"]["status"]["enum"] == ["placed", "approved", "delivered"]
    assert "outputSchema" not in json.loads((out / "loginUser.json").read_text())  # a string answer


def test_all_or_nothing_and_force(tmp_path, capsys):
    out = tmp_path / "config"
    out.mkdir()
    (out / "getOrderById.json").write_text("{}")
    assert main(["import", "openapi", str(PETSTORE), "--out", str(out), "--tags", "store"]) == 1
    error = capsys.readouterr().err
    assert f"nothing written:\n  - {out / 'getOrderById.json'} already exists; use --force to overwrite it" in error
    assert sorted(p.name for p in out.iterdir()) == ["getOrderById.json"]
    assert (out / "getOrderById.json").read_text() == "{}"
    assert main(["import", "openapi", str(PETSTORE), "--out", str(out), "--tags", "store", "--force"]) == 0
    assert json.loads((out / "getOrderById.json").read_text())["mcpName"] == "getOrderById"
    assert len(list(out.iterdir())) == 4


def test_nothing_selected_and_no_server_url_are_clear_errors(tmp_path, capsys):
    out = tmp_path / "config"
    assert main(["import", "openapi", str(PETSTORE), "--out", str(out), "--operations", "nope"]) == 1
    assert "no operation selected can become a tool" in capsys.readouterr().err
    ttt = OPENAPI_DOCUMENTS / "oai-v3.1-tictactoe.yaml"
    assert main(["import", "openapi", str(ttt), "--out", str(out)]) == 1
    assert "give one with --base-url" in capsys.readouterr().err and not out.exists()
    assert main(["import", "openapi", str(ttt), "--out", str(out), "--base-url", "${TTT_URL}"]) == 0
    assert json.loads((out / "get-board.json").read_text())["toolSettings"]["serverUrl"] == "${TTT_URL}/board"


def test_twilio_import_warns_past_forty_operations_and_validates(tmp_path, capsys):
    out = tmp_path / "config"
    assert main(["import", "openapi", str(TWILIO), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert len(list(out.iterdir())) == 197
    assert "note: 197 operations selected: past 40 tools a model chooses worse" in printed
    assert "--tags, --operations, --paths, --methods, --exclude-operations" in printed
    assert printed.endswith(
        "  ACCOUNT_SID_AUTH_TOKEN_PASSWORD  ListAccount (and 196 more tools): auth.password\n"
        "  ACCOUNT_SID_AUTH_TOKEN_USERNAME  ListAccount (and 196 more tools): auth.username\n"
    )
    message = json.loads((out / "CreateMessage.json").read_text())
    assert message["bodyEncoding"] == "form" and message["auth"]["password"] == "${ACCOUNT_SID_AUTH_TOKEN_PASSWORD}"
    env = {"ACCOUNT_SID_AUTH_TOKEN_USERNAME": "AC1", "ACCOUNT_SID_AUTH_TOKEN_PASSWORD": secret("twilio-imp-66")}
    assert len(load_definitions([out], environ=env).definitions) == 197
