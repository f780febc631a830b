"""The readers (readers/): one module per input format behind `detect`, `entries`, `normalise`.

A new format plugs in by registration alone: the toy reader below is one class and one
`register(...)` call, and `load_definitions` reads it, mixed with Hamsa's shapes in one list,
with errors that name the toy's own fields.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mcp_webtools import readers
from mcp_webtools.loading import ConfigErrors, load_definitions
from mcp_webtools.readers import NormalisedEntry, ShapeError, entries_in_document, normalise_entry, unwrapped

PACKAGE = Path(readers.__file__).parents[1]


class ToyReader:
    """`{"toy": {"base": URL, "calls": {name: path}}}`: one document, many GET tools."""

    name = "toy"

    def detect(self, document: Any) -> bool:
        return isinstance(document, dict) and "toy" in document

    def entries(self, document: Any) -> Iterable[tuple[str, Any]]:
        base = document["toy"]["base"]
        return [(f"toy.calls.{name}", (base, name, path)) for name, path in document["toy"]["calls"].items()]

    def normalise(self, entry: Any) -> NormalisedEntry:
        base, name, path = entry
        if not isinstance(path, str):
            raise ShapeError("", "a toy call is a path string")
        values = {"name": name, "mcp_name": name, "method": "GET", "url": base + path, "params": {"type": "object"}}
        return NormalisedEntry(values, {"name": "", "url": "", "mcp_name": "", "params": ""}, shape="toy")


@pytest.fixture
def toy() -> Iterator[ToyReader]:
    reader = ToyReader()
    readers.register(reader)
    yield reader
    readers.READERS.remove(reader)


def load(tmp_path: Path, document: Any) -> list[tuple[str, str, str]]:
    path = tmp_path / "tools.json"
    path.write_text(json.dumps(document))
    return [(d.mcp_name, d.method, d.url) for d in load_definitions([path], environ={}).definitions]


GUIDE_TOOL = {"name": "Guide Tool", "methodType": "POST", "url": "https://api.example.com/guide"}
ENVELOPE = {"success": True, "message": "success", "data": [{
    "name": "Enveloped", "toolSettings": {"serverUrl": "https://api.example.com/env", "methodType": "GET"},
}]}  # fmt: skip
TOY = {"toy": {"base": "https://toy.example.com", "calls": {"ping": "/ping", "pong": "/pong"}}}


def test_a_new_reader_plugs_in_by_registration_alone(tmp_path: Path, toy: ToyReader) -> None:
    assert load(tmp_path, [GUIDE_TOOL, TOY, ENVELOPE]) == [
        ("enveloped", "GET", "https://api.example.com/env"),
        ("guide_tool", "POST", "https://api.example.com/guide"),
        ("ping", "GET", "https://toy.example.com/ping"),
        ("pong", "GET", "https://toy.example.com/pong"),
    ]
    assert load(tmp_path, {"tools": [TOY]}) == [
        ("ping", "GET", "https://toy.example.com/ping"),
        ("pong", "GET", "https://toy.example.com/pong"),
    ]


def test_a_new_readers_errors_name_its_entries(tmp_path: Path, toy: ToyReader) -> None:
    bad = {"toy": {"base": "https://toy.example.com", "calls": {"ping": "/ping", "bad": 7}}}
    with pytest.raises(ConfigErrors) as caught:
        load(tmp_path, [GUIDE_TOOL, bad])
    assert [(e.tool, e.field, e.message) for e in caught.value.errors] == [
        ("unnamed entry [1].toy.calls.bad", "[1].toy.calls.bad", "a toy call is a path string")
    ]


def test_without_the_reader_its_format_is_not_read(tmp_path: Path) -> None:
    with pytest.raises(ConfigErrors) as caught:
        load(tmp_path, [GUIDE_TOOL, TOY])
    [error] = caught.value.errors
    assert (error.field, error.message) == ("[1]", readers.base.NEITHER_SHAPE)


def test_each_object_of_a_list_is_detected_on_its_own() -> None:
    found = entries_in_document([GUIDE_TOOL, ENVELOPE, {"name": "Neither"}])
    assert [(location, entry.reader and entry.reader.name) for location, entry in found] == [
        ("[0]", "guide"),
        ("[1].data[0]", "hamsa-envelope"),
        ("[2]", None),
    ]
    assert unwrapped(found[1][1]) is ENVELOPE["data"][0]
    assert normalise_entry(found[1][1]).shape == "hamsa-api (response envelope)"
    with pytest.raises(ShapeError, match="is neither the Hamsa API shape"):
        normalise_entry(found[2][1])


def test_readers_and_the_hamsa_format_import_nothing_above_them() -> None:
    """hamsa/format.py imports no module of the package but flat ones; readers/ never reaches loading,
    the Hamsa commands or serving (so the importer and the loader can both use them without a cycle)."""
    forbidden = {"loading", "hamsa.register", "hamsa.importer", "hamsa.cli", "serving", "cli"}
    for path in [PACKAGE / "hamsa" / "format.py", *sorted((PACKAGE / "readers").glob("*.py"))]:
        imported = _package_imports(path)
        assert not {name for name in imported if name.split(".")[0] in forbidden or name in forbidden}, path
        if path.name == "format.py":
            assert all("." not in name and (PACKAGE / f"{name}.py").is_file() for name in imported), imported


def _package_imports(path: Path) -> set[str]:
    """The modules of mcp_webtools that `path` imports, as dotted names below the package."""
    here = path.parent.relative_to(PACKAGE).parts
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = list(here[: len(here) - node.level + 1])
            module = [*base, *(node.module or "").split(".")] if node.module else base
            targets = [".".join(module)] if node.module else [".".join([*module, a.name]) for a in node.names]
            names |= {target.strip(".") for target in targets}
    return names
