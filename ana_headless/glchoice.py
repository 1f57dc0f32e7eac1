"""Choosing the child's OpenGL on a display: the plan's first candidate that a probe accepts,
from the probe cache when it can tell (the server may then still be starting)."""

from __future__ import annotations

from .display import log_tail
from .environment import apply_patch, gl_patch
from .errors import SetupError
from .glvnd import with_glvnd_names
from .messages import log
from .probe import PROBE_SCRIPT, ProbeResult, accepted_from_cache, cached, first_accepted
from .probecache import ProbeCache, cache_path, probe_key
from .record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from .options import Options
    from .plan import Candidate, Plan
    from .session import Display


class Setup(Record):
    """What a child is given: its environment and command prefix, and the GL choice with the
    attempts that led to it."""

    __slots__ = ("attempts", "chosen", "env", "prefix")

    def __init__(
        self,
        *,
        env: dict[str, str],
        prefix: tuple[str, ...],
        chosen: ProbeResult,
        attempts: tuple[ProbeResult, ...],
    ) -> None:
        self.env = env
        self.prefix = prefix
        self.chosen = chosen
        self.attempts = attempts


def probe_key_for(
    plan: Plan, options: Options, candidate: Candidate, base_env: Mapping[str, str]
) -> str:
    return probe_key(
        candidate, base_env, plan.server_command.binary, options.screen.depth, PROBE_SCRIPT
    )


def cached_results(
    plan: Plan, options: Options, base_env: Mapping[str, str]
) -> list[ProbeResult | None]:
    """Per candidate, the probe result the cache holds for the present facts, if any."""
    cache = ProbeCache(cache_path(base_env))
    return [
        cached(candidate, cache, probe_key_for(plan, options, candidate, base_env))
        for candidate in plan.candidates
    ]


def choose_gl(display: Display, plan: Plan, options: Options, base_env: Mapping[str, str]) -> Setup:
    """The plan's first accepted GL candidate, from the probe cache alone when it can tell
    (the server may then still be starting), else from probes on the ready server."""
    display_env = display.child_env(base_env, options.timeout)
    cache = ProbeCache(cache_path(base_env))

    def key_of(candidate: Candidate) -> str:
        return probe_key_for(plan, options, candidate, base_env)

    known = accepted_from_cache(plan.candidates, cache, key_of)
    if known is not None:
        chosen: ProbeResult | None = known[-1]
        attempts = known
    else:
        display.server.wait_ready(options.timeout)
        server = display.server
        chosen, attempts = first_accepted(
            plan.candidates, display_env, cache, key_of, lambda: server.running
        )
    for attempt in attempts:
        log.info("GL %s", attempt.summary())
    if chosen is None and not display.server.running:
        raise SetupError(
            f"the {plan.server} server ended while OpenGL was being checked",
            details=log_tail(display.server.log_path),
        )
    if chosen is None:
        raise SetupError(
            "no working OpenGL on the virtual display",
            details="\n".join(a.summary() for a in attempts),
        )
    env_patch = chosen.candidate.env_patch
    if chosen.candidate.mode == "mesa":
        env_patch = with_glvnd_names(env_patch, display.directory)
    env = apply_patch(
        display_env,
        {**env_patch, **gl_patch(chosen.candidate.mode, chosen.renderer)},
    )
    return Setup(env=env, prefix=chosen.candidate.prefix, chosen=chosen, attempts=tuple(attempts))
