"""Reading config files and folders into validated `ToolDefinition`s.

`load_definitions` collects every problem it finds (file, tool, field, message) and raises them
together as `ConfigErrors`, so a person fixes a config in one pass instead of one error at a time.
`${NAME}` and `${NAME:-default}` are read from the environment here; a value that came from the
environment is recorded as a secret of its tool. Errors and warnings pass through a `Redactor` of
every secret the files configure before anyone sees them (printed by the CLI, or logged before the
server's logging filter knows the toolset).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from .auth import auth_block_problems, auth_block_secrets, basic_value
from .definitions import SchemaProblems, ToolDefinition
from .egress import EgressPolicy, is_loopback_host
from .endpoints import ENDPOINT_KEYS, EndpointConfig, is_endpoints_document, read_endpoints_document
from .errors import ConfigErrors, EgressDenied, ShapeError
from .examples import example_problems
from .forwarding import forward_caller_problems
from .ratelimit import RateLimit
from .readers import NormalisedEntry, entries_in_document, normalise_entry, unwrapped
from .redaction import Redactor, configured_secrets
from .shaping.paths import format_path

__all__ = [
    "CONFIG_SUFFIXES",
    "ConfigProblem",
    "LoadResult",
    "config_files",
    "load_definitions",
    "read_rate_limit",
    "secret_files_named",
]

logger = logging.getLogger(__name__)

CONFIG_SUFFIXES = (".json", ".yaml", ".yml")
MAX_CONFIG_FILE_BYTES = 10 * 1024 * 1024
ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
# `${file:/run/secrets/x}`, the way Kubernetes and Docker mount secrets; one pass with `${NAME}`, so a
# value read from a file or the environment is never itself searched for references.
REFERENCE = re.compile(r"\$\{(?:file:(?!-)([^}]+)|([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?)\}")
MAX_SECRET_FILE_BYTES = 64 * 1024
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
    # What `validate` points out about valid tools (not logged): e.g. placeholders published as required.
    notes: list[ConfigProblem] = field(default_factory=list)
    # The endpoints and clients (endpoints.py), each endpoint's tools resolved; none configured: `/mcp` only.
    endpoints: EndpointConfig = field(default_factory=EndpointConfig)


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
    found = LoadResult(definitions=[], files=files)
    secrets: set[str] = set()
    for path in files:
        errors += _load_file(path, environ, egress, secrets, found)
    definitions = found.definitions
    errors.extend(_duplicate_names(definitions))
    found.endpoints, endpoint_errors, endpoint_warnings = found.endpoints.check(definitions)
    errors += [ConfigProblem(file, message, field=where) for file, (where, message) in endpoint_errors]
    found.warnings += [ConfigProblem(file, message, field=where) for file, (where, message) in endpoint_warnings]
    secrets.update(c.token for c in found.endpoints.clients.values() if c.token)
    # A message may quote the config (a host from `${...}`, a value pasted in the wrong place).
    redactor = Redactor(secrets)
    errors = [error.redacted(redactor) for error in errors]
    found.warnings = [warning.redacted(redactor) for warning in found.warnings]
    found.notes = [note.redacted(redactor) for note in found.notes]
    for warning in found.warnings:
        logger.warning("%s", warning)
    if errors:
        raise ConfigErrors(errors)
    if not definitions:
        raise ConfigErrors([ConfigProblem(", ".join(str(p) for p in files) or "config", "defines no FUNCTION tools")])
    definitions.sort(key=lambda d: d.mcp_name)
    return found


def _read_document(path: Path) -> tuple[Any, dict[int, list[Any]]]:
    """The parsed file, and the keys given twice in one object or mapping: `{id(the object): keys}`.

    The parsers would let the last of two keys win silently; two `url`s are a mistake to report.
    """
    size = path.stat().st_size
    if size > MAX_CONFIG_FILE_BYTES:
        raise ValueError(f"file is {size} bytes; the limit is {MAX_CONFIG_FILE_BYTES}")
    text = path.read_text(encoding="utf-8-sig")  # tolerate the BOM some Windows editors write
    twice: dict[int, list[Any]] = {}
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text, object_pairs_hook=functools.partial(_json_object, twice)), twice
        except json.JSONDecodeError as exc:
            raise ValueError(f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    import yaml  # here, not at the top: a JSON-only server never pays for it (about 1 MiB resident)

    loader = _yaml_loader()(text)
    loader.twice = twice
    try:
        return loader.get_single_data(), twice
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ValueError(f"invalid YAML{where}: {problem}") from None
    finally:
        loader.dispose()


def _json_object(twice: dict[int, list[Any]], pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) < len(pairs):
        twice[id(value)] = _repeated(key for key, _ in pairs)
    return value


def _repeated(keys: Iterable[Any]) -> list[Any]:
    seen: set[Any] = set()
    repeated: list[Any] = []
    for key in keys:
        if key in seen and key not in repeated:
            repeated.append(key)
        seen.add(key)
    return repeated


@functools.cache
def _yaml_loader() -> type:
    """PyYAML's safe loader, noting keys given twice in one mapping (`<<` merges may override, as YAML says)."""
    import yaml

    class Loader(yaml.SafeLoader):
        twice: dict[int, list[Any]]

        def construct_yaml_map(self, node: yaml.MappingNode) -> Iterator[dict[Any, Any]]:
            data: dict[Any, Any] = {}
            yield data
            # Before `construct_mapping`, which puts the merged keys into `node.value`.
            keys = [
                self.construct_object(key)
                for key, _ in node.value
                if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge"
            ]
            data.update(self.construct_mapping(node))
            if len(keys) > len(set(keys)):
                self.twice[id(data)] = _repeated(keys)

    Loader.add_constructor("tag:yaml.org,2002:map", Loader.construct_yaml_map)
    return Loader


