"""Binding the HTTP listening sockets before anything else starts.

`serve --transport http`, `serve --workers N` and `demo` bind their ports here, first, and hand
the sockets to uvicorn. uvicorn binding them itself would fail deep inside the server's task
group: a port in use became a 70-line exception group, an unknown `--host` 85 lines. Binding
first turns each of those into a `ListenError` whose message says what is wrong and which option
to change; the CLI prints it as one line and exits 1, before any config is loaded or any log
line is written.

The sockets are bound as asyncio's `create_server(host=..., port=...)` binds them (every address
`host` resolves to, `SO_REUSEADDR`, IPv6 sockets IPv6-only), so `--host localhost` still listens
on both 127.0.0.1 and ::1.
"""

from __future__ import annotations

import errno
import socket

from ..errors import ListenError

__all__ = ["BACKLOG", "ListenError", "listen"]

BACKLOG = 2048  # uvicorn's default


def listen(host: str, port: int, *, port_option: str = "--port", host_option: str = "--host") -> list[socket.socket]:
    """Listening sockets on `host`:`port` (port 0: any free port), inheritable by worker processes.

    Raises `ListenError` naming `port_option` / `host_option` (the options the user gave them with).
    """
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, ValueError) as exc:  # gaierror; UnicodeError for a name the IDNA codec refuses (`a..b`)
        reason = exc.strerror if isinstance(exc, OSError) else "not a valid host name"
        problem = f"{host_option} {host!r} cannot be resolved ({reason})"
        raise ListenError(f"{problem}: {_host_hint(host_option)}") from None
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            try:
                sock = socket.socket(family, kind, proto)
            except OSError:
                continue  # an address family this system lacks (asyncio skips it too)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                raise ListenError(_explain(exc, host, port, port_option, host_option)) from None
            sock.listen(BACKLOG)
            sock.set_inheritable(True)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    if not sockets:
        raise ListenError(f"cannot listen on {host_option} {host!r}: no address of a kind this system supports")
    return sockets


def _explain(exc: OSError, host: str, port: int, port_option: str, host_option: str) -> str:
    if exc.errno == errno.EADDRINUSE:
        return f"port {port} is in use: pick another with {port_option}"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"{host_option} {host!r} is not an address of this machine: {_host_hint(host_option)}"
    if exc.errno == errno.EACCES:
        return f"port {port} needs privileges this process does not have: pick one above 1023 with {port_option}"
    return f"cannot listen on {host!r} port {port}: {exc.strerror or exc}"


def _host_hint(host_option: str) -> str:
    return f"pick one of this machine's addresses with {host_option}, e.g. 127.0.0.1 (0.0.0.0: every interface)"
