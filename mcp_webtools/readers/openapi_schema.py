"""OpenAPI schemas as self-contained JSON Schema 2020-12: `$ref`s resolved into `$defs`, 3.0 dialect translated.

An operation's schemas point into the document (`#/components/schemas/Pet`) and into other files
(`./common.yaml#/Error`); a published `inputSchema` must stand alone. `SchemaConverter` follows each
`$ref` with `referencing` (the library `jsonschema` resolves with: JSON Pointer escapes, relative
URIs, documents retrieved once and kept) and gives every distinct target one entry under `$defs`,
so a recursive schema (a `Category` holding `Category`s) stays a valid recursion instead of an
endless inlining.

OpenAPI 3.0 schemas are a JSON Schema dialect of their own; 3.1's are 2020-12 already. For 3.0:
`nullable: true` becomes a `"null"` type (or an `anyOf` with one), `example` becomes `examples`,
the boolean `exclusiveMinimum`/`exclusiveMaximum` become the numeric ones. OpenAPI-only keywords
(`discriminator`, `xml`, `externalDocs`, `x-...`) are dropped. For inputs, `readOnly` properties
are left out: the server sets them, a caller never sends them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

import referencing
import referencing.exceptions
import referencing.jsonschema

from ..errors import ShapeError

__all__ = ["SchemaConverter", "SchemaPool", "parse_document", "retrieve_file"]

_OPENAPI_ONLY = frozenset({"discriminator", "xml", "externalDocs", "nullable", "example"})
_DEF_NAME = re.compile(r"[^A-Za-z0-9_.-]+")
# Keywords whose value is one subschema, a list of them, or a map of names to them.
_ONE = ("items", "additionalProperties", "not", "contains", "propertyNames", "unevaluatedItems", "if", "then", "else")
_MANY = ("allOf", "anyOf", "oneOf", "prefixItems")
_MAPS = ("properties", "patternProperties", "dependentSchemas", "$defs", "definitions")


def parse_document(text: str, where: str) -> Any:
    """A JSON or YAML document's text, parsed (JSON is YAML, but `json` reads a 2 MB file ten times faster)."""
    if text.lstrip().startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ShapeError("openapi", f"{where} is not valid JSON (line {exc.lineno}): {exc.msg}") from None
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ShapeError("openapi", f"{where} is not valid YAML: {exc}") from None


def retrieve_file(uri: str) -> referencing.Resource[Any]:
    """`referencing`'s retrieve hook: `file:` URIs only (a document never makes us fetch over the network)."""
    parts = urlsplit(uri)
    if parts.scheme != "file":
        raise referencing.exceptions.NoSuchResource(ref=uri)
    path = Path(unquote(parts.path))
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ShapeError("openapi", f"$ref to {path} cannot be read ({exc.strerror or type(exc).__name__})") from None
    return referencing.Resource(parse_document(text, str(path)), referencing.jsonschema.DRAFT202012)


@dataclass
class SchemaPool:
    """The `$defs` one published schema collects, shared by all its parts (parameters, body)."""

    defs: dict[str, Any] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # target URI -> its name under $defs


