"""One minimum Python everywhere it is stated, and no lower than what the code and its dependencies need."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import metadata

from support import REPO

PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def minimum_of(requires_python: str) -> tuple[int, int]:
    match = re.fullmatch(r">=\s*3\.(\d+)(\.\d+)?", requires_python.strip())
    assert match, f"not a plain lower bound: {requires_python!r}"
    return 3, int(match.group(1))


def test_requires_python_covers_every_dependency():
    ours = minimum_of(PROJECT["project"]["requires-python"])
    assert ours == (3, 11)  # the code itself imports datetime.UTC (3.11+)
    for requirement in PROJECT["project"]["dependencies"]:
        name = re.match(r"[A-Za-z0-9_.-]+", requirement).group()
        theirs = metadata(name)["Requires-Python"]
        if theirs:
            assert minimum_of(theirs) <= ours, f"{name} needs Python {theirs}"


def test_the_same_minimum_is_stated_everywhere():
    assert PROJECT["tool"]["ruff"]["target-version"] == "py311"
    stated = {
        "README.md": re.findall(r"Python (3\.\d+)\+", (REPO / "README.md").read_text()),
        ".ci/run": re.findall(r"Python (3\.\d+)\+", (REPO / ".ci/run").read_text()),
    }
    assert stated == {"README.md": ["3.11"], ".ci/run": ["3.11", "3.11"]}
    # CI refuses an older python3 up front, rather than failing somewhere in pip.
    assert "sys.version_info < (3, 11)" in (REPO / ".ci/run").read_text()
