"""The virtual X server: start it on a display that is provably ours, know when it is ready,
stop it.

Xvfb gets a display we claimed ourselves (claim.py): its sockets, bound and listening in this
process, are handed over by socket activation, so the display is ours by construction and known
before the server has started; clients that connect early wait until it is ready. Where that
cannot be done (xpra, which starts its own Xvfb; an Xvfb built without socket activation;
abstract sockets refused), the server picks a free number itself with `-displayfd`, and before
the display is handed over we ask the kernel who listens on it (`SO_PEERCRED`): another server
in a container that shares the network namespace may hold the same abstract name.

Either way `-displayfd` tells when the server accepts connections: no lock-file scanning, no
sleep. Light on imports: the launcher starts the server before anything else is loaded.
"""

from __future__ import annotations

import os
import time

from .claim import (
    DisplayClaim,
    claim_display,
    socket_path,
    supports_socket_activation,
    unlink_if_there,
)
from .errors import SetupError
from .lifetime import Guard, HeldSignals, signals, spawn, which, with_parent_death_signal
from .ownership import check_ownership
from .xauth import write_auth_file

# Type-only imports: collections.abc and typing would cost the launcher's start-up path.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from .options import Screen

STOP_DEADLINE = 3.0
_STDERR_TAIL = 2000
# sd_listen_fds() checks that LISTEN_PID is the pid of the process reading it, which only a
# shell that then execs the server can know beforehand.
_SOCKET_ACTIVATION = 'export LISTEN_PID=$$ LISTEN_FDS="$1"; shift; exec "$@"'
# Where Xvfb's keymap compiler (xkbcomp) writes the keymap during the server's start: the first
# of these the server can write to. The server reads and removes the file before it is ready.
_KEYMAP_DIRECTORIES = ("/var/lib/xkb", "/tmp")


def _xvfb_arguments(screen: Screen, auth_file: str) -> list[str]:
    return [
        "-nolisten", "tcp", "-auth", auth_file,
        # No reset when the last client leaves: a reset re-reads state for nothing.
        "-noreset", "+extension", "GLX", "-screen", "0", str(screen),
    ]


def xvfb_command(screen: Screen, auth_file: str, claim: DisplayClaim | None = None,
                 binary: str = "Xvfb") -> list[str]:
    """Xvfb on the claimed display (its sockets at fds 3, 4..., the displayfd after them), or
    on a number it picks itself (displayfd at fd 3)."""
    if claim is None:
        return [binary, "-displayfd", "3", *_xvfb_arguments(screen, auth_file)]
    # The lock file is ours (the server's own locking would find it taken); without a
    # socket file the abstract socket alone serves.
    own = [f":{claim.number}", "-nolock", "-displayfd", str(3 + len(claim.sockets))]
    if not claim.has_socket_file:
        own += ["-nolisten", "unix"]
    return [binary, *own, *_xvfb_arguments(screen, auth_file)]


