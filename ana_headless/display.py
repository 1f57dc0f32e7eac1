"""The virtual X server process: start the command its plan gives, know when it is ready, stop
it. It owns the process alone: the display it is given, the directory it writes in and the
watcher are its owner's (session.Display).

On a claimed display (claim.py) Xvfb gets the display's sockets, bound and listening in this
process, by socket activation: the display is ours by construction and known before the server
has started, and clients that connect early wait until it is ready. Otherwise (xpra, which
starts its own Xvfb; an Xvfb built without socket activation; abstract sockets refused) the
server picks a free number itself, and before the display is handed over we ask the kernel who
listens on it (ownership.py).

Either way `-displayfd` tells when the server accepts connections: no lock-file scanning, no
sleep. Light on imports: the launcher starts the server before anything else is loaded.
"""

from __future__ import annotations

import os
import time

from .claim import inode_of, lock_path, socket_path, unlink_if_inode, unlink_if_there
from .errors import SetupError
from .lifetime import exited, signals, spawn
from .ownership import check_ownership
from .plan import command_line

# Type-only imports: collections.abc and typing would cost the launcher's start-up path.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from .claim import DisplayClaim
    from .lifetime import PrivateDirectory, Watcher
    from .plan import ServerCommand

STOP_DEADLINE = 3.0
_STDERR_TAIL = 2000
# sd_listen_fds() checks that LISTEN_PID is the pid of the process reading it, which only a
# shell that then execs the server can know beforehand.
_SOCKET_ACTIVATION = 'export LISTEN_PID=$$ LISTEN_FDS="$1"; shift; exec "$@"'
# Where Xvfb's keymap compiler (xkbcomp) writes the keymap during the server's start: the first
# of these the server can write to. The server reads and removes the file before it is ready.
_KEYMAP_DIRECTORIES = ("/var/lib/xkb", "/tmp")


def _name(kind: str) -> str:
    return "Xvfb" if kind == "xvfb" else "xpra"


