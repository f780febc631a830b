"""Hot reload, step by step: `Reloader.poll` and `Reloader.reload` driven directly, no timing.

Each `poll()` is one look at the files; a change is loaded on the first look that finds it
unchanged since the previous one. The end-to-end tests (test_reload.py) cover the clients.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import anyio
import pytest
from mcp import Client
from support import Recorded, Reply, hamsa_tool, write_tools

from mcp_webtools.calls import PreparedCall
from mcp_webtools.redaction import RedactingFilter
from mcp_webtools.serving.reload import Reloader, ReloadOutcome
from mcp_webtools.serving.runtime import open_reloader, open_webtools

pytestmark = pytest.mark.anyio

URL = "http://127.0.0.1:9/api"


def tool(name: str, path: str = "/x", **settings: object) -> dict:
    return hamsa_tool(name, f"{URL}{path}", "GET", **settings)


def reloader_for(*paths: Path, log_filter: RedactingFilter | None = None, **kwargs: object) -> Reloader:
    webtools = open_webtools([str(p) for p in paths], log_filter=log_filter)
    return open_reloader(webtools, [str(p) for p in paths], log_filter=log_filter, **kwargs)  # type: ignore[arg-type]


def names(reloader: Reloader) -> list[str]:
    return [t.name for t in reloader.webtools.toolset]


async def settle(reloader: Reloader) -> ReloadOutcome | None:
    """Two looks: the first sees the change, the second (nothing moved since) loads it."""
    assert await reloader.poll() is None
    return await reloader.poll()


async def test_an_edit_is_loaded_once_it_holds_still(tmp_path):
    config = write_tools(tmp_path, [tool("Alpha")])
    reloader = reloader_for(config)
    assert await reloader.poll() is None  # nothing changed

    config.write_text('[{"type": "FUNCTION", "name": "Al')  # caught half-written
    assert await reloader.poll() is None
    write_tools(tmp_path, [tool("Alpha"), tool("Beta")])  # moved again: still waiting
    assert await reloader.poll() is None
    outcome = await reloader.poll()

    assert outcome == ReloadOutcome("file change", ok=True, tools=2, added=("beta",), notified=True)
    assert names(reloader) == ["alpha", "beta"]
    assert await reloader.poll() is None  # loaded once


async def test_a_touch_or_an_unrelated_file_loads_nothing(tmp_path):
    folder = tmp_path / "config"
    config = write_tools(folder, [tool("Alpha")])
    reloader = reloader_for(folder)
    toolset = reloader.webtools.toolset
    stat = config.stat()
    os.utime(config, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    assert await settle(reloader) is None
    (folder / ".tools.json.swp").write_text("an editor's scratch file")
    (folder / "notes.txt").write_text("not a config file")
    assert await settle(reloader) is None
    assert reloader.last is None and reloader.webtools.toolset is toolset


async def test_a_kubernetes_configmap_update_is_seen(tmp_path):
    # The kubelet's layout: files are symlinks through `..data`, swapped atomically to a new folder.
    folder = tmp_path / "config"
    folder.mkdir()
    write_tools(folder / "..2026_11_22_01_00_00.1", [tool("Alpha")])
    (folder / "..data").symlink_to("..2026_11_22_01_00_00.1")
    (folder / "tools.json").symlink_to("..data/tools.json")
    reloader = reloader_for(folder)
    assert names(reloader) == ["alpha"]

    # Same size, same mtime: only where the link leads differs.
    new_version = folder / "..2026_11_22_01_05_00.2"
    write_tools(new_version, [tool("Gamma")])
    old_stat = (folder / "tools.json").stat()
    os.utime(new_version / "tools.json", ns=(old_stat.st_atime_ns, old_stat.st_mtime_ns))
    assert (new_version / "tools.json").stat().st_size == old_stat.st_size
    (folder / "..data_tmp").symlink_to(new_version.name)
    os.replace(folder / "..data_tmp", folder / "..data")

    outcome = await settle(reloader)
    assert outcome is not None and (outcome.added, outcome.removed) == (("gamma",), ("alpha",))
    assert names(reloader) == ["gamma"]


async def test_files_added_to_and_removed_from_a_folder(tmp_path):
    folder = tmp_path / "config"
    write_tools(folder, [tool("Alpha")])
    reloader = reloader_for(folder)
    write_tools(folder, [tool("Beta")], "beta.yaml")
    assert (await settle(reloader)).added == ("beta",)  # type: ignore[union-attr]
    (folder / "tools.json").unlink()
    assert (await settle(reloader)).removed == ("alpha",)  # type: ignore[union-attr]
    assert names(reloader) == ["beta"]


async def test_an_invalid_set_keeps_the_last_good_one_and_is_reported_once(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="mcp_webtools.reload")
    config = write_tools(tmp_path, [tool("Alpha")])
    reloader = reloader_for(config)
    toolset = reloader.webtools.toolset
    write_tools(tmp_path, [tool("Alpha"), hamsa_tool("Beta", URL, "FETCH")])

    outcome = await settle(reloader)
    assert outcome is not None and not outcome.ok and not outcome.swapped
    expected = f"{config}: tool 'Beta': field `[1].toolSettings.methodType`: must be one of GET, POST, PUT, PATCH"
    assert [str(error) for error in outcome.errors] == [f"{expected}, DELETE (any case)"]
    assert reloader.webtools.toolset is toolset
    assert await settle(reloader) is None  # the same broken bytes are not loaded (or logged) again
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in failures] == [
        "config reload (file change) failed; still serving the previous 1 tool(s). 1 config error:\n"
        f"  - {expected}, DELETE (any case)"
    ]

    config.unlink()  # gone altogether: also an invalid set
    outcome = await settle(reloader)
    assert outcome is not None and [str(e) for e in outcome.errors] == [f"{config}: no such file or folder"]
    write_tools(tmp_path, [tool("Alpha")])
    outcome = await settle(reloader)
    assert outcome == ReloadOutcome("file change", ok=True, tools=1)  # back as it was: nothing to swap
    assert reloader.webtools.toolset is toolset


async def test_a_change_clients_cannot_see_swaps_without_announcing(tmp_path):
    config = write_tools(tmp_path, [tool("Alpha", "/v1")])
    reloader = reloader_for(config)
    before = reloader.webtools.calls.prepare("alpha", {})
    write_tools(tmp_path, [tool("Alpha", "/v2")])

    outcome = await reloader.reload()
    assert outcome == ReloadOutcome("request", ok=True, tools=1, changed=("alpha",), notified=False)
    assert outcome.describe() == (
        "config reloaded (request): 0 added, 0 removed, 1 changed (alpha); 1 tool(s) now, tools/list unchanged"
    )
    after = reloader.webtools.calls.prepare("alpha", {})
    assert isinstance(before, PreparedCall) and isinstance(after, PreparedCall)
    assert (before.request.url, after.request.url) == (f"{URL}/v1", f"{URL}/v2")


async def test_reload_callbacks_see_every_outcome_and_one_failing_does_not_stop_the_others(tmp_path, caplog):
    config = write_tools(tmp_path, [tool("Alpha")])
    seen: list[ReloadOutcome] = []

    def broken(outcome: ReloadOutcome) -> None:
        raise RuntimeError("metrics are down")

    reloader = reloader_for(config)
    reloader.on_reload += [broken, seen.append]
    first = await reloader.reload("SIGHUP")
    write_tools(tmp_path, [tool("Alpha"), tool("Beta")])
    second = await reloader.reload("SIGHUP")
    assert seen == [first, second]
    assert (first.swapped, second.swapped, second.added) == (False, True, ("beta",))
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == ["a reload callback failed"] * 2


async def test_the_log_filter_hides_the_old_secrets_and_the_new(tmp_path):
    old, new = "tok-old-never-shown-111", "tok-new-never-shown-222"
    config = write_tools(tmp_path, [tool("Alpha", authToken=old)])
    log_filter = RedactingFilter()  # as `configure_logging` makes it for `serve`
    reloader = reloader_for(config, log_filter=log_filter)
    write_tools(tmp_path, [tool("Alpha", authToken=new)])
    assert (await reloader.reload()).changed == ("alpha",)

    record = logging.LogRecord("t", logging.INFO, __file__, 1, "sent %s then %s", (old, new), None)
    log_filter.filter(record)
    assert record.getMessage() == "sent *** then ***"


async def test_a_watch_interval_must_be_positive(tmp_path):
    config = write_tools(tmp_path, [tool("Alpha")])
    with pytest.raises(ValueError, match="must be positive"):
        reloader_for(config, interval=0)


async def test_a_raised_concurrency_cap_admits_the_queued_call_at_once(upstream, tmp_path):
    release = anyio.Event()
    arrived: list[str] = []

    def held(request: Recorded) -> Reply:
        arrived.append(request.query)
        return Reply(200, b"{}", [("content-type", "application/json")], wait=release)

    upstream.reply("GET", "/slow", held)
    config = write_tools(tmp_path, [{**hamsa_tool("Slow", f"{upstream.url}/slow"), "maxConcurrency": 1}])
    reloader = reloader_for(config)
    webtools = reloader.webtools
    finished: list[bool] = []

    async def call() -> None:
        finished.append(bool((await webtools.calls.call("slow", {})).is_error))

    async with anyio.create_task_group() as tg:
        tg.start_soon(call)
        with anyio.fail_after(30):
            while len(arrived) < 1:
                await anyio.sleep(0.005)
        tg.start_soon(call)  # queued behind the first: the cap is 1
        limiter = webtools.calls.limits.tool_limiter("slow", 1)
        with anyio.fail_after(30):
            while limiter.waiting < 1:
                await anyio.sleep(0.005)
        write_tools(tmp_path, [{**hamsa_tool("Slow", f"{upstream.url}/slow"), "maxConcurrency": 2}])
        assert (await reloader.reload()).changed == ("slow",)
        with anyio.fail_after(30):  # admitted while the first still holds its slot
            while len(arrived) < 2:
                await anyio.sleep(0.005)
        assert finished == []  # the first call still holds its slot
        release.set()
    assert finished == [False, False]


async def test_a_call_prepared_before_a_reload_keeps_the_new_cap(upstream, tmp_path):
    upstream.reply_json("GET", "/slow", {})
    config = write_tools(tmp_path, [{**hamsa_tool("Slow", f"{upstream.url}/slow"), "maxConcurrency": 1}])
    reloader = reloader_for(config)
    webtools = reloader.webtools
    prepared = webtools.calls.prepare("slow", {})
    write_tools(tmp_path, [{**hamsa_tool("Slow", f"{upstream.url}/slow"), "maxConcurrency": 2}])
    assert (await reloader.reload()).changed == ("slow",)
    assert isinstance(prepared, PreparedCall)
    assert (await webtools.calls.execute(prepared)).is_error is False
    assert webtools.calls.limits._per_tool["slow"].limit == 2  # not set back to the cap it was prepared under


@pytest.mark.parametrize("era", ["legacy", "auto"])
async def test_tools_list_changed_is_advertised(tmp_path, era):
    webtools = open_webtools([str(write_tools(tmp_path, [tool("Alpha")]))])
    async with Client(webtools.server, mode=era) as client:
        tools = client.server_capabilities.tools
        assert tools is not None and tools.list_changed is True


async def test_an_edit_to_a_referenced_openapi_document_reloads(tmp_path):
    specs = tmp_path / "specs"
    specs.mkdir()
    document = {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "paths": {"/a": {"get": {"operationId": "alpha"}}},
    }
    (specs / "api.json").write_text(json.dumps(document))
    folder = tmp_path / "config"
    folder.mkdir()
    (folder / "api.yaml").write_text(f"openapi: ../specs/api.json\nbaseUrl: {URL}\ndefaults: {{allowHttp: true}}\n")
    reloader = reloader_for(folder)
    assert names(reloader) == ["alpha"]
    document["paths"]["/b"] = {"post": {"operationId": "beta"}}
    (specs / "api.json").write_text(json.dumps(document))
    outcome = await settle(reloader)
    assert outcome == ReloadOutcome("file change", ok=True, tools=2, added=("beta",), notified=True)
    assert names(reloader) == ["alpha", "beta"]
