"""How long a large real OpenAPI document takes to load and become a served toolset.

    .venv/bin/python bench/openapi_load.py [DOCUMENT] [--runs N]

Default document: Twilio's REST API v2010 (tests/openapi/documents/twilio_api_v2010.json, 1.9 MB,
197 operations, form bodies, HTTP Basic auth). Prints the best and median wall time of
`load_definitions` (parse, `$ref` resolution, mapping, validation of every tool) and of building the
`Toolset` a server publishes, and the number of tools. Not a test: timings depend on the machine,
so the suite asserts none (issue 13 asks for "well under 2 s").
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
from pathlib import Path

from mcp_webtools.loading import load_definitions
from mcp_webtools.toolset import Toolset

DEFAULT = Path(__file__).resolve().parent.parent / "tests" / "openapi" / "documents" / "twilio_api_v2010.json"
# Stand-ins for the credentials the document's security scheme reads (${...}); never real ones.
ENVIRON = {"ACCOUNT_SID_AUTH_TOKEN_USERNAME": "AC" + "0" * 32, "ACCOUNT_SID_AUTH_TOKEN_PASSWORD": "x"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("document", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the load's warnings (past 40 tools, ...) are not what is measured
    loads, builds, count = [], [], 0
    for _ in range(args.runs):
        start = time.perf_counter()
        found = load_definitions([args.document], environ=ENVIRON)
        loaded = time.perf_counter()
        toolset = Toolset.from_definitions(found.definitions)
        toolset.list_wire  # noqa: B018 - the tools/list answer, dumped once as a server does
        builds.append(time.perf_counter() - loaded)
        loads.append(loaded - start)
        count = len(toolset.list_result.tools)
    size = args.document.stat().st_size / 1e6
    print(f"{args.document.name}: {size:.1f} MB, {count} tools, {args.runs} runs")
    print(f"  load_definitions  best {min(loads):.3f} s  median {statistics.median(loads):.3f} s")
    print(f"  Toolset           best {min(builds):.3f} s  median {statistics.median(builds):.3f} s")


if __name__ == "__main__":
    main()
