"""Running a program headless: server up, GL checked, child supervised, everything stopped."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from types import FrameType

from . import facts as host_facts
from .display import ServerStart
from .errors import HeadlessError, ProgramNotFound, ProgramNotRunnable
from .explain import describe_plan, describe_setup
from .lifetime import FORWARDED_SIGNALS, die_with_parent, which
from .messages import log
from .plan import Options, make_plan
from .session import cached_results, headless_display

# si_code of a signal the kernel sent itself, e.g. from the terminal (^C, ^\, hang-up).
SI_KERNEL = 0x80


class Interrupted(HeadlessError):
    """A signal arrived while the display was being set up, before there was a child."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name} during set-up")
        self.exit_status = 128 + signum


def exit_status(returncode: int) -> int:
    """SPEC §4: the child's own status, or 128+N when signal N killed it."""
    return 128 - returncode if returncode < 0 else returncode


@contextmanager
def _abort_on_signals() -> Iterator[None]:
    """During set-up a terminating signal unwinds (and so cleans up) instead of killing us."""
    def abort(signum: int, _frame: FrameType | None) -> None:
        raise Interrupted(signum)

    previous = {}
    for sig in FORWARDED_SIGNALS:
        current = signal.getsignal(sig)
        # A signal our parent told us to ignore stays ignored (nohup, background jobs).
        if current is not signal.SIG_IGN:
            previous[sig] = signal.signal(sig, abort)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def check_runnable(program: str, *, python_script: bool, path: str) -> str:
    """Resolve PROGRAM (or check SCRIPT) before anything starts: 127 missing, 126 not runnable."""
    if not python_script and "/" not in program:
        found = which(program, path)
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


def _from_terminal(info: signal.struct_siginfo, child: subprocess.Popen[bytes]) -> bool:
    """A terminal's ^C or ^\\ already reached the child if it shares our process group."""
    try:
        return info.si_code == SI_KERNEL and os.getpgid(child.pid) == os.getpgrp()
    except ProcessLookupError:
        return False


def supervise(argv: Sequence[str], env: Mapping[str, str]) -> int:
    """Run the child with stdio untouched, forward signals to it, return its exit status."""
    watched = {*FORWARDED_SIGNALS, signal.SIGCHLD}
    # Blocked, the signals wait for sigwaitinfo, which tells who sent them; no handler races.
    previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, watched)
    try:
        try:
            child = subprocess.Popen(list(argv), env=dict(env),
                                     preexec_fn=die_with_parent(signal.SIGKILL))
        except OSError as error:
            if error.errno == errno.ENOENT:
                raise ProgramNotFound(f"{argv[0]}: not found") from error
            raise ProgramNotRunnable(f"{argv[0]}: cannot run: {error.strerror}") from error
        log.debug("child pid %d: %s", child.pid, " ".join(argv))
        while child.poll() is None:
            info = signal.sigwaitinfo(watched)
            if info.si_signo != signal.SIGCHLD and not _from_terminal(info, child):
                log.debug("forwarding %s to the child", signal.Signals(info.si_signo).name)
                child.send_signal(info.si_signo)
        return exit_status(child.returncode)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)


def launch(argv: Sequence[str], options: Options, *, explain: bool = False,
           dry_run: bool = False, started: ServerStart | None = None) -> int:
    """The whole of `run` and `exec`: returns the exit status of SPEC §4."""
    base_env = dict(os.environ)
    plan = make_plan(host_facts.gather(base_env), options)
    if explain or dry_run:
        print(describe_plan(plan, argv, cached_results(plan, options, base_env)),
              file=sys.stderr)
        if dry_run:
            return 0
    with ExitStack() as stack:
        with _abort_on_signals():
            setup = stack.enter_context(headless_display(plan, options, base_env, started))
        command = [*setup.prefix, *argv]
        if explain:
            print(describe_setup(setup, command, base_env), file=sys.stderr)
        status = supervise(command, setup.env)
    return status
