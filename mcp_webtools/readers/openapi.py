"""OpenAPI 3.0 and 3.1 documents as a config source: each selected operation becomes one tool.

A document is detected by its top-level `openapi` key. It is read either as it is (`--config
petstore.yaml`: every operation with defaults) or through a small file of ours whose `openapi` is
a path to the document, relative to that file, with `baseUrl`, `include`, `exclude`, `rename`,
`defaults`, `auth`, `includeDeprecated` and `outputSchemas` (docs/openapi.md).

`map_document` turns the operations into tools in the Hamsa create-web-tool API shape plus our
keys (`placement`, `bodyArgument`, `bodyEncoding`, `auth`): the very dicts `import openapi` writes
as files, so a served operation and an imported one are one thing. The reader then reads each with
the Hamsa API reader, and from there an operation is a tool exactly as if written by hand.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..definitions import FORBIDDEN_ARGUMENT_HEADERS, did_you_mean, slugify
from ..errors import ShapeError
from ..hamsa.format import SETTINGS_KEYS
from ..shaping.output_schema import check_output_schema
from . import hamsa_api
from .base import OUR_KEYS, NormalisedEntry
from .openapi_schema import SchemaConverter, SchemaPool, parse_document

__all__ = [
    "MANY_TOOLS",
    "READER",
    "MappedTool",
    "Mapping",
    "OpenApiReader",
    "Options",
    "Selection",
    "cut_description",
    "is_document",
    "load_document",
    "map_document",
    "options_from_source",
    "referenced_document",
]

MAX_DESCRIPTION = 1000  # Hamsa's limit on a tool's description
MAX_TITLE = 250
MAX_NAME = 128  # MCP's limit on a tool name
MANY_TOOLS = 40  # past this, a model picks worse; say so
MAX_DOCUMENT_BYTES = 32 * 1024 * 1024  # the largest public documents (Stripe's, GitHub's) are under 15 MB
MAX_SOURCE_BYTES = 64 * 1024  # a file of ours that references a document is a few lines
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
SERVED_METHODS = frozenset({"get", "put", "post", "delete", "patch"})
BODY_METHODS = frozenset({"post", "put", "patch"})
VERSION = re.compile(r"^3\.\d+(\.\d+)?$")
SOURCE_KEYS = frozenset(
    {"openapi", "baseUrl", "include", "exclude", "rename", "defaults", "auth", "includeDeprecated", "outputSchemas"}
)
SELECTION_KEYS = ("tags", "operations", "paths", "methods")
# Headers OpenAPI says a parameter never describes (3.0 and 3.1: "the parameter definition SHALL be ignored").
IGNORED_HEADERS = frozenset({"accept", "content-type", "authorization"})
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9_.-]+")
_SENTENCE_END = re.compile(r"[.!?](?=\s)")
SELECTION_FLAGS = "--tags, --operations, --paths, --methods, --exclude-operations"


@dataclass(frozen=True)
class Selection:
    """Which operations become tools. Included: any of tags/operations/paths matches (all when none is
    given), and the method is one of `methods` (when given); then anything `exclude` matches is out."""

    tags: tuple[str, ...] = ()
    operations: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()  # fnmatch patterns: "/store/*"
    methods: tuple[str, ...] = ()
    exclude_tags: tuple[str, ...] = ()
    exclude_operations: tuple[str, ...] = ()
    exclude_paths: tuple[str, ...] = ()
    exclude_methods: tuple[str, ...] = ()

    def selects(self, operation: Operation) -> bool:
        method = operation.method.upper()
        named = (self.tags, self.operations, self.paths)
        if any(named) and not _matches(operation, *named):
            return False
        if self.methods and method not in {m.upper() for m in self.methods}:
            return False
        excluded = _matches(operation, self.exclude_tags, self.exclude_operations, self.exclude_paths)
        return not (excluded or method in {m.upper() for m in self.exclude_methods})


@dataclass(frozen=True)
class Options:
    """What a file of ours (or `import openapi`'s flags) says about a document."""

    selection: Selection = Selection()
    base_url: str | None = None
    rename: dict[str, str] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    auth: dict[str, dict[str, Any]] = field(default_factory=dict)  # security scheme name -> our auth block
    include_deprecated: bool = False
    output_schemas: bool = False


@dataclass(frozen=True)
class Operation:
    method: str  # lower case, as the document writes it
    path: str
    node: dict[str, Any]
    path_item: dict[str, Any]
    base: str  # the URI its relative $refs resolve against

    @property
    def operation_id(self) -> str | None:
        value = self.node.get("operationId")
        return value if isinstance(value, str) and value.strip() else None

    @property
    def tags(self) -> list[str]:
        tags = self.node.get("tags")
        return [tag for tag in tags if isinstance(tag, str)] if isinstance(tags, list) else []

    @property
    def label(self) -> str:
        return f"{self.method.upper()} {self.path}"


@dataclass
class MappedTool:
    """One selected operation: a tool (Hamsa API shape) or why it was skipped, and notes about it."""

    operation: Operation
    name: str  # the MCP name
    tool: dict[str, Any] | None = None
    skip: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def location(self) -> str:
        return f"paths.{self.operation.path}.{self.operation.method}"


@dataclass
class Mapping:
    tools: list[MappedTool]
    notes: list[str]  # about the whole selection (too many tools)

    @property
    def variables(self) -> list[str]:
        """The `${NAME}`s the tools read (credentials, a `baseUrl`), to print for the user to set."""
        found: set[str] = set()
        for mapped in self.tools:
            if mapped.tool is not None:
                read = repr((mapped.tool["toolSettings"]["serverUrl"], mapped.tool.get("auth", "")))
                found.update(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", read))
        return sorted(found)


def is_document(document: Any) -> bool:
    """An OpenAPI document itself (`openapi: 3.1.0`), not a file of ours pointing at one."""
    return (
        isinstance(document, dict)
        and isinstance(document.get("openapi"), str)
        and bool(VERSION.match(document["openapi"].strip()))
    )


def load_document(path: Path) -> dict[str, Any]:
    try:
        size = path.stat().st_size
        if size > MAX_DOCUMENT_BYTES:
            raise ShapeError("openapi", f"{path} is {size} bytes; an OpenAPI document may be {MAX_DOCUMENT_BYTES}")
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ShapeError("openapi", f"{path} cannot be read ({reason}); check the path") from None
    document = parse_document(text, str(path))
    if not is_document(document):
        raise ShapeError("openapi", f"{path} is no OpenAPI 3.0 or 3.1 document (its `openapi` is not 3.x)")
    return document


def referenced_document(path: Path) -> Path | None:
    """The document a file of ours references (`openapi: ./specs/x.yaml`), else None: for the reload watcher.

    Only small files are looked into (a file of ours is a few lines; a document, or a tool file,
    is never one that references), so watching a folder of many tools stays cheap.
    """
    try:
        if path.stat().st_size > MAX_SOURCE_BYTES:
            return None
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return None
    if "openapi" not in text:
        return None
    try:
        document = parse_document(text, str(path))
    except ShapeError:
        return None
    if is_document(document) or not isinstance(document, dict) or not isinstance(document.get("openapi"), str):
        return None
    return (path.resolve().parent / document["openapi"]).resolve()


def options_from_source(source: dict[str, Any]) -> Options:
    """The settings of a file of ours that references a document; `ShapeError` naming the field at fault."""
    for key in source:
        if key not in SOURCE_KEYS:
            raise ShapeError(str(key), "is not a setting of an OpenAPI source" + did_you_mean(str(key), SOURCE_KEYS))
    include, exclude = _selection_part(source, "include"), _selection_part(source, "exclude")
    selection = Selection(
        **{key: include.get(key, ()) for key in SELECTION_KEYS},
        **{f"exclude_{key}": exclude.get(key, ()) for key in SELECTION_KEYS},
    )
    base_url = source.get("baseUrl")
    if base_url is not None and not isinstance(base_url, str):
        raise ShapeError("baseUrl", "must be a URL (a string)")
    rename = _string_map(source, "rename")
    defaults = source.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise ShapeError("defaults", "must be an object of our per-tool settings")
    allowed = SETTINGS_KEYS | OUR_KEYS | {"async", "messages"}
    for key in defaults:
        if key not in allowed or key in ("serverUrl", "methodType", "mcpName"):
            raise ShapeError(f"defaults.{key}", "is not a per-tool setting" + did_you_mean(str(key), allowed))
    auth = source.get("auth") or {}
    if not isinstance(auth, dict) or not all(isinstance(block, dict) for block in auth.values()):
        raise ShapeError("auth", "must map security scheme names to auth blocks ({type: ..., ...})")
    flags = {}
    for key in ("includeDeprecated", "outputSchemas"):
        if not isinstance(source.get(key, False), bool):
            raise ShapeError(key, "must be true or false")
        flags[key] = source.get(key, False)
    return Options(selection, base_url, rename, defaults, auth, flags["includeDeprecated"], flags["outputSchemas"])


def map_document(document: dict[str, Any], uri: str, options: Options) -> Mapping:
    """Every selected operation of `document` (at `uri`, for relative `$ref`s) as a tool or a skip note."""
    converter = SchemaConverter(document, uri, dialect_30=document["openapi"].strip().startswith("3.0"))
    paths = document.get("paths") or {}
    if not isinstance(paths, dict):
        raise ShapeError("paths", "must be an object of paths")
    mapped: list[MappedTool] = []
    for operation in _operations(paths, uri, converter):
        if not options.selection.selects(operation):
            continue
        name = options.rename.get(operation.operation_id or "", "") or _tool_name(operation)
        result = MappedTool(operation, name)
        if operation.method not in SERVED_METHODS:
            result.skip = f"{operation.method.upper()} is not a method web tools send (GET, POST, PUT, PATCH, DELETE)"
        elif operation.node.get("deprecated") is True and not options.include_deprecated:
            result.skip = "deprecated (ask for deprecated operations with `includeDeprecated: true`)"
        else:
            try:
                _map_operation(result, document, converter, options)
            except ShapeError as exc:
                if exc.field == "openapi":  # the document is broken here ($ref to nothing): an error, not a skip
                    raise ShapeError(result.location, f"{operation.label}: {exc.message}") from None
                result.skip = exc.message if exc.field == "security" else f"{exc.field}: {exc.message}"
                result.tool = None
        mapped.append(result)
    _resolve_collisions(mapped)
    served = [m for m in mapped if m.tool is not None]
    notes = []
    if len(served) > MANY_TOOLS:
        notes.append(
            f"{len(served)} operations selected: past {MANY_TOOLS} tools a model chooses worse; narrow the selection "
            f"with `include`/`exclude` (tags, operations, paths, methods) or `import openapi` {SELECTION_FLAGS}"
        )
    return Mapping(mapped, notes)


def cut_description(text: str, limit: int = MAX_DESCRIPTION) -> str:
    """`text` within `limit` characters: at the last sentence end that keeps at least half, else at a word."""
    text = text.strip()
    if len(text) <= limit:
        return text
    head = text[:limit]
    ends = [match.end() for match in _SENTENCE_END.finditer(head + " ")]
    if ends and ends[-1] >= limit // 2:
        return head[: ends[-1]].rstrip()
    head = text[: limit - 1]
    space = max(head.rfind(" "), head.rfind("\n"))
    return (head[:space] if space >= limit // 2 else head).rstrip() + "…"


# --- the reader ----------------------------------------------------------------------------------


class OpenApiReader:
    """A document, or a file of ours pointing at one: one entry per selected operation."""

    name = "openapi"

    def detect(self, document: Any) -> bool:
        return isinstance(document, dict) and "openapi" in document and "toolSettings" not in document

    def entries(self, document: Any) -> Iterable[tuple[str, Any]]:
        return self.entries_from(document, None)

    def entries_from(self, document: Any, origin: Path | None) -> Iterable[tuple[str, Any]]:
        """The entries of `document`, read from the file `origin`: relative paths are relative to it."""
        folder = origin.resolve().parent if origin is not None else Path.cwd()
        if is_document(document):
            spec, spec_path, options = document, origin.resolve() if origin else folder / "openapi", Options()
        else:
            reference = document.get("openapi")
            if not isinstance(reference, str) or not reference.strip():
                raise ShapeError("openapi", "must be the version of an OpenAPI document (3.x) or a path to one")
            options = options_from_source(document)
            spec_path = (folder / reference).resolve()
            spec = load_document(spec_path)
        mapping = map_document(spec, spec_path.as_uri(), options)
        found: list[tuple[str, Any]] = []
        first_served = next((m for m in mapping.tools if m.tool is not None), None)
        for mapped in mapping.tools:
            notes = list(mapped.notes) + (mapping.notes if mapped is first_served else [])
            if mapped.tool is None:
                entry = {"name": mapped.name, "x-openapi": {"skip": f"{mapped.operation.label}: {mapped.skip}"}}
            else:
                entry = {**mapped.tool, "x-openapi": {"notes": notes}}
                if options.base_url is None:
                    _check_base_url(entry["toolSettings"]["serverUrl"], mapped)
            found.append((mapped.location, entry))
        return found

    def normalise(self, entry: Any) -> NormalisedEntry:
        tool = dict(entry)
        extra = tool.pop("x-openapi", {})
        if extra.get("skip"):
            return NormalisedEntry({"name": tool.get("name")}, {}, shape="openapi", skip_reason=extra["skip"])
        normalised = hamsa_api.read(tool, timeout_in_ms=False)
        normalised.shape = "openapi"
        normalised.warnings += [("", note) for note in extra.get("notes", ())]
        return normalised


READER = OpenApiReader()


# --- operations -> tools -------------------------------------------------------------------------


def _operations(paths: dict[str, Any], uri: str, converter: SchemaConverter) -> Iterable[Operation]:
    for path, item in paths.items():
        item, base = converter.deref(item, uri)
        if not isinstance(item, dict):
            continue
        for method in METHODS:
            node = item.get(method)
            if isinstance(node, dict):
                yield Operation(method, str(path), node, item, base)


def _matches(operation: Operation, tags: Iterable[str], operations: Iterable[str], paths: Iterable[str]) -> bool:
    return (
        any(tag in operation.tags for tag in tags)
        or (operation.operation_id is not None and operation.operation_id in operations)
        or any(fnmatch.fnmatchcase(operation.path, pattern) for pattern in paths)
    )


def _tool_name(operation: Operation) -> str:
    if operation.operation_id:
        name = _NOT_IN_NAME.sub("_", operation.operation_id).strip("_")
        if name:
            return name[:MAX_NAME]
    return slugify(f"{operation.method} {operation.path}")[:MAX_NAME] or operation.method


def _resolve_collisions(mapped: list[MappedTool]) -> None:
    """Two operations with one name: the later one (in document order) gets `_2`, `_3`, ... and a note."""
    first: dict[str, MappedTool] = {}
    taken = {m.name for m in mapped}
    for tool in mapped:
        if tool.name not in first:
            first[tool.name] = tool
            continue
        n = 2
        while True:
            suffix = f"_{n}"
            candidate = tool.name[: MAX_NAME - len(suffix)] + suffix
            if candidate not in taken:
                break
            n += 1
        tool.notes.append(f"named {candidate}: {tool.name} is {first[tool.name].operation.label}'s name")
        tool.name = candidate
        taken.add(candidate)
        first[candidate] = tool
        if tool.tool is not None:
            tool.tool["mcpName"] = candidate


def _map_operation(result: MappedTool, document: dict[str, Any], converter: SchemaConverter, options: Options) -> None:
    operation = result.operation
    node, method = operation.node, operation.method
    pool = SchemaPool()
    properties: dict[str, Any] = {}
    required: list[str] = []
    placement: dict[str, Any] = {}
    url_path = operation.path
    for param, base in _parameters(operation, converter):
        name, where = param.get("name"), param.get("in")
        if not isinstance(name, str) or where not in ("path", "query", "header", "cookie"):
            raise ShapeError("parameters", f"a parameter needs a `name` and an `in`, at {operation.label}")
        if where == "header" and name.lower() in IGNORED_HEADERS:
            continue
        if where == "cookie" or (where == "header" and name.lower() in FORBIDDEN_ARGUMENT_HEADERS):
            if param.get("required") is True:
                raise ShapeError("parameters", f"needs the {where} parameter {name}, which a tool never sends")
            result.notes.append(f"parameter {name} (in {where}) left out: a tool never sends it")
            continue
        argument = name if name not in properties else f"{where}_{name}"
        schema = _parameter_schema(param, base, converter, pool)
        properties[argument] = schema
        if param.get("required") is True or where == "path":
            required.append(argument)
        if where == "path":
            wire = name
            if not _IDENTIFIER.match(name):
                wire = re.sub(r"\W", "_", name)
                url_path = url_path.replace(f"{{{name}}}", f"{{{wire}}}")
            if wire != argument:
                placement[argument] = {"in": "path", "name": wire}
        elif where == "query":
            place: dict[str, Any] = {"in": "query"}
            if argument != name:
                place["name"] = name
            if _query_style(result, param, name) == "joined":
                place["explode"] = False
            if len(place) > 1:
                placement[argument] = place
            elif method in BODY_METHODS:
                placement[argument] = "query"
        else:
            placement[argument] = {"in": "header", "name": name}
    tool_extra: dict[str, Any] = {}
    body = node.get("requestBody")
    if body is not None:
        _map_body(result, body, operation.base, converter, pool, properties, required, placement, tool_extra)
    params: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        params["required"] = list(dict.fromkeys(required))
    params["additionalProperties"] = False
    if pool.defs:
        params["$defs"] = pool.defs
    auth = _auth(operation, document, converter, options)
    url = _base_url(operation, document, options).rstrip("/") + url_path
    summary = node.get("summary") if isinstance(node.get("summary"), str) else ""
    description = node.get("description") if isinstance(node.get("description"), str) else ""
    title = cut_description(summary.strip() or operation.operation_id or operation.label, MAX_TITLE)
    settings: dict[str, Any] = {"serverUrl": url, "methodType": method.upper()}
    settings.update({k: v for k, v in options.defaults.items() if k in SETTINGS_KEYS})
    tool: dict[str, Any] = {
        "type": "FUNCTION",
        "name": title,
        "mcpName": result.name,
        "description": cut_description(description or summary),
        "toolSettings": settings,
        "params": params,
    }
    tool.update({k: v for k, v in options.defaults.items() if k not in SETTINGS_KEYS})
    if placement:
        tool["placement"] = placement
    tool.update(tool_extra)
    if auth is not None:
        tool["auth"] = auth
    if options.output_schemas:
        output = _output_schema(operation, converter, result)
        if output is not None:
            tool["outputSchema"] = output
    result.tool = tool


def _query_style(result: MappedTool, param: dict[str, Any], name: str) -> str:
    """How a query parameter's list is sent: `exploded` (`ids=1&ids=2`, OpenAPI's default) or `joined`
    (`ids=1,2`: `style: form, explode: false`). Other styles (`spaceDelimited`, `pipeDelimited`,
    `deepObject`) are sent exploded, and a warning says so rather than nothing."""
    style = param.get("style", "form")
    explode = param.get("explode", style == "form")
    if style == "form":
        return "exploded" if explode is not False else "joined"
    shown = f"style {style}" + ("" if explode is True else ", explode false")
    result.notes.append(f"query parameter {name} ({shown}) is sent as {name}=a&{name}=b (form, exploded)")
    return "exploded"


def _parameters(operation: Operation, converter: SchemaConverter) -> list[tuple[dict[str, Any], str]]:
    """The path item's parameters overridden by the operation's, by (name, in), each dereferenced."""
    merged: dict[tuple[Any, Any], tuple[dict[str, Any], str]] = {}
    for source in (operation.path_item.get("parameters"), operation.node.get("parameters")):
        for raw in source if isinstance(source, list) else ():
            param, base = converter.deref(raw, operation.base)
            if isinstance(param, dict):
                merged[(param.get("name"), param.get("in"))] = (param, base)
    return list(merged.values())


def _parameter_schema(param: dict[str, Any], base: str, converter: SchemaConverter, pool: SchemaPool) -> Any:
    node = param.get("schema")
    if node is None and isinstance(param.get("content"), dict) and param["content"]:
        node = next(iter(param["content"].values())).get("schema")
    schema = converter.part(node if node is not None else {}, base, pool, for_input=True)
    if isinstance(schema, dict) and isinstance(param.get("description"), str) and "description" not in schema:
        schema = {**schema, "description": cut_description(param["description"])}
    if isinstance(schema, dict) and "example" in param and "examples" not in schema:
        schema = {**schema, "examples": [param["example"]]}
    return schema


def _map_body(
    result: MappedTool,
    body: Any,
    base: str,
    converter: SchemaConverter,
    pool: SchemaPool,
    properties: dict[str, Any],
    required: list[str],
    placement: dict[str, Any],
    tool_extra: dict[str, Any],
) -> None:
    operation = result.operation
    body, base = converter.deref(body, base)
    if not isinstance(body, dict):
        return
    content = body.get("content") if isinstance(body.get("content"), dict) else {}
    body_required = body.get("required") is True
    if operation.method not in BODY_METHODS:
        result.notes.append(f"its request body is left out: a {operation.method.upper()} request sends none")
        return
    media = _media_type(content)
    if media is None:
        kinds = ", ".join(content) or "no media type"
        if body_required:
            raise ShapeError("requestBody", f"takes its body as {kinds}; a tool sends JSON or a form")
        result.notes.append(f"its request body ({kinds}) is left out: a tool sends JSON or a form")
        return
    if media == "form":
        tool_extra["bodyEncoding"] = "form"
    node = (content[_media_key(content, media)] or {}).get("schema", {})
    resolved, resolved_base = converter.deref(node, base)
    inline = (
        isinstance(resolved, dict)
        and isinstance(resolved.get("properties"), dict)
        and resolved.get("type", "object") == "object"
        and not any(key in resolved for key in ("allOf", "anyOf", "oneOf", "$ref"))
        and not set(resolved["properties"]) & set(properties)
    )
    if inline:
        converted = converter.part(resolved, resolved_base, pool, for_input=True)
        properties.update(converted.get("properties", {}))
        # Carried over even from an optional body (Twilio marks none required): a tool always sends a
        # body, and a body without its required fields is refused upstream anyway.
        required.extend(converted.get("required", []))
        return
    name = "body" if "body" not in properties else "requestBody"
    properties[name] = converter.part(node, base, pool, for_input=True)
    if body_required:
        required.append(name)
    tool_extra["bodyArgument"] = name  # the other arguments not placed elsewhere go in the query


def _media_type(content: dict[str, Any]) -> str | None:
    kinds = [key.split(";")[0].strip().lower() for key in content]
    if any(kind == "application/json" or kind.endswith("+json") for kind in kinds):
        return "json"
    if "application/x-www-form-urlencoded" in kinds:
        return "form"
    return None


def _media_key(content: dict[str, Any], media: str) -> str:
    for key in content:
        kind = key.split(";")[0].strip().lower()
        if (media == "json" and (kind == "application/json" or kind.endswith("+json"))) or (
            media == "form" and kind == "application/x-www-form-urlencoded"
        ):
            return key
    raise KeyError(media)


def _output_schema(operation: Operation, converter: SchemaConverter, result: MappedTool) -> dict[str, Any] | None:
    responses = operation.node.get("responses") if isinstance(operation.node.get("responses"), dict) else {}
    for status in sorted(responses, key=str):
        if not str(status).startswith("2"):
            continue
        response, base = converter.deref(responses[status], operation.base)
        content = response.get("content") if isinstance(response, dict) else None
        if not isinstance(content, dict) or _media_type(content) != "json":
            continue
        node = (content[_media_key(content, "json")] or {}).get("schema")
        if node is None:
            return None
        resolved, resolved_base = converter.deref(node, base)
        pool = SchemaPool()
        schema = converter.part(resolved, resolved_base, pool, for_input=False)
        if pool.defs:
            schema = {**schema, "$defs": {**schema.get("$defs", {}), **pool.defs}}
        try:
            check_output_schema(schema)
        except ValueError as exc:
            result.notes.append(f"no outputSchema: the {status} response schema {exc}")
            return None
        return schema
    return None


def _base_url(operation: Operation, document: dict[str, Any], options: Options) -> str:
    if options.base_url is not None:
        return options.base_url
    for servers in (operation.node.get("servers"), operation.path_item.get("servers"), document.get("servers")):
        if isinstance(servers, list) and servers and isinstance(servers[0], dict):
            server = servers[0]
            url = str(server.get("url", ""))
            for name, variable in (server.get("variables") or {}).items():
                if isinstance(variable, dict) and "default" in variable:
                    url = url.replace(f"{{{name}}}", str(variable["default"]))
            return url
    return ""


def _check_base_url(url: str, mapped: MappedTool) -> None:
    if not url.lower().startswith(("http://", "https://")):
        raise ShapeError(
            "servers",
            f"gives no absolute URL for {mapped.operation.label}; reference the document from a file of ours "
            "with `baseUrl: ${API_URL}` (see docs/openapi.md)",
        )


# --- security schemes -> auth --------------------------------------------------------------------


def _auth(
    operation: Operation, document: dict[str, Any], converter: SchemaConverter, options: Options
) -> dict[str, Any] | None:
    requirements = operation.node.get("security", document.get("security"))
    if not isinstance(requirements, list) or not requirements:
        return None
    components = document.get("components") if isinstance(document.get("components"), dict) else {}
    schemes = components.get("securitySchemes") if isinstance(components.get("securitySchemes"), dict) else {}
    reasons: list[str] = []
    for alternative in requirements:
        if not isinstance(alternative, dict):
            continue
        if not alternative:
            return None  # `{}`: anonymous access is one of the alternatives
        if len(alternative) > 1:
            reasons.append(f"{' + '.join(alternative)} together (a tool has one auth)")
            continue
        ((scheme_name, scopes),) = alternative.items()
        if scheme_name in options.auth:
            return dict(options.auth[scheme_name])
        scheme, _ = converter.deref(schemes.get(scheme_name), operation.base)
        block, why = _scheme_auth(str(scheme_name), scheme, scopes)
        if block is not None:
            return block
        reasons.append(f"{scheme_name} ({why})")
    raise ShapeError(
        "security",
        f"no security scheme of it can be served: {'; '.join(reasons)}; give an `auth` block for the "
        "scheme in a file of ours that references the document",
    )


def _scheme_auth(name: str, scheme: Any, scopes: Any) -> tuple[dict[str, Any] | None, str]:
    if not isinstance(scheme, dict):
        return None, "not in components.securitySchemes"
    prefix = _env_prefix(name)
    kind = scheme.get("type")
    if kind == "http":
        http = str(scheme.get("scheme", "")).lower()
        if http == "bearer":
            return {"type": "bearer", "token": f"${{{_env_name(prefix, 'TOKEN')}}}"}, ""
        if http == "basic":
            return {"type": "basic", "username": f"${{{prefix}_USERNAME}}", "password": f"${{{prefix}_PASSWORD}}"}, ""
        return None, f"HTTP {scheme.get('scheme')} auth"
    if kind == "apiKey":
        where = scheme.get("in")
        if where in ("header", "query") and isinstance(scheme.get("name"), str):
            value = f"${{{_env_name(prefix, 'KEY')}}}"
            return {"type": "apiKey", "in": where, "name": scheme["name"], "value": value}, ""
        return None, f"an API key in a {where}"
    if kind == "oauth2":
        flows = scheme.get("flows") if isinstance(scheme.get("flows"), dict) else {}
        credentials = flows.get("clientCredentials")
        if isinstance(credentials, dict) and isinstance(credentials.get("tokenUrl"), str):
            block: dict[str, Any] = {
                "type": "oauth2ClientCredentials",
                "tokenUrl": credentials["tokenUrl"],
                "clientId": f"${{{prefix}_CLIENT_ID}}",
                "clientSecret": f"${{{prefix}_CLIENT_SECRET}}",
            }
            if isinstance(scopes, list) and scopes:
                block["scopes"] = [str(scope) for scope in scopes]
            return block, ""
        return None, f"OAuth2 {', '.join(flows) or 'without flows'}, which needs a person to sign in"
    return None, f"{kind} auth"


def _env_name(prefix: str, what: str) -> str:
    """`API_KEY` + `KEY` -> `API_KEY`, not `API_KEY_KEY`."""
    return prefix if prefix == what or prefix.endswith(f"_{what}") else f"{prefix}_{what}"


def _env_prefix(scheme_name: str) -> str:
    """`accountSid_authToken` -> `ACCOUNT_SID_AUTH_TOKEN`: the stem of the variables a scheme reads."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", scheme_name)
    return re.sub(r"[^A-Za-z0-9]+", "_", spaced).strip("_").upper() or "API"


def _selection_part(source: dict[str, Any], key: str) -> dict[str, tuple[str, ...]]:
    part = source.get(key) or {}
    if not isinstance(part, dict):
        raise ShapeError(key, f"must be an object with any of {', '.join(SELECTION_KEYS)}")
    found: dict[str, tuple[str, ...]] = {}
    for name, values in part.items():
        if name not in SELECTION_KEYS:
            raise ShapeError(f"{key}.{name}", "is not a selection" + did_you_mean(str(name), SELECTION_KEYS))
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ShapeError(f"{key}.{name}", "must be a list of strings")
        found[name] = tuple(values)
    return found


def _string_map(source: dict[str, Any], key: str) -> dict[str, str]:
    value = source.get(key) or {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ShapeError(key, "must map operationIds to tool names")
    return {str(k): v for k, v in value.items()}
