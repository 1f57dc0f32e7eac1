"""The command line: parse, call the launcher. Thin on purpose; its options come from the
table in options.py. Plain `run` and `exec` command lines do not come here: the entry point
reads them itself, without importing click (see quickparse.py)."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any, NoReturn

import click

from ._version import __version__
from .kernel import DEFAULT_NAME
from .options import (
    GL_MODES,
    MAX_TIMEOUT,
    SPECS,
    OptionSpec,
    Request,
    build_request,
    parse_seconds,
    parse_version,
)
from .screen import Screen

if TYPE_CHECKING:
    from collections.abc import Callable

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

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> Screen:
        if isinstance(value, Screen):
            return value
        try:
            return Screen.parse(str(value))
        except ValueError as error:
            self.fail(str(error), param, ctx)


class SecondsType(click.ParamType):  # type: ignore[type-arg]
    name = "SECONDS"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        seconds = value if isinstance(value, float) else parse_seconds(str(value))
        if seconds is None:
            self.fail(
                f"{value!r} is not a number of seconds greater than 0 and at most {MAX_TIMEOUT:g}.",
                param,
                ctx,
            )
        return seconds


class VersionType(click.ParamType):  # type: ignore[type-arg]
    name = "MAJOR.MINOR"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        version = parse_version(str(value))
        if version is None:
            self.fail(f"{value!r} is not an OpenGL version MAJOR.MINOR, such as 3.3.", param, ctx)
        return version


class ShebangGroup(click.Group):
    """`ana-headless SCRIPT ARGS...` (the shebang form) means `ana-headless run SCRIPT ARGS...`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


class RunCommand(click.Command):
    """`run -m MODULE ARGS...`: like python -m, everything after MODULE is the module's."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        takes_value = {
            name
            for param in self.params
            if isinstance(param, click.Option) and not (param.is_flag or param.count)
            for name in param.opts
        }
        index = 0
        while index < len(args):
            token = args[index]
            if token == "-m" and index + 1 < len(args):
                return super().parse_args(ctx, [*args[: index + 2], "--", *args[index + 2 :]])
            if token.startswith("-m") and not token.startswith("--") and len(token) > 2:
                return super().parse_args(
                    ctx, [*args[:index], "-m", token[2:], "--", *args[index + 1 :]]
                )
            if token == "--" or not token.startswith("-"):
                break
            index += 2 if token in takes_value else 1
        return super().parse_args(ctx, args)


_TYPES: dict[str, Callable[[OptionSpec], Any]] = {
    "choice": lambda spec: click.Choice(spec.choices),
    "text": lambda spec: str,
    "dir": lambda spec: click.Path(exists=True, file_okay=False),
    "screen": lambda spec: ScreenType(),
    "seconds": lambda spec: SecondsType(),
    "version": lambda spec: VersionType(),
}


def _click_option(spec: OptionSpec) -> Callable[..., Any]:
    """The click option for one entry of the options table (options.py)."""
    attributes: dict[str, Any] = {"help": spec.help}
    if spec.envvar:
        attributes.update(envvar=spec.envvar, show_envvar=True)
    if spec.kind == "switch":
        names: tuple[str, ...] = ("/".join(spec.flags), spec.dest)
        attributes["default"] = spec.default
    elif spec.kind == "flag":
        names = spec.flags
        attributes["is_flag"] = True
    elif spec.kind == "count":
        names = spec.flags
        attributes["count"] = True
    else:
        names = (*spec.flags, spec.dest)
        attributes.update(
            type=_TYPES[spec.kind](spec),
            metavar=spec.metavar,
            default=spec.default,
            show_default=spec.default is not None,
        )
    return click.option(*names, **attributes)


def _launcher_options(command_name: str) -> Callable[..., Any]:
    """The options of `run` or `exec` (SPEC §2), from the options table."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        for spec in reversed(SPECS):
            if command_name == "run" or not spec.run_only:
                command = _click_option(spec)(command)
        return command

    return decorate


def _execute(request: Request) -> NoReturn:
    from .launcher import execute

    sys.exit(execute(request))


