"""`mcp-webtools import openapi SPEC`: one reviewable definition file per operation, the Hamsa API shape.

The files are what the OpenAPI reader serves (`readers.openapi.map_document`), written out so a team
can review, edit and test them, and push them to Hamsa as they are. Every credential is a `${NAME}`
the command prints; no value is ever written. All or nothing, and existing files only with
`--force`, exactly as `hamsa import` (its file writing is reused from hamsa/importer.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from ..errors import ConfigErrors, ImportRefused, ShapeError
from ..hamsa.cli import report_import
from ..hamsa.importer import EnvVar, ImportResult, unwritable, write_file
from ..loading import load_definitions
from ..readers.openapi import Options, Selection, load_document, map_document

__all__ = ["add_import_commands", "import_openapi"]


ENV_HEADING = "Set these environment variables (the API's credentials and URL; no value is written in the files):"


def import_openapi(spec: Path, out: Path, options: Options, *, force: bool = False) -> ImportResult:
    """Write `<mcp name>.json` per selected operation of `spec` into `out`; all or nothing."""
    try:
        document = load_document(spec)
        mapping = map_document(document, spec.resolve().as_uri(), options)
    except ShapeError as exc:
        raise ImportRefused(f"{spec}: {exc.message}") from None
    result = ImportResult(notes=list(mapping.notes), env_heading=ENV_HEADING)
    planned: list[tuple[Path, str, dict[str, Any]]] = []
    for mapped in mapping.tools:
        label = mapped.operation.label
        if mapped.tool is None:
            result.skipped.append(f"{label} ({mapped.name}): {mapped.skip}")
            continue
        result.notes += [f"{label} ({mapped.name}): {note}" for note in mapped.notes]
        planned.append((out / f"{mapped.name}.json", mapped.name, mapped.tool))
    if not planned:
        raise ImportRefused(f"{spec}: no operation selected can become a tool" + _reasons(result.skipped))
    url = planned[0][2]["toolSettings"]["serverUrl"]
    if not url.lower().startswith(("http://", "https://", "${")):
        raise ImportRefused(f"{spec}: its servers give no absolute URL; give one with --base-url (e.g. '${{API_URL}}')")
    result.env = _variables(mapping.variables, planned)
    problems = unwritable(out, [path for path, _, _ in planned], force)
    if problems:
        raise ImportRefused("nothing written:\n" + "\n".join(f"  - {p}" for p in problems))
    out.mkdir(parents=True, exist_ok=True)
    for path, name, tool in planned:
        write_file(path, json.dumps(tool, indent=2, ensure_ascii=False) + "\n", force)
        result.written.append((path, name))
    # Stand-ins for the variables: a URL where the base URL reads one, else any non-empty text.
    placeholders = {var.name: "https://api.example.com" if var.where == "toolSettings.serverUrl" else "placeholder"
                    for var in result.env}  # fmt: skip
    try:  # what `validate` says once the variables are set
        load_definitions([path for path, _, _ in planned], environ={**os.environ, **placeholders})
    except ConfigErrors as exc:
        result.load_problems = [str(error) for error in exc.errors]
    return result


def _variables(names: list[str], planned: list[tuple[Path, str, dict[str, Any]]]) -> list[EnvVar]:
    """Each variable with the first tool that reads it, where, and how many others do."""
    found: list[EnvVar] = []
    for name in names:
        reference = f"${{{name}"
        users = [(tool_name, tool) for _, tool_name, tool in planned if reference in json.dumps(tool)]
        first_name, first = users[0]
        if reference in first["toolSettings"]["serverUrl"]:
            where = "toolSettings.serverUrl"
        else:
            where = next(f"auth.{key}" for key, value in first["auth"].items() if reference in str(value))
        others = f" (and {len(users) - 1} more tools)" if len(users) > 1 else ""
        found.append(EnvVar(name, f"{first_name}{others}", where))
    return found


def _reasons(skipped: list[str]) -> str:
    return ("; skipped:\n" + "\n".join(f"  - {line}" for line in skipped)) if skipped else ""


def add_import_commands(commands: Any, *, default_config: str, parents: list[argparse.ArgumentParser]) -> None:
    """`import openapi`: registered by cli/commands.py."""
    importing = commands.add_parser("import", parents=parents, help="write definition files from another format")
    formats = importing.add_subparsers(dest="format", required=True, metavar="FORMAT")
    parser = formats.add_parser("openapi", parents=parents, help="one definition file per OpenAPI operation")
    parser.add_argument("spec", metavar="SPEC", help="an OpenAPI 3.0 or 3.1 document (JSON or YAML)")
    parser.add_argument("--out", default=default_config, metavar="DIR", help=f"default {default_config}/")
    parser.add_argument("--base-url", metavar="URL", help="instead of servers[0], e.g. '${PETSTORE_URL}'")
    for flag, what in (
        ("--tags", "operations with any of these tags"),
        ("--operations", "these operationIds"),
        ("--paths", "paths matching these patterns (/store/*)"),
        ("--methods", "only these methods"),
        ("--exclude-operations", "leave these operationIds out"),
    ):
        parser.add_argument(flag, nargs="+", default=[], metavar="X", help=what)
    parser.add_argument("--include-deprecated", action="store_true", help="import deprecated operations too")
    parser.add_argument("--output-schemas", action="store_true", help="a 2xx JSON response schema as outputSchema")
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    parser.set_defaults(handler=_import_openapi)


def _import_openapi(args: argparse.Namespace) -> int:
    options = Options(
        selection=Selection(
            tags=tuple(args.tags),
            operations=tuple(args.operations),
            paths=tuple(args.paths),
            methods=tuple(args.methods),
            exclude_operations=tuple(args.exclude_operations),
        ),
        base_url=args.base_url,
        include_deprecated=args.include_deprecated,
        output_schemas=args.output_schemas,
    )
    try:
        result = import_openapi(Path(args.spec), Path(args.out), options, force=args.force)
    except ImportRefused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return report_import(result)
