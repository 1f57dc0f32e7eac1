"""Making sure nothing of ours outlives the process that started it, even after SIGKILL.

Two kernel-level guarantees, because no cleanup code runs after SIGKILL:

- processes we start get a parent-death signal (`PR_SET_PDEATHSIG`): the X server gets SIGTERM
  (it then ends as it would on any stop), the child gets SIGKILL;
- our private directory (cookie, runtime dir, server log), and the display's socket and lock
  files, are removed by a tiny `sh` watcher that waits for end-of-file on a pipe whose only
  writer is this process: the kernel closes it when we die.

Light on imports (os only): the launcher uses it before the X server is started.
"""

from __future__ import annotations

import os

# Type-only imports: collections.abc and typing would cost the launcher's start-up path.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal
    signals = signal
    from collections.abc import Callable, Iterable, Mapping, Sequence
else:
    # For the modules on the way to the server's start: the C core of `signal`, with the same
    # functions and int constants; `signal` itself would import enum (some 4 ms).
    import _signal as signals

PR_SET_PDEATHSIG = 1

# The signals the launcher forwards; a supervised child must start with them unblocked.
FORWARDED_SIGNALS = (signals.SIGINT, signals.SIGTERM, signals.SIGHUP, signals.SIGQUIT)
# Reset to their default for every process we start: an inherited "ignore SIGCHLD" makes the
# kernel reap grandchildren before they can be waited for (Xvfb then fails to compile its
# keymap with xkbcomp and exits).
_RESET_SIGNALS = (*FORWARDED_SIGNALS, signals.SIGCHLD, signals.SIGPIPE)
_PYTHON_IGNORED = (signals.SIGPIPE, signals.SIGXFSZ)

_WATCHER_SCRIPT = (
    # Terminal signals must not stop the watcher before it has cleaned up.
    "trap '' INT TERM HUP QUIT; "
    "while read -r _; do :; done; "
    'rm -rf -- "$@"'
)


def which(program: str, path: str | None = None) -> str | None:
    """Like shutil.which, without importing shutil."""
    for directory in (path if path is not None else os.environ.get("PATH", os.defpath)).split(
            os.pathsep):
        candidate = os.path.join(directory or ".", program)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def with_parent_death_signal(argv: Sequence[str], signal_name: str) -> list[str]:
    """`argv` run under util-linux's `setpriv --pdeathsig`, which execs it (same pid)."""
    setpriv = which("setpriv")
    return [setpriv, "--pdeathsig", signal_name, *argv] if setpriv else list(argv)


def _fd_placement(wanted: Mapping[int, int]) -> list[tuple[int, ...]]:
    """posix_spawn file actions that give the new process fd `target` = our fd `source`, for
    each target: source, whatever their numbers. Each source is first copied above every fd
    involved, so that placing one cannot overwrite another that is still to be placed."""
    scratch = max([*wanted, *wanted.values()]) + 1
    copies = {target: scratch + index for index, target in enumerate(wanted)}
    actions: list[tuple[int, ...]] = [(os.POSIX_SPAWN_DUP2, wanted[target], copy)
                                      for target, copy in copies.items()]
    actions += [(os.POSIX_SPAWN_DUP2, copy, target) for target, copy in copies.items()]
    actions += [(os.POSIX_SPAWN_CLOSE, copy) for copy in copies.values()]
    return actions


def spawn(argv: Sequence[str], *, env: Mapping[str, str] | None = None,
          stdin: int | None = None, stdout: int | None = None, stderr: int | None = None,
          pass_fds: Sequence[int] = (), new_session: bool = False) -> int:
    """Start a process with posix_spawn (no fork of this interpreter); return its pid.

    The fds in `pass_fds` become its fds 3, 4, ... in that order, the only ones it inherits
    from us besides its standard streams.
    """
    wanted = {target: fd for target, fd in ((0, stdin), (1, stdout), (2, stderr))
              if fd is not None}
    wanted.update((3 + index, fd) for index, fd in enumerate(pass_fds))
    return os.posix_spawnp(argv[0], list(argv), dict(env if env is not None else os.environ),
                           file_actions=_fd_placement(wanted) if wanted else (),
                           setsid=new_session, setsigmask=(), setsigdef=_RESET_SIGNALS)


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


def spawn_child(argv: Sequence[str], env: Mapping[str, str], sigmask: Iterable[int]) -> int:
    """fork and exec `argv` (argv[0] a path, no search), with the signal mask `sigmask`; the
    new process gets SIGKILL when we die. OSError, as from execve, when it cannot be run.

    subprocess would do the same for some 12 ms more of imports, on the way to the child.
    """
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    environment = dict(env)
    parent = os.getpid()
    # Closed by a successful exec; otherwise the child writes its errno there.
    report_end, errno_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(report_end)
            prctl(PR_SET_PDEATHSIG, signals.SIGKILL, 0, 0, 0)
            if os.getppid() != parent:
                # We died before the request was made: nobody would kill this process.
                os._exit(1)
            # What Python ignores at its start, a program expects at its default.
            for sig in _PYTHON_IGNORED:
                signals.signal(sig, signals.SIG_DFL)
            signals.pthread_sigmask(signals.SIG_SETMASK, sigmask)
            os.execve(argv[0], list(argv), environment)
        except OSError as error:
            os.write(errno_end, str(error.errno).encode())
        finally:
            os._exit(127)
    os.close(errno_end)
    with os.fdopen(report_end, "rb") as report:
        failure = report.read()
    if failure:
        os.waitpid(pid, 0)
        number = int(failure)
        raise OSError(number, os.strerror(number), argv[0])
    return pid


class PrivateDirectory:
    """A mode-0700 temporary directory, removed by `remove()` or, if we die, by the watcher
    that `guard()` starts.

    Callers in a hurry start their server first, then guard (the server dies with us by
    itself, and leaves nothing in the directory).
    """

    def __init__(self) -> None:
        parent = os.environ.get("TMPDIR") or "/tmp"
        self.path = os.path.join(parent, f"ana-headless-{os.urandom(6).hex()}")
        os.mkdir(self.path, 0o700)
        self._watcher: tuple[int, int] | None = None

    def guard(self, also: Sequence[str] = ()) -> None:
        """Start the watcher; if we die, it also removes the files `also` (a display's
        socket and lock)."""
        read_end, write_end = os.pipe()
        try:
            pid = spawn(["/bin/sh", "-c", _WATCHER_SCRIPT, "ana-headless-cleanup", self.path,
                         *also], stdin=read_end, new_session=True)
        except BaseException:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
        self._watcher = (pid, write_end)

    def remove(self) -> None:
        """Remove the directory, and the watcher, which has nothing left to do."""
        remove_tree(self.path)
        if self._watcher is not None:
            pid, write_end = self._watcher
            self._watcher = None
            os.kill(pid, signals.SIGKILL)
            os.close(write_end)
            wait_pid(pid, None)


def remove_tree(path: str) -> None:
    """rm -rf, ignoring errors: shutil.rmtree would cost the run an import of some 9 ms."""
    for root, directories, files in os.walk(path, topdown=False):
        for name in files:
            _remove(os.path.join(root, name), os.unlink)
        for name in directories:
            entry = os.path.join(root, name)
            # os.walk lists a symbolic link to a directory there, without entering it.
            _remove(entry, os.unlink if os.path.islink(entry) else os.rmdir)
    _remove(path, os.rmdir)


def _remove(path: str, how: Callable[[str], None]) -> None:
    try:
        how(path)
    except OSError:
        return
