"""The virtual X server: start it on a number it picks itself, check it is ours, stop it.

Xvfb's `-displayfd` makes the server choose a free display number and write it to a pipe once
it accepts connections: no lock-file scanning to race with other launchers, and no sleep. The
number alone does not prove the socket behind it is ours (another server in a container that
shares the network namespace may hold the same abstract name), so before handing the display
over we ask the kernel who is listening on it (`SO_PEERCRED`).

Starting is split in two, `spawn_server` and `PendingServer.wait_ready`, so that the launcher
can do its other work while the server initialises. Light on imports for the same reason.
"""

from __future__ import annotations

import os
import select
import signal
import struct
import time

from .errors import SetupError
from .lifetime import PrivateDirectory, spawn, wait_pid, which

# Type-only imports: collections.abc and typing would cost the launcher's start-up path.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping


X11_SOCKET_DIR = "/tmp/.X11-unix"
VALID_DEPTHS = (8, 15, 16, 24, 30, 32)
# The largest screen Xvfb accepts in each dimension.
MAX_SIDE = 32767
STOP_DEADLINE = 3.0
_STDERR_TAIL = 2000


class Screen:
    """A virtual screen, WxHxD (a plain class: a NamedTuple would import typing)."""

    __slots__ = ("depth", "height", "width")

    def __init__(self, width: int, height: int, depth: int) -> None:
        self.width, self.height, self.depth = width, height, depth

    def _key(self) -> tuple[int, int, int]:
        return (self.width, self.height, self.depth)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Screen) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"Screen({self.width}, {self.height}, {self.depth})"

    def __str__(self) -> str:
        return f"{self.width}x{self.height}x{self.depth}"

    @classmethod
    def parse(cls, text: str) -> Screen:
        """WxHxD, as Xvfb's -screen takes it; ValueError says what is accepted."""
        parts = text.strip().split("x")
        if len(parts) == 3 and all(part.isdigit() for part in parts):
            width, height, depth = map(int, parts)
            if 1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE and depth in VALID_DEPTHS:
                return cls(width, height, depth)
        raise ValueError(f"{text!r} is not WxHxD with W and H from 1 to {MAX_SIDE} and D one "
                         f"of {', '.join(map(str, VALID_DEPTHS))}.")


def write_auth_file(path: str, cookie: bytes, number: str = "", inherited: bytes = b"") -> None:
    """Write an Xauthority file: our MIT-MAGIC-COOKIE-1, then any `inherited` entries.

    The format (Xau's): big-endian u16 family, then four u16-length-prefixed fields: address,
    display number, auth name, auth data. Family 0xffff (FamilyWild) matches any host; an
    empty number matches any display, which is what the server's file needs before it has
    picked its number. The child's file names the number, so that the user's own entries that
    follow (for a 3D X server VirtualGL may use) still match their displays.
    """
    def field(data: bytes) -> bytes:
        return struct.pack(">H", len(data)) + data

    entry = struct.pack(">H", 0xFFFF) + field(b"") + field(number.encode()) + field(
        b"MIT-MAGIC-COOKIE-1") + field(cookie)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as auth:
        auth.write(entry + inherited)


def inherited_auth(env: Mapping[str, str]) -> bytes:
    """The user's own Xauthority entries, or nothing if there are none to read."""
    path = env.get("XAUTHORITY") or os.path.join(env.get("HOME", "/"), ".Xauthority")
    try:
        with open(path, "rb") as auth:
            return auth.read()
    except OSError:
        return b""


def _xvfb_arguments(screen: Screen, auth_file: str) -> list[str]:
    return [
        "-nolisten", "tcp", "-auth", auth_file,
        # No reset when the last client leaves: a reset re-reads state for nothing.
        "-noreset", "+extension", "GLX", "-screen", "0", str(screen),
    ]


def xvfb_command(screen: Screen, displayfd: int, auth_file: str) -> list[str]:
    return ["Xvfb", "-displayfd", str(displayfd), *_xvfb_arguments(screen, auth_file)]


