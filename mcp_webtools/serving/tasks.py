"""Task-style tool calls for 2026-07-28 clients that declare `io.modelcontextprotocol/tasks`.

Behind `serve --tasks`, since SDK 2.3.0 does not implement the extension: `tools/call` answers at
once with a task handle and runs the call in the background; the client polls `tasks/get` until
the task is `completed` and carries the ordinary `CallToolResult`.

Task ids are random (`secrets.token_urlsafe`), expire `ttl_seconds` after creation (a call still
running then is cancelled), and are bound to the caller that started them: another caller asking
for the id gets the same error as for an id that never existed (the caller's key comes from the
HTTP layer: `http_scope.caller_key`).

With a shared store (`serve --state`, state.py) every task's state is also published there, under
the same expiry, so `tasks/get` works on any replica: the task runs where it started, and the
others read what it published when it started and when it ended.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import anyio
import mcp_types as types
from anyio.abc import TaskGroup
from mcp.shared.exceptions import MCPError

__all__ = ["EXTENSION", "TaskBoard", "TaskStore"]

EXTENSION = "io.modelcontextprotocol/tasks"
DEFAULT_TTL_SECONDS = 3600.0
DEFAULT_POLL_INTERVAL_MS = 1000


class TaskBoard(Protocol):
    """Where tasks are published for other replicas (state.RedisState). Never raises: a board that
    cannot be reached leaves each replica with its own tasks."""

    async def put_task(self, task_id: str, record: dict[str, Any], ttl_seconds: float) -> None: ...

    async def get_task(self, task_id: str) -> dict[str, Any] | None: ...


@dataclass
class _Task:
    task_id: str
    caller: str
    created: float
    created_at: str
    updated_at: str
    status: str = "working"
    status_message: str | None = None
    result: types.CallToolResult | None = None
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)


class TaskStore:
    """The tasks of one server; `running()` owns the task group the calls run in."""

    def __init__(
        self,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        poll_interval_ms: int = DEFAULT_POLL_INTERVAL_MS,
        clock: Callable[[], float] = time.monotonic,
        board: TaskBoard | None = None,
    ) -> None:
        self.board = board
        self.ttl_seconds = ttl_seconds
        self.poll_interval_ms = poll_interval_ms
        self.clock = clock
        self._tasks: dict[str, _Task] = {}
        self._group: TaskGroup | None = None

    @property
    def available(self) -> bool:
        return self._group is not None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[TaskStore]:
        """While open, calls can run as tasks; on exit, the ones still running are cancelled."""
        async with anyio.create_task_group() as group:
            self._group = group
            try:
                yield self
            finally:
                self._group = None
                group.cancel_scope.cancel()

    async def start(self, caller: str, work: Callable[[], Awaitable[types.CallToolResult]]) -> dict[str, Any]:
        """Start `work` in the background; returns the `tools/call` answer (the task handle).

        Published (with a board) before the handle is returned: a client may poll another replica at once.
        """
        if self._group is None:
            raise RuntimeError("TaskStore.start() outside running()")
        self._expire()
        now = _now()
        task = _Task(secrets.token_urlsafe(24), caller, self.clock(), now, now)
        self._tasks[task.task_id] = task
        await self._publish(task)
        self._group.start_soon(self._run, task, work)
        return {"resultType": "task", **self._wire(task)}

    async def get(self, caller: str, task_id: str) -> dict[str, Any]:
        """The `tasks/get` answer; raises `MCPError` for an unknown, expired or other caller's id.

        A task of another replica is read from the board, as it was last published there.
        """
        self._expire()
        task = self._tasks.get(task_id)
        record = self._record(task) if task is not None else None
        if record is None and self.board is not None:
            record = await self.board.get_task(task_id)
        if record is None or not secrets.compare_digest(str(record.get("caller", "")), caller):
            raise MCPError(code=types.INVALID_PARAMS, message="Unknown or expired task")
        answer: dict[str, Any] = {"resultType": "complete", **record["wire"]}
        if record.get("result") is not None:
            answer["result"] = record["result"]
        return answer

    def _record(self, task: _Task) -> dict[str, Any]:
        """A task as published: its caller's key (a hash or an id, never a credential), wire form, result."""
        result = task.result.model_dump(mode="json", by_alias=True, exclude_none=True) if task.result else None
        return {"caller": task.caller, "wire": self._wire(task), "result": result}

    async def _publish(self, task: _Task) -> None:
        if self.board is not None:
            left = self.ttl_seconds - (self.clock() - task.created)
            if left > 0:
                await self.board.put_task(task.task_id, self._record(task), left)

    async def _run(self, task: _Task, work: Callable[[], Awaitable[types.CallToolResult]]) -> None:
        with task.scope:
            try:
                task.result = await work()
                task.status = "completed"
            except MCPError as exc:
                task.status, task.status_message = "failed", exc.error.message
            except Exception:
                # `work` (ToolCalls.call) turns our own bugs into tool errors; this is a last resort.
                task.status, task.status_message = "failed", "the call failed unexpectedly"
            task.updated_at = _now()
        if task.scope.cancelled_caught:
            task.status, task.updated_at = "cancelled", _now()
        with anyio.CancelScope(shield=True):  # a task cancelled at shutdown still says so to the others
            await self._publish(task)

    def _expire(self) -> None:
        deadline = self.clock() - self.ttl_seconds
        for task_id, task in list(self._tasks.items()):
            if task.created <= deadline:
                task.scope.cancel()
                del self._tasks[task_id]

    def _wire(self, task: _Task) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "taskId": task.task_id,
            "status": task.status,
            "createdAt": task.created_at,
            "lastUpdatedAt": task.updated_at,
            "ttlMs": int(self.ttl_seconds * 1000),
            "pollIntervalMs": self.poll_interval_ms,
        }
        if task.status_message is not None:
            wire["statusMessage"] = task.status_message
        return wire


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")