@click.group(
    cls=ShebangGroup, epilog=EXAMPLES, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.version_option(__version__, prog_name="ana-headless")
def main() -> None:
    """Run Qt / OpenGL programs, Anatomist among them, without a screen.

    Each run gets a private virtual X server (Xvfb, or xpra) on a display claimed atomically,
    and a working OpenGL (VirtualGL on a GPU, a software Mesa, or the server's own GLX),
    checked by a probe whose result is cached per host. The program starts while the server
    initialises: its first connection waits until the server is ready, and a program that
    ends without using the display does not wait for it. Signals reach the program, its exit
    status is returned, and nothing is left behind.
    """


@main.command(
    cls=RunCommand,
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
    epilog=EXAMPLES,
)
@_launcher_options("run")
@click.option("-m", "module", metavar="MODULE", help="Run a module, like python -m.")
@click.argument("child_args", metavar="SCRIPT [ARGS]...", nargs=-1, type=click.UNPROCESSED)
def run(module: str | None, child_args: tuple[str, ...], **values: Any) -> None:
    """Run a Python SCRIPT (or -m MODULE) headless, in a fresh interpreter.

    Everything after SCRIPT or MODULE is the script's, untouched, even --help.
    """
    if module is None and not child_args:
        raise click.UsageError("Missing argument 'SCRIPT' (or -m MODULE).")
    _execute(build_request("run", values, child_args, module))


@main.command(
    name="exec",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
    epilog=EXAMPLES,
)
@_launcher_options("exec")
@click.argument("program", metavar="PROGRAM")
@click.argument("child_args", metavar="[ARGS]...", nargs=-1, type=click.UNPROCESSED)
def exec_(program: str, child_args: tuple[str, ...], **values: Any) -> None:
    """Run any PROGRAM headless (the anatomist binary, glxgears, a shell script...)."""
    _execute(build_request("exec", values, (program, *child_args)))


@main.command(name="doctor")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="One JSON object (schema: doctor-schema.json in the package).",
)
def doctor_(as_json: bool) -> None:
    """Show what is installed, probe every GL mode, and say what run would use.

    Exit status 0 when a working mode exists, else 1 (with the next step to take).
    """
    from .doctor import doctor

    sys.exit(doctor(os.environ, as_json))


# ---- Jupyter kernels (kernel.py) ----


@main.group(name="kernel")
def kernel_() -> None:
    """Jupyter kernels that run under ana-headless: every GL mode in a notebook.

    The kernel process starts with its own virtual display and OpenGL, as `exec` gives them;
    ensure_headless() and HeadlessAnatomist() in a notebook then only report.
    """


def _kernel_call(action: Callable[[], str]) -> None:
    """Run a kernel action; print what it says, or one line on stderr and its status."""
    from .errors import HeadlessError, error_lines

    try:
        said = action()
    except HeadlessError as error:
        click.echo(error_lines(error), err=True)
        sys.exit(error.exit_status)
    if said:
        click.echo(said)


@kernel_.command(name="install")
@click.option(
    "--name",
    default=DEFAULT_NAME,
    show_default=True,
    help="The kernel's name: letters, digits, '.', '_' and '-', beginning with a letter or "
    "a digit.",
)
@click.option(
    "--display-name",
    metavar="TEXT",
    help="The name notebooks show (default: Python 3 (ana-headless[, MODE])).",
)
@click.option(
    "--gl",
    type=click.Choice(GL_MODES),
    help="The kernel's GL mode (default: ANA_HEADLESS_GL when the kernel starts, else auto).",
)
@click.option("--user", is_flag=True, help="Install for this user only.")
@click.option(
    "--sys-prefix",
    is_flag=True,
    help="Install into this Python's prefix (a virtualenv or conda environment).",
)
@click.option(
    "--prefix",
    metavar="DIR",
    type=click.Path(file_okay=False),
    help="Install under DIR/share/jupyter/kernels.",
)
def kernel_install(
    *,
    name: str,
    display_name: str | None,
    gl: str | None,
    user: bool,
    sys_prefix: bool,
    prefix: str | None,
) -> None:
    """Install a kernelspec whose kernel runs under ana-headless (system-wide by default,
    as `jupyter kernelspec install`)."""
    from . import kernel

    if user + sys_prefix + (prefix is not None) > 1:
        raise click.UsageError("--user, --sys-prefix and --prefix exclude each other.")
    where = sys.prefix if sys_prefix else prefix

    def install() -> str:
        place = kernel.install(name, gl=gl, display_name=display_name, user=user, prefix=where)
        return f"installed kernel {name!r} in {place}"

    _kernel_call(install)


@kernel_.command(name="list")
def kernel_list() -> None:
    """List the kernels ana-headless installed: name, GL mode, directory."""
    from . import kernel

    _kernel_call(lambda: "\n".join(f"{k.name}\t{k.gl}\t{k.path}" for k in kernel.installed()))


@kernel_.command(name="remove")
@click.argument("name")
def kernel_remove(name: str) -> None:
    """Remove the kernel NAME, if ana-headless installed it."""
    from . import kernel

    _kernel_call(lambda: f"removed kernel {name!r} from {kernel.remove(name)}")