def xpra_command(screen: Screen, auth_file: str, private_dir: str) -> list[str]:
    """xpra in the foreground (displayfd at fd 3), with its sockets and logs in our private
    directory.

    xpra starts its own Xvfb; `setpriv --pdeathsig` makes that one die with xpra, as xpra
    dies with us, so that a SIGKILL anywhere up the chain still leaves no server.
    """
    import shlex

    xvfb = with_parent_death_signal(["Xvfb", *_xvfb_arguments(screen, auth_file)], "TERM")
    return [
        "xpra", "start", "--daemon=no", "--displayfd=3", f"--xvfb={shlex.join(xvfb)}",
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
    """A virtual X server owned by this process: started, then ready, then stopped."""

    def __init__(self, kind: str, screen: Screen, auth_file: str, guard: Guard) -> None:
        self.kind = kind
        self.screen = screen
        self._guard = guard
        self._private_dir = guard.path
        # A file, not a pipe, takes the server's output: it can never fill up and block the
        # server, and its tail is there to quote if the server fails.
        self.log_path = os.path.join(self._private_dir, f"{kind}.log")
        # Started by its path: no search of PATH on the way to the server.
        xvfb = which("Xvfb") if kind == "xvfb" else None
        self.claim = claim_display() if xvfb and supports_socket_activation(xvfb) else None
        self._xvfb = xvfb or "Xvfb"
        if self.claim:
            guard.remove_on_death(self.claim.files)
        self.number = self.claim.number if self.claim else None
        self.ready = False
        self._stopping = False
        self.returncode: int | None = None
        # The process that listens on the display, checked when the server picked the number.
        self.listener: int | None = None
        self._received = b""
        read_end, write_end = os.pipe()
        # The server writes its display number there once it accepts connections.
        self._ready_pipe: int | None = read_end
        try:
            self.pid = self._spawn(screen, auth_file, write_end)
        except BaseException:
            self._close_ready_pipe()
            self._release_claim()
            raise
        finally:
            os.close(write_end)
        self.started_at = time.monotonic()
        guard.kill_on_death(self.pid, "TERM")
        if self.claim:
            self.claim.close_sockets()

    def _spawn(self, screen: Screen, auth_file: str, ready_end: int) -> int:
        if self.kind == "xpra":
            command = xpra_command(screen, auth_file, self._private_dir)
        else:
            command = xvfb_command(screen, auth_file, self.claim, self._xvfb)
        passed = [ready_end]
        if self.claim:
            passed = [*(sock.fileno() for sock in self.claim.sockets), ready_end]
            command = ["/bin/sh", "-c", _SOCKET_ACTIVATION, "ana-headless-xvfb",
                       str(len(self.claim.sockets)), *command]
        try:
            log = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
                          0o600)
        except OSError as error:
            raise self._guard.cannot_write(error) from error
        null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        try:
            # Its own session: a ^C on the terminal is for the child; the server must stay
            # up until the child has ended.
            return spawn(command, env={**os.environ, "XDG_RUNTIME_DIR": self._private_dir},
                         stdin=null, stdout=log, stderr=log, pass_fds=passed,
                         new_session=True)
        except OSError as error:
            raise SetupError(f"cannot start {_name(self.kind)}: {error.strerror}") from error
        finally:
            os.close(log)
            os.close(null)

    @property
    def display(self) -> str:
        return f":{self.number}"

    @property
    def connectable(self) -> bool:
        """Clients may connect already: they wait until the server is ready."""
        return self.claim is not None

    def wait_ready(self, timeout: float) -> None:
        """Return once the server accepts connections (and is ours); SetupError, with the
        server's output, when it exits first or is not ready `timeout` s after its start."""
        self._await(timeout, block=True)

    def check(self, timeout: float) -> bool:
        """Whether it is ready now, without waiting; SetupError as for wait_ready."""
        return self._await(timeout, block=False)

    def _await(self, timeout: float, *, block: bool) -> bool:
        if self.ready:
            return True
        try:
            number = self._read_number(self.started_at + timeout, timeout, block)
            if number is None:
                return False
            self._confirm(number)
        except SetupError as error:
            self._end()
            error.details = _log_tail(self.log_path)
            raise
        self.ready = True
        return True

    def _read_number(self, deadline: float, timeout: float, block: bool) -> int | None:
        import select  # once the server is started

        name = _name(self.kind)
        assert self._ready_pipe is not None
        while not self._received.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            # What the server wrote counts even when we look at it past the deadline.
            if not select.select([self._ready_pipe], [], [],
                                 max(remaining, 0.0) if block else 0.0)[0]:
                if deadline <= time.monotonic():
                    raise SetupError(f"{name} was not ready within {timeout:g} s (--timeout)")
                if block:
                    continue
                return None
            chunk = os.read(self._ready_pipe, 64)
            if not chunk:
                # The write end closed without a number: the server exited (or closed it).
                status = self._guard.reap(self.pid, max(remaining, 1.0))
                if status is None:
                    raise SetupError(f"{name} closed its display pipe without a number")
                self.returncode = status
                raise SetupError(f"{name} exited with status {status} before it was ready")
            self._received += chunk
        self._close_ready_pipe()
        return int(self._received)

    def _confirm(self, number: int) -> None:
        if self.claim:
            if number != self.claim.number:
                raise SetupError(f"Xvfb started on :{number}, not on the display :"
                                 f"{self.claim.number} it was given")
            return
        self.number = number
        self.listener = check_ownership(self.display, self.pid)

    def _close_ready_pipe(self) -> None:
        if self._ready_pipe is not None:
            os.close(self._ready_pipe)
            self._ready_pipe = None

    def _end(self) -> None:
        """Kill it if it still runs, then let go of everything we held for it."""
        if self.returncode is None:
            self._kill_group()
            self.returncode = self._guard.reap(self.pid, None)
        self._close_ready_pipe()
        if self.claim and not self.ready:
            # Killed while starting, it may leave the keymap its compiler wrote; the name is
            # our claimed display's.
            for directory in _KEYMAP_DIRECTORIES:
                unlink_if_there(f"{directory}/server-{self.number}.xkm")
        self._release_claim()

    def _kill_group(self) -> None:
        """SIGKILL for the server and its helpers (its keymap compiler): it leads its own
        process group, and a helper killed with it cannot outlive it."""
        try:
            os.killpg(self.pid, signals.SIGKILL)
        except ProcessLookupError:
            return

    def _release_claim(self) -> None:
        """Remove the display's files; the watcher then has nothing of them to remove."""
        if self.claim:
            files = self.claim.files
            self.claim.release()
            for path, _inode in files:
                self._guard.forget(path)

    def begin_stop(self) -> None:
        """Ask it to stop, without waiting (stop() waits)."""
        if self.returncode is not None or self._stopping:
            return
        self._stopping = True
        if not self.claim:
            self._ask_to_stop()
            return
        # Everything it would clean up on a polite stop (socket, lock, keymap) is ours, and a
        # server that is not ready yet has answered no client (they wait in the backlog):
        # killing its process group, its keymap compiler with it, is the fastest end.
        if not self.ready:
            from .messages import log  # not on the way to the server's start

            log.info("%s killed while it was still starting: no client had an answer from it",
                     _name(self.kind))
        self._kill_group()
        self._release_claim()

    def stop(self) -> None:
        """Stop it and wait until it is gone; remove what it leaves."""
        self.begin_stop()
        if self.returncode is None:
            self.returncode = self._guard.reap(self.pid, STOP_DEADLINE)
        self._end()
        if self.listener not in (None, self.pid):
            _wait_gone(self.listener)
        if self.returncode == -signals.SIGKILL and self.claim is None and self.number is not None:
            # A killed server cannot unlink its socket and lock; they were ours (checked at start).
            for leftover in (socket_path(self.number), f"/tmp/.X{self.number}-lock"):
                unlink_if_there(leftover)

    def _ask_to_stop(self) -> None:
        if self.kind == "xpra" and self.ready:
            # xpra's own stop command shuts down its Xvfb and removes its sockets.
            import sh

            try:
                sh.Command("xpra")("stop", f"--socket-dirs={self._private_dir}", self.display,
                                   _in="", _timeout=STOP_DEADLINE, _ok_code=list(range(256)))
                return
            except (sh.CommandNotFound, sh.TimeoutException):
                pass
        # Before it is ready too: it finishes starting, then ends as it should.
        os.kill(self.pid, signals.SIGTERM)


