"""Secret files rotated without a restart (issue 12), against a real `mcp-webtools serve` process.

The reload watcher watches every file a `${file:...}` reference names: a Kubernetes Secret update
(a new timestamped folder, then an atomic swap of the `..data` symlink) and a file rewritten in
place both reload, and the next call sends the new value. A secret file that goes missing is a
config error naming the tool and the path (never the content) while the last good set keeps serving.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support import Upstream, http_mcp_client, http_server_process, register_config_secrets, secret, write_tools

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

RELOADED = r"config reloaded \(file change\): 0 added, 0 removed, 1 changed \(rotating\)"


def mounted_secret(folder: Path, value: str, version: str) -> Path:
    """A Secret as the kubelet mounts it: `token -> ..data/token`, `..data -> ..<version>`; the file's path."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"..{version}").mkdir()
    (folder / f"..{version}" / "token").write_text(value + "\n")
    os.symlink(f"..{version}", folder / "..data")
    os.symlink("..data/token", folder / "token")
    return folder / "token"


def rotate_mounted_secret(folder: Path, value: str, version: str) -> None:
    """What the kubelet does on an update: write a new folder, swap `..data` to it atomically, drop the old."""
    old = os.readlink(folder / "..data")
    (folder / f"..{version}").mkdir()
    (folder / f"..{version}" / "token").write_text(value + "\n")
    os.symlink(f"..{version}", folder / "..data_tmp")
    os.replace(folder / "..data_tmp", folder / "..data")
    (folder / old / "token").unlink()
    (folder / old).rmdir()


def rotating_tool(upstream: Upstream, path: Path) -> dict:
    auth = {"type": "bearer", "token": f"${{file:{path}}}"}
    return {"name": "Rotating", "description": "r", "methodType": "GET", "url": f"{upstream.url}/r", "auth": auth}


async def test_a_kubernetes_secret_swap_reloads_and_the_next_call_uses_the_new_value(tmp_path: Path, upstream):
    old, new = secret("k8s-secret-before-0001"), secret("k8s-secret-after-0002")
    path = mounted_secret(tmp_path / "secrets", old, "2026_12_03_10_00_00.1")
    config = write_tools(tmp_path / "config", rotating_tool(upstream, path))
    register_config_secrets(config)
    async with http_server_process(config, "--watch-interval", "0.1") as server:
        base = (await server.wait_for_log(r"serving MCP at (http://\S+)/mcp")).group(1)
        await server.wait_for_log(r"watching 1 config file\(s\) and 1 secret file\(s\) for changes")
        async with http_mcp_client(base, "auto") as client:
            assert (await client.call_tool("rotating", {})).is_error is False
            rotate_mounted_secret(tmp_path / "secrets", new, "2026_12_03_11_00_00.2")
            await server.wait_for_log(RELOADED)
            assert (await client.call_tool("rotating", {})).is_error is False
    assert [seen.headers["authorization"] for seen in upstream.requests] == [f"Bearer {old}", f"Bearer {new}"]
    assert old not in server.log and new not in server.log


async def test_a_secret_rewritten_in_place_reloads_and_a_missing_one_keeps_the_last_good_set(tmp_path: Path, upstream):
    first, second = secret("in-place-secret-one-1111"), secret("in-place-secret-two-2222")
    path = tmp_path / "secrets" / "crm_token"
    path.parent.mkdir()
    path.write_text(first + "\n")
    config = write_tools(tmp_path / "config", rotating_tool(upstream, path))
    async with http_server_process(config, "--watch-interval", "0.1") as server:
        base = (await server.wait_for_log(r"serving MCP at (http://\S+)/mcp")).group(1)
        async with http_mcp_client(base, "legacy") as client:
            assert (await client.call_tool("rotating", {})).is_error is False
            with path.open("w") as handle:  # the same inode, new content
                handle.write(second + "\n")
            await server.wait_for_log(RELOADED)
            assert (await client.call_tool("rotating", {})).is_error is False
            path.unlink()
            failed = await server.wait_for_log(
                r"config reload \(file change\) failed; still serving the previous 1 .*\n(.*)\n"
            )
            assert failed.group(1) == (
                f"  - {config}: tool 'Rotating': field `auth.token`: secret file {path} cannot be read "
                "(No such file or directory); check the path"
            )
            assert (await client.call_tool("rotating", {})).is_error is False  # the last good set, its value
    assert [seen.headers["authorization"] for seen in upstream.requests] == [
        f"Bearer {first}",
        f"Bearer {second}",
        f"Bearer {second}",
    ]
    assert first not in server.log and second not in server.log
