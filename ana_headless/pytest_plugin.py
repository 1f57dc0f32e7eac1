"""The pytest plugin: the tests run on a private virtual display, one per test process.

Installed as the `ana_headless` entry point, so pytest imports this module in every run; it does
nothing unless asked for: `pytest -p ana_headless`, `pytest --ana-headless`, or `ana_headless =
true` in the ini file. (Not `--headless`: many Selenium suites declare that option in their
conftest.py, and a second declaration would stop their pytest at start-up.)

Where the display comes from:
- A process that runs tests is made headless by ensure_headless() before the first conftest is
  imported, so that Qt imported at collection time finds the display. In the `server` GL mode
  that is done in place; a mode that needs loader variables at the process's start (VirtualGL's
  LD_PRELOAD, Mesa's LD_LIBRARY_PATH) re-executes pytest, with its command line, under the
  launcher, before anything is collected.
- Under pytest-xdist the controller runs no tests and gets no display; each worker is started
  by the launcher (the worker's interpreter is `ana-headless exec python`), so it has
  a display of its own, with the GL mode's loader variables from its start, and the launcher
  stops that server when the worker ends, whatever its end.
GL modes and the server's deadline are chosen by the variables the launcher reads
(ANA_HEADLESS_GL, ANA_HEADLESS_TIMEOUT, ANA_HEADLESS_SCREEN, ...).
"""

from __future__ import annotations

import os
import shlex
import sys
from typing import TYPE_CHECKING, Any

import pytest

from .relaunch import launcher_command

if TYPE_CHECKING:
    import argparse
    from collections.abc import Generator, Iterator, Sequence

    from execnet import XSpec

    from .api import HeadlessInfo
    from .errors import HeadlessError

PLUGIN_NAME = "ana_headless"
OPTION = "--ana-headless"
INI = "ana_headless"
MARKER = "requires_gl"
MARKER_MODES = ("virtualgl", "server", "mesa")

_ACTIVE = pytest.StashKey[bool]()
_INFO = pytest.StashKey["HeadlessInfo"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ana-headless", "a private virtual display for the tests")
    group.addoption(
        OPTION,
        action="store_true",
        dest="ana_headless",
        help="Run the tests on a private virtual X server with a working OpenGL "
        "(ana-headless): one per test process, one per xdist worker.",
    )
    parser.addini(
        INI,
        type="bool",
        default=False,
        help="Run the tests on a private virtual display, as --ana-headless does.",
    )


def _asked_for(config: pytest.Config, namespace: argparse.Namespace) -> bool:
    plugins = getattr(namespace, "plugins", None) or []
    return bool(
        getattr(namespace, "ana_headless", False) or PLUGIN_NAME in plugins or config.getini(INI)
    )


def _may_distribute(namespace: argparse.Namespace) -> bool:
    """Whether pytest-xdist may run the tests in workers rather than in this process (it
    decides later; pytest_configure knows for sure)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return False
    return bool(getattr(namespace, "numprocesses", None) or getattr(namespace, "tx", None))


def _distributes(config: pytest.Config) -> bool:
    """pytest-xdist's own test for running the tests in workers (the controller runs none)."""
    return (
        config.pluginmanager.hasplugin("xdist")
        and config.getoption("dist", "no") != "no"
        and bool(config.getoption("tx", None))
        and not config.getoption("collectonly")
    )


def _usage_error(error: HeadlessError) -> pytest.UsageError:
    lines = [f"ana-headless: no virtual display for the tests: {error}"]
    lines += [f"  {line}" for line in error.details.splitlines()]
    return pytest.UsageError("\n".join(lines))


def _set_up(config: pytest.Config) -> None:
    """Make this process headless (or re-execute it under the launcher, which does not
    return); a failure is one clear error that ends the run."""
    from .api import ensure_headless
    from .errors import HeadlessError

    try:
        config.stash[_INFO] = ensure_headless()
    except HeadlessError as error:
        raise _usage_error(error) from error


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> Generator[None, None, None]:
    # First of all: before pytest captures the output (a re-executed pytest must write to
    # the terminal, not to a capture file), and before any conftest imports Qt.
    namespace = early_config.known_args_namespace
    if _asked_for(early_config, namespace) and not (namespace.help or namespace.version):
        early_config.stash[_ACTIVE] = True
        if not _may_distribute(namespace):
            _set_up(early_config)
    return (yield)


@pytest.hookimpl(optionalhook=True)
def pytest_xvfb_disable(config: pytest.Config) -> bool:
    """pytest-xvfb's own hook (it is optional: pytest-xvfb may not be installed): it stands
    aside when the tests have ana-headless's display, rather than start a second one."""
    return bool(config.stash.get(_ACTIVE, False))


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(*modes, hardware=False): skip the test, saying why, unless the "
        "tests' GL mode is one of `modes` (virtualgl, server, mesa) and, with hardware=True, "
        "its renderer is a hardware one (ana-headless).",
    )
    if config.stash.get(_ACTIVE, False) and _INFO not in config.stash and not _distributes(config):
        # pytest-xdist was asked for, but runs the tests here after all (-n auto with --pdb,
        # --tx without --dist).
        _set_up(config)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_setupnodes(config: pytest.Config, specs: Sequence[XSpec]) -> None:
    """Each local worker starts under the launcher: a display of its own from its start."""
    if not config.stash.get(_ACTIVE, False):
        return
    for spec in specs:
        if spec.popen and not spec.via:
            python = shlex.split(spec.python) if spec.python else [sys.executable]
            spec.python = shlex.join([*launcher_command(), "exec", *python])


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> Generator[None, None, None]:
    try:
        return (yield)
    except Exception as error:
        # pytest-xdist starts its workers here; one whose launcher could not give it a
        # display ends at once, after saying why on stderr.
        if not (session.config.stash.get(_ACTIVE, False) and _distributes(session.config)):
            raise
        raise pytest.UsageError(
            "ana-headless: pytest-xdist could not start its workers, each of which runs "
            f"under ana-headless (its message, if any, is above): {error}"
        ) from error


