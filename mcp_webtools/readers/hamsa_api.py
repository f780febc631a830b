"""The Hamsa create-web-tool API body: `toolSettings{serverUrl, methodType, ...}` and `params`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..hamsa.format import RECORD_KEYS, SETTINGS_KEYS, TOOL_KEYS, is_number, seconds_from_milliseconds
from .base import (
    OUR_KEYS,
    NormalisedEntry,
    ShapeError,
    common_fields,
    headers,
    path_defaults,
    read_or_note,
    unknown_keys,
)

__all__ = ["READER", "HamsaApiReader", "read"]

KNOWN_KEYS = frozenset(TOOL_KEYS) | OUR_KEYS


class HamsaApiReader:
    """One API body is one tool."""

    name = "hamsa-api"

    def detect(self, document: Any) -> bool:
        return isinstance(document, dict) and "toolSettings" in document

    def entries(self, document: Any) -> Iterable[tuple[str, Any]]:
        return [("", document)]

    def normalise(self, entry: Any) -> NormalisedEntry:
        return read(entry, timeout_in_ms=False)


READER = HamsaApiReader()


def read(raw: dict[str, Any], *, timeout_in_ms: bool) -> NormalisedEntry:
    """`raw` read into `ToolDefinition` fields; `timeout_in_ms` for a body out of a response envelope."""
    settings = raw["toolSettings"]
    if not isinstance(settings, dict):
        raise ShapeError("toolSettings", "must be an object")
    values: dict[str, Any] = {}
    fields: dict[str, str] = {}
    problems: list[tuple[str, str]] = []
    common_fields(raw, values, fields, "params")
    values["url"] = settings.get("serverUrl")
    fields["url"] = "toolSettings.serverUrl"
    values["method"] = settings.get("methodType")
    fields["method"] = "toolSettings.methodType"
    if settings.get("authToken") not in (None, ""):
        values["auth_token"] = settings["authToken"]
    fields["auth_token"] = "toolSettings.authToken"
    values["headers"] = read_or_note(problems, [], headers, settings.get("httpHeaders"), "toolSettings.httpHeaders")
    fields["headers"] = "toolSettings.httpHeaders"
    values["path_defaults"] = read_or_note(
        problems, {}, path_defaults, settings.get("pathParameters"), "toolSettings.pathParameters"
    )
    fields["path_defaults"] = "toolSettings.pathParameters"
    if "timeOut" in settings:
        values["timeout_seconds"] = settings["timeOut"]
        fields["timeout_seconds"] = "toolSettings.timeOut"
    elif "timeout" in settings:
        timeout = settings["timeout"]
        in_ms = timeout_in_ms and is_number(timeout)  # anything else is reported as it is written
        values["timeout_seconds"] = seconds_from_milliseconds(timeout) if in_ms else timeout
        fields["timeout_seconds"] = "toolSettings.timeout"
    shape = "hamsa-api" + (" (response envelope)" if timeout_in_ms else "")
    warnings = unknown_keys(raw, KNOWN_KEYS, ignored=RECORD_KEYS)
    warnings += unknown_keys(settings, SETTINGS_KEYS, where="toolSettings")
    return NormalisedEntry(values, fields, shape=shape, warnings=warnings, problems=problems)
