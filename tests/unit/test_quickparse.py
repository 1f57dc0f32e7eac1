"""The click-free reading of plain command lines: it must agree with click wherever it
answers, and leave everything else to click."""

from __future__ import annotations

import os
import sys

import pytest
from click.testing import CliRunner

from ana_headless.cli import main
from ana_headless.options import SPECS, Options, Request
from ana_headless.quickparse import quick_parse
from ana_headless.screen import Screen

# The variables the options read: unset unless a case sets them.
OPTION_VARIABLES = {spec.envvar for spec in SPECS if spec.envvar}


def click_request(
    args: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Request | None:
    """What click makes of the command line (None when it refuses it)."""
    seen: list[Request] = []

    def capture(request: Request) -> None:
        seen.append(request)
        raise SystemExit(0)

    monkeypatch.setattr("ana_headless.cli._execute", capture)
    environment: dict[str, str | None] = dict.fromkeys(OPTION_VARIABLES)
    environment.update(env)
    result = CliRunner(env=environment).invoke(main, args)
    return seen[0] if result.exit_code == 0 and seen else None


def quick_request(args: list[str], env: dict[str, str]) -> Request | None:
    environment = {k: v for k, v in os.environ.items() if k not in OPTION_VARIABLES}
    return quick_parse(args, {**environment, **env})


PLAIN = [
    (["run", "s.py"], {}),
    (["run", "-v", "s.py", "a", "--screen", "1x1x8"], {}),
    (["run", "-vv", "-v", "--gl", "server", "s.py"], {}),
    (["run", "--gl=mesa", "--screen=800x600x16", "--timeout", "2.5", "s.py"], {}),
    (["run", "-m", "pkg.mod", "--screen", "x"], {}),
    (["run", "-q", "-mpkg.mod", "a"], {}),
    (["run", "--", "-weird.py", "b"], {}),
    (["run", "-", "s.py"], {}),
    (["exec", "-q", "--explain", "prog", "-v"], {}),
    (["exec", "--no-virtualgl", "--force-virtualgl", "prog"], {}),
    (["run", "--no-virtualgl", "--virtualgl", "s.py"], {}),
    (["s.py", "x", "--gl", "z"], {}),
    (["--screen", "640x480x24", "s.py"], {}),
    (["run", "--python", "/usr/bin/python3", "s.py"], {}),
    (["run", "--vgl-display", "egl", "--server", "xvfb", "--dry-run", "s.py"], {}),
    (["run", "--mesa-dir", "/", "s.py"], {}),
    (["run", "--timeout", "1", "--timeout", "7", "s.py"], {}),
    (["run", "--vgl-display", "-x", "s.py"], {}),
    (["run", "--vgl-display=a=b", "s.py"], {}),
    (
        ["run", "s.py"],
        {
            "ANA_HEADLESS_GL": "server",
            "ANA_HEADLESS_SCREEN": "320x200x24",
            "ANA_HEADLESS_TIMEOUT": "3",
            "ANA_HEADLESS_SERVER": "xpra",
            "VGL_DISPLAY": ":3",
            "ANA_HEADLESS_PYTHON": "/opt/python",
        },
    ),
    (["run", "--gl", "auto", "s.py"], {"ANA_HEADLESS_GL": "mesa"}),
    (["exec", "prog"], {"ANA_HEADLESS_ALLOW_VIRTUALGL": "0"}),
    (["exec", "prog"], {"ANA_HEADLESS_ALLOW_VIRTUALGL": "No"}),
    (["exec", "prog"], {"ANA_HEADLESS_ALLOW_VIRTUALGL": "TRUE"}),
    (["exec", "prog"], {"ANA_HEADLESS_ALLOW_VIRTUALGL": ""}),
    (["exec", "--virtualgl", "prog"], {"ANA_HEADLESS_ALLOW_VIRTUALGL": "off"}),
]


@pytest.mark.parametrize("args, env", PLAIN)
def test_plain_command_lines_are_read_as_click_reads_them(
    args: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    quick = quick_request(args, env)
    assert quick is not None, "a plain command line must not need click"
    assert quick == click_request(args, env, monkeypatch)


@pytest.mark.parametrize(
    "args, env",
    [
        ([], {}),
        (["--help"], {}),
        (["-h"], {}),
        (["--version"], {}),
        (["doctor"], {}),
        (["kernel", "list"], {}),
        (["run", "--help"], {}),
        (["run"], {}),
        (["exec"], {}),
        (["run", "-m"], {}),
        (["run", "-vq", "s.py"], {}),
        (["run", "--screen", "bad", "s.py"], {}),
        (["run", "--gl", "opengl", "s.py"], {}),
        (["run", "--timeout", "-1", "s.py"], {}),
        (["run", "--timeout", "inf", "s.py"], {}),
        (["run", "--frobnicate", "s.py"], {}),
        (["run", "--explain=yes", "s.py"], {}),
        (["exec", "--python", "x", "prog"], {}),
        (["run", "--mesa-dir", "/no/such/dir", "s.py"], {}),
        (["run", "s.py"], {"ANA_HEADLESS_ALLOW_VIRTUALGL": "maybe"}),
        (["run", "s.py"], {"ANA_HEADLESS_SCREEN": "big"}),
    ],
)
def test_anything_else_is_left_to_click(args: list[str], env: dict[str, str]) -> None:
    assert quick_request(args, env) is None


def test_quick_parse_builds_the_child_command_line() -> None:
    request = quick_request(["run", "-v", "--screen", "64x48x16", "s.py", "--screen"], {})
    assert request == Request(
        [sys.executable, "s.py", "--screen"],
        Options(screen=Screen(64, 48, 16)),
        script="s.py",
        verbose=1,
    )
