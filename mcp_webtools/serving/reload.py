"""Hot reload: notice that the config changed, load the whole new set, and swap it in if it is valid.

    file change (polled) or SIGHUP -> load + validate everything -> swap `WebTools.toolset`
    -> tools/list_changed to the clients of both protocol eras

`ConfigWatcher` polls a fingerprint of the config paths (each file's resolved path, size,
mtime and inode, plus the folders' own), so a Kubernetes ConfigMap update (an atomic swap of the
`..data` symlink) is seen like an edit. The secret files the configs name (`${file:...}`) are
watched the same way: a Kubernetes Secret rotated (the same `..data` swap) or a file rewritten in
place reloads, and the next call uses the new value; the old one stays masked (the log filter keeps
every toolset's secrets). A secret file missing or unreadable then is a config error naming the tool
and the path, never the content, and the last good set keeps serving. A change must hold still for one poll before it is
loaded, so a file caught half-written is not reported as broken, and a content hash keeps a
`touch` from reloading anything.

`Reloader.reload` never leaves the server without tools: an invalid set is logged (every error,
redacted) and the last good one keeps serving. Calls in flight finish on the definitions they
started with (see `WebTools.replace_toolset`).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import signal
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.abc

from ..errors import ConfigErrors
from ..loading import ConfigProblem, config_files, secret_files_named
from ..readers.openapi import referenced_document
from ..toolset import Toolset
from .server import WebTools

__all__ = ["DEFAULT_WATCH_INTERVAL", "ConfigWatcher", "ReloadOutcome", "Reloader"]

logger = logging.getLogger("mcp_webtools.reload")

DEFAULT_WATCH_INTERVAL = 1.0
# What set off a reload, as logged and as `ReloadOutcome.trigger` says.
FILE_CHANGE, SIGNAL, REQUEST = "file change", "SIGHUP", "request"

Fingerprint = tuple[tuple[object, ...], ...]


@dataclass(frozen=True)
class ReloadOutcome:
    """What one reload did. `errors` are already redacted; tool names are MCP names."""

    trigger: str
    ok: bool
    tools: int  # how many tools are serving now
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    errors: tuple[ConfigProblem, ...] = ()
    notified: bool = False  # whether clients were sent tools/list_changed
    warnings: tuple[ConfigProblem, ...] = ()  # of the set just loaded (already redacted), when it loaded
    endpoints_changed: bool = False  # the endpoints or clients changed (endpoints.py)

    @property
    def swapped(self) -> bool:
        """True when a new toolset is now serving."""
        return self.ok and bool(self.added or self.removed or self.changed or self.endpoints_changed)

    def describe(self) -> str:
        """One log line (the errors, if any, follow on their own lines)."""
        if not self.ok:
            count = len(self.errors)
            head = (
                f"config reload ({self.trigger}) failed; still serving the previous {self.tools} tool(s). "
                f"{count} config error{'s' if count != 1 else ''}:"
            )
            return "\n".join([head, *(f"  - {error}" for error in self.errors)])
        if not self.swapped:
            return f"config reload ({self.trigger}): no changes; {self.tools} tool(s)"
        parts = [f"{len(names)} {label}{_names(names)}" for label, names in self._changes()]
        if self.endpoints_changed:
            parts.append("endpoints or clients changed")
        listed = "notified clients" if self.notified else "tools/list unchanged"
        return f"config reloaded ({self.trigger}): {', '.join(parts)}; {self.tools} tool(s) now, {listed}"

    def _changes(self) -> list[tuple[str, tuple[str, ...]]]:
        return [("added", self.added), ("removed", self.removed), ("changed", self.changed)]


def _listing(view: Toolset | None) -> list[object] | None:
    """What an endpoint's clients see in tools/list (None: the endpoint is not served)."""
    return None if view is None else [tool.listing for tool in view]


def _names(names: tuple[str, ...], shown: int = 5) -> str:
    if not names:
        return ""
    more = f", +{len(names) - shown} more" if len(names) > shown else ""
    return f" ({', '.join(names[:shown])}{more})"


