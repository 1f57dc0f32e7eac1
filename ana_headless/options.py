"""The options of `run` and `exec` (SPEC §2), as data: one table, from which the click command
line is built, the launcher's fast path (quickparse.py) reads plain command lines, the
environment variables are read, and a re-executed process passes its options on. Light on
imports: the launcher reads its options before the X server is started.
"""

from __future__ import annotations

import os
import sys

from .record import Record
from .screen import Screen

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

GL_MODES = ("auto", "virtualgl", "mesa", "server")
SERVERS = ("auto", "xvfb", "weston", "xpra")
DEFAULT_SCREEN = "1280x1024x24"
DEFAULT_TIMEOUT = 10.0
# The longest --timeout: a server that needs longer than an hour to start is not starting.
MAX_TIMEOUT = 3600.0
COMMANDS = ("run", "exec")
# What click's boolean type reads in an environment variable.
TRUE_WORDS = ("1", "true", "t", "yes", "y", "on")
FALSE_WORDS = ("0", "false", "f", "no", "n", "off")


class OptionSpec(Record):
    """One option. `kind` says how its value is read: choice, text, dir (an existing
    directory), screen (WxHxD), seconds (a number in (0, MAX_TIMEOUT]), version (MAJOR.MINOR),
    switch (--x/--no-x), flag, count."""

    __slots__ = (
        "choices",
        "default",
        "dest",
        "envvar",
        "flags",
        "help",
        "kind",
        "metavar",
        "run_only",
    )

    def __init__(
        self,
        flags: tuple[str, ...],
        dest: str,
        kind: str,
        help: str,
        *,
        envvar: str | None = None,
        choices: tuple[str, ...] = (),
        default: object = None,
        metavar: str | None = None,
        run_only: bool = False,
    ) -> None:
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
    OptionSpec(
        ("--gl",),
        "gl",
        "choice",
        envvar="ANA_HEADLESS_GL",
        choices=GL_MODES,
        default="auto",
        help="How the child gets OpenGL: virtualgl (vglrun on a GPU), mesa (a software "
        "libGL.so.1 first on LD_LIBRARY_PATH), server (the virtual server's own "
        "GLX), or auto: the best that a probe shows working.",
    ),
    OptionSpec(
        ("--vgl-display",),
        "vgl_display",
        "text",
        envvar="VGL_DISPLAY",
        metavar="DISPLAY|egl|DEVICE",
        help="Where VirtualGL renders: a 3D X server, egl, eglN, or a DRI device. Default: "
        "in a SLURM job given a GPU, that GPU's DRI card, or without one here, the eglN "
        "whose UUID is that GPU's; else the original DISPLAY if it is a 3D X server, "
        "else egl.",
    ),
    OptionSpec(
        ("--mesa-dir",),
        "mesa_dir",
        "dir",
        envvar="ANA_HEADLESS_MESA_DIR",
        metavar="DIR",
        help="Directory holding the software Mesa libGL.so.1 (default: searched in "
        "/usr/local/lib/mesa and similar, and conda's mesalib/lib).",
    ),
    OptionSpec(
        ("--server",),
        "server",
        "choice",
        envvar="ANA_HEADLESS_SERVER",
        choices=SERVERS,
        default="auto",
        help="The virtual X server: auto means Xvfb, else weston with a rootful Xwayland "
        "(hosts without Xvfb, such as RHEL 10); xpra runs its own Xvfb.",
    ),
    OptionSpec(
        ("--virtualgl", "--no-virtualgl"),
        "allow_virtualgl",
        "switch",
        envvar="ANA_HEADLESS_ALLOW_VIRTUALGL",
        default=True,
        help="--no-virtualgl never uses VirtualGL (Anatomist's allow_virtualgl).",
    ),
    OptionSpec(
        ("--force-virtualgl",),
        "force_virtualgl",
        "flag",
        default=False,
        help="Use VirtualGL whenever its probe works, even on a software renderer "
        "(Anatomist's force_virtualgl).",
    ),
    OptionSpec(
        ("--require-gl",),
        "require_gl",
        "version",
        envvar="ANA_HEADLESS_REQUIRE_GL",
        metavar="MAJOR.MINOR",
        help="Only an OpenGL of at least this version will do (Anatomist's shaders want "
        "3.3): auto skips modes below it, and a mode asked for with --gl that is below it "
        "ends the run with 125, naming the version it got.",
    ),
    OptionSpec(
        ("--require-gpu",),
        "require_gpu",
        "flag",
        envvar="ANA_HEADLESS_REQUIRE_GPU",
        default=False,
        help="Only a hardware renderer will do: rather than run on a software one (llvmpipe, "
        "some 400 times slower), end with 125 at once, naming the likely cause when GPU "
        "devices are there.",
    ),
    OptionSpec(
        ("--screen",),
        "screen",
        "screen",
        envvar="ANA_HEADLESS_SCREEN",
        default=DEFAULT_SCREEN,
        metavar="WxHxD",
        help="Size and depth of the virtual screen.",
    ),
    OptionSpec(
        ("--timeout",),
        "timeout",
        "seconds",
        envvar="ANA_HEADLESS_TIMEOUT",
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help="The longest wait for the virtual server to be ready (more than 0, at "
        f"most {MAX_TIMEOUT:g}).",
    ),
    OptionSpec(
        ("-v", "--verbose"),
        "verbose",
        "count",
        default=0,
        help="Say what is set up (repeat for more detail and tracebacks).",
    ),
    OptionSpec(("-q", "--quiet"), "quiet", "flag", default=False, help="Only errors."),
    OptionSpec(
        ("--explain",),
        "explain",
        "flag",
        default=False,
        help="Print the decisions, the exact environment and command, then run.",
    ),
    OptionSpec(
        ("--dry-run",),
        "dry_run",
        "flag",
        default=False,
        help="Print the decisions and exit 0 without starting anything.",
    ),
    OptionSpec(
        ("--python",),
        "python",
        "text",
        envvar="ANA_HEADLESS_PYTHON",
        metavar="PATH",
        run_only=True,
        help="The Python interpreter for the script (default: the one running ana-headless).",
    ),
)


