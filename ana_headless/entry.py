"""The console entry point. It starts the X server before the command line interface is even
imported: Xvfb needs some 50 ms to get ready, which the launcher spends importing click and
deciding, instead of waiting afterwards (see `make bench`).

The start is speculative. The command line is only glanced at here; once click has parsed it
and the plan is made, the session adopts the server if it is the one the plan wants (same
server kind, same screen), and stops it otherwise. Light on imports, on purpose.
"""

from __future__ import annotations

import os
import signal
import sys

from .display import Screen, ServerStart
from .lifetime import which

# Type-only imports: collections.abc and typing would cost the launcher's start-up path.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


_COMMANDS = ("run", "exec")
_NOT_A_RUN = ("--help", "-h", "--version", "--dry-run", "doctor")
# The options of run and exec that take a value, to find where the launcher's options end.
_TAKE_VALUE = ("--gl", "--vgl-display", "--mesa-dir", "--server", "--screen", "--timeout",
               "--python")


def _wanted_screen(args: Sequence[str], env: Mapping[str, str]) -> Screen | None:
    """The screen of an Xvfb that this command line will most likely ask for, or None."""
    if not args or args[0] in _NOT_A_RUN:
        return None
    options = list(args[1:] if args[0] in _COMMANDS else args)
    screen = env.get("ANA_HEADLESS_SCREEN", "1280x1024x24")
    server = env.get("ANA_HEADLESS_SERVER", "auto")
    while options and options[0].startswith("-") and options[0] != "-m":
        name, has_value, value = options.pop(0).partition("=")
        if name in _NOT_A_RUN:
            return None
        if name in _TAKE_VALUE and not has_value:
            value = options.pop(0) if options else ""
        if name == "--screen":
            screen = value
        elif name == "--server":
            server = value
    if server not in ("auto", "xvfb") or which("Xvfb") is None:
        return None
    try:
        return Screen.parse(screen)
    except ValueError:
        return None


def _start_early(args: Sequence[str], env: Mapping[str, str]) -> ServerStart | None:
    screen = _wanted_screen(args, env)
    if screen is None:
        return None
    try:
        return ServerStart("xvfb", screen)
    except Exception:
        # Speculation only: the launcher starts (and reports) the server itself.
        return None


def main() -> None:
    # A parent that ignores SIGCHLD would make the kernel reap our server, probes and child
    # before we can read their status.
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    started = _start_early(sys.argv[1:], os.environ)
    status = 0
    try:
        from .cli import main as cli_main

        cli_main(prog_name="ana-headless", obj=started)
    except KeyboardInterrupt:
        status = 128 + signal.SIGINT
    except SystemExit as done:
        status = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        if done.code is not None and not isinstance(done.code, int):
            print(done.code, file=sys.stderr)
    finally:
        if started is not None and not started.claimed:
            started.discard()
    # Everything of ours is stopped and removed by now: skip the interpreter's teardown
    # (module finalisation, garbage collection), which costs a run several milliseconds.
    import contextlib  # already loaded by the command line interface: free here

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(status)