class ConfigWatcher:
    """Tells whether the config files and folders at `paths` changed since it last looked."""

    def __init__(self, paths: Iterable[str | os.PathLike[str]]) -> None:
        self.paths = [Path(p) for p in paths]
        # Each config file's `${file:...}` paths, by the file's stat: read again only when it changes.
        self._named: dict[Path, tuple[tuple[object, ...], list[Path]]] = {}
        # config file -> ((mtime, size), the OpenAPI document it references or None): read once per edit
        self._references: dict[Path, tuple[tuple[int, int], Path | None]] = {}

    def fingerprint(self) -> Fingerprint:
        """Cheap (stat calls only, unless a config file changed): changes whenever a config file or a
        secret file it names is edited, added, removed or swapped for another (a symlink retargeted),
        and when a folder's entries change."""
        entries: list[tuple[object, ...]] = []
        for path in self.paths:
            entries.append((str(path), *_stat(path)))
        files, _ = self.files()
        for file in [*files, *self.secret_files(files)]:
            entries.append((str(file), str(_resolved(file)), *_stat(file)))
        return tuple(entries)

    def digest(self) -> str:
        """A hash of what the loader would read: each config file's and secret file's name and bytes."""
        sha = hashlib.sha256()
        files, errors = self.files()
        for file in [*files, *self.secret_files(files)]:
            sha.update(str(file).encode("utf-8", "surrogateescape") + b"\0")
            try:
                sha.update(file.read_bytes())
            except OSError as exc:
                sha.update(f"unreadable: {exc.errno}".encode())
            sha.update(b"\0")
        for error in errors:
            sha.update(f"{error}\0".encode("utf-8", "surrogateescape"))
        return sha.hexdigest()

    def secret_files(self, files: Iterable[Path]) -> list[Path]:
        """The `${file:...}` secret files that `files` (config files) name, each once."""
        named: dict[Path, None] = {}
        for file in files:
            stat = _stat(file)
            known = self._named.get(file)
            if known is None or known[0] != stat:
                try:
                    text = file.read_text(encoding="utf-8-sig")
                except (OSError, UnicodeDecodeError):  # the loader reports it
                    text = ""
                known = self._named[file] = (stat, [Path(path) for path in secret_files_named(text)])
            named.update(dict.fromkeys(known[1]))
        return list(named)

    def files(self) -> tuple[list[Path], list[ConfigProblem]]:
        """The files the loader would read now: the config files (`config_files`) and the OpenAPI
        documents they reference; and what is missing."""
        try:
            files, errors = config_files(self.paths)
        except OSError as exc:  # e.g. a folder removed between two calls the loader makes
            return [], [ConfigProblem(str(exc.filename or "config"), f"cannot be read: {exc.strerror}")]
        documents = [doc for doc in map(self._referenced, files) if doc is not None and doc not in files]
        return files + list(dict.fromkeys(documents)), errors

    def _referenced(self, file: Path) -> Path | None:
        try:
            st = file.stat()
        except OSError:
            return None
        key = (st.st_mtime_ns, st.st_size)
        cached = self._references.get(file)
        if cached is None or cached[0] != key:
            cached = (key, referenced_document(file))
            self._references[file] = cached
        return cached[1]


def _stat(path: Path) -> tuple[object, ...]:
    try:
        st = path.stat()  # follows symlinks: a retargeted ConfigMap `..data` gives a new inode
    except OSError as exc:
        return ("missing", exc.errno)
    return (st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python < 3.13)
        return path


