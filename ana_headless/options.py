"""The options of `run` and `exec` (SPEC §2), as data: the click command line is built from
this table, and the launcher's fast path reads plain command lines with it.

Importing click costs the launcher some 28 ms, more than half of what the X server needs to
start: the time in which the child could already be starting. So `quick_parse` reads the
common command lines (`run`/`exec`/the shebang form with options from this table) itself, and
hands every other one (help, doctor, an unusual spelling, a value that is not plainly valid)
to click, which then parses, validates and explains as before. A unit test checks that both
agree wherever the fast path answers. Light on imports, on purpose.
"""

from __future__ import annotations

import os
import sys

from .display import Screen
from .record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

GL_MODES = ("auto", "virtualgl", "mesa", "server")
SERVERS = ("auto", "xvfb", "xpra")
DEFAULT_SCREEN = "1280x1024x24"
DEFAULT_TIMEOUT = 10.0
COMMANDS = ("run", "exec")
# What click's boolean type reads in an environment variable.
TRUE_WORDS = ("1", "true", "t", "yes", "y", "on")
FALSE_WORDS = ("0", "false", "f", "no", "n", "off")


class OptionSpec(Record):
    """One option. `kind` says how its value is read: choice, text, dir (an existing
    directory), screen (WxHxD), seconds (a positive number), switch (--x/--no-x), flag,
    count."""

    __slots__ = ("choices", "default", "dest", "envvar", "flags", "help", "kind", "metavar",
                 "run_only")

    def __init__(self, flags: tuple[str, ...], dest: str, kind: str, help: str, *,
                 envvar: str | None = None, choices: tuple[str, ...] = (),
                 default: object = None, metavar: str | None = None,
                 run_only: bool = False) -> None:
        self.flags = flags
        self.dest = dest
        self.kind = kind
        self.help = help
        self.envvar = envvar
        self.choices = choices
        self.default = default
        self.metavar = metavar
        self.run_only = run_only


SPECS = (
    OptionSpec(("--gl",), "gl", "choice", envvar="ANA_HEADLESS_GL", choices=GL_MODES,
               default="auto",
               help="How the child gets OpenGL: virtualgl (vglrun on a GPU), mesa (a software "
                    "libGL.so.1 first on LD_LIBRARY_PATH), server (the virtual server's own "
                    "GLX), or auto: the best that a probe shows working."),
    OptionSpec(("--vgl-display",), "vgl_display", "text", envvar="VGL_DISPLAY",
               metavar="DISPLAY|egl|DEVICE",
               help="Where VirtualGL renders: a 3D X server, egl, or a DRI device. Default: "
                    "in a SLURM job given a GPU, that GPU's DRI card; else the original "
                    "DISPLAY if it is a 3D X server, else egl."),
    OptionSpec(("--mesa-dir",), "mesa_dir", "dir", envvar="ANA_HEADLESS_MESA_DIR",
               metavar="DIR",
               help="Directory holding the software Mesa libGL.so.1 (default: searched in "
                    "/usr/local/lib/mesa and similar, and conda's mesalib/lib)."),
    OptionSpec(("--server",), "server", "choice", envvar="ANA_HEADLESS_SERVER",
               choices=SERVERS, default="auto",
               help="The virtual X server: auto means Xvfb, else xpra."),
    OptionSpec(("--virtualgl", "--no-virtualgl"), "allow_virtualgl", "switch",
               envvar="ANA_HEADLESS_ALLOW_VIRTUALGL", default=True,
               help="--no-virtualgl never uses VirtualGL (Anatomist's allow_virtualgl)."),
    OptionSpec(("--force-virtualgl",), "force_virtualgl", "flag", default=False,
               help="Use VirtualGL whenever its probe works, even on a software renderer "
                    "(Anatomist's force_virtualgl)."),
    OptionSpec(("--screen",), "screen", "screen", envvar="ANA_HEADLESS_SCREEN",
               default=DEFAULT_SCREEN, metavar="WxHxD",
               help="Size and depth of the virtual screen."),
    OptionSpec(("--timeout",), "timeout", "seconds", envvar="ANA_HEADLESS_TIMEOUT",
               default=DEFAULT_TIMEOUT, metavar="SECONDS",
               help="The longest wait for the virtual server to be ready."),
    OptionSpec(("-v", "--verbose"), "verbose", "count", default=0,
               help="Say what is set up (repeat for more detail and tracebacks)."),
    OptionSpec(("-q", "--quiet"), "quiet", "flag", default=False, help="Only errors."),
    OptionSpec(("--explain",), "explain", "flag", default=False,
               help="Print the decisions, the exact environment and command, then run."),
    OptionSpec(("--dry-run",), "dry_run", "flag", default=False,
               help="Print the decisions and exit 0 without starting anything."),
    OptionSpec(("--python",), "python", "text", envvar="ANA_HEADLESS_PYTHON", metavar="PATH",
               run_only=True,
               help="The Python interpreter for the script (default: the one running "
                    "ana-headless)."),
)


