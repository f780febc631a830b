"""Reading config files and folders into validated `ToolDefinition`s.

`load_definitions` collects every problem it finds (file, tool, field, message) and raises them
together as `ConfigErrors`, so a person fixes a config in one pass instead of one error at a time.
`${NAME}` and `${NAME:-default}` are read from the environment here; a value that came from the
environment is recorded as a secret of its tool. Errors and warnings pass through a `Redactor` of
every secret the files configure before anyone sees them (printed by the CLI, or logged before the
server's logging filter knows the toolset).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from .definitions import ToolDefinition
from .egress import EgressPolicy, is_loopback_host
from .errors import ConfigErrors, EgressDenied, ShapeError
from .redaction import Redactor, configured_secrets
from .shapes import NormalisedEntry, entries_in_document, normalise_entry

__all__ = [
    "CONFIG_SUFFIXES",
    "ConfigProblem",
    "LoadResult",
    "config_files",
    "load_definitions",
]

logger = logging.getLogger(__name__)

CONFIG_SUFFIXES = (".json", ".yaml", ".yml")
MAX_CONFIG_FILE_BYTES = 10 * 1024 * 1024
ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
# The canonical fields whose values may use `${NAME}`.
ENV_FIELDS = ("url", "auth_token", "headers", "path_defaults")
MAX_LABEL_CHARS = 60


@dataclass(frozen=True)
class ConfigProblem:
    """One problem in one config file, said so a person can act on it.

    A record, not an exception: `ConfigErrors` carries every one found, and warnings are these too.
    """

    file: str
    message: str
    tool: str | None = None
    field: str | None = None

    def redacted(self, redactor: Redactor) -> ConfigProblem:
        """The same problem with every secret in its texts masked (a message may quote the config)."""
        return replace(
            self,
            message=redactor(self.message),
            tool=redactor(self.tool) if self.tool else self.tool,
            field=redactor(self.field) if self.field else self.field,
        )

    def __str__(self) -> str:
        where = self.file
        if self.tool:
            where += f": tool {self.tool!r}"
        if self.field:
            where += f": field `{self.field}`"
        return f"{where}: {self.message}"


@dataclass
class LoadResult:
    definitions: list[ToolDefinition]
    warnings: list[ConfigProblem] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


def config_files(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[Path], list[ConfigProblem]]:
    """Expand files and folders into the config files they name, in a stable order."""
    files: list[Path] = []
    errors: list[ConfigProblem] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in CONFIG_SUFFIXES)
            if not found:
                errors.append(ConfigProblem(str(path), "folder holds no *.json, *.yaml or *.yml files"))
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            errors.append(ConfigProblem(str(path), "no such file or folder"))
    unique: list[Path] = []
    for path in files:
        if path.resolve() not in {p.resolve() for p in unique}:
            unique.append(path)
    return unique, errors


def load_definitions(
    paths: Iterable[str | os.PathLike[str]],
    environ: Mapping[str, str] | None = None,
    egress: EgressPolicy | None = None,
) -> LoadResult:
    """Load, normalise and validate every tool in `paths`; raise `ConfigErrors` listing all problems.

    Every tool's URL must also pass the egress policy (the default one when none is given).
    """
    environ = os.environ if environ is None else environ
    egress = egress or EgressPolicy()
    files, errors = config_files(paths)
    warnings: list[ConfigProblem] = []
    definitions: list[ToolDefinition] = []
    secrets: set[str] = set()
    for path in files:
        file_defs, file_errors, file_warnings = _load_file(path, environ, egress, secrets)
        definitions.extend(file_defs)
        errors.extend(file_errors)
        warnings.extend(file_warnings)
    errors.extend(_duplicate_names(definitions))
    # A message may quote the config (a host from `${...}`, a value pasted in the wrong place).
    redactor = Redactor(secrets)
    errors = [error.redacted(redactor) for error in errors]
    warnings = [warning.redacted(redactor) for warning in warnings]
    for warning in warnings:
        logger.warning("%s", warning)
    if errors:
        raise ConfigErrors(errors)
    if not definitions:
        raise ConfigErrors([ConfigProblem(", ".join(str(p) for p in files) or "config", "defines no FUNCTION tools")])
    definitions.sort(key=lambda d: d.mcp_name)
    return LoadResult(definitions=definitions, warnings=warnings, files=files)


def _read_document(path: Path) -> Any:
    size = path.stat().st_size
    if size > MAX_CONFIG_FILE_BYTES:
        raise ValueError(f"file is {size} bytes; the limit is {MAX_CONFIG_FILE_BYTES}")
    text = path.read_text(encoding="utf-8-sig")  # tolerate the BOM some Windows editors write
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    import yaml  # here, not at the top: a JSON-only server never pays for it (about 1 MiB resident)

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ValueError(f"invalid YAML{where}: {problem}") from None


def _load_file(
    path: Path, environ: Mapping[str, str], egress: EgressPolicy, secrets: set[str]
) -> tuple[list[ToolDefinition], list[ConfigProblem], list[ConfigProblem]]:
    """The file's definitions, errors and warnings; the secrets it configures are added to `secrets`."""
    file = str(path)
    try:
        document = _read_document(path)
        entries = entries_in_document(document)
    except UnicodeDecodeError:
        return [], [ConfigProblem(file, "is not UTF-8 text")], []
    except ShapeError as exc:
        return [], [ConfigProblem(file, exc.message, field=exc.field or None)], []
    except (OSError, ValueError) as exc:
        return [], [ConfigProblem(file, str(exc))], []

    definitions: list[ToolDefinition] = []
    errors: list[ConfigProblem] = []
    warnings: list[ConfigProblem] = []
    for location, entry in entries:
        label = _entry_label(entry, location)
        try:
            normalised = normalise_entry(entry)
        except ShapeError as exc:
            errors.append(ConfigProblem(file, exc.message, tool=label, field=_join(location, exc.field)))
            continue
        warnings += [ConfigProblem(file, m, tool=label, field=_join(location, f)) for f, m in normalised.warnings]
        if normalised.skip_reason:
            warnings.append(ConfigProblem(file, f"skipped: {normalised.skip_reason}", tool=label))
            continue
        # Parts that could not be read are reported with whatever the rest of the entry has wrong.
        errors += [ConfigProblem(file, m, tool=label, field=_join(location, f)) for f, m in normalised.problems]
        definition, entry_errors = _validate(normalised, file, label, location, environ, egress, secrets)
        errors.extend(entry_errors)
        if normalised.problems:
            continue
        if definition is not None:
            definitions.append(definition)
    return definitions, errors, warnings


