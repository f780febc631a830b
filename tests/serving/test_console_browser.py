"""The web console in a real browser: Debian's headless Chromium driven by Playwright.

Against a real `mcp-webtools serve --ui` process (and the demo) and a recording upstream on
127.0.0.1, as a person would use it: sign in (a wrong token is refused), find a tool, fill the
form, dry-run, call, see the spoken messages and the result, see the call in Calls (and an MCP
client's call arrive live), break a config file and see the error in Config, look at Health.
Every page's HTML and text, and every response the page received, go through the suite's secrets
scan. Screenshots of each page are saved under the test's `tmp_path` (printed at the end).

Needs `/usr/bin/chromium` (`apt-get install chromium`) and the `browser` extra (Playwright, used
with that Chromium: never `playwright install`). Without them the tests skip, except under CI=true
(.ci/run installs both), where they fail.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import Implementation
from support import SCANNER, hamsa_tool, http_server_process, printed, running_demo, secret, write_tools

from mcp_webtools.cli import commands as cli

pytestmark = pytest.mark.anyio

CHROMIUM = os.environ.get("MCP_WEBTOOLS_CHROMIUM", "/usr/bin/chromium")
TOKEN = secret("browser-token-never-shown-c3f")
UPSTREAM_TOKEN = "tickets-never-shown-0d94"
STEP = 30_000  # ms: the bound on each wait in the browser (a loaded 2-core machine is slow, never this slow)


def playwright_or_skip() -> Any:
    problem = None
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        problem = "Playwright is not installed (pip install -e '.[browser]')"
    if problem is None and not Path(CHROMIUM).is_file():
        problem = f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"{problem}: .ci/run installs it")
        pytest.skip(problem)
    return async_playwright


class Recorder:
    """Every response the page got, for the secrets scan, and where screenshots go."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.responses: list[Any] = []
        self.requests: list[Any] = []

    async def snapshot(self, page: Any, name: str) -> None:
        """A full-page screenshot, and the page's HTML and text through the secrets scan."""
        await page.screenshot(path=str(self.folder / f"{name}.png"), full_page=True)
        SCANNER.scan("output", f"browser page {name} (HTML)", await page.content())
        SCANNER.scan("output", f"browser page {name} (text)", await page.inner_text("body"))

    async def scan_traffic(self) -> int:
        """Scan every response's headers and body; the token only ever went out in `Authorization`."""
        scanned = 0
        for response in self.responses:
            SCANNER.scan("output", f"browser response headers {response.url}", json.dumps(await response.all_headers()))
            try:
                body = await response.body()
            except Exception:  # noqa: BLE001 - a stream cut by the server's shutdown has no body to read
                continue
            SCANNER.scan("output", f"browser response {response.url}", body.decode("utf-8", "replace"))
            scanned += 1
        for request in self.requests:
            headers = dict(await request.all_headers())
            sent = headers.pop("authorization", "")
            assert sent in ("", f"Bearer {TOKEN}", "Bearer wrong-token"), request.url
            assert TOKEN not in json.dumps(headers) + request.url + (request.post_data or ""), request.url
        return scanned


@asynccontextmanager
async def browser_page(recorder: Recorder) -> AsyncIterator[Any]:
    async_playwright = playwright_or_skip()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM)
        context = await browser.new_context(viewport={"width": 1280, "height": 860}, locale="en-GB")
        page = await context.new_page()
        page.set_default_timeout(STEP)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("response", lambda response: recorder.responses.append(response))
        page.on("request", lambda request: recorder.requests.append(request))
        try:
            yield page
            assert errors == [], errors  # no script error on any page
            assert await context.cookies() == []  # the token is never a cookie
        finally:
            await browser.close()


def ticket_tool(url: str) -> dict[str, Any]:
    params = {
        "type": "object",
        "properties": {
            "subject": {"type": "string", "minLength": 3, "description": "One line"},
            "priority": {"type": "string", "enum": ["low", "normal", "high"], "default": "normal"},
            "urgent": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "due": {"type": "string", "format": "date"},
            "metadata": {"type": "object"},
        },
        "required": ["subject"],
        "additionalProperties": False,
    }
    return hamsa_tool(
        "Create Ticket",
        f"{url}/tickets",
        "POST",
        params,
        authToken=UPSTREAM_TOKEN,
        messages=[
            {"type": "request-start", "content": "Creating your ticket."},
            {"type": "request-complete", "content": "Your ticket is open."},
        ],
    )


def order_tool(url: str) -> dict[str, Any]:
    params = {"type": "object", "properties": {"orderId": {"type": "string"}}, "required": ["orderId"]}
    return hamsa_tool("Get Order", f"{url}/orders/:orderId", "GET", params, authToken=UPSTREAM_TOKEN)