def xpra_command(screen: Screen, displayfd: int, auth_file: str, private_dir: str) -> list[str]:
    """xpra in the foreground, with its sockets and logs in our private directory.

    xpra starts its own Xvfb; `setpriv --pdeathsig` makes that one die with xpra, as xpra
    dies with us, so that a SIGKILL anywhere up the chain still leaves no server.
    """
    import shlex

    xvfb = ["Xvfb", *_xvfb_arguments(screen, auth_file)]
    if which("setpriv"):
        xvfb = ["setpriv", "--pdeathsig", "TERM", *xvfb]
    return [
        "xpra", "start", "--daemon=no", f"--displayfd={displayfd}", f"--xvfb={shlex.join(xvfb)}",
        f"--socket-dirs={private_dir}", f"--log-dir={private_dir}",
        # Only a display is wanted: none of the session services.
        "--mdns=no", "--pulseaudio=no", "--notifications=no", "--dbus-launch=",
        "--dbus-proxy=no", "--dbus-control=no", "--systemd-run=no", "--start-via-proxy=no",
        "--html=off", "--speaker=off", "--microphone=off", "--webcam=no", "--clipboard=no",
        "--printing=no", "--file-transfer=no", "--bell=no", "--system-tray=no",
    ]


def _name(kind: str) -> str:
    return "Xvfb" if kind == "xvfb" else "xpra"


