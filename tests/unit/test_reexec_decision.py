"""The in-process API's choice between setting up in place and re-executing under the launcher,
with the one exec boundary (os.execve) replaced, as pipx tests its exec_app."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import pytest

from ana_headless import api
from ana_headless.errors import HeadlessError
from ana_headless.inprocess import REEXEC_VAR, Loaded
from ana_headless.relaunch import launcher_command

QT_IMPORTED = Loaded(gl_libraries=(), qt_gui_modules=("PyQt5.QtGui",), qt_application=None)


class Executed(Exception):
    """The exec that did not happen, with what it was given."""

    def __init__(self, path: str, argv: Sequence[str], env: dict[str, str]) -> None:
        super().__init__(path)
        self.path, self.argv, self.env = path, list(argv), env


@pytest.fixture
def process(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A process that is not headless yet and has imported Qt, whose exec is recorded."""

    def execve(path: str, argv: Sequence[str], env: dict[str, str]) -> None:
        raise Executed(path, argv, env)

    monkeypatch.setattr(os, "execve", execve)
    monkeypatch.setattr(api, "_current", None)
    monkeypatch.setattr(api, "what_is_loaded", lambda: QT_IMPORTED)
    for name in list(os.environ):
        if name.startswith("ANA_HEADLESS_"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_qt_imported_too_early_restarts_the_same_command_under_the_launcher(
    process: pytest.MonkeyPatch,
) -> None:
    process.setattr(sys, "orig_argv", [sys.executable, "-u", "/app/script.py", "a b", "-v"])
    with pytest.raises(Executed) as executed:
        api.ensure_headless(force_virtualgl=True)
    argv = executed.value.argv
    assert executed.value.path == sys.executable == argv[0]
    assert argv[:3] == launcher_command()
    assert argv[3:] == [
        "exec",
        "--force-virtualgl",
        sys.executable,
        "-u",
        "/app/script.py",
        "a b",
        "-v",
    ]
    assert executed.value.env[REEXEC_VAR] == "1"


def test_options_from_the_environment_are_passed_on(process: pytest.MonkeyPatch) -> None:
    process.setattr(sys, "orig_argv", [sys.executable, "/app/script.py"])
    process.setenv("ANA_HEADLESS_SCREEN", "640x480x16")
    with pytest.raises(Executed) as executed:
        api.ensure_headless(allow_virtualgl=False)
    assert executed.value.argv[3:6] == ["exec", "--no-virtualgl", "--screen"]


@pytest.mark.parametrize(
    "orig_argv, why",
    [
        ([sys.executable, "-c", "pass"], "python -c"),
        ([sys.executable, "-"], "standard input"),
        ([sys.executable], "standard input"),
    ],
)
def test_a_program_that_cannot_be_run_again_is_an_error_not_an_exec(
    process: pytest.MonkeyPatch, orig_argv: list[str], why: str
) -> None:
    process.setattr(sys, "orig_argv", orig_argv)
    with pytest.raises(HeadlessError, match=why) as error:
        api.ensure_headless()
    assert error.value.exit_status == 125


def test_the_on_screen_fallback_goes_on_without_an_exec(process: pytest.MonkeyPatch) -> None:
    process.setattr(sys, "orig_argv", [sys.executable, "-c", "pass"])
    with pytest.warns(RuntimeWarning, match="not headless"):
        info = api.ensure_headless(fallback="onscreen")
    assert not info.headless and info.mode == "onscreen"


def test_a_restarted_process_is_never_restarted_again(process: pytest.MonkeyPatch) -> None:
    process.setattr(sys, "orig_argv", [sys.executable, "/app/script.py"])
    process.setenv(REEXEC_VAR, "1")
    with pytest.raises(HeadlessError, match="already re-executed"):
        api.ensure_headless()
