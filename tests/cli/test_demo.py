"""`mcp-webtools demo`, run as a newcomer would: every example tool in config/ works against the sample API."""

from __future__ import annotations

import copy
import json
import shlex
import shutil
import sys
from urllib.parse import urlsplit

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from support import CLEAN_ENV, REPO, printed, running_demo

from mcp_webtools.demo import INSPECTOR
from mcp_webtools.demo.api import CUSTOMERS, ORDERS

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

# The demo must find config/ and its own defaults, whatever the caller's environment says.




def calls() -> list[tuple[str, dict, dict]]:
    """(tool, arguments, expected structuredContent), in an order where later calls use earlier state."""
    layla = copy.deepcopy(CUSTOMERS["CUST-98765"])
    ticket = {"customer_email": "layla.hassan@example.com", "subject": "Late delivery", "description": "Not here yet"}
    booking = {"customer_phone": "+971501234567", "slot_id": "SLOT-2", "service_type": "repair"}
    return [
        ("lookup_customer_by_phone", {"phone_number": "+15551234567"},
         {"customer": CUSTOMERS["CUST-12345"], "orders": [ORDERS["ORD-12345"]]}),
        ("get_order_status", {"orderId": "ORD-11111"}, ORDERS["ORD-11111"]),
        ("update_customer_preferences", {"customerId": "CUST-98765", "sms_notifications": False},
         {"customer_id": "CUST-98765", "updated": True,
          "preferences": {**layla["preferences"], "sms_notifications": False}}),
        # priority comes from the schema default.
        ("create_support_ticket", ticket, {"ticket_id": "TCK-1002", "status": "open", **ticket, "priority": "medium"}),
        # days_ahead defaults to 14; the sample API offers the first three days.
        ("check_availability", {"service_type": "repair", "start_date": "2025-03-10"}, {"available_slots": [
            {"slot_id": f"SLOT-{n}", "date": f"2025-03-1{n - 1}", "time": "10:00", "service": "repair"}
            for n in (1, 2, 3)
        ]}),
        ("create_appointment", booking, {"appointment_id": "APT-1003", "confirmation_code": "CONF-1003"}),
        ("cancel_appointment", {"appointmentId": "APT-1003", "cancellation_reason": "conflict"},
         {"appointment_id": "APT-1003", "status": "cancelled", **booking, "cancellation_reason": "conflict"}),
    ]  # fmt: skip


async def test_demo_serves_every_example_tool(tmp_path):
    log = tmp_path / "demo.log"
    async with running_demo(log) as (url, api_port):
        http = httpx2.AsyncClient(timeout=httpx2.Timeout(30, read=60))
        async with http, Client(streamable_http_client(url, http_client=http), mode="auto") as client:
            names = sorted(t.name for t in (await client.list_tools()).tools)
            assert names == sorted(name for name, _, _ in calls())
            for name, arguments, expected in calls():
                result = await client.call_tool(name, arguments)
                assert result.is_error is False, (name, result.content)
                status = 201 if name.startswith("create_") else 200  # the sample API answers 201 Created there
                assert result.structured_content == {**expected, "api_response_status": status}, name
            missing = await client.call_tool("get_order_status", {"orderId": "ORD-00000"})
        # A handshake-era client (what today's hosts use) sees the same server.
        http = httpx2.AsyncClient(timeout=httpx2.Timeout(30, read=60))
        async with http, Client(streamable_http_client(url, http_client=http), mode="legacy") as client:
            order = await client.call_tool("get_order_status", {"orderId": "ORD-12345"})
        # The printed "without MCP" line works as printed (it names the non-default API port).
        hint = next(line.strip() for line in printed(log).read_text().splitlines() if "mcp-webtools call" in line)
        assert hint.startswith(f"DEMO_API_URL=http://127.0.0.1:{api_port} mcp-webtools call get_order_status ")
        env = {**CLEAN_ENV, "DEMO_API_URL": f"http://127.0.0.1:{api_port}"}
        argv = [sys.executable, "-m", "mcp_webtools", *shlex.split(hint)[2:]]
        cli = await anyio.run_process(argv, cwd=REPO, env=env, check=False)
    assert missing.is_error is True
    assert "404" in missing.content[0].text and "no such order" in missing.content[0].text
    assert order.structured_content == {**ORDERS["ORD-12345"], "api_response_status": 200}
    # The instructions are what the user asked for: on stdout. The log is on stderr.
    instructions, logged = printed(log).read_text(), log.read_text()
    assert instructions.startswith("\nmcp-webtools demo is running.\n")
    assert f"MCP server : {url}" in instructions
    assert f"console    : {url.removesuffix('/mcp')}/ui " in instructions  # the web console, on by default
    assert f"  npx -y {INSPECTOR} --cli {url} --method tools/list\n" in instructions
    assert "mcp-webtools demo is running." not in logged and "serving MCP at" in logged
    assert "demo-secret-token" not in instructions + logged
    assert "Traceback" not in logged and " ERROR " not in logged
    assert cli.returncode == 0, cli.stderr.decode()
    assert json.loads(cli.stdout)["structuredContent"] == {**ORDERS["ORD-12345"], "api_response_status": 200}
    desktop = json.loads(next(line for line in instructions.splitlines() if line.startswith('  {"mcpServers"')))
    assert desktop == {"mcpServers": {"webtools": {
        "command": sys.executable,
        "args": ["-m", "mcp_webtools", "serve", "--config", str(REPO / "config")],
        "env": {"DEMO_API_URL": f"http://127.0.0.1:{api_port}"},
    }}}  # fmt: skip


async def test_demo_reloads_an_edited_config(tmp_path):
    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config)
    async with running_demo(tmp_path / "demo.log", "--config", str(config)) as (url, _):
        http = httpx2.AsyncClient(timeout=httpx2.Timeout(30, read=60))
        async with http, Client(streamable_http_client(url, http_client=http), mode="auto") as client:
            before = {t.name for t in (await client.list_tools(cache_mode="refresh")).tools}
            (config / "scheduler.json").unlink()
            with anyio.fail_after(30):  # the watcher looks every second
                while (now := {t.name for t in (await client.list_tools(cache_mode="refresh")).tools}) == before:
                    await anyio.sleep(0.2)
    assert before - now == {"check_availability", "create_appointment", "cancel_appointment"}
    assert "config reloaded (file change): 0 added, 3 removed" in (tmp_path / "demo.log").read_text()


async def test_a_second_demo_says_in_one_line_which_port_to_change(tmp_path):
    async with running_demo(tmp_path / "demo.log") as (url, api_port):
        port = urlsplit(url).port
        demo = [sys.executable, "-m", "mcp_webtools", "demo", "--port", str(port)]
        with anyio.fail_after(60):
            again = await anyio.run_process([*demo, "--api-port", str(api_port)], cwd=REPO, env=CLEAN_ENV, check=False)
            other_api = await anyio.run_process([*demo, "--api-port", "0"], cwd=REPO, env=CLEAN_ENV, check=False)
    assert (again.returncode, again.stdout, again.stderr.decode()) == (
        1, b"", f"error: port {api_port} is in use: pick another with --api-port\n"
    )  # fmt: skip
    assert (other_api.returncode, other_api.stdout, other_api.stderr.decode()) == (
        1, b"", f"error: port {port} is in use: pick another with --port\n"
    )  # fmt: skip
