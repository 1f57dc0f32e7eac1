"""The click command line: screen values, exit statuses, the man page, `run -m`."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from ana_headless import manpage
from ana_headless.cli import ScreenType, main
from ana_headless.launcher import exit_status
from ana_headless.options import Request
from ana_headless.screen import Screen

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "text, screen", [("1280x1024x24", Screen(1280, 1024, 24)), ("1x1x8", Screen(1, 1, 8))]
)
def test_screen_parses(text: str, screen: Screen) -> None:
    assert ScreenType().convert(text, None, None) == screen


@pytest.mark.parametrize("text", ["0x0x24", "abc", "800x600", "800x600x7", "40000x10x24"])
def test_screen_rejects(text: str) -> None:
    with pytest.raises(click.BadParameter):
        ScreenType().convert(text, None, None)


def test_exit_status() -> None:
    assert exit_status(0) == 0 and exit_status(3) == 3 and exit_status(-9) == 137


def test_man_page_is_generated_from_the_cli() -> None:
    committed = (ROOT / "man" / "ana-headless.1").read_text()
    assert committed == manpage.render(), "run `make man` after changing the CLI"
    for option in ("gl", "screen", "timeout", "explain", "dry\\-run", "no\\-virtualgl"):
        assert f"\\-\\-{option}" in committed


def test_run_dash_m_keeps_everything_after_the_module(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Request] = []

    def capture(request: Request) -> None:
        seen.append(request)
        raise SystemExit(0)

    monkeypatch.setattr("ana_headless.cli._execute", capture)
    result = CliRunner().invoke(main, ["run", "--screen", "10x10x24", "-m", "mod", "--help", "-v"])
    assert result.exit_code == 0, result.output
    assert seen[-1].argv[1:] == ["-m", "mod", "--help", "-v"]
    CliRunner().invoke(main, ["run", "-mmod", "--screen", "x"])
    assert seen[-1].argv[1:] == ["-m", "mod", "--screen", "x"]
    CliRunner().invoke(main, ["./script.py", "--gl", "z"])
    assert seen[-1].argv[1:] == ["./script.py", "--gl", "z"]
