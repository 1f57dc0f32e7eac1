"""Choosing the child's OpenGL on a display: the plan's first candidate that a probe accepts,
from the probe cache when it can tell (the server may then still be starting)."""

from __future__ import annotations

from .environment import apply_patch, gl_patch
from .errors import SetupError
from .messages import log, log_tail
from .probe import PROBE_SCRIPT, ProbeResult, accepted_from_cache, cached, first_accepted
from .probecache import ProbeCache, cache_path, probe_key
from .record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from .plan import Candidate, Plan
    from .session import Session


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


def probe_key_for(plan: Plan, candidate: Candidate, base_env: Mapping[str, str]) -> str:
    return probe_key(candidate, base_env, plan.server.binary, plan.screen.depth, PROBE_SCRIPT)


def cached_results(plan: Plan, base_env: Mapping[str, str]) -> list[ProbeResult | None]:
    """Per candidate, the probe result the cache holds for the present facts, if any."""
    cache = ProbeCache(cache_path(base_env))
    return [
        cached(candidate, cache, probe_key_for(plan, candidate, base_env))
        for candidate in plan.candidates
    ]


def cached_choice(plan: Plan, base_env: Mapping[str, str]) -> Candidate | None:
    """The candidate the cache alone says will be chosen, if it can tell: a decision that
    needs no server (whether a process can stay as it is, say)."""
    cache = ProbeCache(cache_path(base_env))
    known = accepted_from_cache(
        plan.candidates, cache, lambda candidate: probe_key_for(plan, candidate, base_env)
    )
    return known[-1].candidate if known else None


def _requirements_unmet(plan: Plan, attempts: list[ProbeResult]) -> str:
    """One line: every mode works, but none as --require-gl / --require-gpu ask; what each
    gave, and where a GPU is here, why it was not reached."""
    first = plan.candidates[0]
    asked = []
    if any(attempt.too_old for attempt in attempts):
        asked.append(f"OpenGL {'.'.join(map(str, first.min_gl_version))} (--require-gl)")
    if first.gpu_required and any(attempt.report.get("software") for attempt in attempts):
        asked.append("a hardware renderer (--require-gpu)")
    gave = "; ".join(
        f"{attempt.candidate.mode} gave OpenGL {attempt.gl_version or 'unknown'} on "
        f"{attempt.renderer}"
        for attempt in attempts
    )
    note = f"; {plan.gpu_note}" if first.gpu_required and plan.gpu_note else ""
    return f"no GL mode gives {' and '.join(asked) or 'what was asked'}: {gave}{note}"


def choose_gl(display: Session, plan: Plan, base_env: Mapping[str, str]) -> Setup:
    """The plan's first accepted GL candidate, from the probe cache alone when it can tell
    (the server may then still be starting), else from probes on the ready server. The probe
    of a candidate runs with exactly the environment its child would get."""
    display_env = display.child_env(base_env)
    cache = ProbeCache(cache_path(base_env))

    def key_of(candidate: Candidate) -> str:
        return probe_key_for(plan, candidate, base_env)

    def env_of(candidate: Candidate) -> dict[str, str]:
        return display.candidate_env(candidate, display_env)

    known = accepted_from_cache(plan.candidates, cache, key_of)
    if known is not None:
        chosen: ProbeResult | None = known[-1]
        attempts = known
    else:
        server = display.server
        server.wait_ready()
        chosen, attempts = first_accepted(
            plan.candidates, env_of, cache, key_of, lambda: server.running
        )
    for attempt in attempts:
        log.info("GL %s", attempt.summary())
    if chosen is None and not display.server.running:
        raise SetupError(
            f"the {plan.server.name} server ended while OpenGL was being checked",
            details=log_tail(display.server.log_path),
        )
    if chosen is None and attempts and all(attempt.ok for attempt in attempts):
        raise SetupError(_requirements_unmet(plan, attempts))
    if chosen is None:
        raise SetupError(
            "no working OpenGL on the virtual display",
            details="\n".join(a.summary() for a in attempts),
        )
    if chosen.report.get("software") and plan.gpu_note:
        log.warning(f"running on the software renderer {chosen.renderer}: {plan.gpu_note}")
    env = apply_patch(
        env_of(chosen.candidate),
        gl_patch(chosen.candidate.mode, chosen.renderer, chosen.gl_version),
    )
    return Setup(env=env, prefix=chosen.candidate.prefix, chosen=chosen, attempts=tuple(attempts))
