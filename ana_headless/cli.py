"""The command line: parse, call the launcher, map errors to exit statuses. Thin on purpose."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from typing import Any, NoReturn

import click

from ._version import __version__
from .display import Screen
from .errors import HeadlessError
from .messages import DEBUG, ERROR, INFO, LOGGER_NAME, WARNING, log
from .plan import GL_MODES, SERVERS, Options

EXAMPLES = """\
Examples:

\b
  ana-headless run snapshot.py --subject s01    # a Python script and its arguments
  ana-headless run -m mypackage.render out.png  # a module, like python -m
  ana-headless exec glxinfo -B                  # any program
  ana-headless run --screen 1920x1080x24 -v qc.py
  #!/usr/bin/env ana-headless                   # first line of an executable script
"""


class ScreenType(click.ParamType):  # type: ignore[type-arg]
    name = "WxHxD"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Screen:
        if isinstance(value, Screen):
            return value
        try:
            return Screen.parse(str(value))
        except ValueError as error:
            self.fail(str(error), param, ctx)


class ShebangGroup(click.Group):
    """`ana-headless SCRIPT ARGS...` (the shebang form) means `ana-headless run SCRIPT ARGS...`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in (
                "--help", "-h", "--version"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


class RunCommand(click.Command):
    """`run -m MODULE ARGS...`: like python -m, everything after MODULE is the module's."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        takes_value = {name for param in self.params if isinstance(param, click.Option)
                       and not (param.is_flag or param.count) for name in param.opts}
        index = 0
        while index < len(args):
            token = args[index]
            if token == "-m" and index + 1 < len(args):
                return super().parse_args(ctx, [*args[:index + 2], "--", *args[index + 2:]])
            if token.startswith("-m") and not token.startswith("--") and len(token) > 2:
                return super().parse_args(
                    ctx, [*args[:index], "-m", token[2:], "--", *args[index + 1:]])
            if token == "--" or not token.startswith("-"):
                break
            index += 2 if token in takes_value else 1
        return super().parse_args(ctx, args)


def _option(*names: str, **attributes: Any) -> Callable[..., Any]:
    """click.option that shows its environment variable in --help and the man page."""
    return click.option(*names, show_envvar="envvar" in attributes, **attributes)


def _launcher_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options `run` and `exec` share (SPEC §2)."""
    options = [
        _option("--gl", type=click.Choice(GL_MODES), default="auto", show_default=True,
                     envvar="ANA_HEADLESS_GL",
                     help="How the child gets OpenGL: virtualgl (vglrun on a GPU), mesa (a "
                          "software libGL.so.1 first on LD_LIBRARY_PATH), server (the virtual "
                          "server's own GLX), or auto: the best that a probe shows working."),
        _option("--vgl-display", metavar="DISPLAY|egl|DEVICE", envvar="VGL_DISPLAY",
                     help="Where VirtualGL renders: a 3D X server, egl, or a DRI device. "
                          "Default: the original DISPLAY if it is a 3D X server, else egl."),
        _option("--mesa-dir", metavar="DIR", envvar="ANA_HEADLESS_MESA_DIR",
                     type=click.Path(exists=True, file_okay=False),
                     help="Directory holding the software Mesa libGL.so.1 (default: searched "
                          "in /usr/local/lib/mesa and similar, and conda's mesalib/lib)."),
        _option("--server", type=click.Choice(SERVERS), default="auto", show_default=True,
                     envvar="ANA_HEADLESS_SERVER",
                     help="The virtual X server: auto means Xvfb, else xpra."),
        _option("--virtualgl/--no-virtualgl", "allow_virtualgl", default=True,
                     envvar="ANA_HEADLESS_ALLOW_VIRTUALGL",
                     help="--no-virtualgl never uses VirtualGL (Anatomist's allow_virtualgl)."),
        _option("--force-virtualgl", is_flag=True,
                     help="Use VirtualGL whenever its probe works, even on a software renderer "
                          "(Anatomist's force_virtualgl)."),
        _option("--screen", type=ScreenType(), metavar="WxHxD", default="1280x1024x24",
                show_default=True, envvar="ANA_HEADLESS_SCREEN",
                help="Size and depth of the virtual screen."),
        _option("--timeout", type=click.FloatRange(min=0, min_open=True), default=10.0,
                     show_default=True, envvar="ANA_HEADLESS_TIMEOUT", metavar="SECONDS",
                     help="The longest wait for the virtual server to be ready."),
        _option("-v", "--verbose", count=True,
                     help="Say what is set up (repeat for more detail and tracebacks)."),
        _option("-q", "--quiet", is_flag=True, help="Only errors."),
        _option("--explain", is_flag=True,
                     help="Print the decisions, the exact environment and command, then run."),
        _option("--dry-run", is_flag=True,
                     help="Print the decisions and exit 0 without starting anything."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _configure_logging(verbose: int, quiet: bool) -> None:
    level = ERROR if quiet else (WARNING, INFO, DEBUG)[min(verbose, 2)]
    log.threshold = level
    if level >= WARNING:
        # Nothing under WARNING is emitted: leave the logging module unloaded.
        return
    import logging

    logger = logging.getLogger(LOGGER_NAME)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("ana-headless: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)


def _launch(argv: list[str], params: dict[str, Any], script: str | None = None) -> NoReturn:
    """Check the program (and script), then run it headless and exit with its status."""
    from .launcher import check_runnable, launch

    _configure_logging(params["verbose"], params["quiet"])
    options = Options(
        gl=params["gl"], server=params["server"], allow_virtualgl=params["allow_virtualgl"],
        force_virtualgl=params["force_virtualgl"], vgl_display=params["vgl_display"],
        mesa_dir=params["mesa_dir"], screen=params["screen"], timeout=params["timeout"])
    try:
        if not sys.platform.startswith("linux"):
            raise HeadlessError(f"ana-headless runs on Linux (X11) only, not on {sys.platform}")
        argv[0] = check_runnable(argv[0], python_script=False,
                                 path=os.environ.get("PATH", os.defpath))
        if script is not None:
            check_runnable(script, python_script=True, path="")
        status = launch(argv, options, explain=params["explain"], dry_run=params["dry_run"],
                        started=click.get_current_context().obj)
    except HeadlessError as error:
        _report(error, params["verbose"])
        sys.exit(error.exit_status)
    except KeyboardInterrupt:
        sys.exit(128 + signal.SIGINT)
    except Exception as error:
        # A bug of ours: still one line (the traceback behind -vv), and nothing left behind.
        _report(HeadlessError(f"internal error: {error!r} (run with -vv for the traceback)"),
                params["verbose"])
        sys.exit(HeadlessError.exit_status)
    sys.exit(status)


def _report(error: HeadlessError, verbose: int) -> None:
    click.echo(f"ana-headless: {error}", err=True)
    for line in error.details.splitlines():
        click.echo(f"ana-headless:   {line}", err=True)
    if verbose >= 2:
        log.exception("traceback")


@click.group(cls=ShebangGroup, epilog=EXAMPLES,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ana-headless")
def main() -> None:
    """Run Qt / OpenGL programs, Anatomist among them, without a screen.

    Each run gets a private virtual X server (Xvfb, or xpra) and a working OpenGL (VirtualGL
    on a GPU, a software Mesa, or the server's own GLX), checked by a probe before the program
    starts. Signals reach the program, its exit status is returned, and nothing is left behind.
    """


@main.command(cls=RunCommand, context_settings={"ignore_unknown_options": True,
                                               "allow_interspersed_args": False},
              epilog=EXAMPLES)
@_launcher_options
@click.option("-m", "module", metavar="MODULE", help="Run a module, like python -m.")
@_option("--python", "python", metavar="PATH", envvar="ANA_HEADLESS_PYTHON",
              help="The Python interpreter for the script (default: the one running "
                   "ana-headless).")
@click.argument("child_args", metavar="SCRIPT [ARGS]...", nargs=-1, type=click.UNPROCESSED)
def run(module: str | None, python: str | None, child_args: tuple[str, ...],
        **params: Any) -> None:
    """Run a Python SCRIPT (or -m MODULE) headless, in a fresh interpreter.

    Everything after SCRIPT or MODULE is the script's, untouched, even --help.
    """
    interpreter = python or sys.executable
    if module is not None:
        _launch([interpreter, "-m", module, *child_args], params)
    if not child_args:
        raise click.UsageError("Missing argument 'SCRIPT' (or -m MODULE).")
    _launch([interpreter, *child_args], params, script=child_args[0])


@main.command(name="exec", context_settings={"ignore_unknown_options": True,
                                             "allow_interspersed_args": False},
              epilog=EXAMPLES)
@_launcher_options
@click.argument("program", metavar="PROGRAM")
@click.argument("child_args", metavar="[ARGS]...", nargs=-1, type=click.UNPROCESSED)
def exec_(program: str, child_args: tuple[str, ...], **params: Any) -> None:
    """Run any PROGRAM headless (the anatomist binary, glxgears, a shell script...)."""
    _launch([program, *child_args], params)


@main.command(name="doctor")
@click.option("--json", "as_json", is_flag=True, help="One JSON object (schema: "
              "doctor-schema.json in the package).")
def doctor_(as_json: bool) -> None:
    """Show what is installed, probe every GL mode, and say what run would use.

    Exit status 0 when a working mode exists, else 1 (with the next step to take).
    """
    from .doctor import doctor

    sys.exit(doctor(os.environ, as_json))
