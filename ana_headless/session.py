"""A headless session: a private directory and cookie, a virtual X server, and the GL
candidate that a probe showed working on it. The launcher, doctor and the in-process API all
start their display through here. Light on imports: it is on the launcher's way to the child."""

from __future__ import annotations

import os

from .display import ServerStart, XServer, inherited_auth, write_auth_file
from .environment import apply_patch, display_patch, gl_patch
from .errors import SetupError
from .glvnd import with_glvnd_names
from .messages import log
from .probe import PROBE_SCRIPT, ProbeResult, accepted_from_cache, cached, first_accepted
from .probecache import ProbeCache, cache_path, probe_key
from .record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from types import TracebackType

    from .lifetime import Guard
    from .options import Options
    from .plan import Candidate, Plan


class Setup(Record):
    """What a child is given: its environment and the chosen GL, for --explain and the API;
    the server it is given, and the guard that must know about the child."""

    __slots__ = ("attempts", "chosen", "env", "guard", "prefix", "server")

    def __init__(self, server: XServer, guard: Guard, *, env: dict[str, str],
                 prefix: tuple[str, ...], chosen: ProbeResult,
                 attempts: tuple[ProbeResult, ...]) -> None:
        self.server = server
        self.guard = guard
        self.env = env
        self.prefix = prefix
        self.chosen = chosen
        self.attempts = attempts


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


class Session:
    """The plan's server (or the one `started` early, if it is what the plan wants) and the
    environment of a child on it; `close()` stops the server and removes our files.

    The server is ready once this is made, unless `wait` is false and clients can connect to
    it before it is: then whoever uses it must wait_ready() or check() it.
    """

    def __init__(self, plan: Plan, options: Options, base_env: Mapping[str, str],
                 started: ServerStart | None = None, *, wait: bool = True) -> None:
        self.plan = plan
        self.options = options
        self.base_env = base_env
        if started is not None:
            started.claimed = True
            if (started.kind, started.screen) != (plan.server, options.screen):
                log.debug("the server started early is not the one wanted: stopping it")
                started.discard()
                started = None
        if started is None:
            log.info("starting %s (screen %s)", plan.server, options.screen)
            started = ServerStart(plan.server, options.screen)
        self._started = started
        self.server = started.server
        try:
            if wait or not self.server.connectable:
                # On failure the server is stopped there, with its output quoted.
                self.server.wait_ready(options.timeout)
            self.display_env = self._display_env()
        except BaseException:
            self.close()
            raise

    def _display_env(self) -> dict[str, str]:
        private, server = self._started.guard.path, self.server
        runtime_dir = None
        if not self.base_env.get("XDG_RUNTIME_DIR"):
            runtime_dir = os.path.join(private, "runtime")
            os.mkdir(runtime_dir, 0o700)
        log.info("display %s (%s pid %d)%s", server.display, self.plan.server, server.pid,
                 " ready" if server.ready else ", clients wait until it is ready")
        client_auth = os.path.join(private, "Xauthority")
        write_auth_file(client_auth, self._started.cookie, str(server.number),
                        inherited_auth(self.base_env))
        patch = display_patch(server.display, client_auth, runtime_dir, self.base_env)
        return apply_patch(self.base_env, patch)

    def choose_gl(self) -> Setup:
        """The plan's first accepted GL candidate, from the probe cache alone when it can
        tell (the server may then still be starting), else from probes on the ready server."""
        cache = ProbeCache(cache_path(self.base_env))

        def key_of(candidate: Candidate) -> str:
            return probe_key_for(self.plan, self.options, candidate, self.base_env)

        known = accepted_from_cache(self.plan.candidates, cache, key_of)
        if known is not None:
            chosen: ProbeResult | None = known[-1]
            attempts = known
        else:
            self.server.wait_ready(self.options.timeout)
            chosen, attempts = first_accepted(self.plan.candidates, self.display_env, cache,
                                              key_of)
        for attempt in attempts:
            log.info("GL %s", attempt.summary())
        if chosen is None:
            raise SetupError("no working OpenGL on the virtual display",
                             details="\n".join(a.summary() for a in attempts))
        env_patch = chosen.candidate.env_patch
        if chosen.candidate.mode == "mesa":
            env_patch = with_glvnd_names(env_patch, self._started.guard.path)
        env = apply_patch(self.display_env, {**env_patch,
                                             **gl_patch(chosen.candidate.mode, chosen.renderer)})
        return Setup(self.server, self._started.guard, env=env, prefix=chosen.candidate.prefix,
                     chosen=chosen, attempts=tuple(attempts))

    def close(self) -> None:
        self._started.discard()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()
