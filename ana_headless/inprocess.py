"""The running interpreter: what it has loaded already, setting it up in place, or re-executing
it under the launcher. The only module that changes os.environ, and only in `apply_in_place`."""

from __future__ import annotations

import atexit
import os
import sys
from dataclasses import dataclass

from .environment import DISPLAY_VAR
from .errors import HeadlessError
from .glprobe import mapped_libraries
from .ownership import display_listeners
from .relaunch import launcher_command

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import NoReturn

# Set in the environment of a re-executed process: a second re-exec is then impossible.
REEXEC_VAR = "ANA_HEADLESS_REEXEC"

_GL_LIBRARY_PREFIXES = ("libGL.so", "libGLX", "libOpenGL", "libEGL", "libGLESv2")
_QT_BINDINGS = ("PyQt5", "PyQt6", "PySide2", "PySide6")


@dataclass(frozen=True)
class Loaded:
    """What would keep a display or a GL library from being chosen now, in this process."""

    gl_libraries: tuple[str, ...]
    qt_gui_modules: tuple[str, ...]
    # None, "QCore" or "QApp": the Qt application object that already exists, as upstream
    # Anatomist's headless module reports it.
    qt_application: str | None

    @property
    def too_late(self) -> bool:
        return bool(self.gl_libraries or self.qt_gui_modules or self.qt_application)

    def describe(self) -> str:
        reasons = [
            f"OpenGL library {os.path.basename(lib)} is loaded" for lib in self.gl_libraries[:2]
        ]
        reasons += [f"{module} is imported" for module in self.qt_gui_modules[:2]]
        if self.qt_application:
            reasons.append("a Qt application object exists")
        return ", ".join(reasons)


def _qt_application(modules: Mapping[str, object]) -> str | None:
    for binding in _QT_BINDINGS:
        core = modules.get(f"{binding}.QtCore")
        application = getattr(core, "QCoreApplication", None)
        instance = application.instance() if application is not None else None
        if instance is not None:
            return "QApp" if type(instance).__name__ == "QApplication" else "QCore"
    return None


def what_is_loaded() -> Loaded:
    modules = dict(sys.modules)
    qt_gui = tuple(
        name
        for name in modules
        if name.split(".")[0] in _QT_BINDINGS
        and name.split(".")[-1] in ("QtGui", "QtWidgets", "QtOpenGL")
    )
    return Loaded(tuple(mapped_libraries(_GL_LIBRARY_PREFIXES)), qt_gui, _qt_application(modules))


def already_headless(env: Mapping[str, str]) -> bool:
    """The launcher (or an earlier call) gave this process a live virtual display."""
    display = env.get(DISPLAY_VAR)
    if not display or env.get("DISPLAY") != display:
        return False
    return bool(display_listeners(display))


def why_reexec_cannot_work(orig_argv: Sequence[str], modules: Mapping[str, object]) -> str:
    """Empty when the command line can be run again from scratch; else the reason."""
    if hasattr(sys, "ps1") or sys.flags.interactive:
        return "this is an interactive interpreter"
    if "ipykernel" in modules:
        return "this is a notebook kernel"
    arguments = list(orig_argv[1:])
    while arguments and arguments[0].startswith("-") and arguments[0] not in ("-m", "-c", "-"):
        # Interpreter options such as -u, -X dev, -W error come before the program.
        arguments = arguments[2:] if arguments[0] in ("-X", "-W") else arguments[1:]
    if not arguments or arguments[0] == "-":
        return "the program was read from standard input"
    if arguments[0] == "-c":
        return "the program was given with python -c"
    return ""


def reexec_command(orig_argv: Sequence[str], launcher_options: Sequence[str]) -> list[str]:
    """The launcher, running the same interpreter with the same command line."""
    return [*launcher_command(), "exec", *launcher_options, sys.executable, *orig_argv[1:]]


def reexec(command: Sequence[str], env: Mapping[str, str]) -> NoReturn:
    """The one exec boundary: replace this process by the launcher."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(command[0], list(command), {**env, REEXEC_VAR: "1"})


def apply_in_place(env_patch: Mapping[str, str | None]) -> None:
    """Point this process at the virtual display: the one place we change os.environ."""
    for name, value in env_patch.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def keep_until_exit(stop: Callable[[], None]) -> None:
    """The server lives as long as the interpreter; after os._exit or SIGKILL, the watcher
    still cleans up. A forked copy of this process (multiprocessing, say) that exits leaves
    the server to us."""
    owner = os.getpid()

    def stop_if_ours() -> None:
        if os.getpid() == owner:
            stop()

    atexit.register(stop_if_ours)


def share_gl_library() -> None:
    """Put the mode's libGL.so.1 (the software Mesa that LD_LIBRARY_PATH puts first) in the
    process's global scope, once loaded or even if already loaded locally (the loader promotes
    it). A Python extension module loads its libraries in a scope of their own: code that looks
    GL functions up with dlsym(dlopen(NULL)), as BrainVISA's Anatomist does for its frame
    buffers, found nothing there in the mesa mode, and snapshotted the wrong part of the view
    at the wrong size. In the server mode GLVND makes its vendor library global itself; in
    the virtualgl mode the preloaded faker brings libGL there."""
    import ctypes

    ctypes.CDLL("libGL.so.1", mode=ctypes.RTLD_GLOBAL)


def loop_guard(env: Mapping[str, str]) -> None:
    if env.get(REEXEC_VAR):
        raise HeadlessError(
            "this process was already re-executed under ana-headless and "
            "still has no virtual display; run it with `ana-headless run` "
            "and -v to see why"
        )
