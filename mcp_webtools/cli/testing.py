"""`mcp-webtools test`: run every tool's examples through the whole call path and judge the results.

Each example goes the way a client's call goes: `ToolCalls.prepare` (validation, request
building) and `ToolCalls.execute` (limits, the sender chain with the tool's auth flow, the
upstream, shaping), in the service `open_webtools` assembles. Only the end of the sender chain
may differ: `--record DIR` puts a `cassettes.RecordingSender` in front of the executor, and
`--replay DIR` a `cassettes.ReplayingSender` in its place, so a replay never touches the network.

Output: one line per example (PASS or FAIL, tool, example, milliseconds, the first difference),
then a summary; `--junit FILE` writes the same as JUnit XML (junit.py). Everything printed passes
through the tool's `Concealer`: secrets as their `${NAME}`, or `***`.

Exit codes: 0 every example passed; 1 an example failed (or the config cannot be loaded, as for
every command); 2 nothing to run (no examples, an unknown `--tool`) or a usage error (a `--junit`
file that cannot be written).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import anyio
import mcp_types as types

from ..calls import PreparedCall
from ..cassettes import Cassette, CassetteDeck, Concealer, RecordingSender, ReplayingSender, cassette_path
from ..definitions import Example
from ..examples import first_difference
from ..executor import Executor
from ..redaction import RedactingFilter
from ..sending import Sender
from ..serving.runtime import ServerOptions, open_webtools
from ..serving.server import WebTools
from ..toolset import PreparedTool
from .junit import write_junit

__all__ = ["EXIT_FAILED", "EXIT_PASSED", "EXIT_USAGE", "ExampleRun", "Mode", "run_examples"]

EXIT_PASSED, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

logger = logging.getLogger("mcp_webtools.test")


@dataclass(frozen=True)
class ExampleRun:
    """How one example went: `failure` is empty when it passed; `detail` is more lines to show (a diff)."""

    tool: str
    example: str
    milliseconds: float
    failure: str = ""
    detail: str = ""
    request: str = ""  # with --show-request: the request as `call --dry-run` prints it

    @property
    def passed(self) -> bool:
        return not self.failure


@dataclass(frozen=True)
class Mode:
    """Where the answers come from: the live upstream, recorded into `record`, or replayed from `replay`."""

    record: Path | None = None
    replay: Path | None = None
    show_request: bool = False


def run_examples(
    paths: Iterable[str],
    options: ServerOptions,
    log_filter: RedactingFilter | None,
    tools: list[str],
    mode: Mode,
    junit: Path | None = None,
) -> int:
    """Run the examples of `tools` (all tools when empty), print the lines and the summary; the exit code."""
    deck = CassetteDeck()
    innermost: Callable[[Executor], Sender] | None = None
    if mode.record is not None:
        innermost = lambda executor: RecordingSender(executor, deck)  # noqa: E731
    elif mode.replay is not None:
        innermost = lambda executor: ReplayingSender(deck)  # noqa: E731
    webtools = open_webtools(paths, options=options, log_filter=log_filter, innermost=innermost)
    unknown = [name for name in tools if webtools.toolset.get(name) is None]
    if unknown:
        known = ", ".join(tool.name for tool in webtools.toolset)
        print(f"unknown tool(s) {', '.join(map(repr, unknown))}; known tools: {known}", file=sys.stderr)
        return EXIT_USAGE
    chosen = [tool for tool in webtools.toolset if not tools or tool.name in tools]
    planned = [(tool, example) for tool in chosen for example in tool.definition.examples]
    if not planned:
        which = "the chosen tools have" if tools else "no tool has"
        print(f"no examples to run: {which} `examples` (docs/configuration.md, Examples)", file=sys.stderr)
        return EXIT_USAGE

    async def run_all() -> list[ExampleRun]:
        runs: list[ExampleRun] = []
        async with webtools.executor.client:
            for tool, example in planned:
                run = await _run_one(webtools, deck, tool, example, mode)
                _print_run(run)
                runs.append(run)
        return runs

    started = time.perf_counter()
    runs = anyio.run(run_all)
    total_ms = (time.perf_counter() - started) * 1000
    failed = sum(not run.passed for run in runs)
    summary = f"{len(runs)} example(s): {len(runs) - failed} passed, {failed} failed ({total_ms:.0f} ms)"
    print(summary)
    if junit is not None:
        try:
            write_junit(junit, runs, total_ms)
        except OSError as exc:
            print(f"--junit {junit} cannot be written ({exc.strerror or exc}); pick another path", file=sys.stderr)
            return EXIT_USAGE
    return EXIT_FAILED if failed else EXIT_PASSED


async def _run_one(
    webtools: WebTools, deck: CassetteDeck, tool: PreparedTool, example: Example, mode: Mode
) -> ExampleRun:
    """One example through `ToolCalls.prepare` and `execute`, its exchanges recorded or replayed."""
    conceal = Concealer(tool.definition.references, webtools.toolset.redactor)
    path = cassette_path(mode.record or mode.replay or Path(), tool.name, example.name)
    started = time.perf_counter()

    shown = ""

    def ended(failure: str = "", detail: str = "") -> ExampleRun:
        elapsed = (time.perf_counter() - started) * 1000
        return ExampleRun(tool.name, conceal(example.name), elapsed, conceal(failure), conceal(detail), shown)

    prepared = webtools.calls.prepare(tool.name, example.arguments)
    if not isinstance(prepared, PreparedCall):
        return ended(f"the arguments were refused: {_text(prepared)}")
    if mode.show_request:
        shown = prepared.dry_run()  # the one request printer, as `call --dry-run` shows it
    recorded = None
    if mode.replay is not None:
        if not path.is_file():
            return ended(f"no cassette at {path}; record one against the real API with --record {mode.replay}")
        try:
            recorded = Cassette.load(path)
        except ValueError as exc:
            return ended(str(exc))
    deck.begin(conceal, recorded)
    try:
        result = await webtools.calls.execute(prepared)
    except Exception:  # a bug of ours: say so for this example and go on with the next
        logger.exception("example %r of tool %s failed unexpectedly", example.name, tool.name)
        return ended("mcp-webtools failed unexpectedly (the log above has the details)")
    if deck.difference is not None:
        return ended(f"the request differs from the recording in {path}", deck.difference)
    if mode.replay is not None and deck.unplayed() > 0:
        return ended(f"the call sent {deck.replayed} request(s); the recording in {path} has more")
    if mode.record is not None and deck.sent:
        try:
            Cassette(tool.name, conceal(example.name), deck.kept()).dump(path)
        except OSError as exc:
            return ended(f"the cassette {path} cannot be written ({exc.strerror or exc}); check --record")
    return ended(first_difference(example.expect, result) or "")


def _text(result: types.CallToolResult) -> str:
    return " ".join(" ".join(item.text.split()) for item in result.content if isinstance(item, types.TextContent))


def _print_run(run: ExampleRun) -> None:
    verdict = "PASS" if run.passed else "FAIL"
    line = f"{verdict}  {run.tool}: {run.example}  ({run.milliseconds:.0f} ms)"
    print(f"{line}  {run.failure}" if run.failure else line)
    if run.detail:
        print("\n".join(f"    {text}" for text in run.detail.splitlines()))
    if run.request:
        print(run.request, end="")
