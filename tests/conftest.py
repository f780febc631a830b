"""Fixtures shared by every test, and the wiring of the suite-wide secrets scan (see support.py).

Everything the server printed or returned reaches `support.SCANNER`:

- "mcp": every message a client in this process received from a server (any transport, any
  client the tests build), through the SDK's client dispatcher;
- "output": what pytest captured on stdout/stderr in each test phase (stdio servers' stderr
  included), and whatever a test read through `capsys`/`capfd` (in-process CLI runs);
- "process": stdout/stderr of every `mcp_webtools` process started with `anyio.open_process` or
  `anyio.run_process`, including output sent to a file;
- "log": every log record created in this process, redacted by the server's own logging filter
  exactly as the stderr handler of `mcp-webtools serve` would redact it. Levels are left alone
  (so no test's log capture, or memory, changes): in-process that is WARNING and up unless a test
  asks for more; the server's INFO lines are scanned where it runs as in production, since the
  stderr of stdio servers and of CLI runs is scanned as output.

At the end of the session the scan's report is printed, and the session fails if any known secret
value was shown.

Tests that start a process carry the `e2e` marker, so `pytest -m "not e2e"` is a loop without
processes (docs/development.md). A test parametrized with the "stdio" transport is marked here,
since `mcp_client("stdio", ...)` starts `python -m mcp_webtools`; every other one is marked in its
file. The marking is checked as the tests run: a test that starts a process (any
`subprocess.Popen`, fork or spawn, seen through Python's audit events) without the marker fails.
"""

from __future__ import annotations

import copy
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import mcp.client.client
import mcp.client.session
import pytest
from mcp.shared.jsonrpc_dispatcher import JSONRPCDispatcher
from support import (
    LOG_FILTER,
    REPO,
    SCANNER,
    HoldingUpstream,
    RecordingReadStream,
    RedisServer,
    Upstream,
    redis_server,
    register_config_secrets,
    serve_asgi,
)

if TYPE_CHECKING:
    from oauth_server import OAuthServer


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def holding() -> AsyncIterator[tuple[HoldingUpstream, str]]:
    """An upstream that holds each request until released, noting whether the caller hung up; its URL."""
    app = HoldingUpstream()
    async with serve_asgi(app) as url:
        try:
            yield app, url
        finally:
            app.release_all()


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    """A recording HTTP API on 127.0.0.1; `upstream.url` is its base URL."""
    app = Upstream()
    async with serve_asgi(app) as url:
        app.url = url
        yield app


RunCli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run_cli(capsys) -> RunCli:
    """`cli.main(argv)` -> (exit code, stdout, stderr), leaving the test process's logging as it was.

    In-process; a test whose command reaches an upstream served by this test's event loop runs it
    in a worker thread (`await anyio.to_thread.run_sync(run_cli, ...)`), where it has its own loop.
    """
    from mcp_webtools.cli import commands as cli

    def run(*argv: str) -> tuple[int, str, str]:
        root = logging.getLogger()
        loggers = [root, *(logging.getLogger(n) for n in ("httpx2", "httpcore2", "mcp", "uvicorn.access"))]
        handlers, levels = root.handlers[:], [logger.level for logger in loggers]
        try:
            code = cli.main(list(map(str, argv)))
        finally:
            root.handlers[:] = handlers
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)
        out, err = capsys.readouterr()
        return code, out, err

    return run


# --- e2e: the tests that start processes -------------------------------------------------------------

