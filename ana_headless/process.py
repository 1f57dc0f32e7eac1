"""Starting and reaping processes, and holding signals: the primitives under the launcher's
lifetime policy (lifetime.py) and its supervisor (launcher.py).

Processes are started with posix_spawn (no fork of this interpreter), and waited for with pidfd
waits (no polling). Light on imports (os only): the launcher starts its server with these.
"""

from __future__ import annotations

import os

# Type-only imports: collections.abc and typing would cost the launcher's start-up path.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal

    signals = signal
    from collections.abc import Iterable, Mapping, Sequence
else:
    # For the modules on the way to the server's start: the C core of `signal`, with the same
    # functions and int constants; `signal` itself would import enum (benchmarks/README.md).
    import _signal as signals

# The signals the launcher forwards; a supervised child must start with them unblocked.
FORWARDED_SIGNALS = (signals.SIGINT, signals.SIGTERM, signals.SIGHUP, signals.SIGQUIT)
# Reset to their default for the helpers we start: an inherited "ignore SIGCHLD" makes the
# kernel reap grandchildren before they can be waited for (Xvfb then fails to compile its
# keymap with xkbcomp and exits).
_RESET_SIGNALS = (*FORWARDED_SIGNALS, signals.SIGCHLD, signals.SIGPIPE)
# What Python ignores at its start and a program expects at its default (as subprocess's
# restore_signals); the others stay as our parent gave them (nohup, background jobs).
PYTHON_IGNORED = (signals.SIGPIPE, signals.SIGXFSZ)


class HeldSignals:
    """Terminating signals wait while a process is started and made known to the watcher and
    to its owner: no ^C can land between the two. One that came meanwhile is raised as we let
    go (KeyboardInterrupt, or the set-up handler's error), with the process owned."""

    def __enter__(self) -> None:
        self._previous = signals.pthread_sigmask(signals.SIG_BLOCK, FORWARDED_SIGNALS)

    def __exit__(self, *_exception: object) -> None:
        signals.pthread_sigmask(signals.SIG_SETMASK, self._previous)


def _fd_placement(wanted: Mapping[int, int]) -> list[tuple[int, ...]]:
    """posix_spawn file actions that give the new process fd `target` = our fd `source`, for
    each target: source, whatever their numbers. Each source is first copied above every fd
    involved, so that placing one cannot overwrite another that is still to be placed."""
    scratch = max([*wanted, *wanted.values()]) + 1
    copies = {target: scratch + index for index, target in enumerate(wanted)}
    actions: list[tuple[int, ...]] = [
        (os.POSIX_SPAWN_DUP2, wanted[target], copy) for target, copy in copies.items()
    ]
    actions += [(os.POSIX_SPAWN_DUP2, copy, target) for target, copy in copies.items()]
    actions += [(os.POSIX_SPAWN_CLOSE, copy) for copy in copies.values()]
    return actions


def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    stdin: int | None = None,
    stdout: int | None = None,
    stderr: int | None = None,
    pass_fds: Sequence[int] = (),
    new_session: bool = False,
    sigmask: Iterable[int] = (),
    reset_signals: Sequence[int] = _RESET_SIGNALS,
) -> int:
    """Start a process with posix_spawn (no fork of this interpreter); return its pid.

    The fds in `pass_fds` become its fds 3, 4, ... in that order; it also inherits every
    inheritable fd of ours (those our own parent gave us). OSError when it cannot be run.
    """
    wanted = {target: fd for target, fd in ((0, stdin), (1, stdout), (2, stderr)) if fd is not None}
    wanted.update((3 + index, fd) for index, fd in enumerate(pass_fds))
    return os.posix_spawnp(
        argv[0],
        list(argv),
        dict(env if env is not None else os.environ),
        file_actions=_fd_placement(wanted) if wanted else (),
        setsid=new_session,
        setsigmask=sigmask,
        setsigdef=reset_signals,
    )


def exited(pid: int, timeout: float | None) -> bool:
    """Whether the child `pid` has ended, waiting at most `timeout` s (None: forever),
    without reaping it."""
    if timeout is not None:
        # A pidfd wakes us the moment it ends, where a poll would sleep.
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
    flags = os.WEXITED | os.WNOWAIT | (os.WNOHANG if timeout is not None else 0)
    try:
        return os.waitid(os.P_PID, pid, flags) is not None
    except ChildProcessError:
        return True


def wait_pid(pid: int, timeout: float | None) -> int | None:
    """Reap the child `pid` within `timeout` seconds (None: forever); its exit code, or None
    if it still runs. Negative codes are signals, as subprocess reports them."""
    if not exited(pid, timeout):
        return None
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return 0
    return os.waitstatus_to_exitcode(status)