def _given_twice(
    file: str, document: Any, twice: dict[int, list[Any]], entries: list[tuple[str, Any]]
) -> list[ConfigProblem]:
    """An error for each key given twice in one object, at its path (and in its tool, if inside one)."""
    if not twice:
        return []
    kind = "object" if file.lower().endswith(".json") else "mapping"
    labels = {id(unwrapped(entry)): _entry_label(entry, location) for location, entry in entries}
    errors: list[ConfigProblem] = []
    seen: set[int] = set()  # YAML aliases share objects: each is walked once, however often it is used
    stack: list[tuple[Any, str, str | None]] = [(document, "", None)]
    while stack:
        node, where, label = stack.pop()
        if not isinstance(node, (dict, list)) or id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, list):
            stack += reversed([(item, f"{where}[{i}]", label) for i, item in enumerate(node)])
            continue
        label = labels.get(id(node), label)
        for key in twice.get(id(node), ()):
            message = f"is given twice in the same {kind}; keep one of them"
            errors.append(ConfigProblem(file, message, tool=label, field=_join(where, str(key))))
        stack += reversed([(value, _join(where, str(key)) or "", label) for key, value in node.items()])
    return errors


def _load_file(
    path: Path, environ: Mapping[str, str], egress: EgressPolicy, secrets: set[str], found: LoadResult
) -> list[ConfigProblem]:
    """The file's errors; its definitions, warnings and notes go to `found`, the secrets it configures to `secrets`."""
    file = str(path)
    try:
        document, twice = _read_document(path)
    except UnicodeDecodeError:
        return [ConfigProblem(file, "is not UTF-8 text")]
    except (OSError, ValueError) as exc:
        return [ConfigProblem(file, str(exc))]
    errors: list[ConfigProblem] = []
    whole = document
    if is_endpoints_document(document):  # endpoints and clients, maybe with tools under `tools:`
        errors = _read_endpoints(document, file, environ, secrets, found)
        document = {key: value for key, value in document.items() if key not in ENDPOINT_KEYS}
        if not document:
            return [*_given_twice(file, whole, twice, []), *errors]
    try:
        entries = entries_in_document(document, path)
    except ShapeError as exc:
        problem = ConfigProblem(file, exc.message, field=exc.field or None)
        return [*_given_twice(file, whole, twice, []), *errors, problem]

    errors += _given_twice(file, whole, twice, entries)
    definitions, warnings, notes = found.definitions, found.warnings, found.notes
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
            if definition.unrequired_placeholders:
                notes.append(_placeholder_note(definition, file, label, _join(location, normalised.fields["params"])))
    return errors


