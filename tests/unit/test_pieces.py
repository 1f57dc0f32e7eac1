"""Small pure pieces: environment patches, the cookie format, parsing, statuses, the man page."""

from __future__ import annotations

import struct
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from ana_headless import manpage
from ana_headless.cli import ScreenType, main
from ana_headless.environment import apply_patch, display_patch
from ana_headless.launcher import exit_status
from ana_headless.options import Request, Screen
from ana_headless.xauth import write_auth_file

ROOT = Path(__file__).resolve().parents[2]


def test_apply_patch_copies_and_removes() -> None:
    base = {"A": "1", "B": "2"}
    assert apply_patch(base, {"A": None, "C": "3"}) == {"B": "2", "C": "3"}
    assert base == {"A": "1", "B": "2"}


def test_display_patch() -> None:
    patch = display_patch(":5", "/x/auth", None, {"QT_QPA_PLATFORM": "offscreen"})
    assert patch["DISPLAY"] == patch["ANA_HEADLESS_DISPLAY"] == ":5"
    assert patch["WAYLAND_DISPLAY"] is None and patch["QT_QPA_PLATFORM"] is None
    assert "XDG_RUNTIME_DIR" not in patch
    assert "QT_QPA_PLATFORM" not in display_patch(":5", "a", "/r", {"QT_QPA_PLATFORM": "xcb"})


def test_auth_file_is_our_wildcard_mit_cookie_then_the_inherited(tmp_path: Path) -> None:
    path = tmp_path / "auth"
    write_auth_file(str(path), b"C" * 16, "7", inherited=b"USER")
    data = path.read_bytes()
    assert data.endswith(b"USER")
    data = data[:-4]
    assert path.stat().st_mode & 0o777 == 0o600
    family, = struct.unpack(">H", data[:2])
    fields, offset = [], 2
    while offset < len(data):
        length, = struct.unpack(">H", data[offset:offset + 2])
        fields.append(data[offset + 2:offset + 2 + length])
        offset += 2 + length
    assert family == 0xFFFF
    assert fields == [b"", b"7", b"MIT-MAGIC-COOKIE-1", b"C" * 16]


@pytest.mark.parametrize("text, screen", [("1280x1024x24", Screen(1280, 1024, 24)),
                                          ("1x1x8", Screen(1, 1, 8))])
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
    result = CliRunner().invoke(main, ["run", "--screen", "10x10x24", "-m", "mod", "--help",
                                       "-v"])
    assert result.exit_code == 0, result.output
    assert seen[-1].argv[1:] == ["-m", "mod", "--help", "-v"]
    CliRunner().invoke(main, ["run", "-mmod", "--screen", "x"])
    assert seen[-1].argv[1:] == ["-m", "mod", "--screen", "x"]
    CliRunner().invoke(main, ["./script.py", "--gl", "z"])
    assert seen[-1].argv[1:] == ["./script.py", "--gl", "z"]
