"""The Hamsa integration guide's flat shape: `methodType`, `url`, `authType`, `headers[]`, `parameters`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..hamsa.format import AUTH_TYPES, GUIDE_KEYS, GUIDE_TIMEOUT_KEYS, RECORD_KEYS, guide_auth_type
from .base import OUR_KEYS, NormalisedEntry, common_fields, headers, path_defaults, read_or_note, unknown_keys

__all__ = ["READER", "GuideReader", "read"]

KNOWN_KEYS = GUIDE_KEYS | OUR_KEYS


class GuideReader:
    """One guide-shaped object is one tool (an object with `toolSettings` is an API body instead)."""

    name = "guide"

    def detect(self, document: Any) -> bool:
        if not isinstance(document, dict) or "toolSettings" in document:
            return False
        return "url" in document or "methodType" in document

    def entries(self, document: Any) -> Iterable[tuple[str, Any]]:
        return [("", document)]

    def normalise(self, entry: Any) -> NormalisedEntry:
        return read(entry)


READER = GuideReader()


def read(raw: dict[str, Any]) -> NormalisedEntry:
    values: dict[str, Any] = {}
    fields: dict[str, str] = {}
    warnings: list[tuple[str, str]] = []
    problems: list[tuple[str, str]] = []
    common_fields(raw, values, fields, "parameters" if "parameters" in raw else "params")
    values["url"] = raw.get("url")
    fields["url"] = "url"
    values["method"] = raw.get("methodType")
    fields["method"] = "methodType"
    auth_type = guide_auth_type(raw)
    if auth_type not in AUTH_TYPES:
        problems.append(("authType", f'must be "jwtAuth" or "none", not {auth_type!r}'))
    elif auth_type == "jwtAuth" and raw.get("authToken") not in (None, ""):
        values["auth_token"] = raw["authToken"]
    elif auth_type == "none" and raw.get("authToken"):
        warnings.append(("authToken", 'is ignored because authType is "none"'))
    fields["auth_token"] = "authToken"
    values["headers"] = read_or_note(problems, [], headers, raw.get("headers"), "headers")
    fields["headers"] = "headers"
    values["path_defaults"] = read_or_note(problems, {}, path_defaults, raw.get("pathParameters"), "pathParameters")
    fields["path_defaults"] = "pathParameters"
    for key in GUIDE_TIMEOUT_KEYS:
        if key in raw:
            values["timeout_seconds"] = raw[key]
            fields["timeout_seconds"] = key
            break
    warnings += unknown_keys(raw, KNOWN_KEYS, ignored=RECORD_KEYS)
    return NormalisedEntry(values, fields, shape="guide", warnings=warnings, problems=problems)
