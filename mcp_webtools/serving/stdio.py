"""The stdio transport, without a worker thread per message.

The SDK's `mcp.server.stdio.stdio_server` reads each line and writes and flushes each answer
through anyio's thread-backed file wrapper: three thread hand-offs per tool call, which on a
small machine cost more than the rest of the call. `stdio_streams` keeps the SDK's behaviour
(the same fd diversion while serving, UTF-8 with replacement on input, universal newlines, one
JSON message per line out) and reads and writes the pipes with the event loop instead. Where the
loop cannot watch the descriptors (stdin redirected from a regular file, or an event loop other
than asyncio's) it reads and writes them through threads, as the SDK does; the rest is the same.

Two differences, on purpose:

- A line that is not one valid JSON-RPC message is answered (`-32700` or `-32600`, see
  `jsonrpc_input.py`) and logged as one WARNING line; the SDK hands it to the session, which drops
  it, and the client waits forever. Blank lines are not messages and are skipped.
- At the end of input, requests already read are given up to `EOF_GRACE_SECONDS` to be answered
  before the session closes (and the SDK cancels what is still running, answering "Connection
  closed"). With the SDK's transport a thread hop per line happens to give quick requests that
  time; without one, `printf '...' | mcp-webtools serve` would lose the answers to its last
  requests.
"""

from __future__ import annotations

import asyncio
import os
import selectors
import stat
import sys
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any, BinaryIO

import anyio
import anyio.lowlevel
import mcp_types as types
from mcp.server import ServerRequestContext
from mcp.server import stdio as sdk_stdio
from mcp.server.connection import Connection
from mcp.server.context import CallNext, HandlerResult
from mcp.shared._context_streams import create_context_streams
from mcp.shared.message import SessionMessage
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from ..observe.logcap import CappedLog
from .hot_path import (
    HotRequest,
    answer_call,
    client_seen,
    leaves_to_sdk,
    modern_request,
    prepared,
    progress_notification,
    session_request,
)
from .jsonrpc_input import Refusal, answer, read_message
from .jsonrpc_input import logger as protocol_logger
from .server import CallOrigin, WebTools

__all__ = ["StdioHotPath", "stdio_streams"]

_CHUNK = 256 * 1024
EOF_GRACE_SECONDS = 1.0

Lines = AsyncIterable[str]
WriteLine = Callable[[bytes], Awaitable[None]]


@asynccontextmanager
async def stdio_streams(hot: StdioHotPath | None = None) -> AsyncIterator[tuple[Any, Any]]:
    """(read stream, write stream) over this process's stdin and stdout, like `stdio_server()`;
    with `hot`, the requests it takes are answered by it, not by the SDK's session."""
    # The SDK's claim: fd 0 reads /dev/null and fd 1 goes to stderr while serving, so stray
    # output (a library's print, a child process) cannot corrupt the wire; restored on exit.
    stdin_file, restore_stdin = sdk_stdio._claim_fd(0, sys.stdin, "rb", sdk_stdio._open_stdin_diversion)
    try:
        stdout_file, restore_stdout = sdk_stdio._claim_fd(1, sys.stdout, "wb", sdk_stdio._open_stdout_diversion)
        try:
            wire = _pipes if _loop_can_watch(stdin_file) and _loop_can_watch(stdout_file) else _threads
            async with (
                wire(stdin_file, stdout_file) as (lines, write_line),
                _session_streams(lines, write_line, hot) as streams,
            ):
                yield streams
        finally:
            if restore_stdout is not None:
                restore_stdout()
    finally:
        if restore_stdin is not None:
            restore_stdin()


def _loop_can_watch(file: BinaryIO) -> bool:
    """A pipe, socket or terminal on the asyncio loop (a regular file is always "ready")."""
    try:
        asyncio.get_running_loop()  # RuntimeError under another event loop (trio)
        mode = os.fstat(file.fileno()).st_mode
    except (OSError, RuntimeError, ValueError):
        return False
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        return True
    if not stat.S_ISCHR(mode):
        return False
    # A terminal can be watched; /dev/null and some other devices cannot (epoll refuses them with
    # EPERM, which would surface as a traceback and a hang): ask the selector the loop uses.
    with selectors.DefaultSelector() as selector:
        try:
            selector.register(file.fileno(), selectors.EVENT_READ | selectors.EVENT_WRITE)
        except (OSError, ValueError):
            return False
    return True