class Options(Record):
    """How to make the display and its OpenGL: what the plan is made from."""

    __slots__ = (
        "allow_virtualgl",
        "force_virtualgl",
        "gl",
        "mesa_dir",
        "require_gl",
        "require_gpu",
        "screen",
        "server",
        "timeout",
        "vgl_display",
    )

    def __init__(
        self,
        *,
        gl: str = "auto",
        server: str = "auto",
        allow_virtualgl: bool = True,
        force_virtualgl: bool = False,
        vgl_display: str | None = None,
        mesa_dir: str | None = None,
        screen: Screen | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        require_gl: str | None = None,
        require_gpu: bool = False,
    ) -> None:
        self.gl = gl
        self.server = server
        self.allow_virtualgl = allow_virtualgl
        self.force_virtualgl = force_virtualgl
        self.vgl_display = vgl_display
        self.mesa_dir = mesa_dir
        self.screen = screen or Screen.parse(DEFAULT_SCREEN)
        self.timeout = timeout
        # MAJOR.MINOR, normalised ("3.3"), or None.
        self.require_gl = require_gl
        self.require_gpu = require_gpu


class Request(Record):
    """A parsed `run` or `exec`: the child's command line and how to run it."""

    __slots__ = ("argv", "dry_run", "explain", "options", "quiet", "script", "verbose")

    def __init__(
        self,
        argv: list[str],
        options: Options,
        *,
        script: str | None = None,
        verbose: int = 0,
        quiet: bool = False,
        explain: bool = False,
        dry_run: bool = False,
    ) -> None:
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
        gl=str(values["gl"]),
        server=str(values["server"]),
        allow_virtualgl=bool(values["allow_virtualgl"]),
        force_virtualgl=bool(values["force_virtualgl"]),
        vgl_display=values["vgl_display"] or None,
        mesa_dir=values["mesa_dir"] or None,
        screen=values["screen"],
        timeout=float(values["timeout"]),
        require_gl=values["require_gl"] or None,
        require_gpu=bool(values["require_gpu"]),
    )


def build_request(
    command: str, values: Mapping[str, Any], child: Sequence[str], module: str | None = None
) -> Request:
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
    return Request(
        argv,
        options,
        script=script,
        verbose=int(values["verbose"]),
        quiet=bool(values["quiet"]),
        explain=bool(values["explain"]),
        dry_run=bool(values["dry_run"]),
    )


def convert_value(spec: OptionSpec, text: str) -> Any:
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
        return parse_seconds(text)
    if spec.kind == "version":
        return parse_version(text)
    if spec.kind in ("switch", "flag"):
        word = text.strip().lower()
        return True if word in TRUE_WORDS else (False if word in FALSE_WORDS else None)
    return text


def parse_seconds(text: str) -> float | None:
    """A --timeout value, or None unless it is a number in (0, MAX_TIMEOUT] (nan and inf
    are not)."""
    try:
        seconds = float(text)
    except ValueError:
        return None
    return seconds if 0 < seconds <= MAX_TIMEOUT else None


def parse_version(text: str) -> str | None:
    """A --require-gl value, MAJOR.MINOR, normalised ("03.3" is "3.3"); None unless it is one."""
    major, dot, minor = text.strip().partition(".")
    if not (dot and major.isdigit() and minor.isdigit() and len(major) <= 2 and len(minor) <= 2):
        return None
    return f"{int(major)}.{int(minor)}"


def value_from_environment(spec: OptionSpec, env: Mapping[str, str]) -> Any:
    """The value of `spec` from its environment variable or its default; None when the
    variable holds what click would refuse."""
    if spec.envvar and env.get(spec.envvar):
        return convert_value(spec, env[spec.envvar])
    return Screen.parse(DEFAULT_SCREEN) if spec.kind == "screen" else spec.default


def options_from_environment(env: Mapping[str, str]) -> Options:
    """The options the environment variables give, as the command line would read them
    without options (for the in-process API); UsageError names a variable click would
    refuse."""
    from .errors import UsageError

    values: dict[str, Any] = {}
    for spec in SPECS:
        values[spec.dest] = value_from_environment(spec, env)
        if values[spec.dest] is None and spec.envvar and env.get(spec.envvar):
            accepted = f": use one of {', '.join(spec.choices)}" if spec.choices else ""
            raise UsageError(
                f"{spec.envvar}={env[spec.envvar]!r} is not a valid value for "
                f"{spec.flags[-1]}{accepted}"
            )
    return _options(values)


def launcher_arguments(options: Options) -> list[str]:
    """The command-line options that give `options`, from the table: those that differ from
    the defaults (how a re-executed process passes its options to the launcher)."""
    arguments: list[str] = []
    for spec in SPECS:
        if spec.dest not in Options.__slots__:
            continue
        value = getattr(options, spec.dest)
        default = Screen.parse(DEFAULT_SCREEN) if spec.kind == "screen" else spec.default
        if value == default or value is None:
            continue
        if spec.kind == "switch":
            arguments.append(spec.flags[0] if value else spec.flags[1])
        elif spec.kind == "flag":
            arguments.append(spec.flags[0])
        else:
            arguments += [spec.flags[0], f"{value:g}" if isinstance(value, float) else str(value)]
    return arguments
