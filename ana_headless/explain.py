"""Human-readable accounts of a Plan and of a set-up, for --explain, --dry-run and doctor."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

from .environment import patch_between

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from .glchoice import Setup
    from .plan import Plan
    from .probe import ProbeResult
    from .session import Session

_PREFIX = "ana-headless: "


def _lines(lines: Sequence[str]) -> str:
    return "\n".join(_PREFIX + line for line in lines)


def describe_plan(plan: Plan, argv: Sequence[str], known: Sequence[ProbeResult | None] = ()) -> str:
    """The plan; `known` holds, per candidate, its cached probe result if there is one."""
    server = plan.server
    lines = [
        f"server: {server.kind} ({plan.server_reason})",
        *(
            [f"compositor, started first: {' '.join(server.compositor)}"]
            if server.compositor
            else []
        ),
        f"server command: {' '.join(server.arguments)}",
        "  "
        + (
            "on a display claimed for it, whose sockets it is given"
            if server.takes_sockets
            else "it picks a free display itself"
        )
        + "; {braces}: filled in at its start",
        "GL candidates, in order:",
    ]
    for number, candidate in enumerate(plan.candidates, 1):
        condition = " if its renderer is hardware" if candidate.require_hardware else ""
        lines.append(f"  {number}. {candidate.mode}{condition}: {candidate.reason}")
        if candidate.prefix:
            lines.append(f"     prefix: {shlex.join(candidate.prefix)}")
        for name, value in candidate.env_patch.items():
            lines.append(f"     env: {name}={value}" if value is not None else f"     env: -{name}")
        result = known[number - 1] if number <= len(known) else None
        lines.append(
            f"     probe: {result.summary()}"
            if result
            else "     probe: needed (nothing cached for these facts)"
        )
    lines.extend(f"  not a candidate: {why}" for why in plan.skipped)
    lines.append(
        "candidates are tried in order until one is accepted; a cached probe is "
        "reused while the facts it depends on are unchanged"
    )
    lines.append(f"command: {shlex.join(argv)}")
    return _lines(lines)


def env_changes(base: Mapping[str, str], env: Mapping[str, str]) -> list[str]:
    """The variables that differ between what we inherited and what the child gets."""
    return [
        f"{name}={value}" if value is not None else f"-{name}"
        for name, value in sorted(patch_between(base, env).items())
    ]


def describe_setup(
    setup: Setup, display: Session, command: Sequence[str], base: Mapping[str, str]
) -> str:
    server = display.server
    state = (
        "ready"
        if server.ready
        else "still starting: the child's first connection waits until it is ready"
    )
    lines = [
        f"display {server.display} ({server.kind} pid {server.pid}, {state})",
        f"server command: {shlex.join(server.command)}",
    ]
    lines.extend(f"probe {attempt.summary()}" for attempt in setup.attempts)
    lines.append("child environment changes:")
    lines.extend(f"  {change}" for change in env_changes(base, setup.env))
    lines.append(f"exact command: {shlex.join(command)}")
    return _lines(lines)
