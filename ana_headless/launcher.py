"""Running a program headless: server up, GL checked, child supervised, everything stopped.

Light on imports: with a cached GL choice the child starts while the X server initialises,
so everything between the server's start and the child's is on the clock (see `make bench`).
"""

from __future__ import annotations

import errno
import os
import sys
import time

from . import facts as host_facts
from .errors import HeadlessError, Interrupted, ProgramNotFound, ProgramNotRunnable, error_lines
from .glchoice import choose_gl
from .messages import configure_logging, log
from .plan import make_plan
from .process import FORWARDED_SIGNALS, PYTHON_IGNORED, signals, spawn
from .session import Session

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from signal import struct_siginfo
    from types import FrameType, TracebackType

    from .glchoice import Setup
    from .lifetime import Watcher
    from .options import Options, Request
    from .plan import Plan

# si_code of a signal the kernel sent itself, e.g. from the terminal (^C, ^\, hang-up).
SI_KERNEL = 0x80


def _signal_name(signum: int) -> str:
    import signal

    return signal.Signals(signum).name


def exit_status(returncode: int) -> int:
    """SPEC §4: the child's own status, or 128+N when signal N killed it."""
    return 128 - returncode if returncode < 0 else returncode


class AbortOnSignals:
    """During set-up a terminating signal unwinds (and so cleans up) instead of killing us."""

    def __enter__(self) -> None:
        self._previous = {}
        for sig in FORWARDED_SIGNALS:
            # A signal our parent told us to ignore stays ignored (nohup, background jobs).
            if signals.getsignal(sig) is not signals.SIG_IGN:
                self._previous[sig] = signals.signal(sig, self._abort)

    @staticmethod
    def _abort(signum: int, _frame: FrameType | None) -> None:
        raise Interrupted(signum)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for sig, handler in self._previous.items():
            signals.signal(sig, handler)


def check_runnable(program: str, *, python_script: bool, path: str) -> str:
    """Resolve PROGRAM (or check SCRIPT) before anything starts: 127 missing, 126 not runnable."""
    if not python_script and "/" not in program:
        found = host_facts.which(program, path)
        if found is None:
            raise ProgramNotFound(f"{program}: command not found on PATH")
        return found
    what = "script" if python_script else "program"
    if not os.path.exists(program):
        raise ProgramNotFound(f"{what} not found: {program}")
    if os.path.isdir(program):
        raise ProgramNotRunnable(f"{what} is a directory: {program}")
    if not os.access(program, os.R_OK if python_script else os.X_OK):
        needed = "readable" if python_script else "executable"
        raise ProgramNotRunnable(f"{what} is not {needed}: {program}")
    return program


def _from_terminal(info: struct_siginfo, child: int) -> bool:
    """A terminal's ^C or ^\\ already reached the child if it shares our process group."""
    try:
        return info.si_code == SI_KERNEL and os.getpgid(child) == os.getpgrp()
    except ProcessLookupError:
        return False


def _start_child(
    argv: Sequence[str], env: Mapping[str, str], sigmask: set[int], watcher: Watcher
) -> int:
    try:
        child = spawn(argv, env=env, sigmask=sigmask, reset_signals=PYTHON_IGNORED)
    except OSError as error:
        if error.errno == errno.ENOENT:
            raise ProgramNotFound(f"{argv[0]}: not found") from error
        raise ProgramNotRunnable(f"{argv[0]}: cannot run: {error.strerror}") from error
    watcher.kill_on_death(child, "KILL")
    log.debug("child pid %d: %s", child, " ".join(argv))
    return child