def pytest_report_header(config: pytest.Config) -> list[str]:
    if not config.stash.get(_ACTIVE, False):
        return []
    if _INFO not in config.stash:
        return ["ana-headless: a private display for each xdist worker"]
    return [f"ana-headless: {_describe(config.stash[_INFO])}"]


def _describe(info: HeadlessInfo) -> str:
    return f"display {info.display} ({info.server}), GL mode {info.mode}: {info.renderer}"


def _unmet(info: HeadlessInfo, marker: pytest.Mark) -> str:
    """Why the test cannot run with this process's GL; empty if it can."""
    from .glprobe import is_software

    modes = marker.args
    unknown = [mode for mode in modes if mode not in MARKER_MODES]
    if unknown:
        pytest.fail(
            f"{MARKER}: unknown GL mode {unknown[0]!r} (use {', '.join(MARKER_MODES)})",
            pytrace=False,
        )
    if modes and info.mode not in modes:
        return (
            f"needs the GL mode {' or '.join(modes)}; these tests run with {info.mode} "
            f"({info.renderer}); ANA_HEADLESS_GL chooses the mode"
        )
    if marker.kwargs.get("hardware") and is_software(info.renderer):
        return (
            f"needs a hardware OpenGL renderer; the probe found only the software "
            f"{info.renderer} ({info.mode} mode)"
        )
    return ""


def pytest_runtest_setup(item: pytest.Item) -> None:
    marker = item.get_closest_marker(MARKER)
    if marker is not None and _INFO in item.config.stash:
        reason = _unmet(item.config.stash[_INFO], marker)
        if reason:
            pytest.skip(reason)


def _server_log(info: HeadlessInfo) -> str:
    """The tail of the virtual server's output, where the launcher that started it said it
    is (here, a re-executing launcher or a worker's)."""
    from .environment import SERVER_LOG_VAR
    from .messages import log_tail

    path = os.environ.get(SERVER_LOG_VAR)
    if info.server is None or not path:
        return "(not found)"
    return log_tail(path) or "(empty)"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item,
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and _INFO in item.config.stash:
        info = item.config.stash[_INFO]
        report.sections.append(("ana-headless display", _describe(info)))
        report.sections.append((f"ana-headless {info.server} log", _server_log(info)))
    return report


@pytest.fixture(scope="session")
def headless_info(pytestconfig: pytest.Config) -> HeadlessInfo:
    """What ana-headless set up for this test process (display, GL mode, renderer...)."""
    if _INFO not in pytestconfig.stash:
        pytest.fail(
            f"headless_info: the ana-headless plugin is not active (pytest -p "
            f"{PLUGIN_NAME}, {OPTION}, or {INI} = true in the ini file)",
            pytrace=False,
        )
    return pytestconfig.stash[_INFO]


@pytest.fixture
def headless_anatomist(headless_info: HeadlessInfo) -> Iterator[Any]:
    """The warm Anatomist of this test process (ana_headless.warmanatomist), one per xdist
    worker: pyanatomist's socket client of an `anatomist -b` program on the process's
    display, started by the first test that asks for it and reused by the next ones (started
    again if it has died, or if a test left in it objects or windows that it still holds)."""
    from .warmanatomist import worker_anatomist

    with worker_anatomist("-b").task() as client:
        yield client
