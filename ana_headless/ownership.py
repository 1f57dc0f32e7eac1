"""Who serves a display: the process listening on its sockets, asked of the kernel
(SO_PEERCRED). Another server in a container that shares the network namespace may hold the
same abstract name: a display is handed over only when its listener is ours."""

from __future__ import annotations

from .claim import socket_path
from .errors import SetupError


def listener_pid(address: str | bytes) -> int | None:
    """The pid of the process that made a Unix socket address listen, or None if nobody
    listens on it."""
    import socket
    import struct

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(address)
        except OSError:
            return None
        pid, _uid, _gid = struct.unpack(
            "3i", probe.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        )
        return int(pid)


def display_addresses(display: str | int) -> tuple[str | bytes, ...]:
    """The abstract socket and the socket file of `display` (":N", ":N.S" or N)."""
    path = socket_path(str(display).lstrip(":").split(".")[0])
    return b"\0" + path.encode(), path


def display_listeners(display: str | int) -> set[int]:
    """The pids listening on the display's sockets (none when nothing serves it)."""
    return {pid for pid in map(listener_pid, display_addresses(display)) if pid is not None}


def _parent_pid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            # The command name in parentheses may hold spaces: the ppid follows its ')'.
            return int(stat.read().rpartition(")")[2].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def check_ownership(display: str, server_pid: int) -> int:
    """Every socket a client could reach for `display`, which the server picked itself, must
    be our server's (or, for xpra, its Xvfb's); the listener's pid."""
    listeners = display_listeners(display)
    if not listeners:
        raise SetupError(f"display {display} accepts no connection")
    strangers = [pid for pid in listeners if server_pid not in (pid, _parent_pid(pid))]
    if strangers:
        raise SetupError(
            f"display {display} is served by process {strangers[0]}, "
            f"not by the server we started (pid {server_pid})"
        )
    return listeners.pop()
