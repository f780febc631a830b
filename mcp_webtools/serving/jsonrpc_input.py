"""One message from a client, read as JSON-RPC 2.0 says, on every transport.

The SDK's transports let a bad message fall through the cracks: over stdio a line that does not
parse is handed to the session, which drops it, so the client waits forever; over HTTP a request
whose id is neither a string nor an integer (`1.5`, `true`, `{}`) reads as a notification (the
notification model ignores the id), gets 202 and never an answer; and `/messages/` logs an
unparseable body as an ERROR with a traceback. JSON-RPC owes each of them an answer:

- `-32700` (parse error) when the text is not JSON, or is nested too deep to parse;
- `-32600` (invalid request) when it is JSON but not one valid message: a batch (MCP has none
  since 2025-06-18), an id of the wrong type, a missing or non-string `method`, and so on.

The answer carries the request's id when one can be read, and `null` otherwise; a message that
is not a request (a malformed response or notification) is answered with `null` too, since its
id, if any, names one of the server's requests, not the client's. `read_message` decides this
once for the stdio transport and for HTTP bodies (`http_app.JsonRpcBodyCheck`).
"""

from __future__ import annotations

import logging
from typing import Any

import mcp_types as types
import pydantic_core
from pydantic import ValidationError

from ..errors import Refusal

__all__ = ["DEFAULT_MAX_BODY_BYTES", "Refusal", "answer", "answer_json", "read_message"]

logger = logging.getLogger("mcp_webtools.protocol")

# The largest message an HTTP client may POST (`serve --max-inbound-bytes`; larger: 413). The SDK's
# own default: room for a tool call whose arguments fill the default 1 MiB request cap several
# times over (JSON escaping can double a string), and no more.
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024


def answer(refusal: Refusal) -> types.JSONRPCError:
    """The JSON-RPC error owed for `refusal`."""
    error = types.ErrorData(code=refusal.code, message=refusal.message)
    return types.JSONRPCError(jsonrpc="2.0", id=refusal.id, error=error)


def answer_json(refusal: Refusal) -> bytes:
    """The answer as one JSON text (with `"id": null` when no id could be read)."""
    return answer(refusal).model_dump_json(by_alias=True, exclude_unset=True).encode()


def read_message(data: str | bytes) -> types.JSONRPCMessage:
    """The message `data` holds; `Refusal` (with the answer owed) when it holds none."""
    try:
        message = types.jsonrpc_message_adapter.validate_json(data, by_name=False)
    except ValidationError:
        raise _refusal(data) from None
    if isinstance(message, types.JSONRPCNotification):
        # The notification model ignores unknown keys, so a request whose id is not valid lands
        # here: it is owed an answer, a notification is not. Rare enough to parse twice.
        decoded = pydantic_core.from_json(data)
        if isinstance(decoded, dict) and "id" in decoded:
            raise _refusal(data)
    return message


def _refusal(data: str | bytes) -> Refusal:
    try:
        decoded = pydantic_core.from_json(data)
    except ValueError as exc:  # its text gives a position, never the input
        if "recursion limit" in str(exc):
            return Refusal(types.PARSE_ERROR, f"Parse error: the JSON is nested too deep to read ({exc})")
        return Refusal(types.PARSE_ERROR, f"Parse error: {exc}")
    problem = _problem(decoded) or "not a valid JSON-RPC 2.0 message"
    request_id = decoded.get("id") if isinstance(decoded, dict) and "method" in decoded else None
    return Refusal(types.INVALID_REQUEST, f"Invalid Request: {problem}", request_id if _is_id(request_id) else None)


def _problem(decoded: Any) -> str | None:
    """What makes `decoded` (valid JSON) not a JSON-RPC message, in the client's terms; never its values."""
    if isinstance(decoded, list):
        return "batches are not supported: send each message on its own"
    if not isinstance(decoded, dict):
        return f"a message is a JSON object, not {_kind(decoded)}"
    if "id" in decoded and not _is_id(decoded["id"]):
        return f'"id" must be a string or an integer, not {_kind(decoded["id"])}'
    if decoded.get("jsonrpc") != "2.0":
        return '"jsonrpc" must be "2.0"'
    if "method" in decoded:
        if not isinstance(decoded["method"], str):
            return f'"method" must be a string, not {_kind(decoded["method"])}'
        if decoded.get("params") is not None and not isinstance(decoded["params"], dict):
            return f'"params" must be an object, not {_kind(decoded["params"])}'
        return None
    if "result" in decoded or "error" in decoded:
        if "id" not in decoded:
            return 'a response needs the "id" of the request it answers'
        if "result" in decoded and not isinstance(decoded["result"], dict):
            return f'"result" must be an object, not {_kind(decoded["result"])}'
        return None
    return 'it has no "method" (a request or notification) and no "result" or "error" (a response)'


def _is_id(value: Any) -> bool:
    return type(value) is int or type(value) is str  # not bool, not float: MCP ids are strings or integers


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, float):
        return "a number with a fraction or an exponent"
    return {int: "an integer", str: "a string", list: "an array", dict: "an object"}.get(type(value), "another value")
