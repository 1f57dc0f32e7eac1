"""The virtual X server: start it on a number it picks itself, check it is ours, stop it.

Xvfb's `-displayfd` makes the server choose a free display number and write it to a pipe once
it accepts connections: no lock-file scanning to race with other launchers, and no sleep. The
number alone does not prove the socket behind it is ours (another server in a container that
shares the network namespace may hold the same abstract name), so before handing the display
over we ask the kernel who is listening on it (`SO_PEERCRED`).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import IO

from .errors import SetupError
from .lifetime import die_with_parent

X11_SOCKET_DIR = "/tmp/.X11-unix"
STOP_DEADLINE = 3.0
_STDERR_TAIL = 2000


@dataclass(frozen=True)
class Screen:
    width: int
    height: int
    depth: int

    def __str__(self) -> str:
        return f"{self.width}x{self.height}x{self.depth}"


def write_cookie_file(path: str) -> None:
    """Write an Xauthority file holding one fresh MIT-MAGIC-COOKIE-1 for any host and display.

    The format (Xau's): big-endian u16 family, then four u16-length-prefixed fields: address,
    display number, auth name, auth data. Family 0xffff (FamilyWild) with empty address and
    number matches whatever display number the server picks; the server reads the same file.
    """
    def field(data: bytes) -> bytes:
        return struct.pack(">H", len(data)) + data

    entry = struct.pack(">H", 0xFFFF) + field(b"") + field(b"") + field(
        b"MIT-MAGIC-COOKIE-1") + field(os.urandom(16))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as cookie:
        cookie.write(entry)


def xvfb_command(screen: Screen, displayfd: int, auth_file: str) -> list[str]:
    return [
        "Xvfb", "-displayfd", str(displayfd), "-nolisten", "tcp", "-auth", auth_file,
        # No reset when the last client leaves: a reset re-reads state for nothing.
        "-noreset", "+extension", "GLX", "-screen", "0", str(screen),
    ]


class XServer:
    """A running virtual X server owned by this process."""

    def __init__(self, process: subprocess.Popen[bytes], number: int, stderr: IO[bytes]) -> None:
        self.process = process
        self.number = number
        self.display = f":{number}"
        self._stderr = stderr

    @property
    def socket_path(self) -> str:
        return f"{X11_SOCKET_DIR}/X{self.number}"

    def stop(self) -> None:
        """SIGTERM, wait with a deadline, then SIGKILL; remove what a killed server leaves."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_DEADLINE)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.returncode == -signal.SIGKILL:
            # A killed server cannot unlink its socket and lock; they were ours (checked at start).
            for leftover in (self.socket_path, f"/tmp/.X{self.number}-lock"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(leftover)
        self._stderr.close()


def _stderr_tail(stream: IO[bytes]) -> str:
    stream.seek(0, os.SEEK_END)
    stream.seek(max(0, stream.tell() - _STDERR_TAIL))
    return stream.read().decode(errors="replace").strip()


def _listener_pid(address: str | bytes) -> int | None:
    """The pid of the process listening on a Unix socket address, or None if nobody is."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(address)
        except OSError:
            return None
        pid, _uid, _gid = struct.unpack("3i", probe.getsockopt(
            socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
        return int(pid)


def check_ownership(server: XServer) -> None:
    """Every socket a client could reach for this display must be our server's."""
    path = server.socket_path
    addresses: list[str | bytes] = [b"\0" + path.encode(), path]
    listeners = [pid for pid in map(_listener_pid, addresses) if pid is not None]
    if not listeners:
        raise SetupError(f"display {server.display} accepts no connection")
    strangers = [pid for pid in listeners if pid != server.process.pid]
    if strangers:
        raise SetupError(f"display {server.display} is served by process {strangers[0]}, "
                         f"not by the server we started (pid {server.process.pid})")


def start_xvfb(screen: Screen, auth_file: str, timeout: float) -> XServer:
    """Start Xvfb and return it once it accepts connections; SetupError otherwise."""
    read_end, write_end = os.pipe()
    # A file, not a pipe, takes the server's stderr: it can never fill up and block the
    # server, and its tail is there to quote if the server fails.
    stderr = tempfile.TemporaryFile()
    try:
        process = subprocess.Popen(
            xvfb_command(screen, write_end, auth_file), pass_fds=(write_end,),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
            # Its own session: a ^C on the terminal is for the child; the server must stay up
            # until the child has ended.
            start_new_session=True, preexec_fn=die_with_parent(signal.SIGTERM))
    except OSError as error:
        stderr.close()
        raise SetupError(f"cannot start Xvfb: {error.strerror}") from error
    finally:
        os.close(write_end)
    try:
        number = _read_display_number(read_end, process, timeout)
        server = XServer(process, number, stderr)
    except SetupError as error:
        if process.poll() is None:
            process.kill()
        process.wait()
        error.details = _stderr_tail(stderr)
        stderr.close()
        raise
    finally:
        os.close(read_end)
    try:
        check_ownership(server)
    except SetupError:
        server.stop()
        raise
    return server


def _read_display_number(read_end: int, process: subprocess.Popen[bytes], timeout: float) -> int:
    deadline = time.monotonic() + timeout
    received = b""
    while not received.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise SetupError(f"Xvfb was not ready within {timeout:g} s (--timeout)")
        ready, _, _ = select.select([read_end], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(read_end, 64)
        if not chunk:
            # The write end closed without a number: the server exited (or closed it).
            status = process.wait()
            raise SetupError(f"Xvfb exited with status {status} before it was ready")
        received += chunk
    return int(received)