@asynccontextmanager
async def _pipes(stdin_file: BinaryIO, stdout_file: BinaryIO) -> AsyncIterator[tuple[Lines, WriteLine]]:
    """The lines in and the line writer out, on the event loop."""
    in_fd, out_fd = stdin_file.fileno(), stdout_file.fileno()
    loop = asyncio.get_running_loop()
    # Our own descriptors, so that closing the transports never closes the wire the SDK restores.
    reader_file = os.fdopen(os.dup(in_fd), "rb", buffering=0)
    writer_file = os.fdopen(os.dup(out_fd), "wb", buffering=0)
    reader = asyncio.StreamReader(limit=_CHUNK, loop=loop)
    read_transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), reader_file)
    write_transport, write_protocol = await loop.connect_write_pipe(
        lambda: asyncio.StreamReaderProtocol(asyncio.StreamReader(loop=loop)), writer_file
    )
    writer = asyncio.StreamWriter(write_transport, write_protocol, None, loop)

    async def write_line(line: bytes) -> None:
        writer.write(line)
        await writer.drain()

    try:
        yield _lines(reader), write_line
    finally:
        read_transport.close()
        write_transport.close()
        # The loop made the pipes non-blocking; the descriptions are shared with fds 0 and 1.
        for fd in (in_fd, out_fd):
            with suppress(OSError):
                os.set_blocking(fd, True)


@asynccontextmanager
async def _threads(stdin_file: BinaryIO, stdout_file: BinaryIO) -> AsyncIterator[tuple[Lines, WriteLine]]:
    """The lines in and the line writer out, through worker threads (as the SDK's transport does)."""
    lines = anyio.wrap_file(sdk_stdio._UnownedTextWrapper(stdin_file, encoding="utf-8", errors="replace"))
    out = anyio.wrap_file(stdout_file)

    async def write_line(line: bytes) -> None:
        await out.write(line)
        await out.flush()

    yield lines, write_line


@asynccontextmanager
async def _session_streams(
    lines: Lines, write_line: WriteLine, hot: StdioHotPath | None = None
) -> AsyncIterator[tuple[Any, Any]]:
    """The session's (read stream, write stream): each line read becomes a message or an answer."""
    read_stream_writer, read_stream = create_context_streams[SessionMessage | Exception](0)
    write_stream, write_stream_reader = create_context_streams[SessionMessage](0)
    # The reader's own end of the outgoing stream, for the answers to lines that are no message.
    answer_stream = write_stream.clone()
    unanswered = _Unanswered()
    refusals = CappedLog(protocol_logger, "messages that are not JSON-RPC")

    async def stdin_reader() -> None:
        try:
            # The hot path's calls run beside the session's, and end with it (see EOF_GRACE_SECONDS).
            async with read_stream_writer, answer_stream, anyio.create_task_group() as hot_calls:
                async for line in lines:
                    text = line.rstrip()  # without its line end, so a parse error's position is in the line
                    if not text:
                        continue
                    try:
                        message = read_message(text)
                    except Refusal as refusal:
                        refusals.warning("stdio: answered %s", refusal, extra={"event": "protocol_error"})
                        await answer_stream.send(SessionMessage(answer(refusal)))
                        continue
                    if isinstance(message, types.JSONRPCRequest):
                        unanswered.add(message.id)
                        taken = hot.takes(message) if hot is not None else None
                        if taken is not None:
                            assert hot is not None
                            hot_calls.start_soon(hot.serve, *taken, answer_stream.clone(), unanswered.discard)
                            continue
                    elif hot is not None and isinstance(message, types.JSONRPCNotification):
                        hot.notified(message, unanswered.discard)  # a cancel for one of its calls
                    await read_stream_writer.send(SessionMessage(message))
                with anyio.move_on_after(EOF_GRACE_SECONDS):
                    await unanswered.wait_empty()
                hot_calls.cancel_scope.cancel()
        except anyio.ClosedResourceError:
            await anyio.lowlevel.checkpoint()

    async def stdout_writer() -> None:
        try:
            async with write_stream_reader:
                async for session_message in write_stream_reader:
                    message = session_message.message
                    json = message.model_dump_json(by_alias=True, exclude_unset=True)
                    await write_line((json + "\n").encode("utf-8"))
                    if isinstance(message, (types.JSONRPCResponse, types.JSONRPCError)):
                        unanswered.discard(message.id)
        except anyio.ClosedResourceError:
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as tg:
        tg.start_soon(stdin_reader)
        tg.start_soon(stdout_writer)
        yield read_stream, write_stream


class _Unanswered:
    """The ids of requests read and not yet answered."""

    def __init__(self) -> None:
        self._ids: set[Any] = set()
        self._empty = anyio.Event()
        self._empty.set()

    def add(self, request_id: Any) -> None:
        if not self._ids:
            self._empty = anyio.Event()
        self._ids.add(request_id)

    def discard(self, request_id: Any) -> None:
        self._ids.discard(request_id)
        if not self._ids:
            self._empty.set()

    async def wait_empty(self) -> None:
        await self._empty.wait()


