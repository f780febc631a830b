"""Several worker processes answering HTTP on one listening socket (`serve --transport http --workers N`).

The parent binds the sockets once (listening.py: one per address `--host` resolves to), then
starts N copies of the very same command line (`python -m mcp_webtools serve ...`) that inherit
them, as systemd socket activation does: each worker loads the config, builds its own `WebTools`
and runs the usual `GracefulServer` on those sockets, and the kernel hands each new connection to
one of them. Re-running the command rather
than pickling a server into `multiprocessing` children means every `serve` flag behaves in a
worker exactly as it does in a single process.

The parent only supervises: it forwards SIGTERM/SIGINT (a second signal forces the workers, as
a second Ctrl-C does one server) and SIGHUP, waits for every worker to drain, restarts a worker
that dies on its own, and gives up (exit 1) when workers keep dying right after they start.

Everything a worker holds is its own: legacy sessions, task handles, rate limits, metrics, reloads;
with `--state redis://...` (state.py) the workers share the task handles and rate limits, which is
why `--workers` with `--tasks` needs it. See docs/operations.md, "Running past one machine".
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["WORKER_FD_ENV", "run_workers", "worker_sockets"]

logger = logging.getLogger("mcp_webtools.workers")

# Set by the parent in each worker's environment: the file descriptors of the listening sockets, comma-separated.
WORKER_FD_ENV = "MCP_WEBTOOLS_WORKER_FD"
# A worker that dies this soon after it started counts as failing to start; this many such
# deaths in a row and the parent stops rather than restart it for ever.
QUICK_DEATH_SECONDS = 10.0
MAX_QUICK_DEATHS = 3
RESTART_DELAY_SECONDS = 1.0  # after a quick death, so a crash loop does not spin
STARTUP_FAILURE = 3  # uvicorn's exit status for "could not start"; restarting would fail the same way
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def worker_sockets() -> list[socket.socket] | None:
    """In a worker: the listening sockets the supervisor passed down; elsewhere None.

    A worker also stops gracefully (as on SIGTERM) when its supervisor goes away, even killed
    outright: its stdin is a pipe only the supervisor holds open, so it reads end-of-file then.
    """
    fds = os.environ.pop(WORKER_FD_ENV, None)
    if not fds:
        return None
    threading.Thread(target=_stop_when_orphaned, name="supervisor-watch", daemon=True).start()
    return [socket.socket(fileno=int(fd)) for fd in fds.split(",")]


def _stop_when_orphaned() -> None:
    sys.stdin.buffer.read()  # the supervisor never writes: this returns when it has gone
    logger.warning("the supervisor has gone; stopping")
    os.kill(os.getpid(), signal.SIGTERM)


@dataclass
class Worker:
    slot: int  # 1..N: which of the N places this process fills
    process: subprocess.Popen[bytes]
    started: float

    @property
    def pid(self) -> int:
        return self.process.pid


class Supervisor:
    """Keeps `count` workers running `command` on `sockets` until told to stop."""

    def __init__(self, count: int, command: Sequence[str], sockets: Sequence[socket.socket]) -> None:
        self.count = count
        self.command = list(command)
        self.fds = tuple(sock.fileno() for sock in sockets)
        self.workers: dict[int, Worker] = {}
        # Signal handlers and waiter threads both report here; SimpleQueue.put is safe in a handler.
        self._events: queue.SimpleQueue[tuple[str, int, Worker | None]] = queue.SimpleQueue()
        self._stop_signals = 0
        self._quick_deaths = 0
        self._failed = False
        self._unclean = False  # a worker ended badly while stopping

    def run(self) -> int:
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (*STOP_SIGNALS, signal.SIGHUP)}
        try:
            for slot in range(1, self.count + 1):
                self._start(slot)
            while self.workers or not self._stopping:
                kind, number, worker = self._events.get()
                if kind == "signal":
                    self._handle_signal(number)
                elif kind == "exit" and worker is not None:
                    self._handle_exit(worker, number)
                elif kind == "restart" and not self._stopping:
                    self._start(number)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if self._failed or self._unclean:
            return 1
        logger.info("all workers stopped")
        return 0

    @property
    def _stopping(self) -> bool:
        return self._stop_signals > 0 or self._failed

    def _start(self, slot: int) -> None:
        env = {**os.environ, WORKER_FD_ENV: ",".join(map(str, self.fds))}
        # stdin: a pipe held open for the worker's life; see `worker_sockets`.
        process = subprocess.Popen(self.command, env=env, pass_fds=self.fds, stdin=subprocess.PIPE)
        worker = Worker(slot, process, time.monotonic())
        self.workers[slot] = worker
        logger.info("worker %d started [pid %d]", slot, worker.pid)
        threading.Thread(target=self._wait, args=(worker,), daemon=True).start()

    def _wait(self, worker: Worker) -> None:
        status = worker.process.wait()
        if worker.process.stdin is not None:
            worker.process.stdin.close()
        self._events.put(("exit", status, worker))

    def _on_signal(self, signum: int, frame: object) -> None:
        self._events.put(("signal", signum, None))

    def _handle_signal(self, signum: int) -> None:
        if signum == signal.SIGHUP:
            logger.info("SIGHUP: passing it on to %d worker(s)", len(self.workers))
            self._send_all(signal.SIGHUP)
            return
        self._stop_signals += 1
        if self._stop_signals == 1:
            logger.info("%s: stopping %d worker(s) gracefully", signal.Signals(signum).name, len(self.workers))
            self._send_all(signal.SIGTERM)
        else:
            # Each worker takes a SIGINT after a SIGTERM as "stop now", as one server takes a second Ctrl-C.
            logger.info("%s again: forcing %d worker(s) to stop", signal.Signals(signum).name, len(self.workers))
            self._send_all(signal.SIGINT)

    def _send_all(self, signum: int) -> None:
        for worker in self.workers.values():
            if worker.process.returncode is None:
                worker.process.send_signal(signum)

    def _handle_exit(self, worker: Worker, status: int) -> None:
        if self.workers.get(worker.slot) is not worker:
            return
        del self.workers[worker.slot]
        if self._stopping:
            # uvicorn re-raises the stop signal once it has drained, so dying by it is a clean stop.
            clean = status in (0, -signal.SIGTERM, -signal.SIGINT)
            self._unclean = self._unclean or not clean
            log = logger.info if clean else logger.error
            log("worker %d [pid %d] stopped (%s)", worker.slot, worker.pid, _describe(status))
            return
        quick = time.monotonic() - worker.started < QUICK_DEATH_SECONDS
        self._quick_deaths = self._quick_deaths + 1 if quick else 0
        if status == STARTUP_FAILURE or self._quick_deaths >= MAX_QUICK_DEATHS:
            logger.error(
                "worker %d [pid %d] failed to start (%s); stopping all workers",
                worker.slot,
                worker.pid,
                _describe(status),
            )
            self._failed = True
            self._send_all(signal.SIGTERM)
            return
        logger.warning(
            "worker %d [pid %d] died unexpectedly (%s); starting a new one", worker.slot, worker.pid, _describe(status)
        )
        if quick:
            timer = threading.Timer(RESTART_DELAY_SECONDS, self._events.put, args=(("restart", worker.slot, None),))
            timer.daemon = True
            timer.start()
        else:
            self._start(worker.slot)


def _describe(status: int) -> str:
    if status < 0:
        return f"signal {signal.Signals(-status).name}"
    return f"exit status {status}"


def run_workers(count: int, sockets: Sequence[socket.socket], argv: Sequence[str]) -> int:
    """Serve with `count` workers, each running `mcp-webtools <argv>` on `sockets` (see listening.py); the exit status.

    The sockets are closed on return.
    """
    host, port = sockets[0].getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    logger.info("starting %d workers on http://%s:%d/mcp [supervisor pid %d]", count, shown, port, os.getpid())
    try:
        return Supervisor(count, [sys.executable, "-m", "mcp_webtools", *argv], sockets).run()
    finally:
        for sock in sockets:
            sock.close()
