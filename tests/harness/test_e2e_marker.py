"""The `e2e` marker is exact: a test that starts a process without it fails, so `-m "not e2e"` starts none.

Each case runs a pytest session of this suite's harness (conftest.py, support.py) over tests
written here, as test_secrets_scan.py does for the secrets scan.
"""

from __future__ import annotations

import os
import sys

import pytest
from support import run_pytest_session

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]  # the inner sessions are processes

INI = """[pytest]
addopts = --strict-markers
markers =
    e2e: starts a process
"""
PYTHON = os.path.basename(sys.executable)

INNER_TESTS = """
import subprocess
import sys

import pytest


def start_a_process():
    subprocess.run([sys.executable, "-c", "pass"], check=True)


def test_unmarked_starts_one():
    start_a_process()


@pytest.mark.e2e
def test_marked_starts_one():
    start_a_process()


@pytest.fixture
def process():
    start_a_process()


def test_unmarked_whose_fixture_starts_one(process):
    pass


@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_over(transport):
    if transport == "stdio":
        start_a_process()  # as mcp_client("stdio", ...) does


@pytest.fixture(params=[("stdio", "legacy"), ("http", "legacy")], ids=["stdio-legacy", "http-legacy"])
def connection(request):
    if request.param[0] == "stdio":
        start_a_process()
    return request.param


def test_connected(connection):
    pass


def test_starts_none():
    pass
"""


async def run(tmp_path, *args: str) -> tuple[int, dict[str, str], str]:
    """The session's exit code, each test's outcome, and its whole output."""
    files = {"pytest.ini": INI, "test_inner.py": INNER_TESTS}
    code, output = await run_pytest_session(tmp_path / "session", files, "-rA", "test_inner.py", *args)
    outcomes = {}
    for line in output.splitlines():
        outcome, _, rest = line.partition(" ")
        if outcome in ("PASSED", "FAILED", "ERROR"):
            outcomes[rest.split(" - ")[0].removeprefix("test_inner.py::")] = outcome
    return code, outcomes, output


def refusal(test: str, phase: str) -> str:
    return (
        f"test_inner.py::{test} started a process in its {phase} (subprocess.Popen {PYTHON}) but is not marked "
        "e2e: add @pytest.mark.e2e, so that `pytest -m 'not e2e'` starts none"
    )


async def test_a_test_that_starts_a_process_unmarked_fails_and_says_how_to_mark_it(tmp_path):
    code, outcomes, output = await run(tmp_path)
    assert (code, outcomes) == (
        1,
        {
            "test_unmarked_starts_one": "FAILED",
            "test_marked_starts_one": "PASSED",
            "test_unmarked_whose_fixture_starts_one": "ERROR",  # its setup failed
            "test_over[stdio]": "PASSED",  # marked for its "stdio" parameter
            "test_over[http]": "PASSED",
            "test_connected[stdio-legacy]": "PASSED",  # and for a parameter that combines "stdio" with more
            "test_connected[http-legacy]": "PASSED",
            "test_starts_none": "PASSED",
        },
    )
    assert refusal("test_unmarked_starts_one", "call") in output
    assert refusal("test_unmarked_whose_fixture_starts_one", "setup") in output


async def test_not_e2e_leaves_out_the_marked_tests_and_the_stdio_ones(tmp_path):
    code, outcomes, output = await run(tmp_path, "-m", "not e2e", "-k", "not unmarked")
    assert (code, outcomes) == (
        0,
        {"test_over[http]": "PASSED", "test_connected[http-legacy]": "PASSED", "test_starts_none": "PASSED"},
    )
    assert "3 passed, 5 deselected" in output
