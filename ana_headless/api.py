"""The Python API: `ensure_headless()` for any Qt / OpenGL script, `HeadlessAnatomist()` for
Anatomist (SPEC §6)."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import logging
import os
import sys
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import facts as host_facts
from .environment import (
    GL_VERSION_VAR,
    MODE_VAR,
    ORIGINAL_DISPLAY_VAR,
    RENDERER_VAR,
    SERVER_KIND_VAR,
    patch_between,
)
from .errors import HeadlessError, UsageError
from .glchoice import cached_choice, choose_gl
from .inprocess import (
    REEXEC_VAR,
    already_headless,
    apply_in_place,
    keep_until_exit,
    loop_guard,
    reexec,
    reexec_command,
    share_gl_library,
    what_is_loaded,
    why_reexec_cannot_work,
)
from .options import Options, launcher_arguments, options_from_environment
from .plan import make_plan
from .pythonhook.sitecustomize import install as install_import_hook
from .session import Session

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .plan import Candidate

log = logging.getLogger("ana_headless")

IMPLEMENTATIONS = ("direct", "threaded", "socket", "notebook", "headless")
FALLBACKS = ("error", "onscreen")


@dataclass(frozen=True)
class HeadlessInfo:
    """What was set up; the fields of upstream Anatomist's headless result, and more
    (`as_dict()` gives them all)."""

    headless: bool
    display: str | None
    original_display: str | None
    # xvfb, weston, xpra, or None when not headless.
    server: str | None
    # virtualgl, server, mesa, or onscreen.
    mode: str
    renderer: str
    # The OpenGL version and profile the probe saw ("4.5 compatibility"); empty on screen.
    gl_version: str
    virtualgl: bool
    mesa: bool
    # Whether this process was re-executed under the launcher.
    reexec: bool
    # None, "QCore" or "QApp": the Qt application that already existed.
    qtapp: str | None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_current: HeadlessInfo | None = None


def _options(env: Mapping[str, str], allow_virtualgl: bool, force_virtualgl: bool) -> Options:
    """The launcher's options, from the same environment variables its CLI reads."""
    options = options_from_environment(env)
    return options.replace(
        allow_virtualgl=allow_virtualgl and options.allow_virtualgl, force_virtualgl=force_virtualgl
    )


def _info_from_environment(env: Mapping[str, str], qtapp: str | None) -> HeadlessInfo:
    mode = env.get(MODE_VAR, "server")
    display = env["DISPLAY"]
    return HeadlessInfo(
        headless=True,
        display=display,
        original_display=env.get(ORIGINAL_DISPLAY_VAR),
        server=env.get(SERVER_KIND_VAR),
        mode=mode,
        renderer=env.get(RENDERER_VAR, ""),
        gl_version=env.get(GL_VERSION_VAR, ""),
        virtualgl=mode == "virtualgl",
        mesa=mode == "mesa",
        reexec=bool(env.get(REEXEC_VAR)),
        qtapp=qtapp,
    )


def _onscreen(reason: str, qtapp: str | None) -> HeadlessInfo:
    warnings.warn(
        f"ana-headless: not headless ({reason}); going on with the on-screen "
        f"display {os.environ.get('DISPLAY')!r}, as fallback='onscreen' asks",
        RuntimeWarning,
        stacklevel=3,
    )
    display = os.environ.get("DISPLAY")
    return HeadlessInfo(
        headless=False,
        display=display,
        original_display=display,
        server=None,
        mode="onscreen",
        renderer="",
        gl_version="",
        virtualgl=False,
        mesa=False,
        reexec=False,
        qtapp=qtapp,
    )


def _restart_under_launcher(
    reason: str, flags: list[str], fallback: str, qtapp: str | None
) -> HeadlessInfo:
    """Re-execute the whole program under the launcher, or say why that cannot be done."""
    impossible = why_reexec_cannot_work(sys.orig_argv, sys.modules)
    if impossible:
        if fallback == "onscreen":
            return _onscreen(f"{reason}, and {impossible}", qtapp)
        raise HeadlessError(
            f"cannot go headless in this process: {reason}, and it cannot be restarted "
            f"because {impossible}. Run the script with `ana-headless run SCRIPT`, or call "
            "ensure_headless() / HeadlessAnatomist() before importing Qt or OpenGL."
        )
    log.info("restarting under ana-headless: %s", reason)
    reexec(reexec_command(sys.orig_argv, flags), os.environ)


def _restart_for(candidate: Candidate, options: Options, fallback: str) -> HeadlessInfo:
    """Restart under the launcher, for a GL mode that needs what the loader reads only at a
    process's start (vglrun's LD_PRELOAD, Mesa's LD_LIBRARY_PATH)."""
    needs = ", ".join(candidate.env_patch) or "LD_PRELOAD (vglrun)"
    return _restart_under_launcher(
        f"the {candidate.mode} mode needs {needs} set when the process starts",
        launcher_arguments(options.replace(gl=candidate.mode)),
        fallback,
        None,
    )