class Reloader:
    """Reloads `webtools` from `paths` through `load` (which raises `ConfigErrors` for an invalid set).

    `on_reload` callbacks get every `ReloadOutcome` (e.g. for metrics); one that raises is logged
    and skipped. `run` polls the files (when `watch`) and reloads on SIGHUP (on Unix).
    """

    def __init__(
        self,
        webtools: WebTools,
        paths: Sequence[str | os.PathLike[str]],
        load: Callable[[], Toolset],
        *,
        watch: bool = True,
        interval: float = DEFAULT_WATCH_INTERVAL,
        on_reload: Iterable[Callable[[ReloadOutcome], None]] = (),
    ) -> None:
        if interval <= 0:
            raise ValueError(f"the watch interval must be positive, not {interval}")
        self.webtools = webtools
        self.watcher = ConfigWatcher(paths)
        self.load = load
        self.watch = watch
        self.interval = interval
        self.on_reload: list[Callable[[ReloadOutcome], None]] = list(on_reload)
        self.last: ReloadOutcome | None = None
        self._lock = anyio.Lock()
        # Taken now, right after the initial load, so an edit from here on is seen as a change.
        self._fingerprint = self.watcher.fingerprint()
        self._digest = self.watcher.digest()
        self._settled = True  # False while a change seen by `poll` waits to hold still

    async def reload(self, trigger: str = REQUEST) -> ReloadOutcome:
        """Load the whole set; swap it in and notify clients if it is valid and differs.

        Reloads run one at a time. Logs one record for the outcome.
        """
        async with self._lock:
            self._digest = await anyio.to_thread.run_sync(self.watcher.digest)
            outcome = await self._reload(trigger)
            if outcome.ok:
                logger.info("%s", outcome.describe())
            else:
                logger.error("%s", outcome.describe())
            self.last = outcome
            for callback in list(self.on_reload):
                try:
                    callback(outcome)
                except Exception:  # noqa: BLE001 - an observer must not break reloading
                    logger.exception("a reload callback failed")
        return outcome

    async def _reload(self, trigger: str) -> ReloadOutcome:
        current = self.webtools.toolset
        try:
            new = await anyio.to_thread.run_sync(self.load)
        except ConfigErrors as exc:
            return ReloadOutcome(trigger, ok=False, tools=len(current), errors=tuple(exc.errors))
        except Exception as exc:  # noqa: BLE001 - a bug of ours must not stop the server
            logger.exception("config reload (%s) failed unexpectedly", trigger)
            error = ConfigProblem("config", f"unexpected error while loading: {type(exc).__name__}")
            return ReloadOutcome(trigger, ok=False, tools=len(current), errors=(error,))
        old_names = {tool.name for tool in current}
        new_names = {tool.name for tool in new}
        added = tuple(sorted(new_names - old_names))
        removed = tuple(sorted(old_names - new_names))
        changed = tuple(
            sorted(
                tool.name
                for tool in new
                if (old := current.get(tool.name)) is not None and old.definition != tool.definition
            )
        )
        endpoints_changed = new.endpoints != current.endpoints
        if not (added or removed or changed or endpoints_changed):
            return ReloadOutcome(trigger, ok=True, tools=len(current), warnings=new.warnings)
        self.webtools.replace_toolset(new)
        # Each endpoint's clients hear of it only when their own list changed (None: `/mcp`).
        listings = {None, *current.views, *new.views}
        notify = [e for e in listings if _listing(current.view(e)) != _listing(new.view(e))]
        if notify:
            await self.webtools.notify_tools_changed(notify)
        return ReloadOutcome(
            trigger,
            ok=True,
            tools=len(new),
            added=added,
            removed=removed,
            changed=changed,
            notified=bool(notify),
            warnings=new.warnings,
            endpoints_changed=endpoints_changed,
        )

    async def poll(self) -> ReloadOutcome | None:
        """Look once; reload if the files changed since the last look and have held still since.

        Returns the outcome of the reload, if there was one. `watch_files` calls this every
        `interval` seconds.
        """
        fingerprint = await anyio.to_thread.run_sync(self.watcher.fingerprint)
        if fingerprint != self._fingerprint:
            # Moving: look again next time (a file may be half-written now).
            self._fingerprint, self._settled = fingerprint, False
            return None
        if self._settled:
            return None
        self._settled = True
        digest = await anyio.to_thread.run_sync(self.watcher.digest)
        if digest == self._digest:
            return None  # touched, or changed and changed back: nothing to load
        return await self.reload(FILE_CHANGE)

    async def watch_files(self) -> None:
        """Poll forever, `interval` seconds apart."""
        while True:
            await anyio.sleep(self.interval)
            try:
                await self.poll()
            except Exception:  # noqa: BLE001 - a bug of ours must not stop the server, or the watching
                logger.exception("watching the config failed; trying again in %g s", self.interval)

    async def reload_on_sighup(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Reload on every SIGHUP, forever (Unix only; elsewhere it just waits)."""
        with contextlib.ExitStack() as stack:
            try:
                signals = stack.enter_context(anyio.open_signal_receiver(signal.SIGHUP))
            except (AttributeError, NotImplementedError, RuntimeError, ValueError) as exc:
                # No SIGHUP (Windows), or not the main thread (an embedding application's choice).
                logger.warning("SIGHUP will not reload the config here: %s", exc)
                task_status.started()
                await anyio.sleep_forever()
            task_status.started()
            async for _ in signals:
                await self.reload(SIGNAL)

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Reload on SIGHUP, and on file changes when watching, until cancelled.

        Reports started (for `TaskGroup.start`) once SIGHUP is handled.
        """
        async with anyio.create_task_group() as tg:
            await tg.start(self.reload_on_sighup)
            if self.watch:
                tg.start_soon(self.watch_files)
                files, _ = self.watcher.files()
                secrets = self.watcher.secret_files(files)
                logger.info(
                    "watching %d config file(s)%s for changes every %g s; SIGHUP reloads too",
                    len(files),
                    f" and {len(secrets)} secret file(s)" if secrets else "",
                    self.interval,
                )
            task_status.started()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """`run` in the background while the block runs."""
        async with anyio.create_task_group() as tg:
            await tg.start(self.run)
            try:
                yield
            finally:
                tg.cancel_scope.cancel()
