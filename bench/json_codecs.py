"""JSON on mcp-webtools' paths: the standard library against orjson and msgspec, per operation.

Measures what each codec would save where mcp-webtools (or the SDK under it) turns JSON into
objects and back on every call: the upstream's answer parsed and the shaped result dumped
(results.py, shaping/projection.py), a POST body encoded (requests.py), the inbound JSON-RPC
message read (serving/jsonrpc_input.py, pydantic's `validate_json`, as the SDK does) and the
answer written (the SDK's `model_dump_json`), and a 1000-tool tools/list answer encoded.

Runs where orjson and msgspec are installed (`bench/.venv`: `sh bench/setup.sh`), skipping a
codec that is not; the payloads are built here, the same shapes as bench/compare.py's.

    bench/.venv/bin/python bench/json_codecs.py
"""

from __future__ import annotations

import json
import sys
import timeit
from collections.abc import Callable
from functools import partial
from typing import Any

import mcp_types as types
import pydantic_core

try:
    import orjson
except ImportError:  # pragma: no cover - reported as missing
    orjson = None
try:
    import msgspec
except ImportError:  # pragma: no cover - reported as missing
    msgspec = None

ITEM = json.dumps({"n": 42, "name": "item 42", "tags": ["a", "b"]}).encode()
# A bigger answer than the bench's: 50 orders of a typical REST API (about 10 KB).
ORDERS = json.dumps(
    {
        "data": [
            {
                "id": f"ord_{i:06d}",
                "customer": {"id": i * 7, "name": f"Customer {i}", "email": f"c{i}@example.com"},
                "items": [{"sku": f"SKU-{j}", "qty": j + 1, "price": 9.99 * (j + 1)} for j in range(3)],
                "status": "shipped",
                "total": 59.94,
            }
            for i in range(50)
        ],
        "next": None,
    }
).encode()
ARGUMENTS = {"customer_id": "c_123", "amount": 19.5, "items": [{"sku": "A-1", "qty": 2}], "note": "leave at door"}
CALL = json.dumps(
    {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "get_item", "arguments": {"n": 42}}}
).encode()
RESULT = {
    "content": [{"type": "text", "text": ITEM.decode()}],
    "structuredContent": json.loads(ITEM),
    "isError": False,
    "_meta": {"mcp-webtools/http": {"status": 200, "elapsedMs": 0.412}},
}


def listing(count: int) -> dict[str, Any]:
    """A tools/list answer of `count` tools, as `Toolset.list_wire` holds it."""
    tools = []
    for i in range(count):
        schema = {
            "type": "object",
            "properties": {"n": {"type": "integer", "description": f"Which item (variant {i})."}},
            "required": ["n"],
        }
        tools.append(
            {
                "name": f"get_item_{i:04d}",
                "title": f"Get Item {i:04d}",
                "description": f"One item by number (variant {i}).",
                "inputSchema": schema,
                "annotations": {"readOnlyHint": True, "destructiveHint": False, "idempotentHint": True},
                "_meta": {"mcp-webtools/tool": {"method": "GET", "async": False, "messages": {}}},
            }
        )
    return {"tools": tools}


def per_call_us(operation: Callable[[], object], number: int) -> float:
    """Best of five runs, in microseconds per operation."""
    return min(timeit.repeat(operation, number=number, repeat=5)) / number * 1e6


def codecs() -> dict[str, tuple[Callable[[bytes], object], Callable[[object], object]]]:
    """(decode bytes, encode a value) of each codec installed, as the paths above would call it."""
    found: dict[str, tuple[Callable[[bytes], object], Callable[[object], object]]] = {
        "json": (
            lambda data: json.loads(data.decode()),
            lambda value: json.dumps(value, ensure_ascii=False, separators=(",", ":")),
        ),
    }
    if orjson is not None:
        found["orjson"] = (orjson.loads, orjson.dumps)
    if msgspec is not None:
        found["msgspec"] = (msgspec.json.Decoder().decode, msgspec.json.Encoder().encode)
    return found


def rows() -> list[tuple[str, str, Callable[[], object], int]]:
    """(path, codec, operation, repetitions)."""
    adapter = types.jsonrpc_message_adapter
    response = types.JSONRPCResponse(jsonrpc="2.0", id=7, result=RESULT)
    big = listing(1000)
    found: list[tuple[str, str, Callable[[], object], int]] = []
    for name, (loads, dumps) in codecs().items():
        found += [
            ("upstream answer parsed (small)", name, partial(loads, ITEM), 50_000),
            ("upstream answer parsed (10 KB)", name, partial(loads, ORDERS), 2_000),
            ("POST body encoded", name, partial(dumps, ARGUMENTS), 50_000),
            ("tools/list 1000 tools encoded", name, partial(dumps, big), 20),
        ]
    # The JSON-RPC path is pydantic's (the SDK's models): what a codec could do there is parse or
    # dump the plain data on either side of pydantic's own validation and dump.
    found += [
        ("tools/list 1000 tools encoded", "pydantic_core.to_json", partial(pydantic_core.to_json, big), 20),
        ("JSON-RPC request read", "pydantic validate_json", lambda: adapter.validate_json(CALL, by_name=False), 20_000),
        (
            "JSON-RPC request read",
            "json + validate_python",
            lambda: adapter.validate_python(json.loads(CALL), by_name=False),
            20_000,
        ),
        ("JSON-RPC answer written", "pydantic model_dump_json", lambda: response.model_dump_json(by_alias=True), 20000),
    ]
    if orjson is not None:
        found += [
            (
                "JSON-RPC request read",
                "orjson + validate_python",
                lambda: adapter.validate_python(orjson.loads(CALL), by_name=False),
                20_000,
            ),
            (
                "JSON-RPC answer written",
                "orjson(model_dump)",
                lambda: orjson.dumps(response.model_dump(by_alias=True, mode="json")),
                20_000,
            ),
        ]
    return found


def main() -> None:
    missing = [name for name, module in (("orjson", orjson), ("msgspec", msgspec)) if module is None]
    print(f"Python {sys.version.split()[0]}" + (f"; not installed: {', '.join(missing)}" if missing else ""))
    measured = [(path, codec, per_call_us(operation, number)) for path, codec, operation, number in rows()]
    baseline = {path: us for path, codec, us in measured if codec in ("json", "pydantic validate_json")}
    baseline |= {path: us for path, codec, us in measured if codec == "pydantic model_dump_json"}
    print(f"{'path':34}{'codec':28}{'us per op':>11}{'vs now':>8}")
    for path, codec, us in sorted(measured, key=lambda row: row[0]):
        print(f"{path:34}{codec:28}{us:>11.2f}{us / baseline[path]:>7.2f}x")


if __name__ == "__main__":
    main()