async def labelled(page: Any) -> list[str]:
    """The form controls on the page that have no label a screen reader can read."""
    return await page.evaluate(
        """() => [...document.querySelectorAll("input, select, textarea, button")]
              .filter((el) => !el.closest("[hidden]"))
              .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute("aria-label"))
              .filter((el) => !el.textContent.trim())
              .map((el) => el.outerHTML)"""
    )


@pytest.mark.e2e
async def test_console_in_a_browser(upstream, tmp_path, monkeypatch, capsys):
    playwright_or_skip()
    from playwright.async_api import expect

    upstream.reply_json("POST", "/tickets", {"ticket_id": "TCK-1", "status": "open"}, status=201)
    config_dir = tmp_path / "config"
    write_tools(config_dir, [order_tool(upstream.url)], name="orders.json")
    tickets = write_tools(config_dir, [ticket_tool(upstream.url)], name="tickets.json")
    arguments = {"subject": "Broken screen", "priority": "high", "urgent": True, "tags": ["screen", "warranty"],
                 "due": "2026-03-10", "metadata": {"channel": "voice"}}  # fmt: skip
    argv = ["call", "create_ticket", "--config", str(config_dir), "--dry-run", "--args", json.dumps(arguments)]
    assert cli.main(argv) == 0
    cli_dry_run = capsys.readouterr().out
    monkeypatch.setenv("MCP_WEBTOOLS_AUTH_TOKEN", TOKEN)
    recorder = Recorder(tmp_path / "screenshots")
    async with browser_page(recorder) as page:
        async with http_server_process(config_dir, "--ui", "--watch-interval", "0.2") as server:
            base = (await server.wait_for_log(r"web console at (http://127\.0\.0\.1:\d+)/ui")).group(1)
            # -- a wrong token is refused, the right one opens the console
            await page.goto(f"{base}/ui")
            await page.get_by_label("Token", exact=True).fill("wrong-token")
            await page.get_by_role("button", name="Open the console").click()
            refused = "The server refused that token. Check it and try again."
            await expect(page.get_by_role("alert")).to_have_text(refused)
            await expect(page.get_by_role("navigation")).to_be_hidden()
            await recorder.snapshot(page, "1-token-refused")
            assert await page.evaluate("sessionStorage.length") == 0
            await page.get_by_label("Token", exact=True).fill(TOKEN)
            await page.get_by_role("button", name="Open the console").click()

            # -- Tools: find the tool with the keyboard, see what the model sees and what is sent
            await expect(page.get_by_role("navigation")).to_be_visible()
            # The tool list is fetched after the console opens: typing before it arrives is lost.
            await expect(page.locator("#tool-count")).to_have_text("2 of 2 tools")
            await page.keyboard.press("/")
            await page.keyboard.type("ticket")
            await expect(page.locator("#tool-count")).to_have_text("1 of 2 tools")
            await page.keyboard.press("Enter")
            detail = page.get_by_role("heading", name="Create Ticket create_ticket")
            await expect(detail).to_be_focused()
            await expect(page.get_by_role("table", name="Where each argument goes")).to_contain_text("JSON body")
            headers = page.get_by_role("table", name="Headers (credentials shown as ***)")
            await expect(headers).to_contain_text("Bearer ***")
            await expect(page.get_by_role("table", name="Spoken messages")).to_contain_text("Creating your ticket.")
            await recorder.snapshot(page, "2-tools")

            # -- Try: the form, checked by the tool's own validator as it is filled
            await page.get_by_role("link", name="Try create_ticket →").click()
            await expect(page.get_by_role("heading", name="Try a tool")).to_be_visible()
            subject = page.get_by_label("subject")
            problem = page.locator(".field", has=subject).locator(".problem")
            await expect(problem).to_have_text("subject is required")
            await subject.fill("ab")
            await expect(problem).to_have_text("subject 'ab' is too short")
            await expect(subject).to_have_attribute("aria-invalid", "true")
            await subject.fill(arguments["subject"])
            await page.get_by_label("priority").select_option(label="high")
            await page.get_by_label("urgent").select_option(label="true")
            for tag in arguments["tags"]:
                await page.get_by_role("button", name="Add tags item").click()
                await page.get_by_label("tags item", exact=True).last.fill(tag)
            await page.get_by_label("due").fill(arguments["due"])
            await page.get_by_label("metadata").fill('{"channel": "voice"}')
            await expect(page.locator(".problems")).to_be_empty()
            assert await labelled(page) == []

            await page.get_by_role("button", name="Dry run").click()
            dry_run = page.get_by_role("region", name="Dry run")
            await expect(dry_run.get_by_role("heading")).to_have_text("Dry run: the exact request")
            assert await dry_run.locator("pre").text_content() == cli_dry_run  # the very text the CLI prints
            assert upstream.requests == []

            await page.get_by_role("button", name="Call", exact=True).click()
            call = page.get_by_role("region", name="Call")
            await expect(call.get_by_text("Structured content")).to_be_visible()
            spoken = call.get_by_role("list", name="Spoken messages and progress, in order")
            await expect(spoken.get_by_role("listitem")).to_have_count(2)
            texts = await spoken.get_by_role("listitem").all_inner_texts()
            assert ["Creating your ticket." in texts[0], "Your ticket is open." in texts[1]] == [True, True]
            await expect(call).to_contain_text('"ticket_id": "TCK-1"')
            await expect(call).to_contain_text('"api_response_status": 201')
            await recorder.snapshot(page, "3-try")
            (sent,) = upstream.requests
            assert (sent.method, sent.raw_path) == ("POST", "/tickets")
            assert sent.json() == arguments
            assert sent.headers["authorization"] == f"Bearer {UPSTREAM_TOKEN}"

            # -- Calls: the console's call, and an MCP client's call arriving live
            await page.get_by_role("link", name="Calls").click()
            rows = page.get_by_role("table", name="Recent calls, newest first").locator("tbody tr")
            await expect(rows).to_have_count(1)
            await expect(rows.first).to_contain_text("create_ticket")
            await expect(rows.first).to_contain_text("web console (http 127.0.0.1)")
            http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
            info = Implementation(name="voice-agent", version="2.1")
            transport = streamable_http_client(f"{base}/mcp", http_client=http)
            async with http, Client(transport, client_info=info) as client:
                await client.call_tool("get_order", {"orderId": "ORD-9"})
            await expect(rows).to_have_count(2)
            await expect(rows.first).to_contain_text("voice-agent 2.1 (http 127.0.0.1, client default)")
            await expect(rows.first).to_contain_text("get_order")
            await page.get_by_label("Tool", exact=True).select_option("create_ticket")
            await expect(rows).to_have_count(1)
            await rows.first.get_by_role("link").click()
            details = page.get_by_role("region", name="Call details")
            await expect(details).to_contain_text("POST")
            await expect(details).to_contain_text("201")
            await recorder.snapshot(page, "4-calls")

            # -- Config: break a file, see the error (the last good set keeps serving)
            await page.get_by_role("link", name="Config").click()
            await expect(page.get_by_role("heading", name="Files serving now")).to_be_visible()
            tickets.write_text('{"name": "Create Ticket", "toolSettings": {')
            errors = page.get_by_role("list", name="Reload errors")
            await expect(errors).to_contain_text(str(tickets))
            await expect(page.get_by_text("Still serving the last good set (2 tools)")).to_be_visible()
            await recorder.snapshot(page, "5-config")

            # -- Health: the charts from the metrics
            await page.get_by_role("link", name="Health").click()
            await expect(page.get_by_role("group", name="Calls per second")).to_be_visible()
            await expect(page.get_by_role("group", name="Latency p50 / p95")).to_be_visible()
            await expect(page.get_by_role("table")).to_contain_text("ok")
            await recorder.snapshot(page, "6-health")
            assert await labelled(page) == []
            assert await page.evaluate("sessionStorage.length") == 1  # the token, for this tab only
        # The server stopped (ending the live stream), so every response can be read and scanned.
        assert await recorder.scan_traffic() >= 10
    print(f"screenshots: {recorder.folder}")


