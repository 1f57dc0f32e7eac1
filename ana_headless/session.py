"""A headless session: a private directory and cookie, a virtual X server, and the GL
candidate that a probe showed working on it. The launcher, doctor and the in-process API all
start their display through here."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from .display import XServer, inherited_auth, start_server, write_auth_file
from .environment import apply_patch, display_patch, gl_patch
from .errors import SetupError
from .lifetime import PrivateDirectory
from .plan import Options, Plan
from .probe import ProbeResult, first_accepted

log = logging.getLogger("ana_headless")


@dataclass(frozen=True)
class Setup:
    """What a child is given: its environment and the chosen GL, for --explain and the API."""

    server: XServer
    env: dict[str, str]
    prefix: tuple[str, ...]
    chosen: ProbeResult
    attempts: tuple[ProbeResult, ...]


@contextmanager
def virtual_display(plan: Plan, options: Options,
                    base_env: Mapping[str, str]) -> Iterator[tuple[XServer, dict[str, str]]]:
    """Start the plan's server; yield it with the environment of a child on it (no GL yet)."""
    private = PrivateDirectory()
    try:
        cookie = os.urandom(16)
        server_auth = os.path.join(private.path, "server-auth")
        write_auth_file(server_auth, cookie)
        runtime_dir = None
        if not base_env.get("XDG_RUNTIME_DIR"):
            runtime_dir = os.path.join(private.path, "runtime")
            os.mkdir(runtime_dir, 0o700)
        log.info("starting %s (screen %s)", plan.server, options.screen)
        server = start_server(plan.server, options.screen, server_auth, private.path,
                              options.timeout)
        try:
            log.info("display %s ready (%s pid %d)", server.display, plan.server,
                     server.process.pid)
            client_auth = os.path.join(private.path, "Xauthority")
            write_auth_file(client_auth, cookie, str(server.number), inherited_auth(base_env))
            patch = display_patch(server.display, client_auth, runtime_dir, base_env)
            yield server, apply_patch(base_env, patch)
        finally:
            server.stop()
    finally:
        private.remove()


@contextmanager
def headless_display(plan: Plan, options: Options, base_env: Mapping[str, str]) -> Iterator[Setup]:
    """Start the plan's server, probe its GL candidates, and yield what the child gets."""
    with virtual_display(plan, options, base_env) as (server, display_env):
        chosen, attempts = first_accepted(plan.candidates, display_env)
        for attempt in attempts:
            log.info("GL %s", attempt.summary())
        if chosen is None:
            raise SetupError("no working OpenGL on the virtual display",
                             details="\n".join(a.summary() for a in attempts))
        env = apply_patch(display_env, {**chosen.candidate.env_patch,
                                **gl_patch(chosen.candidate.mode, chosen.renderer)})
        yield Setup(server, env, chosen.candidate.prefix, chosen, tuple(attempts))