def supervise(argv: Sequence[str], setup: Setup, display: Session) -> int:
    """Run the child with stdio untouched, forward signals to it, return its exit status.

    A server that is still starting is watched meanwhile: if it exits, or is not ready by
    its deadline, the child is killed and SetupError raised. A child that
    ends while the server is still starting never had an answer from it (a client waits in
    the socket's backlog until the server is ready): its status is its own, and the server
    is not waited for.
    """
    server, watcher = display.server, display.watcher
    watched = {*FORWARDED_SIGNALS, signals.SIGCHLD}
    # Blocked, the signals wait for sigwaitinfo, which tells who sent them; no handler races.
    previous_mask = signals.pthread_sigmask(signals.SIG_BLOCK, watched)
    try:
        child = _start_child(argv, setup.env, previous_mask, watcher)
        returncode = None
        try:
            while (returncode := watcher.reap(child, 0)) is None:
                if server.ready:
                    info = signals.sigwaitinfo(watched)
                else:
                    # Only the server's end (SIGCHLD) or its deadline can end its start-up.
                    left = server.deadline - time.monotonic()
                    arrived = signals.sigtimedwait(watched, max(left, 0.0))
                    if arrived is None or arrived.si_signo == signals.SIGCHLD:
                        server.check()
                        continue
                    info = arrived
                if info.si_signo != signals.SIGCHLD and not _from_terminal(info, child):
                    log.debug("forwarding %s to the child", _signal_name(info.si_signo))
                    os.kill(child, info.si_signo)
        except BaseException:
            # A server that failed, or a fault of ours: either way the child must not
            # outlive us on a display that is going away.
            os.kill(child, signals.SIGKILL)
            watcher.reap(child, None)
            raise
        # Unless the server failed meanwhile, which may be why the child ended.
        server.check()
        # The server's end is on the run's clock: begun at once, waited for by its display.
        server.begin_stop()
        return exit_status(returncode)
    finally:
        signals.pthread_sigmask(signals.SIG_SETMASK, previous_mask)


def launch(
    argv: Sequence[str],
    options: Options,
    *,
    explain: bool = False,
    dry_run: bool = False,
    early: tuple[Plan, Session] | None = None,
) -> int:
    """The whole of `run` and `exec`: returns the exit status of SPEC §4. `early`: the plan,
    and its display already starting (see entry.py)."""
    base_env = dict(os.environ)
    plan, display = early or (
        make_plan(host_facts.gather(base_env, options.mesa_dir), options),
        None,
    )
    if explain or dry_run:
        from .explain import describe_plan
        from .glchoice import cached_results

        print(describe_plan(plan, argv, cached_results(plan, base_env)), file=sys.stderr)
        if dry_run:
            return 0
    try:
        with AbortOnSignals():
            log.info(
                "starting %s (screen %s)%s",
                plan.server.kind,
                plan.screen,
                ", begun before the launcher was loaded" if display else "",
            )
            if display is None:
                display = Session(plan)
            if display.directory.note:
                log.info("%s", display.directory.note)
            # With a cached GL choice, the child starts while the server initialises.
            setup = choose_gl(display, plan, base_env)
        command = [*setup.prefix, *argv]
        if explain:
            from .explain import describe_setup

            print(describe_setup(setup, display, command, base_env), file=sys.stderr)
        return supervise(command, setup, display)
    finally:
        if display is not None:
            display.close()


def execute(request: Request, early: tuple[Plan, Session] | None = None) -> int:
    """Check the program (and script), run it headless; the exit status, errors reported."""
    configure_logging(request.verbose, request.quiet)
    try:
        if not sys.platform.startswith("linux"):
            raise HeadlessError(f"ana-headless runs on Linux (X11) only, not on {sys.platform}")
        argv = list(request.argv)
        argv[0] = check_runnable(
            argv[0], python_script=False, path=os.environ.get("PATH", os.defpath)
        )
        if request.script is not None:
            check_runnable(request.script, python_script=True, path="")
        return launch(
            argv, request.options, explain=request.explain, dry_run=request.dry_run, early=early
        )
    except HeadlessError as error:
        report(error, request.verbose)
        return error.exit_status
    except KeyboardInterrupt:
        return 128 + signals.SIGINT
    except Exception as error:
        # A bug of ours: still one line (the traceback behind -vv), and nothing left behind.
        report(
            HeadlessError(f"internal error: {error!r} (run with -vv for the traceback)"),
            request.verbose,
        )
        return HeadlessError.exit_status


def report(error: HeadlessError, verbose: int) -> None:
    """One line on stderr, then the details (a server's or a probe's output), indented."""
    sys.stderr.write(error_lines(error) + "\n")
    sys.stderr.flush()
    if verbose >= 2:
        log.exception("traceback")
