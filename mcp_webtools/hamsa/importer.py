"""`mcp-webtools hamsa import`: tools exported from Hamsa, written as config files without secrets.

Every credential found (authToken, secret-looking headers, credential query parameters) is
replaced by a `${NAME}` reference, and the names to set are returned; no credential value
reaches the disk.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote

from ..definitions import MCP_NAME_RULE, slugify, url_problems, with_required_placeholders
from ..errors import ConfigErrors, HamsaError, ShapeError
from ..loading import ENV_REFERENCE, load_definitions
from ..readers import EXTENSION_FIELDS, entries_in_document, params_schema, path_defaults, unwrapped
from ..redaction import Redactor, secret_header_values
from .format import (
    AUTH_TYPES,
    GUIDE_SETTINGS,
    GUIDE_TIMEOUT_KEYS,
    RECORD_KEYS,
    SETTINGS_KEYS,
    TOOL_KEYS,
    guide_auth_type,
    is_mcp_tool,
    is_number,
    seconds_from_milliseconds,
)

__all__ = ["EnvVar", "ImportResult", "import_tools", "read_export", "unwritable", "write_file"]

MAX_EXPORT_BYTES = 10 * 1024 * 1024
MIN_REUSED_SECRET = 8
WHOLE_ENV_REFERENCE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}$")
# Auth schemes kept in front of a `${...}` reference: the word is not secret, the rest is.
AUTH_SCHEME = re.compile(r"^(Bearer|Token|Basic)(\s+)(\S.*)$", re.IGNORECASE | re.DOTALL)
# A URL query parameter whose name contains one of these is taken for a credential.
SECRET_QUERY_WORDS = ("key", "token", "secret", "password", "passwd", "auth", "signature", "credential")
# What a written file keeps: Hamsa's keys and ours; the rest is reported as dropped.
KEPT_KEYS = (*TOOL_KEYS, "mcpName", *EXTENSION_FIELDS)


@dataclass(frozen=True)
class EnvVar:
    name: str
    tool: str
    where: str  # where in the tool it goes, e.g. `toolSettings.httpHeaders.X-Api-Key`
    after: str = ""  # an auth scheme kept in the file in front of the reference


@dataclass
class ImportResult:
    written: list[tuple[Path, str]] = field(default_factory=list)  # (file, tool name)
    skipped: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    env: list[EnvVar] = field(default_factory=list)
    load_problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Where the values of `env` are to be found: in Hamsa for a Hamsa export, with the API's owner otherwise.
    env_heading: str = "Set these environment variables to the values the tools have in Hamsa (not written here):"

    def lines(self) -> list[str]:
        lines = [f"wrote {path}  ({name})" for path, name in self.written]
        lines += [f"skipped {note}" for note in self.skipped]
        lines += [f"dropped {note}" for note in self.dropped]
        lines += [f"note: {note}" for note in self.notes]
        if self.env:
            lines.append(self.env_heading)
            width = max(len(var.name) for var in self.env)
            for var in self.env:
                hint = f' (the part after "{var.after}")' if var.after else ""
                lines.append(f"  {var.name:<{width}}  {var.tool}: {var.where}{hint}")
        return lines


def read_export(source: str, stdin: BinaryIO) -> Any:
    """The parsed JSON of FILE, or of stdin for `-`. Messages never quote the content: it holds secrets."""
    label = "stdin" if source == "-" else source
    try:
        if source == "-":
            data = stdin.read(MAX_EXPORT_BYTES + 1)
        else:
            with open(source, "rb") as file:
                data = file.read(MAX_EXPORT_BYTES + 1)
    except OSError as exc:
        raise HamsaError(f"{label}: cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_EXPORT_BYTES:
        raise HamsaError(f"{label}: larger than {MAX_EXPORT_BYTES} bytes")
    try:
        return json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise HamsaError(f"{label}: is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise HamsaError(f"{label}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None


def import_tools(document: Any, out: Path, *, force: bool = False, source: str = "input") -> ImportResult:
    """Write one `<slug>.json` per FUNCTION tool of an export into `out`; all or nothing.

    Raises `HamsaError` listing every problem (unreadable entries, files that exist without
    `force`) before anything is written. `load_problems` are what `validate` would still say.
    """
    result = ImportResult()
    problems: list[str] = []
    planned: list[tuple[Path, str, dict[str, Any]]] = []
    slugs: set[str] = set()
    env_names: set[str] = set()
    try:
        entries = entries_in_document(document)  # the layouts and shapes `validate` reads, mixed as it allows
    except ShapeError as exc:
        raise HamsaError(f"{source}: {exc.field + ' ' if exc.field else ''}{exc.message}") from None
    for index, (location, wrapped) in enumerate(entries):
        entry = unwrapped(wrapped)
        label = f"{source}: {location}" if location else source
        if not isinstance(entry, dict):
            problems.append(f"{label}: a tool must be an object")
            continue
        name = entry.get("name")
        shown = name if isinstance(name, str) and name.strip() else f"unnamed entry {location}".strip()
        if is_mcp_tool(entry):
            result.skipped.append(f"{shown!r}: an MCP-type tool is a server, not an HTTP tool to serve")
            continue
        slug = _unique_slug(entry, index, slugs)
        try:
            document_out = _tool_file(entry, shown, slug, env_names, result)
        except HamsaError as exc:
            problems.append(f"{label}: tool {shown!r}: {exc}")
            continue
        planned.append((out / f"{slug}.json", shown, document_out))
    problems += unwritable(out, [path for path, _, _ in planned], force)
    if problems:
        raise HamsaError("nothing written:\n" + "\n".join(f"  - {p}" for p in problems))
    if not planned:
        raise HamsaError(f"{source}: holds no FUNCTION tools to import")
    out.mkdir(parents=True, exist_ok=True)
    for path, shown, document_out in planned:
        write_file(path, json.dumps(document_out, indent=2, ensure_ascii=False) + "\n", force)
        result.written.append((path, shown))
    result.load_problems = _load_problems([path for path, _, _ in planned], result.env)
    return result


def _unique_slug(entry: dict[str, Any], index: int, used: set[str]) -> str:
    """The tool's MCP name (its `mcpName`, else its name's slug), made unique; the file is named after it."""
    name, mcp_name = entry.get("name"), entry.get("mcpName")
    if isinstance(mcp_name, str) and MCP_NAME_RULE.match(mcp_name):
        base = mcp_name
    else:
        base = (slugify(name) if isinstance(name, str) else "")[:100].strip("_") or f"tool_{index + 1}"
    slug, n = base, 2
    while slug in used:
        slug, n = f"{base}_{n}", n + 1
    used.add(slug)
    return slug


def _api_body(entry: dict[str, Any], shown: str, result: ImportResult) -> dict[str, Any]:
    """A tool of the guide's shape as the API body it means (what the written files hold); others as they are."""
    if "toolSettings" in entry or not ("url" in entry or "methodType" in entry):
        return entry
    auth_type = guide_auth_type(entry)
    if auth_type not in AUTH_TYPES:
        raise HamsaError(f'authType must be "jwtAuth" or "none", not {auth_type!r}')
    settings = {GUIDE_SETTINGS[key]: value for key, value in entry.items() if key in GUIDE_SETTINGS}
    timeout = next((key for key in GUIDE_TIMEOUT_KEYS if key in entry), None)
    if timeout is not None:  # the one the loader reads
        settings["timeOut"] = entry[timeout]
    if entry.get("authToken"):
        if auth_type == "jwtAuth":
            settings["authToken"] = entry["authToken"]
        else:
            result.dropped.append(f'{shown!r}: field `authToken` (authType is "none")')
    moved = {*GUIDE_SETTINGS, "authType", "authToken", "parameters"}
    body = {key: value for key, value in entry.items() if key not in moved}
    if "parameters" in entry:  # the guide's name for `params`, read first when both are given
        body["params"] = entry["parameters"]
    return {**body, "toolSettings": settings}


