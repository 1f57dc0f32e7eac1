"""The virtual X server process: start the command its spec gives, know when it is ready, stop
it as the spec says. It owns the process alone: the display it is given, the directory it writes
in and the watcher are its owner's (session.Session). Nothing here depends on which server it
is: that is plan.ServerSpec's.

On a claimed display (claim.py) the server gets the display's sockets, bound and listening in
this process, by socket activation: the display is ours by construction and known before the
server has started, and clients that connect early wait until it is ready. Otherwise (xpra,
which starts its own Xvfb; an Xvfb built without socket activation; abstract sockets refused)
the server picks a free number itself, and before the display is handed over we ask the kernel
who listens on it (ownership.py).

Either way `-displayfd` tells when the server accepts connections: no lock-file scanning, no
sleep. Light on imports: the launcher starts the server before anything else is loaded.
"""

from __future__ import annotations

import os
import time

from .claim import inode_of, lock_path, socket_path, unlink_if_inode, unlink_if_there
from .errors import SetupError
from .messages import log_tail
from .ownership import check_ownership
from .plan import DISPLAY_NUMBER, PRIVATE_DIR, SOCKET_ACTIVATION, command_line
from .process import exited, signals, spawn

# Type-only imports: collections.abc and typing would cost the launcher's start-up path.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import _socket

    from .claim import DisplayClaim
    from .lifetime import PrivateDirectory, Watcher
    from .plan import ServerSpec

STOP_DEADLINE = 3.0
# sd_listen_fds() checks that LISTEN_PID is the pid of the process reading it, which only a
# shell that then execs the server can know beforehand.
_SOCKET_ACTIVATION = 'export LISTEN_PID=$$ LISTEN_FDS="$1"; shift; exec "$@"'