def _entry_label(entry: Any, location: str) -> str:
    """How errors name a tool: its name (shortened if huge), else where it sits in the file."""
    raw = getattr(entry, "entry", entry)
    if isinstance(raw, dict) and isinstance(raw.get("name"), str) and raw["name"].strip():
        name: str = raw["name"]
        return name if len(name) <= MAX_LABEL_CHARS else name[: MAX_LABEL_CHARS - 3] + "..."
    return f"unnamed entry {location}" if location else "unnamed entry"


def _join(location: str, field_path: str | None) -> str | None:
    parts = [p for p in (location, field_path) if p]
    return ".".join(parts) if parts else None


def _validate(
    normalised: NormalisedEntry,
    file: str,
    label: str | None,
    location: str,
    environ: Mapping[str, str],
    egress: EgressPolicy,
    all_secrets: set[str],
) -> tuple[ToolDefinition | None, list[ConfigProblem]]:
    values = dict(normalised.values)
    errors: list[ConfigProblem] = []
    secrets: set[str] = set()  # the values that came from the environment

    def substitute(text: str, field_path: str) -> str:
        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in environ:
                secrets.update(_secret_forms(environ[name]))
                return environ[name]
            if default is not None:
                return default
            errors.append(
                ConfigProblem(
                    file, f"environment variable {name} is not set", tool=label, field=_join(location, field_path)
                )
            )
            return ""

        return ENV_REFERENCE.sub(replace, text)

    fields = normalised.fields
    if isinstance(values.get("url"), str):
        values["url_template"] = values["url"]
        values["url"] = substitute(values["url"], fields["url"])
    if isinstance(values.get("auth_token"), str):
        values["auth_token"] = substitute(values["auth_token"], fields["auth_token"])
    values["headers"] = [
        (name, substitute(value, f"{fields['headers']}.{name}")) for name, value in values.get("headers", [])
    ]
    values["path_defaults"] = {
        name: substitute(value, f"{fields['path_defaults']}.{name}")
        for name, value in values.get("path_defaults", {}).items()
    }
    # Everything the server will treat as secret, gathered even when the entry turns out invalid.
    token = values.get("auth_token")
    all_secrets |= configured_secrets(token if isinstance(token, str) else None, values["headers"], secrets)
    if errors:
        return None, errors
    values["source"] = file
    values["secrets"] = frozenset(secrets)
    try:
        definition = ToolDefinition.model_validate(values)
        egress.check_url(definition.url, allow_http=definition.allow_http)
        return definition, []
    except EgressDenied as exc:
        # The host may have come from a `${...}` value: `load_definitions` hides it like any other secret.
        return None, [ConfigProblem(file, str(exc), tool=label, field=_join(location, fields["url"]))]
    except ValidationError as exc:
        problems = exc.errors(include_url=False)
        bad = {str(problem["loc"][0]) for problem in problems if problem["loc"]}
        for problem in problems:
            # A model-level error is the placeholder check, which is about the URL.
            canonical = str(problem["loc"][0]) if problem["loc"] else "url"
            if canonical == "mcp_name" and fields.get("mcp_name") == "name" and "name" in bad:
                continue  # the slug of a bad name is bad too; one error about `name` says it
            user_field = fields.get(canonical, canonical)
            rest = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in problem["loc"][1:])
            errors.append(ConfigProblem(file, _say(problem), tool=label, field=_join(location, user_field + rest)))
        return None, errors


