"""`mcp-webtools test --junit FILE`: the examples' results as JUnit XML, the format CI systems read.

One `<testsuite name="mcp-webtools">` holding one `<testcase>` per example (`classname` the tool,
`name` the example, `time` in seconds); a failed example has a `<failure>` whose `message` is the
first difference and whose text adds any detail (a request diff). The texts come already
concealed from `cli/testing.py` (secrets as `${NAME}` or `***`), as printed.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # testing.py imports this module to write its runs
    from .testing import ExampleRun

__all__ = ["junit_xml", "write_junit"]


def junit_xml(runs: Sequence[ExampleRun], total_ms: float) -> ET.ElementTree:
    failures = sum(not run.passed for run in runs)
    counts = {"tests": str(len(runs)), "failures": str(failures), "errors": "0", "skipped": "0"}
    seconds = f"{total_ms / 1000:.3f}"
    root = ET.Element("testsuites", {"name": "mcp-webtools test", **counts, "time": seconds})
    suite = ET.SubElement(root, "testsuite", {"name": "mcp-webtools", **counts, "time": seconds})
    for run in runs:
        case = ET.SubElement(
            suite, "testcase", {"classname": run.tool, "name": run.example, "time": f"{run.milliseconds / 1000:.3f}"}
        )
        if not run.passed:
            failure = ET.SubElement(case, "failure", {"message": run.failure, "type": "ExampleFailed"})
            failure.text = "\n".join(filter(None, (run.failure, run.detail)))
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(path: Path, runs: Sequence[ExampleRun], total_ms: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    junit_xml(runs, total_ms).write(path, encoding="utf-8", xml_declaration=True)
