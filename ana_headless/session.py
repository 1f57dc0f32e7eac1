"""A headless session: a private directory and cookie, a virtual X server, and the GL
candidate that a probe showed working on it. The launcher, doctor and the in-process API all
start their display through here."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from .display import ServerStart, XServer, inherited_auth, write_auth_file
from .environment import apply_patch, display_patch, gl_patch
from .errors import SetupError
from .messages import log
from .plan import Candidate, Options, Plan
from .probe import PROBE_SCRIPT, ProbeResult, cached, first_accepted
from .probecache import ProbeCache, cache_path, probe_key


@dataclass(frozen=True)
class Setup:
    """What a child is given: its environment and the chosen GL, for --explain and the API."""

    server: XServer
    env: dict[str, str]
    prefix: tuple[str, ...]
    chosen: ProbeResult
    attempts: tuple[ProbeResult, ...]


def probe_key_for(plan: Plan, options: Options, candidate: Candidate,
                  base_env: Mapping[str, str]) -> str:
    return probe_key(candidate, base_env, plan.server_binary, options.screen.depth,
                     PROBE_SCRIPT)


def cached_results(plan: Plan, options: Options,
                   base_env: Mapping[str, str]) -> list[ProbeResult | None]:
    """Per candidate, the probe result the cache holds for the present facts, if any."""
    cache = ProbeCache(cache_path(base_env))
    return [cached(candidate, cache, probe_key_for(plan, options, candidate, base_env))
            for candidate in plan.candidates]


@contextmanager
def virtual_display(plan: Plan, options: Options, base_env: Mapping[str, str],
                    started: ServerStart | None = None
                    ) -> Iterator[tuple[XServer, dict[str, str]]]:
    """Start the plan's server (or adopt the one `started` early, if it is what the plan
    wants); yield it with the environment of a child on it (no GL yet)."""
    if started is not None:
        started.claimed = True
        if (started.kind, started.screen) != (plan.server, options.screen):
            log.debug("the server started early is not the one wanted: stopping it")
            started.discard()
            started = None
    if started is None:
        log.info("starting %s (screen %s)", plan.server, options.screen)
        started = ServerStart(plan.server, options.screen)
    private = started.private
    try:
        # On failure the pending server is stopped there, with its output quoted.
        server = started.pending.wait_ready(options.timeout)
        try:
            runtime_dir = None
            if not base_env.get("XDG_RUNTIME_DIR"):
                runtime_dir = os.path.join(private.path, "runtime")
                os.mkdir(runtime_dir, 0o700)
            log.info("display %s ready (%s pid %d)", server.display, plan.server, server.pid)
            client_auth = os.path.join(private.path, "Xauthority")
            write_auth_file(client_auth, started.cookie, str(server.number),
                            inherited_auth(base_env))
            patch = display_patch(server.display, client_auth, runtime_dir, base_env)
            yield server, apply_patch(base_env, patch)
        finally:
            server.stop()
    finally:
        private.remove()


@contextmanager
def headless_display(plan: Plan, options: Options, base_env: Mapping[str, str],
                     started: ServerStart | None = None) -> Iterator[Setup]:
    """Start the plan's server, probe its GL candidates, and yield what the child gets."""
    with virtual_display(plan, options, base_env, started) as (server, display_env):
        cache = ProbeCache(cache_path(base_env))
        chosen, attempts = first_accepted(plan.candidates, display_env, cache,
                                          lambda c: probe_key_for(plan, options, c, base_env))
        for attempt in attempts:
            log.info("GL %s", attempt.summary())
        if chosen is None:
            raise SetupError("no working OpenGL on the virtual display",
                             details="\n".join(a.summary() for a in attempts))
        env = apply_patch(display_env, {**chosen.candidate.env_patch,
                                **gl_patch(chosen.candidate.mode, chosen.renderer)})
        yield Setup(server, env, chosen.candidate.prefix, chosen, tuple(attempts))
