"""The package's layers, read from the source: no import cycles, and nothing reaching upward.

The call pipeline is flat modules; around it `observe/` uses only the pipeline, `serving/` uses
the pipeline and `observe/`, and `cli/` may use anything. Imports under `if TYPE_CHECKING:` are
annotations only and do not count.
"""

from __future__ import annotations

import ast
import logging
from pathlib import Path

from support import REPO

from mcp_webtools.redaction import RedactingFilter, Redactor
from mcp_webtools.serving import http_scope, runtime, server, tasks

PACKAGE = REPO / "mcp_webtools"
CLUSTERS = ("cli", "demo", "hamsa", "observe", "readers", "serving", "shaping")
# The Hamsa format's facts sit low, beside the flat modules: the readers below hamsa/ use them.
HAMSA_FORMAT = "mcp_webtools.hamsa.format"
# What each layer may import besides itself ("flat": the modules at the top of the package).
MAY_IMPORT = {
    "flat": {"flat", "readers", "shaping"},
    "hamsa.format": {"flat"},
    "readers": {"flat", "hamsa.format", "shaping"},
    "shaping": {"flat", "shaping"},
    "observe": {"flat", "shaping"},
    "serving": {"flat", "observe", "readers", "shaping"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> str:
    if module == "mcp_webtools.__main__":
        return "cli"  # `python -m mcp_webtools` is the command line
    if module == HAMSA_FORMAT:
        return "hamsa.format"
    parts = module.split(".")
    if len(parts) > 2 or (len(parts) == 2 and parts[1] in CLUSTERS):
        return parts[1]
    return "flat"


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The package's modules `path` imports at run time."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                visit(node.orelse)
                continue
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in node.names:
                    found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.stmt):
                    visit([child])

    visit(ast.parse(path.read_text()).body)
    return {module for module in found if module in modules and module != name}


def import_graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(path) for path in paths}
    return {module_name(path): imports_of(path, modules) for path in paths}


def test_no_module_imports_one_that_imports_it_back():
    graph = import_graph()
    assert graph["mcp_webtools.calls"] >= {"mcp_webtools.sending", "mcp_webtools.outcomes"}  # the graph is real
    done: set[str] = set()

    def walk(module: str, path: list[str]) -> None:
        if module in path:
            raise AssertionError(" -> ".join([*path[path.index(module) :], module]))
        if module in done:
            return
        for imported in graph[module]:
            walk(imported, [*path, module])
        done.add(module)

    for module in graph:
        walk(module, [])


def test_nothing_reaches_upward():
    upward = [
        f"{module} imports {imported}"
        for module, imported_modules in import_graph().items()
        if layer(module) in MAY_IMPORT
        for imported in imported_modules
        if layer(imported) != layer(module) and layer(imported) not in MAY_IMPORT[layer(module)]
    ]
    assert upward == []


def test_the_server_asks_the_http_layer_for_http_notions():
    for name in ("HangUp", "CLIENT_GONE", "caller_key"):
        # Defined in http_scope.py alone: the server may use one, as imported from there.
        assert getattr(server, name, None) in (None, getattr(http_scope, name)) and not hasattr(tasks, name), name
    assert "mcp_webtools.serving.http_scope" in import_graph()["mcp_webtools.serving.server"]


def test_logging_setup_keeps_no_redaction_state_in_the_module():
    held = [name for name, value in vars(runtime).items() if isinstance(value, (Redactor, RedactingFilter))]
    assert held == []
    first, second = runtime.configure_logging(), runtime.configure_logging()
    assert first is not second and logging.getLogger().handlers[0].filters == [second]