def _read_endpoints(
    document: dict[str, Any], file: str, environ: Mapping[str, str], secrets: set[str], found: LoadResult
) -> list[ConfigProblem]:
    """The endpoints and clients of one file (endpoints.py) into `found`; -> its errors."""
    errors: list[ConfigProblem] = []

    def substitute(text: str, where: str) -> str:
        return _substitute(text, environ, secrets, lambda m: errors.append(ConfigProblem(file, m, field=where)))

    config, problems, warnings = read_endpoints_document(document, file, substitute)
    config, limit_problems = _checked_rate_limits(config)
    problems += limit_problems
    secrets.update(c.token for c in config.clients.values() if c.token)
    if config.oauth and config.oauth.get("clientSecret"):
        secrets.add(config.oauth["clientSecret"])  # a literal one too, not only one read through `${...}`
    found.endpoints, clashes = found.endpoints.merged(config, file)
    errors += [ConfigProblem(file, message, field=where) for where, message in [*problems, *clashes]]
    found.warnings += [ConfigProblem(file, message, field=where) for where, message in warnings]
    return errors


def _placeholder_note(definition: ToolDefinition, file: str, label: str, params_field: str | None) -> ConfigProblem:
    names = definition.unrequired_placeholders
    it, has = ("it", "has") if len(names) == 1 else ("them", "have")
    message = (
        f"URL placeholder{'s' if len(names) > 1 else ''} {', '.join(names)} {has} no pathParameters default and a "
        f"call cannot go without {it}, so the published inputSchema lists {it} in `required`; add {it} there"
    )
    return ConfigProblem(file, message, tool=label, field=f"{params_field}.required")


def _entry_label(entry: Any, location: str) -> str:
    """How errors name a tool: its name (shortened if huge), else where it sits in the file."""
    raw = unwrapped(entry)
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
    references: dict[str, str] = {}  # each of them -> the `${...}` it came from, as written

    def substitute(text: str, field_path: str) -> str:
        return _substitute(text, environ, secrets, lambda m: errors.append(
            ConfigProblem(file, m, tool=label, field=_join(location, field_path))
        ), references)  # fmt: skip

    fields = normalised.fields
    if isinstance(values.get("url"), str):
        values["url_template"] = values["url"]
        values["url"] = substitute(values["url"], fields["url"])
    if isinstance(values.get("auth_token"), str):
        values["auth_token"] = substitute(values["auth_token"], fields["auth_token"])
    if "auth" in values:
        _check_auth(
            values,
            fields,
            substitute,
            secrets,
            lambda f, m: errors.append(ConfigProblem(file, m, tool=label, field=_join(location, f))),
            references,
        )
    if "forward_caller" in values:
        _check_forward_caller(
            values,
            fields,
            environ,
            secrets,
            lambda f, m: errors.append(ConfigProblem(file, m, tool=label, field=_join(location, f))),
        )
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
    values["references"] = tuple(references.items())
    try:
        definition = ToolDefinition.model_validate(values)
        checking = fields["url"]
        egress.check_url(definition.url, allow_http=definition.allow_http)
        if definition.auth is not None and "tokenUrl" in definition.auth:
            # The token endpoint is called under the same egress policy and allowHttp as the tool's URL.
            checking = f"{fields['auth']}.tokenUrl"
            egress.check_url(definition.auth["tokenUrl"], allow_http=definition.allow_http)
        where = fields.get("examples", "examples")
        examples = [
            ConfigProblem(file, message, tool=label, field=_join(location, where + field_path))
            for field_path, message in example_problems(definition)
        ]
        return (None, examples) if examples else (definition, [])
    except EgressDenied as exc:
        # The host may have come from a `${...}` value: `load_definitions` hides it like any other secret.
        return None, [ConfigProblem(file, str(exc), tool=label, field=_join(location, checking))]
    except ValidationError as exc:
        problems = exc.errors(include_url=False)
        bad = {str(problem["loc"][0]) for problem in problems if problem["loc"]}
        for problem in problems:
            # A model-level error is the placeholder check, which is about the URL.
            canonical = str(problem["loc"][0]) if problem["loc"] else "url"
            if canonical == "mcp_name" and fields.get("mcp_name") == "name" and "name" in bad:
                continue  # the slug of a bad name is bad too; one error about `name` says it
            user_field = format_path(problem["loc"][1:], under=fields.get(canonical, canonical))
            cause = (problem.get("ctx") or {}).get("error")
            if isinstance(cause, SchemaProblems):  # one error per problem, each at its place in the schema
                for path, message in cause.problems:
                    where = _join(location, format_path(path, under=user_field))
                    errors.append(ConfigProblem(file, f"is not valid JSON Schema: {message}", tool=label, field=where))
                continue
            errors.append(ConfigProblem(file, _say(problem), tool=label, field=_join(location, user_field)))
        return None, errors


