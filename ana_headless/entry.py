"""The console entry point.

A plain `run` or `exec` command line is read here without click (options.quick_parse), and
the X server is started at once, before anything else is imported: Xvfb needs some 40 ms to
get ready, in which the launcher decides and starts the child, whose first connection then
waits until the server is ready (see `make bench`). Every other command line goes to click.
Light on imports, on purpose.
"""

from __future__ import annotations

import os
import sys

from .display import ServerStart
from .lifetime import signals
from .options import quick_parse

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .options import Request


def _start_early(request: Request) -> ServerStart | None:
    """The Xvfb the request will want, started now; None when it will want none."""
    options = request.options
    if request.dry_run or options.server not in ("auto", "xvfb"):
        return None
    try:
        return ServerStart("xvfb", options.screen)
    except Exception:
        # No Xvfb, say: the launcher plans (and reports) the server itself.
        return None


def main() -> None:
    # A parent that ignores SIGCHLD would make the kernel reap our server, probes and child
    # before we can read their status.
    signals.signal(signals.SIGCHLD, signals.SIG_DFL)
    request = quick_parse(sys.argv[1:], os.environ)
    started = None
    status = 0
    try:
        if request is not None:
            started = _start_early(request)
            from .launcher import execute

            status = execute(request, started)
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
        if started is not None and not started.claimed:
            started.discard()
    # Everything of ours is stopped and removed by now: skip the interpreter's teardown
    # (module finalisation, garbage collection), which costs a run several milliseconds.
    for stream in (sys.stdout, sys.stderr):
        try:  # noqa: SIM105 (contextlib.suppress would cost the run an import of 3 ms)
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(status)