def _tool_file(entry: dict[str, Any], shown: str, slug: str, env_names: set[str], result: ImportResult) -> dict:
    entry = _api_body(entry, shown, result)
    settings = entry.get("toolSettings")
    if not isinstance(entry.get("name"), str) or not entry["name"].strip():
        raise HamsaError("has no `name`")
    if not isinstance(settings, dict):
        raise HamsaError("has no `toolSettings` object; is this a Hamsa API export?")
    stem = slug.upper() if not slug[0].isdigit() else f"TOOL_{slug.upper()}"

    replaced: list[str] = []

    def reference(suffix: str, value: str, where: str) -> str:
        """`${STEM_SUFFIX}` (after an auth scheme, if any) in place of `value`; the name is recorded."""
        replaced.append(value)
        scheme = AUTH_SCHEME.match(value)
        base = f"{stem}_{re.sub(r'[^A-Za-z0-9]+', '_', suffix).strip('_').upper()}"
        var, n = base, 2
        while var in env_names:
            var, n = f"{base}_{n}", n + 1
        env_names.add(var)
        result.env.append(EnvVar(var, shown, where, scheme.group(1) if scheme else ""))
        return f"{scheme.group(1)}{scheme.group(2)}${{{var}}}" if scheme else f"${{{var}}}"

    written: dict[str, Any] = {}
    url = settings.get("serverUrl")
    if isinstance(url, str):
        if "credentials" in url_problems(url):
            raise HamsaError("toolSettings.serverUrl holds user:password@; move it to authToken in Hamsa first")
        url = _url_without_secrets(url, lambda name, value: reference(name, value, f"serverUrl query `{name}`"))
    written["serverUrl"] = url
    if "methodType" in settings:
        written["methodType"] = settings["methodType"]
    token = settings.get("authToken")
    if isinstance(token, str) and token and not WHOLE_ENV_REFERENCE.match(token):
        written["authToken"] = reference("AUTH_TOKEN", token, "toolSettings.authToken")
    elif token not in (None, ""):
        written["authToken"] = token
    if "timeOut" in settings:
        written["timeOut"] = settings["timeOut"]
    elif "timeout" in settings:
        written["timeOut"] = _seconds(settings["timeout"])
    if settings.get("httpHeaders") is not None:
        where = "toolSettings.httpHeaders."
        written["httpHeaders"] = {
            name: reference(name, value, where + name) if _is_secret_header(name, value) else value
            for name, value in _header_pairs(settings["httpHeaders"])
        }
    if settings.get("pathParameters") is not None:
        written["pathParameters"] = settings["pathParameters"]

    present = {key: value for key, value in entry.items() if key in KEPT_KEYS and value is not None}
    out: dict[str, Any] = {"type": present.get("type", "FUNCTION"), "name": present["name"]}
    if "mcpName" in present or slugify(present["name"]) != slug:
        out["mcpName"] = slug
    if "description" in present:
        out["description"] = present["description"]
    out["toolSettings"] = written
    out.update((key, present[key]) for key in KEPT_KEYS if key in present and key not in out)
    if "params" in out:
        out["params"] = params_schema(out["params"])  # the API's bare property map, as a JSON Schema
        if isinstance(url, str):  # a placeholder without a default is required, and the file says so
            out["params"] = with_required_placeholders(out["params"], ENV_REFERENCE.sub("", url), _defaults(written))
    result.dropped += [f"{shown!r}: field `{k}`" for k in entry if k not in KEPT_KEYS and k not in RECORD_KEYS]
    result.dropped += [f"{shown!r}: field `toolSettings.{k}`" for k in settings if k not in SETTINGS_KEYS]
    # A credential reused elsewhere (a URL path, a path default) would still reach the disk: refuse.
    # Short values are left out: a header like `X-Tenant: acme` may well also name the host.
    text = json.dumps(out, ensure_ascii=False)
    if Redactor(v for v in replaced if len(v) >= MIN_REUSED_SECRET)(text) != text:
        raise HamsaError("a credential of this tool also appears outside authToken, headers and query; move it first")
    return out