@pytest.mark.e2e
async def test_the_demo_opens_the_door_to_the_console(tmp_path):
    playwright_or_skip()
    from playwright.async_api import expect

    recorder = Recorder(tmp_path / "screenshots")
    log = tmp_path / "demo.log"
    async with browser_page(recorder) as page:
        async with running_demo(log) as (_, _api_port):
            url = re.search(r"console\s+: (http://\S+/ui)", printed(log).read_text()).group(1)
            await page.goto(url)  # no token in the demo: straight in
            await page.get_by_role("link", name="Try", exact=True).click()
            await page.get_by_label("Tool", exact=True).select_option("get_order_status")
            await page.get_by_label("orderId").fill("ORD-12345")
            await page.get_by_role("button", name="Dry run").click()
            await expect(page.get_by_role("region", name="Dry run")).to_contain_text("GET /orders/ORD-12345 HTTP/1.1")
            await page.get_by_role("button", name="Call", exact=True).click()
            await expect(page.get_by_role("region", name="Call")).to_contain_text('"status": "shipped"')
            await recorder.snapshot(page, "demo-try")
            await page.get_by_role("link", name="Tools", exact=True).click()
            await page.get_by_role("link", name=re.compile("get_order_status")).click()
            await expect(page.get_by_role("heading", name="Get Order Status get_order_status")).to_be_visible()
            await recorder.snapshot(page, "demo-tools")
        assert await recorder.scan_traffic() >= 5
    print(f"screenshots: {recorder.folder}")