class XServer:
    """A virtual X server process of ours: started, then ready, then stopped."""

    def __init__(
        self,
        kind: str,
        server: ServerCommand,
        *,
        directory: PrivateDirectory,
        auth_file: str,
        claim: DisplayClaim | None,
        watcher: Watcher,
    ) -> None:
        self.kind = kind
        self._directory = directory
        self._claim = claim
        self._watcher = watcher
        # A file, not a pipe, takes the server's output: it can never fill up and block the
        # server, and its tail is there to quote if the server fails.
        self.log_path = directory.file_path(f"{self.kind}.log")
        self.number = claim.number if claim else None
        self.ready = False
        self._stopping = False
        self.returncode: int | None = None
        # The process that listens on the display, checked when the server picked the number.
        self.listener: int | None = None
        self._received = b""
        # The socket and lock files of a server that picked its number (see stop()).
        self._own_files: list[tuple[str, int]] = []
        self.command = command_line(server, claim, auth_file, directory.path)
        self.pid: int | None = None
        self.started_at = 0.0
        # The server writes its display number there once it accepts connections.
        self._ready_pipe: int | None = None

    def start(self) -> None:
        """Spawn the server; its owner has registered `stop` before, so that whatever fails
        from here on, the server is stopped."""
        read_end, write_end = os.pipe()
        self._ready_pipe = read_end
        try:
            self.pid = self._spawn(write_end)
        except BaseException:
            self._close_ready_pipe()
            raise
        finally:
            os.close(write_end)
        self.started_at = time.monotonic()
        self._watcher.kill_on_death(self.pid, "TERM")
        if self._claim:
            self._claim.close_sockets()

    def _spawn(self, ready_end: int) -> int:
        command, passed = self.command, [ready_end]
        if self._claim:
            passed = [*(sock.fileno() for sock in self._claim.sockets), ready_end]
            command = [
                "/bin/sh",
                "-c",
                _SOCKET_ACTIVATION,
                "ana-headless-xvfb",
                str(len(self._claim.sockets)),
                *command,
            ]
        log = self._directory.create(os.path.basename(self.log_path))
        null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        try:
            # Its own session: a ^C on the terminal is for the child; the server must stay
            # up until the child has ended.
            return spawn(
                command,
                env={**os.environ, "XDG_RUNTIME_DIR": self._directory.path},
                stdin=null,
                stdout=log,
                stderr=log,
                pass_fds=passed,
                new_session=True,
            )
        except OSError as error:
            raise SetupError(f"cannot start {_name(self.kind)}: {error.strerror}") from error
        finally:
            os.close(log)
            os.close(null)

    @property
    def display(self) -> str:
        return f":{self.number}"

    @property
    def running(self) -> bool:
        """Whether the server has started and not ended (it is not reaped here)."""
        return self.pid is not None and self.returncode is None and not exited(self.pid, 0)

    @property
    def connectable(self) -> bool:
        """Clients may connect already: they wait until the server is ready."""
        return self._claim is not None

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
            error.details = log_tail(self.log_path)
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
            if not select.select([self._ready_pipe], [], [], max(remaining, 0.0) if block else 0.0)[
                0
            ]:
                if deadline <= time.monotonic():
                    raise SetupError(f"{name} was not ready within {timeout:g} s (--timeout)")
                if block:
                    continue
                return None
            chunk = os.read(self._ready_pipe, 64)
            if not chunk:
                # The write end closed without a number: the server exited (or closed it).
                status = self._watcher.reap(self._started, max(remaining, 1.0))
                if status is None:
                    raise SetupError(f"{name} closed its display pipe without a number")
                self.returncode = status
                raise SetupError(f"{name} exited with status {status} before it was ready")
            self._received += chunk
        self._close_ready_pipe()
        return int(self._received)

    def _confirm(self, number: int) -> None:
        if self._claim:
            if number != self._claim.number:
                raise SetupError(
                    f"Xvfb started on :{number}, not on the display :"
                    f"{self._claim.number} it was given"
                )
            return
        self.number = number
        self.listener = check_ownership(self.display, self._started)
        # Its socket and lock, now that it is known to listen on that display.
        self._own_files = [
            (path, inode)
            for path in (socket_path(number), lock_path(number))
            if (inode := inode_of(path)) is not None
        ]

    def _close_ready_pipe(self) -> None:
        if self._ready_pipe is not None:
            os.close(self._ready_pipe)
            self._ready_pipe = None

    def _end(self) -> None:
        """Kill it if it still runs, and reap it."""
        if self.returncode is None:
            self._kill_group()
            self.returncode = self._watcher.reap(self._started, None)
        self._close_ready_pipe()
        if self._claim and not self.ready:
            # Killed while starting, it may leave the keymap its compiler wrote; the name is
            # our claimed display's.
            for directory in _KEYMAP_DIRECTORIES:
                unlink_if_there(f"{directory}/server-{self.number}.xkm")

    def _kill_group(self) -> None:
        """SIGKILL for the server and its helpers (its keymap compiler): it leads its own
        process group, and a helper killed with it cannot outlive it."""
        try:
            os.killpg(self._started, signals.SIGKILL)
        except ProcessLookupError:
            return

    @property
    def _started(self) -> int:
        if self.pid is None:
            raise RuntimeError("the server was not started")
        return self.pid

    def begin_stop(self) -> None:
        """Ask it to stop, without waiting (stop() waits)."""
        if self.returncode is not None or self._stopping:
            return
        self._stopping = True
        if not self._claim:
            self._ask_to_stop()
            return
        # Everything it would clean up on a polite stop (socket, lock, keymap) is ours, and a
        # server that is not ready yet has answered no client (they wait in the backlog):
        # killing its process group, its keymap compiler with it, is the fastest end.
        if not self.ready:
            from .messages import log  # not on the way to the server's start

            log.info(
                "%s killed while it was still starting: no client had an answer from it",
                _name(self.kind),
            )
        self._kill_group()

    def stop(self) -> None:
        """Stop it and wait until it is gone; remove what it leaves."""
        if self.pid is None:
            self._close_ready_pipe()
            return
        self.begin_stop()
        if self.returncode is None:
            self.returncode = self._watcher.reap(self.pid, STOP_DEADLINE)
        self._end()
        if self.listener not in (None, self.pid):
            _wait_gone(self.listener)
        if self.returncode == -signals.SIGKILL:
            # A killed server cannot unlink its socket and lock: those it made are removed,
            # while they are still the files it made (another server may have made new ones).
            for path, inode in self._own_files:
                unlink_if_inode(path, inode)

    def _ask_to_stop(self) -> None:
        if self.kind == "xpra" and self.ready:
            # xpra's own stop command shuts down its Xvfb and removes its sockets.
            import sh

            try:
                sh.Command(self.command[0])(
                    "stop",
                    f"--socket-dirs={self._directory.path}",
                    self.display,
                    _in="",
                    _timeout=STOP_DEADLINE,
                    _ok_code=list(range(256)),
                )
                return
            except (sh.CommandNotFound, sh.TimeoutException):
                pass
        # Before it is ready too: it finishes starting, then ends as it should.
        os.kill(self._started, signals.SIGTERM)


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


def log_tail(path: str) -> str:
    try:
        with open(path, "rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - _STDERR_TAIL))
            return log.read().decode(errors="replace").strip()
    except OSError:
        return ""