def _substitute(
    text: str,
    environ: Mapping[str, str],
    secrets: set[str],
    report: Callable[[str], None],
    references: dict[str, str] | None = None,
) -> str:
    """`text` with its `${NAME}`, `${NAME:-default}` and `${file:...}` filled in; each value filled in
    from the environment or a file goes to `secrets` (and, mapped to the reference as written, to
    `references`), each one that cannot be read to `report`."""

    def replace(match: re.Match[str]) -> str:
        secret_file, name, default = match.groups()
        if secret_file is not None:
            value, problem = _read_secret_file(secret_file)
        elif name in environ:
            value, problem = environ[name], None
        elif default is not None:
            return default
        else:
            value, problem = "", f"environment variable {name} is not set"
        if problem is not None:
            report(problem)
            return ""
        secrets.update(_secret_forms(value))
        if references is not None:
            references.setdefault(value, match.group())
        return value

    return REFERENCE.sub(replace, text)


def _check_auth(
    values: dict[str, Any],
    fields: dict[str, str],
    substitute: Any,
    secrets: set[str],
    report: Any,
    references: dict[str, str],
) -> None:
    """The `auth` block: `${...}` filled in, checked (`report(field, message)`), its values made secrets.

    A Basic credential is sent encoded: its `references` entry says how it was made from what is written.
    """
    block, where = values["auth"], fields["auth"]
    written = block
    if isinstance(block, dict):
        block = values["auth"] = {
            key: substitute(value, f"{where}.{key}") if isinstance(value, str) else value
            for key, value in block.items()
        }
    if values.get("auth_token"):
        report(where, f"and `{fields['auth_token']}` are both given; keep one (authToken is auth type bearer)")
    problems = auth_block_problems(block)
    for field_path, message in problems:
        report(f"{where}.{field_path}" if field_path else where, message)
    if not problems:
        secrets.update(auth_block_secrets(block))
        if block["type"] == "basic" and any(REFERENCE.search(written[key]) for key in ("username", "password")):
            encoded = basic_value(block["username"], block["password"]).removeprefix("Basic ")
            references.setdefault(encoded, f"${{base64:{written['username']}:{written['password']}}}")


