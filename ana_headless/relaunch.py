"""The command lines with which our own code starts the launcher in another process (a script
restarted under it, a Jupyter kernel, pytest-xdist and Dask workers), and a program that the
launcher runs for us (a Dask worker). Light on imports: the in-process API imports it."""

from __future__ import annotations

import os
import sys

# The directory this package was imported from.
_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _python_c(python: str, code: str, path: list[str]) -> list[str]:
    """`python -c CODE`, with `path` instead of the working directory first on sys.path."""
    # -m and -c put the working directory first on sys.path, where a module planted there (a
    # mmap.py or select.py beside a notebook or in a project's root) would shadow the standard
    # library. `python -P` leaves it out only from Python 3.11; this works in 3.10 as well. An
    # interpreter that already left it out (-P, PYTHONSAFEPATH) keeps its first entry.
    bootstrap = (
        f"import sys; sys.path[:1] = {path!r} + ([] if sys.path[:1] == [''] else sys.path[:1]); "
    )
    return [python, "-c", bootstrap + code]


def launcher_command(python: str = sys.executable) -> list[str]:
    """The start of a command line that runs the launcher in `python`, as the `ana-headless`
    console script does (ana_headless.entry.main); the launcher's arguments follow."""
    # This package's directory takes the working directory's place, as the directory of an
    # installed ana-headless script would; it also lets the launcher import this package if
    # this process found it through a sys.path it changed itself.
    return _python_c(python, "from ana_headless.entry import main; main()", [_PACKAGE_PARENT])


def module_command(module: str) -> list[str]:
    """The start of a command line that runs `module` in this Python as `python -m` does, but
    for the working directory on sys.path; the module's arguments follow."""
    return _python_c(
        sys.executable,
        f"import runpy; runpy.run_module({module!r}, run_name='__main__', alter_sys=True)",
        [],
    )