def ensure_headless(
    allow_virtualgl: bool = True, force_virtualgl: bool = False, fallback: str = "error"
) -> HeadlessInfo:
    """Make this process headless: in place when safe, else by restarting it under the
    launcher (os.execv, same command line). Returns what was set up."""
    global _current
    if fallback not in FALLBACKS:
        raise UsageError(f"fallback={fallback!r}: accepted values are {', '.join(FALLBACKS)}")
    if _current is not None:
        return _current
    # Scripts that start Anatomist through pyanatomist's socket client, unchanged, get a port
    # of their own (the launcher's Python children get the same from their PYTHONPATH).
    install_import_hook()
    loaded = what_is_loaded()
    if already_headless(os.environ):
        _current = _info_from_environment(os.environ, loaded.qt_application)
        if _current.mesa:
            share_gl_library()
        return _current
    loop_guard(os.environ)
    options = _options(os.environ, allow_virtualgl, force_virtualgl)
    if loaded.too_late:
        return _restart_under_launcher(
            loaded.describe(), launcher_arguments(options), fallback, loaded.qt_application
        )
    base_env = dict(os.environ)
    display = None
    try:
        plan = make_plan(host_facts.gather(base_env, options.mesa_dir), options)
        # Decided before any server starts, when the plan or the probe cache can tell: a
        # server started only to learn that the process must restart would be thrown away.
        known = None if plan.needs_fresh_process else cached_choice(plan, base_env)
        fresh = plan.candidates[0] if plan.needs_fresh_process else known
        if fresh is not None and fresh.needs_fresh_process:
            return _restart_for(fresh, options, fallback)
        display = Session(plan)
        if display.directory.note:
            log.info("%s", display.directory.note)
        setup = choose_gl(display, plan, base_env)
        # No supervisor watches the server in place: it must be up before we say so.
        display.server.wait_ready()
    except HeadlessError as error:
        if display is not None:
            display.close()
        if fallback == "onscreen":
            return _onscreen(str(error), None)
        raise
    chosen = setup.chosen.candidate
    if chosen.needs_fresh_process:
        # Known only from the probes (nothing was cached for these facts).
        display.close()
        return _restart_for(chosen, options, fallback)
    apply_in_place(patch_between(base_env, setup.env))
    keep_until_exit(display.close)
    server = display.server
    log.info("headless in place on %s (%s, %s)", server.display, chosen.mode, setup.chosen.renderer)
    _current = HeadlessInfo(
        headless=True,
        display=server.display,
        original_display=base_env.get("DISPLAY"),
        server=server.kind,
        mode=chosen.mode,
        renderer=setup.chosen.renderer,
        gl_version=setup.chosen.gl_version,
        virtualgl=False,
        mesa=False,
        reexec=False,
        qtapp=None,
    )
    return _current


def _resolve(implementation: str) -> tuple[str, str]:
    """(module, class) of an implementation name or a dotted module.Class path."""
    if implementation in IMPLEMENTATIONS:
        # 'headless' is upstream's name for this very entry point: the direct API behind it.
        name = "direct" if implementation == "headless" else implementation
        return f"anatomist.{name}.api", "Anatomist"
    module, _, class_name = implementation.rpartition(".")
    if not module or not class_name:
        raise UsageError(
            f"implementation={implementation!r}: use one of "
            f"{', '.join(IMPLEMENTATIONS)} or a dotted module.Class path"
        )
    return module, class_name


def HeadlessAnatomist(
    *args: Any,
    implementation: str = "direct",
    allow_virtualgl: bool = True,
    force_virtualgl: bool = False,
    fallback: str = "error",
    **kwargs: Any,
) -> Any:
    """The Anatomist API object, in a headless process; `headless_info` tells what was set up.

    `*args` and the other keyword arguments go to the Anatomist constructor.
    """
    module_name, class_name = _resolve(implementation)
    # Only look the package up: importing it may import Qt, which must wait for the display.
    if importlib.util.find_spec(module_name.split(".")[0]) is None:
        raise HeadlessError(
            f"cannot import {module_name.split('.')[0]!r}: Anatomist's Python API "
            "(pyanatomist) comes with BrainVISA (https://brainvisa.info, installed with "
            "pixi or conda), not from PyPI. ensure_headless() works without it."
        )
    info = ensure_headless(allow_virtualgl, force_virtualgl, fallback)
    if implementation in IMPLEMENTATIONS:
        anatomist = importlib.import_module("anatomist")
        anatomist.setDefaultImplementation(module_name.split(".")[1])
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as error:
        raise HeadlessError(f"implementation={implementation!r}: {error}") from error
    instance = cls(*args, **kwargs)
    instance.headless_info = info
    return instance


Anatomist = HeadlessAnatomist