class SchemaConverter:
    """Resolves `$ref`s in one OpenAPI document and turns its schemas into 2020-12 ones."""

    def __init__(self, document: dict[str, Any], uri: str, *, dialect_30: bool) -> None:
        self.uri = uri
        self.dialect_30 = dialect_30
        resource = referencing.Resource(document, referencing.jsonschema.DRAFT202012)
        self.registry: referencing.Registry[Any] = referencing.Registry(retrieve=retrieve_file).with_resource(
            uri, resource
        )

    def lookup(self, ref: str, base: str) -> tuple[Any, str]:
        """What `ref` (relative to `base`) points to, and its absolute URI."""
        target = urljoin(base, ref)
        document, fragment = urldefrag(target)
        try:
            retrieved = self.registry.get_or_retrieve(document)
            self.registry = retrieved.registry  # keeps what was retrieved: one read per file
            if fragment and not fragment.startswith("/"):  # an anchor
                return self.registry.resolver(document).lookup(f"#{fragment}").contents, target
            resolved = retrieved.value.pointer(unquote(fragment), self.registry.resolver(document))
        except referencing.exceptions.Unretrievable as exc:
            if isinstance(exc.__cause__, ShapeError):
                raise exc.__cause__ from None
            raise ShapeError("openapi", f"$ref {ref!r}: {document} cannot be read") from None
        except referencing.exceptions.NoSuchResource:
            raise ShapeError("openapi", f"$ref {ref!r}: only files next to the document are read, never URLs") from None
        except referencing.exceptions.Unresolvable:
            raise ShapeError("openapi", f"$ref {ref!r} points to nothing in {document}") from None
        return resolved.contents, target

    def deref(self, node: Any, base: str) -> tuple[Any, str]:
        """`node` with its `$ref`s followed (parameters, request bodies, responses may be references)."""
        seen: set[str] = set()
        while isinstance(node, dict) and isinstance(node.get("$ref"), str):
            node, base = self.lookup(node["$ref"], base)
            if base in seen:
                raise ShapeError("openapi", f"$ref {base!r} refers to itself")
            seen.add(base)
        return node, base

    def part(self, node: Any, base: str, pool: SchemaPool, *, for_input: bool) -> dict[str, Any]:
        """`node` as a 2020-12 schema whose references point into `pool.defs` (`#/$defs/...` of the whole)."""
        converted = self._convert(node, base, for_input, pool.defs, pool.names)
        if not isinstance(converted, dict):
            converted = {} if converted is True else {"not": {}}
        return converted

    def _convert(self, node: Any, base: str, for_input: bool, defs: dict[str, Any], names: dict[str, str]) -> Any:
        if isinstance(node, bool):
            return node
        if not isinstance(node, dict):
            return {}
        if isinstance(node.get("$ref"), str):
            return self._ref(node, base, for_input, defs, names)
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key.startswith("x-") or key in _OPENAPI_ONLY or (self.dialect_30 and key == "$schema"):
                continue
            if key in _ONE:
                out[key] = self._convert(value, base, for_input, defs, names)
            elif key in _MANY and isinstance(value, list):
                out[key] = [self._convert(item, base, for_input, defs, names) for item in value]
            elif key in _MAPS and isinstance(value, dict):
                out["$defs" if key == "definitions" else key] = {
                    name: self._convert(item, base, for_input, defs, names) for name, item in value.items()
                }
            else:
                out[key] = value
        if "example" in node and "examples" not in node:  # 3.0's keyword, deprecated but still seen in 3.1
            out["examples"] = [node["example"]]
        if self.dialect_30:
            _from_30(node, out)
        if for_input and isinstance(out.get("properties"), dict):
            hidden = [name for name, prop in (node.get("properties") or {}).items() if _read_only(prop, base, self)]
            if hidden:
                out["properties"] = {k: v for k, v in out["properties"].items() if k not in hidden}
                if isinstance(out.get("required"), list):
                    out["required"] = [name for name in out["required"] if name not in hidden]
                    if not out["required"]:
                        del out["required"]
        return out

    def _ref(
        self, node: dict[str, Any], base: str, for_input: bool, defs: dict[str, Any], names: dict[str, str]
    ) -> dict[str, Any]:
        target, uri = self.lookup(node["$ref"], base)
        if uri not in names:
            name = _def_name(uri, set(names.values()))
            names[uri] = name
            defs[name] = {}  # taken before converting: a recursion back to it finds the name
            defs[name] = self._convert(target, urldefrag(uri).url, for_input, defs, names)
        reference: dict[str, Any] = {"$ref": f"#/$defs/{names[uri]}"}
        siblings = {k: v for k, v in node.items() if k != "$ref" and not k.startswith("x-")}
        if siblings:  # 3.1 allows keywords beside $ref (description, most often)
            reference.update(self._convert(siblings, base, for_input, defs, names))
        return reference


def _from_30(node: dict[str, Any], out: dict[str, Any]) -> None:
    """OpenAPI 3.0's schema keywords in their JSON Schema 2020-12 form, in `out`."""
    for bound in ("Minimum", "Maximum"):
        exclusive, plain = f"exclusive{bound}", bound.lower()
        if node.get(exclusive) is True and plain in node:
            out[exclusive] = out.pop(plain)
        elif isinstance(node.get(exclusive), bool):
            del out[exclusive]
    if node.get("nullable") is True:
        kind = out.get("type")
        if isinstance(kind, str):
            out["type"] = [kind, "null"]
            if isinstance(out.get("enum"), list) and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]
        elif kind is None:
            rest = dict(out)
            out.clear()
            out["anyOf"] = [rest, {"type": "null"}]


def _read_only(prop: Any, base: str, converter: SchemaConverter) -> bool:
    try:
        resolved, _ = converter.deref(prop, base)
    except ShapeError:
        return False
    return isinstance(prop, dict) and (prop.get("readOnly") is True or resolved.get("readOnly") is True)


def _def_name(uri: str, taken: set[str]) -> str:
    fragment = urldefrag(uri).fragment
    stem = unquote(fragment.rsplit("/", 1)[-1]) if fragment else Path(urlsplit(uri).path).stem
    name = _DEF_NAME.sub("_", stem) or "schema"
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}_{n}", n + 1
    return candidate