def _wait_gone(pid: int) -> None:
    """The Xvfb under xpra must go with it; it got SIGTERM from its parent's death."""
    try:
        handle = os.pidfd_open(pid)
    except OSError:
        return  # gone already
    import select

    try:
        # Readable once the process has ended (it is not ours to reap).
        if not select.select([handle], [], [], STOP_DEADLINE)[0]:
            signals.pidfd_send_signal(handle, signals.SIGKILL)
    finally:
        os.close(handle)


def _log_tail(path: str) -> str:
    try:
        with open(path, "rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - _STDERR_TAIL))
            return log.read().decode(errors="replace").strip()
    except OSError:
        return ""


class ServerStart:
    """A private directory with a fresh cookie, and a server starting in it."""

    def __init__(self, kind: str, screen: Screen) -> None:
        self.kind = kind
        self.screen = screen
        # Set by the session that adopts it, or stops it as not what its plan wants.
        self.claimed = False
        guard = server = None
        try:
            # Its watcher is up before the server: from its start, nothing outlives us. No
            # signal lands before both exist and are ours; one that came meanwhile is raised
            # on the way out of this block, with the server ours to stop below.
            with HeldSignals():
                guard = Guard()
                self.cookie = os.urandom(16)
                server_auth = os.path.join(guard.path, "server-auth")
                try:
                    write_auth_file(server_auth, self.cookie)
                except OSError as error:
                    raise guard.cannot_write(error) from error
                server = XServer(kind, screen, server_auth, guard)
        except BaseException:
            if server is not None:
                server.stop()
            if guard is not None:
                guard.close()
            raise
        self.guard, self.server = guard, server

    def discard(self) -> None:
        """Stop the server (it may or may not be ready) and remove our files. The watcher
        goes last: until the server is gone, our death must still take it down."""
        try:
            self.server.stop()
        finally:
            self.guard.close()
