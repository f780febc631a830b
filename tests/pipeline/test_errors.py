"""The exception tree (mcp_webtools/errors.py): one root, one home, drawn as it is.

Every exception mcp-webtools raises on purpose is defined in errors.py and derives from
`WebToolsError`; the modules that raise them import them from there, and the tree drawn in the
module's docstring is the tree the classes form.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from types import ModuleType

import pytest

import mcp_webtools
from mcp_webtools import errors
from mcp_webtools.errors import (
    ApiRefused,
    ApiUnavailable,
    HamsaError,
    RequestNotSent,
    SendError,
    UnusableAnswer,
    UpstreamError,
    UsageError,
    WebToolsError,
)
from mcp_webtools.hamsa.cli import EXIT_CODES, exit_code


def package_modules() -> list[ModuleType]:
    """Every module of the package (`__main__` runs the CLI when imported, so not that one)."""
    names = [m.name for m in pkgutil.walk_packages(mcp_webtools.__path__, "mcp_webtools.")]
    return [importlib.import_module(name) for name in names if not name.endswith(".__main__")]


def drawn_tree() -> dict[str, str | None]:
    """The docstring's drawing as {class name: parent name}; a child sits 4 columns right of its parent."""
    lines = errors.__doc__.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("WebToolsError"))
    parents: dict[str, str | None] = {}
    path: list[str] = []
    for line in lines[start:]:
        if not line.strip():
            break
        match = re.search(r"[A-Za-z]+", line)
        assert match and match.start() % 4 == 0, line
        depth = match.start() // 4
        path[depth:] = [match.group()]
        parents[match.group()] = path[depth - 1] if depth else None
    return parents


def test_every_exported_class_is_a_web_tools_error_defined_in_errors_py():
    exported = [getattr(errors, name) for name in errors.__all__]
    assert all(inspect.isclass(cls) and issubclass(cls, WebToolsError) for cls in exported)
    assert {cls.__module__ for cls in exported} == {"mcp_webtools.errors"}
    defined = {name for name, value in vars(errors).items() if inspect.isclass(value) and issubclass(value, Exception)}
    assert defined == set(errors.__all__)


def test_the_drawn_tree_is_the_class_tree():
    actual = {
        name: None if cls is WebToolsError else cls.__bases__[0].__name__
        for name in errors.__all__
        for cls in [getattr(errors, name)]
    }
    # One base in the tree; a second may only be a built-in (SchemaProblems is a ValueError for pydantic).
    assert all(
        all(base.__module__ == "builtins" for base in getattr(errors, name).__bases__[1:]) for name in errors.__all__
    )
    assert drawn_tree() == actual


def test_no_module_defines_an_exception_of_its_own():
    """A module's exceptions, public or not, are errors.py's, imported under the same name."""
    strays = []
    for module in package_modules():
        for name, value in vars(module).items():
            if not (inspect.isclass(value) and issubclass(value, BaseException)):
                continue
            if not value.__module__.startswith("mcp_webtools"):
                continue  # a library's exception, imported to catch it
            if value.__module__ != "mcp_webtools.errors" or getattr(errors, name, None) is not value:
                strays.append(f"{module.__name__}.{name}")
    assert strays == []


def test_nothing_sent_is_not_an_upstream_error():
    """RequestNotSent and UpstreamError are both what a send can end with, but only one reached the upstream."""
    assert issubclass(RequestNotSent, SendError) and not issubclass(RequestNotSent, UpstreamError)
    assert (RequestNotSent.transient, RequestNotSent.maybe_received) == (False, False)
    assert RequestNotSent("x", attempts=2).attempts == 2


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (HamsaError("x"), 1),
        (UsageError("x"), 2),
        (ApiRefused("x"), 1),
        (ApiUnavailable("x"), 3),
        (UnusableAnswer("x"), 4),
    ],
)
def test_hamsa_exit_codes_are_the_command_lines_not_the_errors(error, code):
    assert exit_code(error) == code
    assert not hasattr(error, "exit_code")
    assert set(EXIT_CODES) == {HamsaError, *HamsaError.__subclasses__()}
