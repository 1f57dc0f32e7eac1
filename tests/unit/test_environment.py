"""The child's environment as data: patches applied to copies, the display's own."""

from __future__ import annotations

from ana_headless.environment import PYTHON_HOOK_DIR, apply_patch, display_patch, python_path


def test_apply_patch_copies_and_removes() -> None:
    base = {"A": "1", "B": "2"}
    assert apply_patch(base, {"A": None, "C": "3"}) == {"B": "2", "C": "3"}
    assert base == {"A": "1", "B": "2"}


def test_display_patch() -> None:
    patch = display_patch(
        ":5",
        "/x/auth",
        None,
        {"QT_QPA_PLATFORM": "offscreen"},
        server_kind="xvfb",
        server_log="/x/xvfb.log",
    )
    assert patch["DISPLAY"] == patch["ANA_HEADLESS_DISPLAY"] == ":5"
    assert patch["ANA_HEADLESS_SERVER_KIND"] == "xvfb"
    assert patch["ANA_HEADLESS_SERVER_LOG"] == "/x/xvfb.log"
    assert patch["WAYLAND_DISPLAY"] is None and patch["QT_QPA_PLATFORM"] is None
    assert "XDG_RUNTIME_DIR" not in patch
    xcb = display_patch(
        ":5", "a", "/r", {"QT_QPA_PLATFORM": "xcb"}, server_kind="xvfb", server_log="l"
    )
    assert "QT_QPA_PLATFORM" not in xcb


def test_python_path_puts_the_hook_first_once() -> None:
    assert python_path(None) == python_path("") == PYTHON_HOOK_DIR
    assert python_path("/a:/b") == f"{PYTHON_HOOK_DIR}:/a:/b"
    assert python_path(python_path("/a")) == python_path("/a")
    patch = display_patch(":5", "a", None, {"PYTHONPATH": "/a"}, server_kind="x", server_log="l")
    assert patch["PYTHONPATH"] == f"{PYTHON_HOOK_DIR}:/a"