# Audit events (https://docs.python.org/3/library/audit_events.html) raised when a process starts.
_PROCESS_EVENTS = frozenset({"subprocess.Popen", "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "os.system"})
_running: list[pytest.Item] = []  # the test whose setup, call or teardown runs now
_started: dict[str, list[str]] = {}  # test id -> the processes it started


def _note_process(event: str, args: tuple[Any, ...]) -> None:
    if event in _PROCESS_EVENTS and _running:
        program = os.path.basename(str(args[0])) if event != "os.fork" and args else ""
        _started.setdefault(_running[-1].nodeid, []).append(f"{event} {program}".strip())


sys.addaudithook(_note_process)  # for the life of the process: audit hooks cannot be removed


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and any(_over_stdio(value) for value in callspec.params.values()):
            item.add_marker(pytest.mark.e2e)


def _over_stdio(parameter: Any) -> bool:
    """`"stdio"`, or a combination such as `("stdio", "legacy")` (one fixture parameter for both)."""
    return parameter == "stdio" or (isinstance(parameter, tuple) and "stdio" in parameter)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    _running.append(item)
    try:
        yield
    finally:
        _running.remove(item)
        _started.pop(item.nodeid, None)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    started = _started.pop(item.nodeid, None)
    if started and report.passed and item.get_closest_marker("e2e") is None:
        report.outcome = "failed"
        report.longrepr = (
            f"{item.nodeid} started a process in its {call.when} ({', '.join(sorted(set(started)))}) "
            "but is not marked e2e: add @pytest.mark.e2e, so that `pytest -m 'not e2e'` starts none"
        )
@pytest.fixture
async def oauth_server() -> AsyncIterator[OAuthServer]:
    """A real OAuth2 authorization server on 127.0.0.1 (oauth_server.py); skips without Node (fails in CI)."""
    # Imported here: the inner sessions of test_secrets.py run with a copy of conftest.py and support.py alone.
    from oauth_server import start_oauth_server

    async with start_oauth_server() as server:
        yield server


@pytest.fixture
def sdk_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The methods the SDK's request runner served, in order (what the hot path answers, it never sees)."""
    from mcp.server.runner import ServerRunner

    served: list[str] = []
    on_request = ServerRunner._on_request

    async def counting(runner: ServerRunner, dctx: Any, method: str, params: Any) -> dict:
        served.append(method)
        return await on_request(runner, dctx, method, params)

    monkeypatch.setattr(ServerRunner, "_on_request", counting)
    return served


@pytest.fixture
async def redis(tmp_path: Path) -> AsyncIterator[RedisServer]:
    """A real redis-server on a free loopback port, no persistence; skips without it (fails in CI)."""
    async with redis_server(tmp_path / "redis") as server:
        yield server


# --- the secrets scan ----------------------------------------------------------------------------

_FILES_TO_SCAN: list[tuple[str, Path]] = []  # (source, file) that processes wrote to, scanned at teardown
# The loggers whose levels `mcp_webtools.serving.runtime.configure_logging` sets.
_CONFIGURED_LOGGERS = ("", "httpx2", "httpcore2", "mcp", "uvicorn.access")


@pytest.fixture(scope="session", autouse=True)
def _secrets_scan() -> Iterator[None]:
    # The example tools' secrets (the demo token, by default) are the server's to hide too.
    register_config_secrets(REPO / "config", {})
    handler = _SCAN_HANDLER
    root = logging.getLogger()
    with pytest.MonkeyPatch.context() as patch:
        # The SDK builds its client dispatcher through these two module globals (2.3.x).
        for module in (mcp.client.client, mcp.client.session):
            assert module.JSONRPCDispatcher is JSONRPCDispatcher, f"{module.__name__} no longer uses JSONRPCDispatcher"
            patch.setattr(module, "JSONRPCDispatcher", _RecordingDispatcher)
        patch.setattr(anyio, "open_process", _recorded_open_process(anyio.open_process))
        patch.setattr(anyio, "run_process", _recorded_run_process(anyio.run_process))
        root.addHandler(handler)
        try:
            yield
        finally:
            root.removeHandler(handler)


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> Iterator[None]:
    """Undo what running `cli.main` in-process does to logging (the root's handlers replaced by the
    server's stderr handler, levels changed), so no test changes the next one's logging, and the
    scan's handler stays attached."""
    loggers = [logging.getLogger(name) for name in _CONFIGURED_LOGGERS]
    levels = [logger.level for logger in loggers]
    root = loggers[0]
    handlers = list(root.handlers)
    yield
    for handler in list(root.handlers):
        if handler not in handlers and not type(handler).__module__.startswith("_pytest."):
            root.removeHandler(handler)
    if _SCAN_HANDLER not in root.handlers:
        root.addHandler(_SCAN_HANDLER)
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)


class _RecordingDispatcher(JSONRPCDispatcher):  # type: ignore[type-arg]
    def __init__(self, read_stream: Any, write_stream: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(RecordingReadStream(read_stream), write_stream, *args, **kwargs)


class _ScanningLogHandler(logging.Handler):
    """Scans each record's text (message, traceback, stack) as `mcp-webtools serve` would print it."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            shown = copy.copy(record)  # the filter rewrites the record; other handlers get it as it was
            # The filter `serve` puts on its stderr handler: the one the in-process servers of
            # these tests are given (support.LOG_FILTER), with the secrets of each toolset they load.
            LOG_FILTER.filter(shown)
            if shown.exc_info and not shown.exc_text:
                shown.exc_text = logging.Formatter().formatException(shown.exc_info)
            # Not the time, level and logger name a formatter adds: no secret comes from there.
            text = "\n".join(part for part in (shown.getMessage(), shown.exc_text, shown.stack_info) if part)
            SCANNER.scan("log", f"{record.name} {record.levelname}", text)
        except Exception:  # noqa: BLE001 - a logging handler must not raise
            self.handleError(record)


_SCAN_HANDLER = _ScanningLogHandler(logging.NOTSET)


def _is_server(command: Any) -> bool:
    words = [command] if isinstance(command, (str, bytes)) else list(command)
    return any(("mcp_webtools" in str(w) or "mcp-webtools" in str(w)) for w in words)


def _source(command: Any) -> str:
    words = [command] if isinstance(command, (str, bytes)) else [str(w) for w in command]
    return " ".join(Path(w).name if i == 0 else w for i, w in enumerate(words))[:120]


def _note_files(command: Any, **kwargs: Any) -> None:
    """Output a server process writes to a file is scanned when the test ends."""
    for name in ("stdout", "stderr"):
        target = kwargs.get(name)
        if isinstance(getattr(target, "name", None), str) and Path(target.name).is_file():
            _FILES_TO_SCAN.append((f"{_source(command)} {name} file", Path(target.name)))


def _recorded_open_process(open_process: Any) -> Any:
    async def recorded(command: Any, **kwargs: Any) -> anyio.abc.Process:
        process = await open_process(command, **kwargs)
        if not _is_server(command):
            return process
        _note_files(command, **kwargs)
        return _RecordedProcess(process, _source(command))

    return recorded


def _recorded_run_process(run_process: Any) -> Any:
    async def recorded(command: Any, **kwargs: Any) -> Any:
        done = await run_process(command, **kwargs)
        if _is_server(command):
            _note_files(command, **kwargs)
            for name in ("stdout", "stderr"):
                output = getattr(done, name)
                if isinstance(output, bytes):
                    SCANNER.stream("process", f"{_source(command)} {name}").feed(output)
        return done

    return recorded


class _RecordedProcess(anyio.abc.Process):
    """A process whose stdout and stderr are scanned as the test reads them."""

    def __init__(self, inner: anyio.abc.Process, source: str) -> None:
        self._inner = inner
        self._stdout = _scanned_stream(inner.stdout, SCANNER.stream("process", f"{source} stdout"))
        self._stderr = _scanned_stream(inner.stderr, SCANNER.stream("process", f"{source} stderr"))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)  # the SDK reads `_process` to close the transport

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def wait(self) -> int:
        return await self._inner.wait()

    def terminate(self) -> None:
        self._inner.terminate()

    def kill(self) -> None:
        self._inner.kill()

    def send_signal(self, signal: Any) -> None:
        self._inner.send_signal(signal)

    @property
    def pid(self) -> int:
        return self._inner.pid

    @property
    def returncode(self) -> int | None:
        return self._inner.returncode

    @property
    def stdin(self) -> anyio.abc.ByteSendStream | None:
        return self._inner.stdin

    @property
    def stdout(self) -> anyio.abc.ByteReceiveStream | None:
        return self._stdout

    @property
    def stderr(self) -> anyio.abc.ByteReceiveStream | None:
        return self._stderr


def _scanned_stream(inner: anyio.abc.ByteReceiveStream | None, scan: Any) -> Any:
    return None if inner is None else _ScannedByteStream(inner, scan)


class _ScannedByteStream(anyio.abc.ByteReceiveStream):
    def __init__(self, inner: anyio.abc.ByteReceiveStream, scan: Any) -> None:
        self._inner, self._scan = inner, scan

    async def receive(self, max_bytes: int = 65536) -> bytes:
        chunk = await self._inner.receive(max_bytes)
        self._scan.feed(chunk)
        return chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


def _recording_capture(fixture: Any, name: str) -> Any:
    read = fixture.readouterr

    def readouterr() -> Any:
        captured = read()
        for stream in ("out", "err"):
            text = getattr(captured, stream)
            if text:
                SCANNER.scan("output", f"{name} {stream}", text if isinstance(text, str) else text.decode())
        return captured

    fixture.readouterr = readouterr
    return fixture


@pytest.fixture
def capsys(capsys: pytest.CaptureFixture[str]) -> pytest.CaptureFixture[str]:
    """pytest's `capsys`; what a test reads through it is scanned for secrets."""
    return _recording_capture(capsys, "capsys")


@pytest.fixture
def capfd(capfd: pytest.CaptureFixture[str]) -> pytest.CaptureFixture[str]:
    """pytest's `capfd`; what a test reads through it is scanned for secrets."""
    return _recording_capture(capfd, "capfd")


def pytest_runtest_logstart(nodeid: str) -> None:
    SCANNER.current_test = nodeid


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # Each report repeats the sections of earlier phases: scan only this phase's.
    for title, content in report.sections:
        if title.startswith(("Captured stdout", "Captured stderr")) and title.endswith(report.when):
            SCANNER.scan("output", title.removeprefix("Captured ").removesuffix(f" {report.when}"), content)
    if report.when == "teardown":
        while _FILES_TO_SCAN:
            source, path = _FILES_TO_SCAN.pop()
            if path.is_file():
                SCANNER.stream("process", source).feed(path.read_bytes())


def pytest_runtest_logfinish(nodeid: str) -> None:
    SCANNER.current_test = "(between tests)"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if SCANNER.leaks and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    lines = SCANNER.report()
    red = bool(SCANNER.leaks)
    terminalreporter.section("secrets scan", red=red, green=not red)
    for line in lines:
        terminalreporter.line(line, red=red and line.startswith(("secrets scan: FAILED", "  ")))


@pytest.fixture
def audit_log() -> Iterator[list[logging.LogRecord]]:
    """The records logged on `mcp_webtools.audit` during the test."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    audit = logging.getLogger("mcp_webtools.audit")
    level = audit.level
    audit.setLevel(logging.INFO)
    audit.addHandler(handler)
    try:
        yield records
    finally:
        audit.removeHandler(handler)
        audit.setLevel(level)
