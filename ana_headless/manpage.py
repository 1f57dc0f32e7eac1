"""The man page, generated from the click commands: the CLI is its one source of truth.

`python -m ana_headless.manpage > man/ana-headless.1` writes it; a test checks that the
committed page is what this prints.
"""

from __future__ import annotations

import click

from ._version import __version__
from .cli import EXAMPLES, main
from .environment import (
    DISPLAY_VAR,
    GL_VERSION_VAR,
    MODE_VAR,
    ORIGINAL_DISPLAY_VAR,
    RENDERER_VAR,
    SERVER_KIND_VAR,
    SERVER_LOG_VAR,
)
from .errors import EXIT_STATUSES
from .probecache import CACHE_FILE, CACHE_VAR

SYNOPSIS = (
    "run [OPTIONS] SCRIPT [ARGS]...",
    "run [OPTIONS] -m MODULE [ARGS]...",
    "exec [OPTIONS] PROGRAM [ARGS]...",
    "SCRIPT [ARGS]...",
    "doctor [--json]",
    "kernel install [--name NAME] [--gl MODE] [--user | --sys-prefix | --prefix DIR]",
    "kernel list",
    "kernel remove NAME",
    "--version | --help",
)

CHILD_ENVIRONMENT = (
    ("DISPLAY", "the private virtual X server started for this run"),
    ("XAUTHORITY", "a private cookie file for that server"),
    (DISPLAY_VAR, "the same display, for nested calls such as HeadlessAnatomist()"),
    (MODE_VAR, "the GL mode chosen: virtualgl, server or mesa"),
    (RENDERER_VAR, "the renderer the GL probe saw"),
    (GL_VERSION_VAR, 'its OpenGL version and profile, such as "4.5 compatibility"'),
    (SERVER_KIND_VAR, "the virtual X server: xvfb, weston or xpra"),
    (SERVER_LOG_VAR, "the file that holds the server's output"),
    (ORIGINAL_DISPLAY_VAR, "the DISPLAY ana-headless was started with, if any"),
    ("XDG_RUNTIME_DIR", "a private directory (mode 0700, removed afterwards) when it was unset"),
    (
        "PYTHONPATH",
        "the inherited one after a directory whose sitecustomize.py gives pyanatomist's socket "
        "client a port of its own and a connection as soon as its program listens (it then "
        "runs the sitecustomize it hides)",
    ),
)

PYTEST_PLUGIN = """\
Installing ana-headless registers a pytest plugin that stays inactive unless asked for with
pytest -p ana_headless, pytest --ana-headless, or ana_headless = true in the ini file.
Then every process that runs tests gets its own virtual display, before the first conftest is
imported: pytest -p ana_headless -n 4 gives each of pytest-xdist's 4 workers a display of its
own (each worker is started by the launcher); the controller, which runs no tests, gets none.
The GL mode, screen and deadline come from the variables the launcher reads (ANA_HEADLESS_GL,
ANA_HEADLESS_SCREEN, ANA_HEADLESS_TIMEOUT...); a mode that needs loader variables from the
start (virtualgl, mesa) re-executes pytest under the launcher with the same command line.

The fixture headless_info gives what was set up; the marker requires_gl(*modes,
hardware=False) skips a test, saying why, when the tests' GL mode is not one of modes or its
renderer is a software one. A failing test's report shows the display, the GL renderer and the
tail of the virtual server's log. A server that is not ready within the deadline ends the run
with one error. An installed pytest-xvfb stands aside (through its pytest_xvfb_disable hook),
and pytest-qt's qtbot works on the display. The fixture headless_anatomist is the socket
client of an Anatomist program of the test process (one per xdist worker), started by the
first test that asks for it and reused by the next ones.
"""

SEE_ALSO = "Xvfb(1), xvfb-run(1), vglrun(1), xpra(1), glxinfo(1), pytest(1), jupyter(1)"