async def _lines(reader: asyncio.StreamReader) -> AsyncIterator[str]:
    """Lines as a text-mode `readline` gives them: universal newlines ("\\n", "\\r\\n", "\\r"), each
    ending in "\\n", and a last line without one; bytes decoded as UTF-8 with replacement."""
    pending = b""
    while True:
        chunk = await reader.read(_CHUNK)
        if not chunk:
            break
        pending += chunk
        if pending.endswith(b"\r"):
            continue  # maybe the first half of "\r\n": wait for the next byte
        *complete, pending = _split(pending)
        for line in complete:
            yield (line + b"\n").decode("utf-8", errors="replace")
    *complete, last = _split(pending)
    for line in complete:
        yield (line + b"\n").decode("utf-8", errors="replace")
    if last:
        yield last.decode("utf-8", errors="replace")


def _split(data: bytes) -> list[bytes]:
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")


class StdioHotPath:
    """The hot path over stdio (hot_path.py): `tools/call` and `tools/list` lines in either era, and
    `ping` in the handshake era, answered beside the SDK's session instead of through it.

    The era is the connection's, known once the SDK has served a request of it (`remember_connection`,
    a server middleware): a handshake-era connection after its `initialize`, whose negotiated version
    and state decide; a 2026-07-28 stream, whose requests each carry their envelope. Until then, and
    for every request the hot path does not take, the SDK's session answers. A `notifications/cancelled`
    for a call running here cancels it, unanswered, as the SDK leaves a cancelled request.
    """

    def __init__(self, webtools: WebTools, *, tracing: Callable[[], bool] = lambda: False) -> None:
        self.webtools = webtools
        self._tracing = tracing
        self.connection: Connection | None = None  # a handshake-era connection, once initialized
        self.modern = False  # a 2026-07-28 stream
        self._calls: dict[Any, anyio.CancelScope] = {}

    async def remember_connection(self, ctx: ServerRequestContext, call_next: CallNext) -> HandlerResult:
        """Server middleware: note the era (and a handshake connection) of the stdio stream."""
        connection = getattr(ctx.session, "_connection", None)  # private in mcp 2.3 (see list_changed.py)
        if ctx.request is None and isinstance(connection, Connection):
            if connection.protocol_version in MODERN_PROTOCOL_VERSIONS:
                self.modern = True
            elif connection.initialize_accepted:
                self.connection = connection
        return await call_next(ctx)

    def takes(self, message: types.JSONRPCRequest) -> tuple[HotRequest, dict | None] | None:
        """The request, when the hot path answers it, with the answer if it runs nothing (a ping, a
        listing: taken now, as a reload before `serve` runs makes new views, not shaped yet)."""
        if self._tracing():
            return None
        decoded = {"jsonrpc": "2.0", "id": message.id, "method": message.method, "params": message.params}
        if self.modern:
            request = modern_request(decoded, None)
            if request is None or leaves_to_sdk(self.webtools, request):
                return None
        else:
            request = session_request(decoded, self.connection)
        if request is None or request.id in self._calls:
            return None
        if request.method == "tools/call":
            return request, None
        shaped = prepared(self.webtools, self.webtools.endpoint, None, request)
        return (request, shaped) if shaped is not None else None

    def notified(self, message: types.JSONRPCNotification, answered: Callable[[Any], None]) -> None:
        """A `notifications/cancelled` for a call running here: cancel it (it is not answered)."""
        if message.method != "notifications/cancelled" or not isinstance(message.params, dict):
            return
        request_id = message.params.get("requestId")
        scope = self._calls.get(request_id) if isinstance(request_id, str | int) else None
        if scope is not None:
            scope.cancel()
            answered(request_id)

    async def serve(
        self, request: HotRequest, shaped: dict | None, out: Any, answered: Callable[[Any], None]
    ) -> None:
        async with out:
            if shaped is not None:
                await out.send(SessionMessage(types.JSONRPCResponse(jsonrpc="2.0", id=request.id, result=shaped)))
                return
            params = self.connection.client_params if self.connection is not None else None
            info = request.meta.get(types.CLIENT_INFO_META_KEY) if self.modern else getattr(params, "client_info", None)
            origin = CallOrigin(request.id, self.webtools.endpoint, None, None, None, client_seen(info, "stdio"))
            token = request.progress_token

            async def progress(value: float, total: float | None, message: str | None) -> None:
                assert token is not None
                notification = progress_notification(token, value, total, message)
                await out.send(SessionMessage(types.JSONRPCNotification.model_validate(notification)))

            with anyio.CancelScope() as cancel:
                self._calls[request.id] = cancel
                try:
                    reply = await answer_call(self.webtools, request, origin, progress if token is not None else None)
                finally:
                    del self._calls[request.id]
            if cancel.cancelled_caught:
                answered(request.id)
                return
            if isinstance(reply, types.ErrorData):
                await out.send(SessionMessage(types.JSONRPCError(jsonrpc="2.0", id=request.id, error=reply)))
            else:
                await out.send(SessionMessage(types.JSONRPCResponse(jsonrpc="2.0", id=request.id, result=reply)))