class Options(Record):
    """How to make the display and its OpenGL: what the plan is made from."""

    __slots__ = ("allow_virtualgl", "force_virtualgl", "gl", "mesa_dir", "screen", "server",
                 "timeout", "vgl_display")

    def __init__(self, *, gl: str = "auto", server: str = "auto", allow_virtualgl: bool = True,
                 force_virtualgl: bool = False, vgl_display: str | None = None,
                 mesa_dir: str | None = None, screen: Screen | None = None,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        self.gl = gl
        self.server = server
        self.allow_virtualgl = allow_virtualgl
        self.force_virtualgl = force_virtualgl
        self.vgl_display = vgl_display
        self.mesa_dir = mesa_dir
        self.screen = screen or Screen.parse(DEFAULT_SCREEN)
        self.timeout = timeout


class Request(Record):
    """A parsed `run` or `exec`: the child's command line and how to run it."""

    __slots__ = ("argv", "dry_run", "explain", "options", "quiet", "script", "verbose")

    def __init__(self, argv: list[str], options: Options, *, script: str | None = None,
                 verbose: int = 0, quiet: bool = False, explain: bool = False,
                 dry_run: bool = False) -> None:
        # The child's command line; argv[0] still as given (resolved when checked).
        self.argv = argv
        # The script that `run` must find readable, if it runs one (not with -m).
        self.script = script
        self.options = options
        self.verbose = verbose
        self.quiet = quiet
        self.explain = explain
        self.dry_run = dry_run


def _options(values: Mapping[str, Any]) -> Options:
    return Options(
        gl=str(values["gl"]), server=str(values["server"]),
        allow_virtualgl=bool(values["allow_virtualgl"]),
        force_virtualgl=bool(values["force_virtualgl"]),
        vgl_display=values["vgl_display"] or None, mesa_dir=values["mesa_dir"] or None,
        screen=values["screen"], timeout=float(values["timeout"]))


def build_request(command: str, values: Mapping[str, Any], child: Sequence[str],
                  module: str | None = None) -> Request:
    """The request from parsed option values (SPEC §2), click's or quick_parse's;
    `child` is SCRIPT ARGS... or PROGRAM ARGS... (or, with `module`, the module's ARGS...)."""
    options = _options(values)
    script = None
    if command == "exec":
        argv = list(child)
    else:
        interpreter = str(values.get("python") or sys.executable)
        if module is not None:
            argv = [interpreter, "-m", module, *child]
        else:
            argv, script = [interpreter, *child], child[0]
    return Request(argv, options, script=script, verbose=int(values["verbose"]),
                   quiet=bool(values["quiet"]), explain=bool(values["explain"]),
                   dry_run=bool(values["dry_run"]))


def _convert(spec: OptionSpec, text: str) -> Any:
    """The value of `text` for `spec`, or None where click would refuse it, or read it in a
    way that is not plain (then click parses the whole command line)."""
    if spec.kind == "choice":
        return text if text in spec.choices else None
    if spec.kind == "dir":
        return text if os.path.isdir(text) else None
    if spec.kind == "screen":
        try:
            return Screen.parse(text)
        except ValueError:
            return None
    if spec.kind == "seconds":
        try:
            seconds = float(text)
        except ValueError:
            return None
        return seconds if 0 < seconds < float("inf") else None
    if spec.kind == "switch":
        word = text.strip().lower()
        return True if word in TRUE_WORDS else (False if word in FALSE_WORDS else None)
    return text


def _from_environment(spec: OptionSpec, env: Mapping[str, str]) -> Any:
    """The value of `spec` from its environment variable or its default; None when the
    variable holds what click would refuse."""
    if spec.envvar and env.get(spec.envvar):
        return _convert(spec, env[spec.envvar])
    return Screen.parse(DEFAULT_SCREEN) if spec.kind == "screen" else spec.default


def options_from_environment(env: Mapping[str, str]) -> Options:
    """The options the environment variables give, as the command line would read them
    without options (for the in-process API); UsageError names a variable click would
    refuse."""
    from .errors import UsageError

    values: dict[str, Any] = {}
    for spec in SPECS:
        values[spec.dest] = _from_environment(spec, env)
        if values[spec.dest] is None and spec.envvar and env.get(spec.envvar):
            accepted = f": use one of {', '.join(spec.choices)}" if spec.choices else ""
            raise UsageError(f"{spec.envvar}={env[spec.envvar]!r} is not a valid value for "
                             f"{spec.flags[-1]}{accepted}")
    return _options(values)


def quick_parse(args: Sequence[str], env: Mapping[str, str]) -> Request | None:
    """The request of a plain `run`, `exec` or shebang command line, exactly as click would
    read it; None for anything else."""
    if not args or args[0] in ("--help", "-h", "--version", "doctor"):
        return None
    command = args[0] if args[0] in COMMANDS else "run"
    rest = list(args[1:] if args[0] in COMMANDS else args)
    by_flag = {flag: spec for spec in SPECS if command == "run" or not spec.run_only
               for flag in spec.flags}
    given: dict[str, Any] = {}
    module = None
    while rest:
        token = rest.pop(0)
        if token == "--":
            break
        if command == "run" and token.startswith("-m") and not token.startswith("--"):
            if token == "-m" and not rest:
                return None
            module = token[2:] or rest.pop(0)
            break
        if not token.startswith("-") or token == "-":
            rest.insert(0, token)
            break
        name, has_value, text = token.partition("=")
        spec = by_flag.get(name)
        if spec is None:
            # -vv is -v twice; anything else unknown (-h, clusters, typos) is click's to read.
            if token[1:] and set(token[1:]) == {"v"}:
                given["verbose"] = given.get("verbose", 0) + len(token) - 1
                continue
            return None
        if spec.kind in ("flag", "count", "switch"):
            if has_value:
                return None
            if spec.kind == "count":
                given[spec.dest] = given.get(spec.dest, 0) + 1
            else:
                given[spec.dest] = spec.kind == "flag" or name == spec.flags[0]
            continue
        if not has_value:
            if not rest:
                return None
            text = rest.pop(0)
        value = _convert(spec, text)
        if value is None:
            return None
        given[spec.dest] = value
    values: dict[str, Any] = {}
    for spec in SPECS:
        values[spec.dest] = (given[spec.dest] if spec.dest in given
                             else _from_environment(spec, env))
        if values[spec.dest] is None and spec.envvar and env.get(spec.envvar):
            return None
    if module is None and not rest:
        return None
    return build_request(command, values, rest, module)