class XServer:
    """A virtual X server process of ours: started, then ready, then stopped."""

    def __init__(
        self,
        spec: ServerSpec,
        *,
        directory: PrivateDirectory,
        auth_file: str,
        claim: DisplayClaim | None,
        watcher: Watcher,
        timeout: float,
    ) -> None:
        self.spec = spec
        self.kind = spec.kind
        self._directory = directory
        self._claim = claim
        self._watcher = watcher
        self._timeout = timeout
        # A file, not a pipe, takes the server's output: it can never fill up and block the
        # server, and its tail is there to quote if the server fails.
        self.log_path = directory.file_path(spec.log_name)
        self.number = claim.number if claim else None
        self.ready = False
        self.returncode: int | None = None
        # The process that listens on the display, checked when the server picked the number.
        self.listener: int | None = None
        self._received = b""
        # The socket and lock files of a server that picked its number (see stop()).
        self._own_files: list[tuple[str, int]] = []
        self.command = command_line(spec, claim, auth_file, directory.path)
        self.pid: int | None = None
        # The compositor the server needs, if it needs one (weston for Xwayland).
        self.compositor_pid: int | None = None
        # Until then it may take to be ready; set at its start.
        self.deadline = 0.0
        # The server writes its display number there once it accepts connections.
        self._ready_pipe: int | None = None
        self._asked_to_stop = False

    def start(self) -> None:
        """Spawn the server (its compositor first, if it needs one); its owner has registered
        `stop` before, so that whatever fails from here on, everything started is stopped."""
        self.deadline = time.monotonic() + self._timeout
        if self.spec.compositor:
            self._start_compositor()
        read_end, write_end = os.pipe()
        self._ready_pipe = read_end
        command, passed = self.command, [write_end]
        if self._claim:
            passed = [*(sock.fileno() for sock in self._claim.sockets), write_end]
            if self.spec.sockets == SOCKET_ACTIVATION:
                command = [
                    "/bin/sh",
                    "-c",
                    _SOCKET_ACTIVATION,
                    "ana-headless-server",
                    str(len(self._claim.sockets)),
                    *command,
                ]
        try:
            self.pid = self._spawn(command, self.spec.log_name, passed)
        except BaseException:
            self._close_ready_pipe()
            raise
        finally:
            os.close(write_end)
        self._watcher.kill_on_death(self.pid, "TERM")
        if self._claim:
            self._claim.close_sockets()

    def _spawn(self, command: list[str], log_name: str, passed: list[int], **extra_env: str) -> int:
        """Start one of the server's processes, its output in `log_name`, with `passed` fds."""
        log = self._directory.create(log_name)
        null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        env = {
            **os.environ,
            "XDG_RUNTIME_DIR": self._directory.path,
            **dict(self.spec.environment),
            **extra_env,
        }
        try:
            # Its own session: a ^C on the terminal is for the child; the server must stay
            # up until the child has ended.
            return spawn(
                command,
                env=env,
                stdin=null,
                stdout=log,
                stderr=log,
                pass_fds=passed,
                new_session=True,
            )
        except OSError as error:
            name = os.path.basename(command[0])
            raise SetupError(f"cannot start {name}: {error.strerror}") from error
        finally:
            os.close(log)
            os.close(null)

    def _start_compositor(self) -> None:
        """Spawn the compositor and wait until it says READY=1 on the NOTIFY_SOCKET we give
        it (systemd's protocol): no polling for its socket. SetupError, with its output, when
        it exits first or is not ready by the deadline."""
        import _socket  # the C core of socket (claim.py says why)

        name = os.path.basename(self.spec.compositor[0])
        log_name = f"{name}.log"
        notify = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM)
        try:
            address = self._directory.file_path("notify")
            notify.bind(address)
            self.compositor_pid = self._spawn(
                list(self.spec.compositor), log_name, [], NOTIFY_SOCKET=address
            )
            self._watcher.kill_on_death(self.compositor_pid, "TERM")
            try:
                self._await_notification(notify, self.compositor_pid, name)
            except SetupError as error:
                error.details = log_tail(self._directory.file_path(log_name))
                raise
        finally:
            notify.close()

    def _await_notification(self, notify: _socket.socket, pid: int, name: str) -> None:
        import select

        handle = os.pidfd_open(pid)
        try:
            while True:
                remaining = self.deadline - time.monotonic()
                readable = select.select([notify.fileno(), handle], [], [], max(remaining, 0.0))[0]
                if notify.fileno() in readable:
                    if b"READY=1" in notify.recv(4096).split(b"\n"):
                        return
                elif handle in readable:
                    status = self._watcher.reap(pid, None)
                    self.compositor_pid = None
                    raise SetupError(f"{name} exited with status {status} before it was ready")
                elif remaining <= 0:
                    raise SetupError(f"{name} was not ready within {self._timeout:g} s (--timeout)")
        finally:
            os.close(handle)

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

    def wait_ready(self) -> None:
        """Return once the server accepts connections (and is ours); SetupError, with the
        server's output, when it exits first or is not ready by its deadline."""
        self._await(block=True)

    def check(self) -> bool:
        """Whether it is ready now, without waiting; SetupError as for wait_ready."""
        return self._await(block=False)

    def _await(self, *, block: bool) -> bool:
        if self.ready:
            return True
        try:
            number = self._read_number(block)
            if number is None:
                return False
            self._confirm(number)
        except SetupError as error:
            self._kill()
            error.details = log_tail(self.log_path)
            raise
        self.ready = True
        return True

    def _read_number(self, block: bool) -> int | None:
        import select  # once the server is started

        assert self._ready_pipe is not None
        while not self._received.endswith(b"\n"):
            remaining = self.deadline - time.monotonic()
            # What the server wrote counts even when we look at it past the deadline.
            if not select.select([self._ready_pipe], [], [], max(remaining, 0.0) if block else 0.0)[
                0
            ]:
                if self.deadline <= time.monotonic():
                    raise SetupError(
                        f"{self.spec.name} was not ready within {self._timeout:g} s (--timeout)"
                    )
                if block:
                    continue
                return None
            chunk = os.read(self._ready_pipe, 64)
            if not chunk:
                # The write end closed without a number: the server exited (or closed it).
                status = self._watcher.reap(self._started, max(remaining, 1.0))
                if status is None:
                    raise SetupError(f"{self.spec.name} closed its display pipe without a number")
                self.returncode = status
                raise SetupError(
                    f"{self.spec.name} exited with status {status} before it was ready"
                )
            self._received += chunk
        self._close_ready_pipe()
        return int(self._received)

    def _confirm(self, number: int) -> None:
        if self._claim:
            if number != self._claim.number:
                raise SetupError(
                    f"{self.spec.name} started on :{number}, not on the display :"
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

    @property
    def _started(self) -> int:
        if self.pid is None:
            raise RuntimeError("the server was not started")
        return self.pid

    def begin_stop(self) -> None:
        """The first step of stop(), without waiting: the launcher begins it as soon as the
        child has ended, and its display waits for the end."""
        if self.pid is None or self.returncode is not None or self._asked_to_stop:
            return
        self._asked_to_stop = True
        if self.ready and self.spec.stop_command:
            self._run_stop_command()
        elif self.spec.stop_signal:
            # Before it is ready too: it finishes starting, then ends as it should.
            self._signal(self.spec.stop_signal)
        else:
            if not self.ready:
                from .messages import log  # not on the way to the server's start

                # It has answered no client yet (they wait in the backlog).
                log.info(
                    "%s killed while it was still starting: no client had an answer from it",
                    self.spec.name,
                )
            self._kill_group()

    def _signal(self, name: str) -> None:
        os.kill(self._started, getattr(signals, f"SIG{name}"))

    def stop(self) -> None:
        """Stop it as its spec says, wait until it is gone, and remove what it leaves: one
        way, whatever the server and however far it got."""
        if self.pid is None:
            self._close_ready_pipe()
            self._stop_compositor()
            return
        self.begin_stop()
        if self.returncode is None:
            self.returncode = self._watcher.reap(self.pid, STOP_DEADLINE)
        self._kill()
        if self.listener not in (None, self.pid):
            _wait_gone(self.listener)
        self._remove_leftovers()
        self._stop_compositor()

    def _stop_compositor(self) -> None:
        """After the server, which needs it to the end: SIGTERM, then SIGKILL."""
        pid, self.compositor_pid = self.compositor_pid, None
        if pid is None:
            return
        os.kill(pid, signals.SIGTERM)
        if self._watcher.reap(pid, STOP_DEADLINE) is None:
            os.killpg(pid, signals.SIGKILL)
            self._watcher.reap(pid, None)

    def _kill(self) -> None:
        """Kill it (and its helpers) if it still runs, and reap it."""
        if self.returncode is None:
            self._kill_group()
            self.returncode = self._watcher.reap(self._started, None)
        self._close_ready_pipe()

    def _kill_group(self) -> None:
        """SIGKILL for the server and its helpers (its keymap compiler): it leads its own
        process group, and a helper killed with it cannot outlive it."""
        try:
            os.killpg(self._started, signals.SIGKILL)
        except ProcessLookupError:
            return

    def _remove_leftovers(self) -> None:
        if self.returncode != -signals.SIGKILL:
            return  # it ended as it should, and removed its files itself
        if not self.ready and self._claim:
            # Killed while starting, it may leave what its start makes; the names are our
            # claimed display's.
            for template in self.spec.leftovers:
                unlink_if_there(template.replace(DISPLAY_NUMBER, str(self.number)))
        # A killed server cannot unlink its socket and lock: those it made are removed,
        # while they are still the files it made (another server may have made new ones).
        for path, inode in self._own_files:
            unlink_if_inode(path, inode)

    def _run_stop_command(self) -> None:
        """The server's own stop command (xpra stop), given STOP_DEADLINE; its signal after."""
        import sh  # off the start-up path: only once the child has ended

        values = {PRIVATE_DIR: self._directory.path, DISPLAY_NUMBER: str(self.number)}
        command = list(self.spec.stop_command)
        for placeholder, value in values.items():
            command = [part.replace(placeholder, value) for part in command]
        try:
            sh.Command(command[0])(
                *command[1:], _in="", _timeout=STOP_DEADLINE, _ok_code=list(range(256))
            )
        except (sh.CommandNotFound, sh.TimeoutException):
            if self.spec.stop_signal:
                self._signal(self.spec.stop_signal)


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
