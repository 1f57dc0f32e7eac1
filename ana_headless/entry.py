"""The console entry point.

A plain `run` or `exec` command line is read here without click (options.quick_parse), planned,
and its X server started at once, before the rest of the launcher is imported: Xvfb needs some
40 ms to get ready, in which the launcher chooses GL and starts the child, whose first
connection then waits until the server is ready (see `make bench`). This is the launcher's own
start path (session.Session), taken early. Every other command line goes to click. Light on
imports, on purpose.
"""

from __future__ import annotations

import os
import sys

from .facts import gather
from .plan import make_plan
from .process import FORWARDED_SIGNALS, signals
from .quickparse import quick_parse
from .session import Session

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .options import Request
    from .plan import Plan


def _start_early(request: Request) -> tuple[Plan, Session] | None:
    """The request's plan, and its display already starting; None for a dry run, or when
    the plan or the start fails (the launcher then tries again, and reports why)."""
    if request.dry_run:
        return None
    try:
        plan = make_plan(gather(os.environ, request.options.mesa_dir), request.options)
        return plan, Session(plan)
    except Exception:
        # No Xvfb, no room in TMPDIR...: the launcher's own attempt says what went wrong.
        return None


def main() -> None:
    early = None
    status = 0
    try:
        # A parent that ignores SIGCHLD would make the kernel reap our server, probes and
        # child before we can read their status.
        signals.signal(signals.SIGCHLD, signals.SIG_DFL)
        # A signal mask survives exec: signals that our parent had blocked would never reach
        # the set-up's handlers, and the child, which starts with our mask, would never see
        # the ones we forward (a ^C, Jupyter's interrupt). Ignoring is kept: a parent asks
        # for that on purpose (nohup), a blocked signal is a parent's leftover. One that came
        # while blocked is raised here, inside the try.
        signals.pthread_sigmask(signals.SIG_UNBLOCK, FORWARDED_SIGNALS)
        request = quick_parse(sys.argv[1:], os.environ)
        if request is not None:
            early = _start_early(request)
            from .launcher import execute

            status = execute(request, early)
        else:
            from .cli import main as cli_main

            cli_main(prog_name="ana-headless")
    except KeyboardInterrupt:
        status = 128 + signals.SIGINT
    except SystemExit as done:
        status = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        if done.code is not None and not isinstance(done.code, int):
            print(done.code, file=sys.stderr)
    finally:
        # The launcher closes it once used; not if it stopped before (a missing script).
        if early is not None:
            early[1].close()
    # Everything of ours is stopped and removed by now: skip the interpreter's teardown
    # (module finalisation, garbage collection), which costs a run several milliseconds.
    for stream in (sys.stdout, sys.stderr):
        try:  # noqa: SIM105 (contextlib.suppress: an import, on the run's clock)
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(status)