def _defaults(settings: dict[str, Any]) -> dict[str, str]:
    try:
        return path_defaults(settings.get("pathParameters"), "toolSettings.pathParameters")
    except ShapeError:
        return {}  # `validate` (and so this import's report) says what is wrong with them


def _seconds(milliseconds: Any) -> Any:
    """The export's `timeout` is in ms; config files take `timeOut` in seconds."""
    if not is_number(milliseconds):
        raise HamsaError("toolSettings.timeout must be a number (milliseconds)")
    return seconds_from_milliseconds(milliseconds)


def _header_pairs(headers: Any) -> list[tuple[str, str]]:
    if isinstance(headers, dict):
        pairs = list(headers.items())
    elif isinstance(headers, list) and all(isinstance(h, dict) and isinstance(h.get("name"), str) for h in headers):
        pairs = [(h["name"], h.get("value", "")) for h in headers]
    else:
        raise HamsaError("toolSettings.httpHeaders must be an object of name: value")
    for name, value in pairs:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise HamsaError(f"toolSettings.httpHeaders.{name} must be a string or a number")
    return [(str(name), str(value)) for name, value in pairs]


def _is_secret_header(name: str, value: str) -> bool:
    # One rule for what counts as a secret header: the redactor's.
    return bool(value) and not WHOLE_ENV_REFERENCE.match(value) and bool(secret_header_values([(name, value)]))


def _url_without_secrets(url: str, replace: Any) -> str:
    """`url` with the value of every credential-looking query parameter swapped for a reference."""
    head, mark, query = url.partition("?")
    if not mark:
        return url
    pairs = []
    for pair in query.split("&"):
        name, equals, value = pair.partition("=")
        lowered = unquote(name).lower()
        if equals and value and not WHOLE_ENV_REFERENCE.match(value) and any(w in lowered for w in SECRET_QUERY_WORDS):
            value = replace(unquote(name), value)
        pairs.append(f"{name}{equals}{value}")
    return f"{head}?{'&'.join(pairs)}"


def unwritable(out: Path, paths: Iterable[Path], force: bool) -> list[str]:
    """Why the planned files cannot all be written into `out` (all or nothing): `[]` when they can."""
    if out.exists() and not out.is_dir():
        return [f"--out {out} is not a folder"]
    if force:
        return []
    return [f"{path} already exists; use --force to overwrite it" for path in paths if path.exists()]


def write_file(path: Path, text: str, force: bool) -> None:
    """Write one imported file: never over an existing one without `force`; with it, replaced whole."""
    if not force:
        with open(path, "x", encoding="utf-8") as file:  # "x": never clobber a file that appeared meanwhile
            file.write(text)
        return
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def _load_problems(paths: Iterable[Path], env: Iterable[EnvVar]) -> list[str]:
    """What `mcp-webtools validate` says of the written files once the variables are set."""
    placeholders = {var.name: "imported-placeholder" for var in env}
    try:
        load_definitions(list(paths), environ={**os.environ, **placeholders})
    except ConfigErrors as exc:
        return [str(error) for error in exc.errors]
    return []
