"""Making sure nothing of ours outlives the process that started it, even after SIGKILL.

Two kernel-level guarantees, because no cleanup code runs after SIGKILL:

- processes we start get a parent-death signal (`PR_SET_PDEATHSIG`): the X server gets SIGTERM,
  so that it removes its own socket, the child gets SIGKILL;
- our private directory (cookie, runtime dir, server log) is removed by a tiny `sh` watcher
  that waits for end-of-file on a pipe whose only writer is this process: the kernel closes it
  when we die.

Light on imports (os and signal only): the launcher uses it before anything else is loaded.
"""

from __future__ import annotations

import os
import signal

# Type-only imports: collections.abc and typing would cost the launcher's start-up path.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

PR_SET_PDEATHSIG = 1

# The signals the launcher forwards; a supervised child must start with them unblocked.
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
# Reset to their default for every process we start: an inherited "ignore SIGCHLD" makes the
# kernel reap grandchildren before they can be waited for (Xvfb then fails to compile its
# keymap with xkbcomp and exits).
_RESET_SIGNALS = (*FORWARDED_SIGNALS, signal.SIGCHLD, signal.SIGPIPE)

_WATCHER_SCRIPT = (
    # Terminal signals must not stop the watcher before it has cleaned up.
    "trap '' INT TERM HUP QUIT; "
    "while read -r _; do :; done; "
    'rm -rf -- "$1"'
)


def which(program: str, path: str | None = None) -> str | None:
    """Like shutil.which, without importing shutil."""
    for directory in (path if path is not None else os.environ.get("PATH", os.defpath)).split(
            os.pathsep):
        candidate = os.path.join(directory or ".", program)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def spawn(argv: Sequence[str], *, env: Mapping[str, str] | None = None,
          stdin: int | None = None, stdout: int | None = None, stderr: int | None = None,
          keep_fds: Sequence[int] = (), parent_death_signal: str | None = None,
          new_session: bool = False) -> int:
    """Start a process with posix_spawn (no fork of this interpreter); return its pid.

    `parent_death_signal` (e.g. "TERM") goes through util-linux's `setpriv --pdeathsig`.
    """
    command = list(argv)
    if parent_death_signal:
        setpriv = which("setpriv")
        if setpriv:
            command = [setpriv, "--pdeathsig", parent_death_signal, *command]
    actions = [(os.POSIX_SPAWN_DUP2, fd, target)
               for fd, target in ((stdin, 0), (stdout, 1), (stderr, 2)) if fd is not None]
    for fd in keep_fds:
        os.set_inheritable(fd, True)
    try:
        return os.posix_spawnp(command[0], command, dict(env if env is not None else os.environ),
                               file_actions=actions, setsid=new_session,
                               setsigmask=(), setsigdef=_RESET_SIGNALS)
    finally:
        for fd in keep_fds:
            os.set_inheritable(fd, False)


def wait_pid(pid: int, timeout: float | None) -> int | None:
    """Reap `pid` within `timeout` seconds (None: forever); its exit code, or None if alive.

    Negative codes are signals, as subprocess reports them.
    """
    if timeout is not None:
        try:
            handle = os.pidfd_open(pid)
        except OSError:
            handle = -1
        if handle >= 0:
            import select

            try:
                select.select([handle], [], [], timeout)
            finally:
                os.close(handle)
    try:
        reaped, status = os.waitpid(pid, os.WNOHANG if timeout is not None else 0)
    except ChildProcessError:
        return 0
    return os.waitstatus_to_exitcode(status) if reaped else None


def die_with_parent(sig: signal.Signals) -> Callable[[], None]:
    """A `preexec_fn` for a child that must not outlive us: it gets `sig` when we die."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)

    def preexec() -> None:
        libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        # We supervise with these signals blocked; the new process must not inherit the mask.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, (*FORWARDED_SIGNALS, signal.SIGCHLD))
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)

    return preexec


class PrivateDirectory:
    """A mode-0700 temporary directory, removed by `remove()` or, if we are killed, by a watcher.

    `guard()` starts the watcher; callers in a hurry start their server first, then guard
    (the server dies with us by itself, and has nothing to leave in the directory).
    """

    def __init__(self) -> None:
        parent = os.environ.get("TMPDIR") or "/tmp"
        self.path = os.path.join(parent, f"ana-headless-{os.urandom(6).hex()}")
        os.mkdir(self.path, 0o700)
        self._watcher: tuple[int, int] | None = None

    def guard(self) -> None:
        read_end, write_end = os.pipe()
        try:
            pid = spawn(["sh", "-c", _WATCHER_SCRIPT, "ana-headless-cleanup", self.path],
                        stdin=read_end, new_session=True)
        except BaseException:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
        self._watcher = (pid, write_end)

    def remove(self) -> None:
        import shutil

        shutil.rmtree(self.path, ignore_errors=True)
        if self._watcher is not None:
            pid, write_end = self._watcher
            # The directory is gone: the watcher has nothing left to do.
            os.kill(pid, signal.SIGKILL)
            os.close(write_end)
            wait_pid(pid, None)
            self._watcher = None
