"""Readers: one module per input format, each turning a parsed config document into tool entries.

A reader has three parts (`Reader`): `detect(document)` says whether an object is its format,
`entries(document)` splits it into `(location, entry)` pairs (one document may hold many tools),
and `normalise(entry)` reads one entry into the fields of `ToolDefinition` (`NormalisedEntry`).
`READERS` is tried in order and the first reader whose `detect` says yes reads the object, so a new
format is one new module plus one `register(...)` line; `loading.py` calls only
`entries_in_document` and `normalise_entry`.

A file holds one object, a list of them, or `{"tools": [...]}`; each object of those is
detected on its own, so formats mix freely within one list.

Today's readers are Hamsa's three shapes (the format itself is described in `hamsa/format.py`):
`envelope` (an API response wrapping tools), `hamsa_api` (the create-web-tool body) and `guide`
(the integration guide's flat shape); and `openapi`, an OpenAPI 3.0/3.1 document (one tool per
operation) or a file of ours that references one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..hamsa.format import is_mcp_tool
from . import envelope, guide, hamsa_api, openapi
from .base import (
    EXTENSION_FIELDS,
    NEITHER_SHAPE,
    NOT_AN_OBJECT,
    NormalisedEntry,
    ShapeError,
    params_schema,
    path_defaults,
)

__all__ = [
    "EXTENSION_FIELDS",
    "READERS",
    "Entry",
    "NormalisedEntry",
    "Reader",
    "ShapeError",
    "entries_in_document",
    "normalise_entry",
    "params_schema",
    "path_defaults",
    "reader_for",
    "register",
    "unwrapped",
]


class Reader(Protocol):
    """One input format. `name` appears nowhere a user sees; it is for logs and tests."""

    name: str

    def detect(self, document: Any) -> bool:
        """Whether `document` (one object of a file: the whole file, or one item of its list) is this format."""
        ...

    def entries(self, document: Any) -> Iterable[tuple[str, Any]]:
        """The tool entries in a detected `document`, each with its location inside it (`""` for itself).

        A format that refers to other files relative to the one it reads (an OpenAPI source does)
        also has `entries_from(document, origin)`, given the file the document came from (None:
        not from a file); it is called instead when present.
        """
        ...

    def normalise(self, entry: Any) -> NormalisedEntry:
        """One entry (from `entries`) read into `ToolDefinition` fields; `ShapeError` if it cannot be read at all."""
        ...


# Tried in order: the envelope first (its `data` may hold anything), then the API body before the guide.
READERS: list[Reader] = [envelope.READER, hamsa_api.READER, guide.READER]


def register(reader: Reader) -> None:
    """Make `reader` read the objects no earlier reader detects."""
    READERS.append(reader)


register(openapi.READER)  # OpenAPI 3.0/3.1 documents, and files of ours referencing one


def reader_for(document: Any) -> Reader | None:
    return next((reader for reader in READERS if reader.detect(document)), None)


@dataclass(frozen=True)
class Entry:
    """One tool entry as the file has it (`raw`), with the reader that found it (None: no reader knows it)."""

    raw: Any
    reader: Reader | None


def unwrapped(entry: Any) -> Any:
    """An entry of `entries_in_document` as the file has it."""
    return entry.raw if isinstance(entry, Entry) else entry


def entries_in_document(document: Any, origin: Path | None = None) -> list[tuple[str, Entry]]:
    """Split one parsed file into `(location, entry)` pairs.

    A file holds one object, a list of them, or `{"tools": [...]}`; each object is read by the
    reader that detects it and may give several entries (a response envelope gives its `data`).
    """
    if isinstance(document, list):
        return [found for i, item in enumerate(document) for found in _entries_of(f"[{i}]", item, origin)]
    if isinstance(document, dict):
        if "tools" in document and "name" not in document:
            tools = document["tools"]
            if not isinstance(tools, list):
                raise ShapeError("tools", "must be a list of tool definitions")
            return [found for i, item in enumerate(tools) for found in _entries_of(f"tools[{i}]", item, origin)]
        return _entries_of("", document, origin)
    expected = 'a tool definition (an object), a list of them, or {"tools": [...]}'
    if document is None:  # an empty YAML file, or one holding only comments
        raise ShapeError("", f"is empty (or null); it must hold {expected}")
    raise ShapeError("", f"must hold {expected}")


def _entries_of(location: str, item: Any, origin: Path | None) -> list[tuple[str, Entry]]:
    reader = reader_for(item)
    if reader is None:  # `normalise_entry` says what is wrong with it
        return [(location, Entry(item, None))]
    located = getattr(reader, "entries_from", None)
    found = located(item, origin) if located is not None else reader.entries(item)
    return [(_join(location, where), Entry(entry, reader)) for where, entry in found]


def _join(location: str, where: str) -> str:
    if not location or not where:
        return location or where
    return f"{location}{where}" if where.startswith("[") else f"{location}.{where}"


def normalise_entry(entry: Any) -> NormalisedEntry:
    """Read one entry of `entries_in_document` into canonical `ToolDefinition` fields.

    Raises `ShapeError` only when the entry cannot be read at all; smaller problems are
    collected in `NormalisedEntry.problems`.
    """
    raw = unwrapped(entry)
    reader = entry.reader if isinstance(entry, Entry) else reader_for(raw)
    # Decide on the type first: an MCP entry has its own shape and is never parsed as a web tool.
    if isinstance(raw, dict) and is_mcp_tool(raw):
        return NormalisedEntry(
            {"name": raw.get("name")}, {}, shape="mcp", skip_reason='has `type: "MCP"`; only FUNCTION tools are served'
        )
    if reader is None:
        raise ShapeError("", NEITHER_SHAPE if isinstance(raw, dict) else NOT_AN_OBJECT)
    normalised = reader.normalise(raw)
    tool_type = raw.get("type", "FUNCTION") if isinstance(raw, dict) else "FUNCTION"
    if not (isinstance(tool_type, str) and tool_type.upper() == "FUNCTION"):
        normalised.problems.append(("type", f'must be "FUNCTION" or "MCP", not {tool_type!r}'))
    headers = normalised.values.get("headers") or []
    set_by_auth = _set_by_auth(normalised.values)
    for name, _ in headers:
        by = set_by_auth.get(name.lower()) if isinstance(name, str) else None
        if by is not None:
            normalised.warnings.append((f"{normalised.fields['headers']}.{name}", f"is replaced by the tool's {by}"))
    return normalised


def _set_by_auth(values: dict[str, Any]) -> dict[str, str]:
    """Each header (lowercase) the tool's upstream auth sets over a configured one, and what sets it."""
    setters: dict[str, str] = {}
    auth, forward = values.get("auth"), values.get("forward_caller")
    if values.get("auth_token"):
        setters["authorization"] = "authToken"
    elif isinstance(auth, dict) and auth.get("type") in ("bearer", "basic", "oauth2ClientCredentials"):
        setters["authorization"] = f"auth block (type {auth['type']})"
    elif isinstance(auth, dict) and auth.get("type") == "apiKey" and auth.get("in") == "header":
        if isinstance(auth.get("name"), str):
            setters[auth["name"].lower()] = "auth block (type apiKey)"
    if isinstance(forward, dict) and isinstance(forward.get("as"), str):
        setters.setdefault(forward["as"].lower(), "forwardCaller (the caller's credential)")
    return setters