class XServer:
    """A running virtual X server owned by this process."""

    def __init__(self, kind: str, pid: int, number: int, log_path: str,
                 private_dir: str) -> None:
        self.kind = kind
        self.pid = pid
        self.number = number
        self.display = f":{number}"
        self.log_path = log_path
        self._private_dir = private_dir
        # The process that listens on the display: the server, or the Xvfb under xpra.
        self.listener: int | None = None
        self.returncode: int | None = None

    @property
    def socket_path(self) -> str:
        return f"{X11_SOCKET_DIR}/X{self.number}"

    def stop(self) -> None:
        """Ask it to stop, wait with a deadline, then SIGKILL; remove what a killed one leaves."""
        if self.returncode is None:
            self._ask_to_stop()
            self.returncode = wait_pid(self.pid, STOP_DEADLINE)
            if self.returncode is None:
                os.kill(self.pid, signal.SIGKILL)
                self.returncode = wait_pid(self.pid, None)
        if self.listener not in (None, self.pid):
            _wait_gone(self.listener)
        if self.returncode == -signal.SIGKILL:
            import contextlib

            # A killed server cannot unlink its socket and lock; they were ours (checked at start).
            for leftover in (self.socket_path, f"/tmp/.X{self.number}-lock"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(leftover)

    def _ask_to_stop(self) -> None:
        if self.kind == "xpra":
            # xpra's own stop command shuts down its Xvfb and removes its sockets.
            import sh

            try:
                sh.Command("xpra")("stop", f"--socket-dirs={self._private_dir}", self.display,
                                   _in="", _timeout=STOP_DEADLINE, _ok_code=list(range(256)))
                return
            except (sh.CommandNotFound, sh.TimeoutException):
                pass
        os.kill(self.pid, signal.SIGTERM)


def _wait_gone(pid: int) -> None:
    """The Xvfb under xpra must go with it; it got SIGTERM from its parent's death."""
    deadline = time.monotonic() + STOP_DEADLINE
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.02)
    import contextlib

    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _log_tail(path: str) -> str:
    try:
        with open(path, "rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - _STDERR_TAIL))
            return log.read().decode(errors="replace").strip()
    except OSError:
        return ""


def listener_pid(address: str | bytes) -> int | None:
    """The pid of the process listening on a Unix socket address, or None if nobody is."""
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(address)
        except OSError:
            return None
        pid, _uid, _gid = struct.unpack("3i", probe.getsockopt(
            socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
        return int(pid)


def _parent_pid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            # The command name in parentheses may hold spaces: the ppid follows its ')'.
            return int(stat.read().rpartition(")")[2].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def server_kind(display: str) -> str | None:
    """xvfb or xpra: which kind of our servers listens on `display` (None if none does)."""
    path = f"{X11_SOCKET_DIR}/X{display.lstrip(':').split('.')[0]}"
    listener = listener_pid(b"\0" + path.encode()) or listener_pid(path)
    if listener is None:
        return None
    parent = _parent_pid(listener)
    try:
        with open(f"/proc/{parent}/cmdline", "rb") as cmdline:
            return "xpra" if b"xpra" in cmdline.read() else "xvfb"
    except OSError:
        return "xvfb"


def check_ownership(server: XServer) -> None:
    """Every socket a client could reach for this display must be our server's (or, for
    xpra, its Xvfb's)."""
    path = server.socket_path
    addresses: list[str | bytes] = [b"\0" + path.encode(), path]
    listeners = {pid for pid in map(listener_pid, addresses) if pid is not None}
    if not listeners:
        raise SetupError(f"display {server.display} accepts no connection")
    ours = server.pid
    strangers = [pid for pid in listeners if ours not in (pid, _parent_pid(pid))]
    if strangers:
        raise SetupError(f"display {server.display} is served by process {strangers[0]}, "
                         f"not by the server we started (pid {ours})")
    server.listener = listeners.pop()


class PendingServer:
    """A server that was started and has not yet said its display number."""

    def __init__(self, kind: str, screen: Screen, auth_file: str, private_dir: str) -> None:
        self.kind = kind
        self.screen = screen
        self.private_dir = private_dir
        # A file, not a pipe, takes the server's output: it can never fill up and block the
        # server, and its tail is there to quote if the server fails.
        self.log_path = os.path.join(private_dir, f"{kind}.log")
        self._read_end, write_end = os.pipe()
        if kind == "xvfb":
            command = xvfb_command(screen, write_end, auth_file)
        else:
            command = xpra_command(screen, write_end, auth_file, private_dir)
        log = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
                      0o600)
        null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        try:
            self.pid = spawn(
                command, env={**os.environ, "XDG_RUNTIME_DIR": private_dir},
                stdin=null, stdout=log, stderr=log, keep_fds=(write_end,),
                # Its own session: a ^C on the terminal is for the child; the server must stay
                # up until the child has ended.
                new_session=True, parent_death_signal="TERM")
        except OSError as error:
            os.close(self._read_end)
            raise SetupError(f"cannot start {_name(kind)}: {error.strerror}") from error
        finally:
            for fd in (write_end, log, null):
                os.close(fd)

    def wait_ready(self, timeout: float) -> XServer:
        """The running server once it accepts connections and is ours; SetupError otherwise."""
        try:
            number = _read_display_number(_name(self.kind), self._read_end, self.pid, timeout)
        except SetupError as error:
            if wait_pid(self.pid, 0) is None:
                os.kill(self.pid, signal.SIGKILL)
                wait_pid(self.pid, None)
            error.details = _log_tail(self.log_path)
            raise
        finally:
            os.close(self._read_end)
        server = XServer(self.kind, self.pid, number, self.log_path, self.private_dir)
        try:
            check_ownership(server)
        except SetupError:
            server.stop()
            raise
        return server

    def discard(self) -> None:
        """Stop a server nobody will use (it may or may not be ready)."""
        os.close(self._read_end)
        os.kill(self.pid, signal.SIGTERM)
        if wait_pid(self.pid, STOP_DEADLINE) is None:
            os.kill(self.pid, signal.SIGKILL)
            wait_pid(self.pid, None)


def _read_display_number(name: str, read_end: int, pid: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    received = b""
    while not received.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise SetupError(f"{name} was not ready within {timeout:g} s (--timeout)")
        ready, _, _ = select.select([read_end], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(read_end, 64)
        if not chunk:
            # The write end closed without a number: the server exited (or closed it).
            status = wait_pid(pid, max(remaining, 1.0))
            if status is None:
                raise SetupError(f"{name} closed its display pipe without a number")
            raise SetupError(f"{name} exited with status {status} before it was ready")
        received += chunk
    return int(received)


class ServerStart:
    """A private directory with a fresh cookie, and a server starting in it."""

    def __init__(self, kind: str, screen: Screen) -> None:
        self.kind = kind
        self.screen = screen
        # Set by the session that adopts it, or stops it as not what its plan wants.
        self.claimed = False
        self.private = PrivateDirectory()
        try:
            self.cookie = os.urandom(16)
            server_auth = os.path.join(self.private.path, "server-auth")
            write_auth_file(server_auth, self.cookie)
            self.pending = PendingServer(kind, screen, server_auth, self.private.path)
        except BaseException:
            self.private.remove()
            raise
        try:
            self.private.guard()
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        self.pending.discard()
        self.private.remove()
