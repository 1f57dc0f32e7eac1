"""The child's environment, built as data from a copy: these functions never touch os.environ."""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    EnvPatch = Mapping[str, "str | None"]

# The variables a nested call (HeadlessAnatomist() inside the script) reads to know it is
# already headless.
DISPLAY_VAR = "ANA_HEADLESS_DISPLAY"
MODE_VAR = "ANA_HEADLESS_MODE"
RENDERER_VAR = "ANA_HEADLESS_RENDERER"
# The GL version and profile the probe saw ("4.5 compatibility").
GL_VERSION_VAR = "ANA_HEADLESS_GL_VERSION"
# The DISPLAY the user had, for VirtualGL's 3D server and for headless_info.
ORIGINAL_DISPLAY_VAR = "ANA_HEADLESS_ORIGINAL_DISPLAY"
# Which server serves the display (xvfb, xpra), and where its output goes: what the front ends
# (headless_info, the pytest plugin) would otherwise have to reconstruct. Not
# ANA_HEADLESS_SERVER, which is --server's.
SERVER_KIND_VAR = "ANA_HEADLESS_SERVER_KIND"
SERVER_LOG_VAR = "ANA_HEADLESS_SERVER_LOG"
# Put first on the PYTHONPATH of every child: Python children run its sitecustomize.py at their
# start, which gives pyanatomist's socket client a port of its own (anatomistsocket.py).
PYTHON_HOOK_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pythonhook")


def apply_patch(base: Mapping[str, str], patch: EnvPatch) -> dict[str, str]:
    """A copy of `base` with `patch` applied: a value sets a variable, None removes it."""
    result = dict(base)
    for name, value in patch.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = value
    return result


def patch_between(base: Mapping[str, str], env: Mapping[str, str]) -> dict[str, str | None]:
    """The patch that turns `base` into `env`: apply_patch(base, patch_between(base, env))."""
    patch: dict[str, str | None] = {
        name: value for name, value in env.items() if base.get(name) != value
    }
    patch.update((name, None) for name in base if name not in env)
    return patch


def display_patch(
    display: str,
    xauthority: str,
    runtime_dir: str | None,
    base: Mapping[str, str],
    *,
    server_kind: str,
    server_log: str,
) -> dict[str, str | None]:
    """What every child of a virtual display gets (SPEC §3), before its GL mode's own patch."""
    patch: dict[str, str | None] = {
        "DISPLAY": display,
        "XAUTHORITY": xauthority,
        DISPLAY_VAR: display,
        ORIGINAL_DISPLAY_VAR: base.get("DISPLAY"),
        SERVER_KIND_VAR: server_kind,
        SERVER_LOG_VAR: server_log,
        # Qt and GTK prefer Wayland when they see it: the child would open the user's session.
        "WAYLAND_DISPLAY": None,
        "PYTHONPATH": python_path(base.get("PYTHONPATH")),
    }
    if base.get("QT_QPA_PLATFORM", "xcb") != "xcb":
        # offscreen, wayland or eglfs would bypass the X server (or abort without a screen).
        patch["QT_QPA_PLATFORM"] = None
    if runtime_dir is not None:
        patch["XDG_RUNTIME_DIR"] = runtime_dir
    return patch


def python_path(inherited: str | None) -> str:
    """PYTHONPATH with PYTHON_HOOK_DIR first (once: a nested launcher's child inherits it)."""
    if not inherited:
        return PYTHON_HOOK_DIR
    if PYTHON_HOOK_DIR in inherited.split(os.pathsep):
        return inherited
    return f"{PYTHON_HOOK_DIR}{os.pathsep}{inherited}"


def gl_patch(mode: str, renderer: str, gl_version: str) -> dict[str, str | None]:
    return {MODE_VAR: mode, RENDERER_VAR: renderer, GL_VERSION_VAR: gl_version or None}


def home_directory(env: Mapping[str, str]) -> str | None:
    """$HOME, or the user's home in the password database when HOME is unset (cron, services);
    None when there is no usable one ("/" would put our files at the root of the system)."""
    home = env.get("HOME")
    if not (home and os.path.isabs(home)):
        import pwd

        try:
            home = pwd.getpwuid(os.getuid()).pw_dir
        except KeyError:
            return None
    return home if home and os.path.isabs(home) and home != "/" else None
