"""Hamsa's web-tool format, described once: its keys, its response envelope, its units.

The readers (`readers/hamsa_api.py`, `readers/guide.py`, `readers/envelope.py`), the importer
(`importer.py`) and registration (`register.py`) all speak this format; each takes what it needs
from here, so a change on Hamsa's side is one edit. Only flat modules may be imported here (none
are needed today): `readers/` imports this module, and `importer.py` imports `readers/`.

Three shapes of one tool exist:

1. the create-web-tool API body: `type`, `name`, `description`, `params`, `async`, `messages`
   and `toolSettings{serverUrl, methodType, authToken, timeOut, httpHeaders, pathParameters}`;
2. the integration guide's flat shape: `methodType`, `url`, `authType`, `authToken`, `headers`,
   `pathParameters`, `parameters`, `timeoutSeconds`;
3. a response envelope `{"success", "message", "data"}` wrapping (1), where the API writes
   `toolSettings.timeout` in milliseconds (its request bodies take `timeOut` in seconds).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AUTH_TYPES",
    "GUIDE_KEYS",
    "GUIDE_SETTINGS",
    "GUIDE_TIMEOUT_KEYS",
    "RECORD_KEYS",
    "SETTINGS_KEYS",
    "TOOL_KEYS",
    "envelope_refused",
    "guide_auth_type",
    "is_envelope",
    "is_mcp_tool",
    "is_number",
    "seconds_from_milliseconds",
]

# The API body's top-level keys, in the order an imported file writes them.
TOOL_KEYS = ("type", "name", "description", "toolSettings", "async", "messages", "params")
SETTINGS_KEYS = frozenset(
    {"serverUrl", "methodType", "authToken", "timeOut", "timeout", "httpHeaders", "pathParameters"}
)
# What Hamsa's API adds to a stored tool: bookkeeping, not behaviour (never suggested for a typo).
RECORD_KEYS = frozenset(
    {"id", "persistentId", "version", "userId", "projectId", "isActive", "collectionId", "createdAt", "updatedAt"}
)
# The guide's shape: the API body flattened, with its own names for some keys.
GUIDE_KEYS = frozenset({
    "type", "name", "description", "async", "messages", "methodType", "url", "authType", "authToken", "headers",
    "pathParameters", "parameters", "params", "timeoutSeconds", "timeOut",
})  # fmt: skip
# The guide's keys that the API body keeps in `toolSettings`, by their name there.
GUIDE_SETTINGS = {
    "url": "serverUrl", "methodType": "methodType", "headers": "httpHeaders", "pathParameters": "pathParameters",
    "timeoutSeconds": "timeOut", "timeOut": "timeOut",
}  # fmt: skip
# The guide's timeout keys in the order they are read: the first one present wins.
GUIDE_TIMEOUT_KEYS = ("timeoutSeconds", "timeOut")
AUTH_TYPES = ("jwtAuth", "none")


def is_mcp_tool(entry: dict[str, Any]) -> bool:
    """`type: "MCP"` (any case): a tool that is an MCP server, not an HTTP call; never read as a web tool."""
    tool_type = entry.get("type", "FUNCTION")
    return isinstance(tool_type, str) and tool_type.upper() == "MCP"


def guide_auth_type(entry: dict[str, Any]) -> Any:
    """The guide's `authType`; without one, `jwtAuth` when an `authToken` is given, else `none`."""
    return entry.get("authType", "jwtAuth" if entry.get("authToken") else "none")


def is_envelope(document: Any) -> bool:
    """The API's answer `{"success", "message", "data"}` (a tool has a `name`; an envelope does not)."""
    return (
        isinstance(document, dict)
        and "data" in document
        and ("success" in document or "message" in document)
        and "name" not in document
    )


def envelope_refused(envelope: dict[str, Any]) -> bool:
    """The envelope says the request failed.

    The API reference's own example of a successful create answers `"success": false,
    "message": "success"` with the full tool: a `message` of `success` outweighs `success: false`.
    """
    return envelope.get("success") is False and envelope.get("message") != "success"


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def seconds_from_milliseconds(milliseconds: float) -> float:
    """An envelope's `toolSettings.timeout` (ms) as the seconds `timeOut` takes; whole seconds stay whole."""
    seconds = milliseconds / 1000
    return int(seconds) if seconds.is_integer() else seconds  # is_integer: inf and NaN stay floats