def _escape(text: str) -> str:
    text = text.replace("\\", "\\e").replace("-", "\\-")
    # A line starting with . or ' would be read as a roff request.
    return "\n".join(
        "\\&" + line if line.startswith((".", "'")) else line for line in text.splitlines()
    )


def _paragraphs(text: str) -> str:
    blocks = [" ".join(block.split()) for block in text.strip().split("\n\n")]
    return "\n.PP\n".join(_escape(block) for block in blocks if block)


def _option_lines(command: click.Command, ctx: click.Context) -> list[str]:
    lines: list[str] = []
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None or not isinstance(param, click.Option):
            continue
        names, help_text = record
        lines += [".TP", f"\\fB{_escape(names)}\\fR", _escape(help_text)]
    return lines


def render() -> str:
    ctx = click.Context(main, info_name="ana-headless")
    out = [
        f'.TH ANA-HEADLESS 1 "" "ana-headless {__version__}" "User Commands"',
        ".SH NAME",
        "ana\\-headless \\- run Qt / OpenGL programs, Anatomist among them, without a screen",
        ".SH SYNOPSIS",
    ]
    for form in SYNOPSIS:
        out += [".br", f"\\fBana\\-headless\\fR {_escape(form)}"]
    out += [".SH DESCRIPTION", _paragraphs(main.help or "")]
    run = main.commands["run"]
    out += [
        ".SH OPTIONS",
        "\\fBrun\\fR and \\fBexec\\fR take these options, before SCRIPT, MODULE or PROGRAM "
        "(\\fB\\-m\\fR and \\fB\\-\\-python\\fR are for \\fBrun\\fR only). "
        "Everything after SCRIPT, MODULE or PROGRAM is the child's, untouched.",
        *_option_lines(run, click.Context(run, info_name="run", parent=ctx)),
    ]
    doctor = main.commands["doctor"]
    out += [
        ".SS ana\\-headless doctor",
        _paragraphs(doctor.help or ""),
        *_option_lines(doctor, click.Context(doctor, info_name="doctor", parent=ctx)),
    ]
    kernel = main.commands["kernel"]
    assert isinstance(kernel, click.Group)
    kernel_ctx = click.Context(kernel, info_name="kernel", parent=ctx)
    out += [".SS ana\\-headless kernel", _paragraphs(kernel.help or "")]
    for name, command in kernel.commands.items():
        out += [
            f".SS ana\\-headless kernel {name}",
            _paragraphs(command.help or ""),
            *_option_lines(command, click.Context(command, info_name=name, parent=kernel_ctx)),
        ]
    out += [".SH PYTEST PLUGIN", _paragraphs(PYTEST_PLUGIN)]
    out += [
        ".SH ENVIRONMENT",
        "Each option of \\fBrun\\fR and \\fBexec\\fR is also read from the variable named "
        "in its description above.",
        ".TP",
        f"\\fB{CACHE_VAR}\\fR",
        "Where GL probe results are cached (default "
        f"~/.cache/ana\\-headless/{_escape(CACHE_FILE)}, in Python's marshal format); "
        "0 or /dev/null turns the cache off. A result is reused only while the candidate, "
        "the loader variables, the screen depth and the files involved are unchanged. The "
        "file is used only as a regular file of the user's, in a directory nobody else can "
        "write to.",
        ".PP",
        "The child gets:",
    ]
    for variable, meaning in CHILD_ENVIRONMENT:
        out += [".TP", f"\\fB{_escape(variable)}\\fR", _escape(meaning)]
    out += [".SH EXIT STATUS"]
    for status, meaning in EXIT_STATUSES:
        out += [".TP", f"\\fB{_escape(status)}\\fR", _escape(meaning)]
    examples = EXAMPLES.replace("\b\n", "").split("\n", 2)[2]
    out += [
        ".SH EXAMPLES",
        ".nf",
        _escape(examples.rstrip()),
        ".fi",
        ".SH SEE ALSO",
        _escape(SEE_ALSO),
    ]
    return "\n".join(line for line in out if line) + "\n"


if __name__ == "__main__":
    print(render(), end="")