def _check_forward_caller(
    values: dict[str, Any], fields: dict[str, str], environ: Mapping[str, str], secrets: set[str], report: Any
) -> None:
    """`forwardCaller`: checked (`report(field, message)`); its `stdioEnv` value, when set, made a secret."""
    block, where = values["forward_caller"], fields["forward_caller"]
    has_own_auth = bool(values.get("auth_token")) or isinstance(values.get("auth"), dict)
    for field_path, message in forward_caller_problems(block, has_own_auth):
        report(f"{where}.{field_path}" if field_path else where, message)
    env = block.get("stdioEnv") if isinstance(block, dict) else None
    if isinstance(env, str) and environ.get(env):
        secrets.add(environ[env])  # the process's own credential for stdio: hidden like any `${NAME}` value


def secret_files_named(text: str) -> list[str]:
    """The paths of the `${file:...}` secrets a config file's text names, in order (for the reload watcher).

    Read from the text, not the loaded tools: a file named by a tool that is invalid now is watched too,
    so fixing it is seen.
    """
    return list(dict.fromkeys(match.group(1) for match in REFERENCE.finditer(text) if match.group(1) is not None))


def _read_secret_file(path: str) -> tuple[str, str | None]:
    """A `${file:...}` secret (one trailing newline stripped), or why it cannot be read (never its content).

    Read at every load, so a reload picks up a rotated secret.
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_SECRET_FILE_BYTES + 1)
    except OSError as exc:
        return "", f"secret file {path} cannot be read ({exc.strerror or type(exc).__name__}); check the path"
    if len(data) > MAX_SECRET_FILE_BYTES:
        return "", f"secret file {path} is larger than {MAX_SECRET_FILE_BYTES} bytes; is it the right file?"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "", f"secret file {path} is not UTF-8 text"
    return text.removesuffix("\n").removesuffix("\r") if text.endswith("\n") else text, None


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
    "missing": "is required",
}


def _say(problem: Any) -> str:
    """One pydantic problem as a sentence about the user's field; never includes the value."""
    kind, ctx = problem["type"], problem.get("ctx") or {}
    if problem["input"] is None and kind != "value_error":
        return "is required"
    if kind in _TYPE_MESSAGES:
        return _TYPE_MESSAGES[kind]
    if kind == "literal_error" and problem["loc"][0] == "method":
        return "must be one of GET, POST, PUT, PATCH, DELETE (any case)"
    if kind == "literal_error":  # pydantic's own "Input should be 'a' or 'b'", without the value
        return "must be " + str(ctx.get("expected", "one of the allowed values"))
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


def _checked_rate_limits(config: EndpointConfig) -> tuple[EndpointConfig, list[tuple[str, str]]]:
    """`config` with each endpoint's and client's `rateLimit` read as a tool's is; the problems found.

    Fields are named by the endpoint's or client's name (`endpoints[sales].rateLimit.per`).
    """
    problems: list[tuple[str, str]] = []

    def read(raw: Any, where: str) -> RateLimit | None:
        limit, found = read_rate_limit(raw, f"{where}.rateLimit")
        problems.extend(found)
        return limit

    endpoints = {
        name: dataclasses.replace(endpoint, rate_limit=read(endpoint.rate_limit, f"endpoints[{name}]"))
        for name, endpoint in config.endpoints.items()
    }
    clients = {
        client_id: dataclasses.replace(client, rate_limit=read(client.rate_limit, f"clients[{client_id}]"))
        for client_id, client in config.clients.items()
    }
    return dataclasses.replace(config, endpoints=endpoints, clients=clients), problems


def read_rate_limit(raw: Any, where: str = "rateLimit") -> tuple[RateLimit | None, list[tuple[str, str]]]:
    """A `rateLimit` block of an endpoint or a client, checked as a tool's is.

    Returns the limit, or None and each `(field, message)` wrong with it (fields under `where`,
    messages worded as for a tool's `rateLimit`, never quoting a value). None (no block) is no limit.
    """
    if raw is None:
        return None, []
    try:
        return RateLimit.model_validate(raw), []
    except ValidationError as exc:
        problems = exc.errors(include_url=False)
        return None, [(format_path(problem["loc"], under=where), _say(problem)) for problem in problems]


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