def _secret_forms(value: str) -> set[str]:
    """A `${...}` value, and when it is a whole URL its host too: error texts name hosts bare."""
    forms = {value}
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        return forms
    # A loopback address says nothing about anyone's infrastructure, and masking it would garble
    # every local URL in the logs ("serving at http://***:8000").
    if host and not is_loopback_host(host):
        forms |= {parts.netloc, host}
    return forms


# Pydantic's wording names Python types ("a valid tuple"); a config author thinks in JSON/YAML.
_TYPE_MESSAGES = {
    "string_type": "must be a string",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "tuple_type": "must be a list",
    "list_type": "must be a list",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "string_unicode": "must be a string",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "literal_error": "must be one of GET, POST, PUT, PATCH, DELETE (any case)",  # `method` is the only Literal
    "missing": "is required",
}


def _say(problem: Any) -> str:
    """One pydantic problem as a sentence about the user's field; never includes the value."""
    kind, ctx = problem["type"], problem.get("ctx") or {}
    if problem["input"] is None and kind != "value_error":
        return "is required"
    if kind in _TYPE_MESSAGES:
        return _TYPE_MESSAGES[kind]
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_too_long":
        return f"must be at most {ctx['max_length']} characters (it has {len(problem['input'])})"
    if kind == "greater_than":
        return f"must be greater than {ctx['gt']:g}"
    if kind == "less_than_equal":
        return f"must be at most {ctx['le']:g}"
    if kind == "greater_than_equal":
        return f"must be at least {ctx['ge']:g}"
    if kind == "extra_forbidden":
        return "is not a known setting"
    if kind == "string_pattern_mismatch":
        return "is not a valid value here"
    return str(problem["msg"]).removeprefix("Value error, ")


def _duplicate_names(definitions: list[ToolDefinition]) -> list[ConfigProblem]:
    by_name: dict[str, ToolDefinition] = {}
    errors: list[ConfigProblem] = []
    for definition in definitions:
        first = by_name.setdefault(definition.mcp_name, definition)
        if first is not definition:
            errors.append(
                ConfigProblem(
                    definition.source,
                    f"MCP tool name {definition.mcp_name!r} is also used by tool {first.name!r} in {first.source}; "
                    "rename one or set `mcpName`",
                    tool=definition.name,
                    field="name",
                )
            )
    return errors
