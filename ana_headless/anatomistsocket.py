"""pyanatomist's socket client, without its two costs: a port that parallel jobs share, and a
second lost before connecting.

pyanatomist's socket implementation (`anatomist.socket.api.Anatomist`) runs `anatomist -s
PORT` and connects to it through soma-base's `soma.qt_gui.io.Socket`:

- PORT comes from `Socket.findFreePort()`: the first port from 50007 (or from `port=`) on
  which nothing listens *yet*. The program listens some 0.5 s after its start, so jobs
  started together all take 50007: one program listens, the others run without a server,
  and every client drives the one that listens.
- `Socket.initialize()` connects, and when the program does not listen yet, sleeps 1 s
  before the next try: the client connects about 1 s after the start, whenever the program
  began to listen.

`patch_client_class()` fixes both for the clients that start their own program: PORT is
one the kernel has just found free (bound to port 0), and the client waits until the program
it started listens on it (its listening socket is seen in /proc/net/tcp6 or tcp, among the
program's own descriptors), then connects at the first try. Nothing else of the client
changes. The same fix upstream is written down in docs/design.md ("pyanatomist's socket
client").

The hook that `ana-headless run` and `exec` give their Python children, and that
ensure_headless() installs in its own process (`pythonhook/sitecustomize.py`), loads this
module by path when pyanatomist's socket module is imported, in interpreters where
ana_headless itself may not be importable: it uses the standard library alone.
"""

from __future__ import annotations

import os

# Loaded when pyanatomist is: what it imports at module level waits until used all the same.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# The TCP states of /proc/net/tcp: 0A is LISTEN.
LISTEN = "0A"
# How often the program's socket is looked at while it starts: a connection comes at most
# this long after the program listens.
POLL_INTERVAL = 0.01
# Set on a patched class, so that patching twice wraps once.
PATCHED = "_ana_headless_patched"


class ProgramGone(RuntimeError):
    """The program exited before it listened on its port."""


class PortTaken(RuntimeError):
    """Another process listens on the program's port: the program cannot."""


def free_loopback_port() -> int:
    """A TCP port of the loopback that the kernel has just found free."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _listening_inodes(port: int) -> set[str]:
    """The inodes of the sockets that listen on `port` (any address, IPv4 or IPv6)."""
    suffix = f":{port:04X}"
    inodes = set()
    for table in ("/proc/net/tcp6", "/proc/net/tcp"):
        try:
            with open(table, encoding="ascii") as lines:
                next(lines)
                for line in lines:
                    fields = line.split()
                    if fields[3] == LISTEN and fields[1].endswith(suffix):
                        inodes.add(fields[9])
        except FileNotFoundError:
            # A kernel without IPv6 has no tcp6 table.
            continue
    return inodes


def socket_inodes(pid: int) -> set[str] | None:
    """The inodes of process `pid`'s sockets; None when it has exited (or is a zombie)."""
    directory = f"/proc/{pid}/fd"
    inodes = set()
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            if stat.read().rpartition(b")")[2].split()[0] == b"Z":
                return None
        for name in os.listdir(directory):
            try:
                target = os.readlink(f"{directory}/{name}")
            except OSError:
                # Closed since the listing.
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return inodes


def listener(port: int, pid: int) -> str | None:
    """Who listens on `port`: "program" (process `pid`), "other" (another process: `pid`
    cannot listen there), or None (nobody yet). Raises ProgramGone when `pid` has exited."""
    listening = _listening_inodes(port)
    own = socket_inodes(pid)
    if own is None:
        raise ProgramGone(f"the program (pid {pid}) exited before it listened on port {port}")
    if listening & own:
        return "program"
    return "other" if listening else None


def wait_until_listening(port: int, pid: int, timeout: float) -> None:
    """Return as soon as process `pid` listens on `port`. Raises ProgramGone when it exits
    first, PortTaken when another process listens there, TimeoutError after `timeout` s."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        who = listener(port, pid)
        if who == "program":
            return
        if who == "other":
            raise PortTaken(f"another process listens on port {port}, where pid {pid} would")
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"the program (pid {pid}) did not listen on port {port} in {timeout} s"
            )
        time.sleep(POLL_INTERVAL)


def patch_client_class(cls: Any) -> None:
    """Make pyanatomist's socket `Anatomist` class start its program on a port of its own and
    connect as soon as that program listens. Idempotent."""
    start_and_connect = getattr(cls, "runAnatomistServer", None)
    if getattr(cls, PATCHED, False) or start_and_connect is None:
        # Without it, a class of that name (another pyanatomist, a stand-in) starts its
        # program some other way, which is left as it is.
        return

    def runAnatomistServer(self: Any, *args: Any) -> None:
        comm = self.comm
        if not (self.newanatomist and cls.anatomistExecutable is not None):
            # It connects to a program that runs already: nothing to choose, nothing to wait.
            start_and_connect(self, *args)
            return
        if comm.port is None:
            # findFreePort() starts from comm.port, and returns it when nothing listens there.
            comm.port = free_loopback_port()
        connect = comm.initialize

        def initialize(port: int | None = None) -> None:
            # The program has just been started (QProcess.start): wait for its listening
            # socket, then upstream connects at its first try.
            pid = int(self.anaServerProcess.processId())
            if pid:
                wait_until_listening(port or comm.port, pid, comm.loopRetry)
            connect(port=port)

        # On the instance, for this start only: the class's method stays upstream's.
        comm.initialize = initialize
        try:
            start_and_connect(self, *args)
        finally:
            del comm.initialize

    cls.runAnatomistServer = runAnatomistServer
    setattr(cls, PATCHED, True)
