"""Checking a GL candidate for real: the probe script, run exactly as the child will run."""

from __future__ import annotations

import os
import sys

from .record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any

    from .plan import Candidate
    from .probecache import ProbeCache

PROBE_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "glprobe.py")
PROBE_DEADLINE = 20.0


class ProbeResult(Record):
    __slots__ = ("cached", "candidate", "lasting", "ok", "problem", "report")

    def __init__(
        self,
        candidate: Candidate,
        ok: bool,
        report: Mapping[str, Any] | None = None,
        problem: str = "",
        *,
        cached: bool = False,
        lasting: bool = True,
    ) -> None:
        self.candidate = candidate
        self.ok = ok
        # What the probe reported (vendor, renderer, version, direct, software, libraries...).
        self.report: Mapping[str, Any] = report or {}
        # Why it was not used: the probe's error, or its output when it crashed.
        self.problem = problem
        # Taken from the probe cache: nothing the probe depends on changed since it ran.
        self.cached = cached
        # Whether a failure says something about the host, and will happen again: the probe
        # ran to its end and said why, or its program is missing. A probe that crashed, was
        # killed (a memory limit) or did not answer in time says nothing lasting.
        self.lasting = lasting

    @property
    def renderer(self) -> str:
        return str(self.report.get("renderer", ""))

    @property
    def gl_version(self) -> str:
        """MAJOR.MINOR and profile ("4.5 compatibility"), as the child is told it."""
        version, profile = self.report.get("gl_version", ""), self.report.get("profile", "")
        return f"{version} {profile}" if version else ""

    @property
    def too_old(self) -> bool:
        """Its OpenGL is older than the candidate requires (--require-gl)."""
        wanted = self.candidate.min_gl_version
        if not wanted:
            return False
        major, _, minor = str(self.report.get("gl_version", "")).partition(".")
        return not (major.isdigit() and minor.isdigit()) or (int(major), int(minor)) < wanted

    @property
    def accepted(self) -> bool:
        software = self.candidate.require_hardware and self.report.get("software")
        return self.ok and not software and not self.too_old

    def summary(self) -> str:
        return self._summary() + (" [cached probe]" if self.cached else "")

    def _summary(self) -> str:
        if not self.ok:
            return f"{self.candidate.mode}: failed: {self.problem}"
        if self.too_old:
            wanted = ".".join(map(str, self.candidate.min_gl_version))
            return (
                f"{self.candidate.mode}: works, but with OpenGL {self.gl_version or 'unknown'} "
                f"({self.renderer}), older than the {wanted} required (--require-gl); not used"
            )
        if not self.accepted:
            why = (
                "where VirtualGL only adds cost; not used (--force-virtualgl uses it anyway)"
                if self.candidate.mode == "virtualgl" and not self.candidate.gpu_required
                else "and a hardware one is required (--require-gpu); not used"
            )
            return (
                f"{self.candidate.mode}: works, but on a software renderer ({self.renderer}), {why}"
            )
        vendor = self.report.get("glx_client_vendor", "")
        return (
            f"{self.candidate.mode}: works: {self.renderer}, OpenGL {self.gl_version} "
            f"(GLX vendor {vendor!r})"
        )


def probe_command(candidate: Candidate, python: str = sys.executable) -> list[str]:
    return [*candidate.prefix, python, "-I", PROBE_SCRIPT]


def run_probe(
    candidate: Candidate, env: Mapping[str, str], deadline: float = PROBE_DEADLINE
) -> ProbeResult:
    """Run the probe under the candidate's prefix, with `env`: the environment the child
    would get with this candidate (Session.candidate_env), and a deadline."""
    import json
    import subprocess

    try:
        completed = subprocess.run(
            probe_command(candidate),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=deadline,
        )
    except subprocess.TimeoutExpired:
        return ProbeResult(
            candidate, False, problem=f"no answer within {deadline:g} s", lasting=False
        )
    except OSError as error:
        return ProbeResult(
            candidate,
            False,
            problem=f"cannot run the probe: {error}",
            lasting=isinstance(error, FileNotFoundError),
        )
    stdout = completed.stdout.decode(errors="replace")
    stderr = completed.stderr.decode(errors="replace").strip()
    report: dict[str, Any] = {}
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            report = json.loads(line)
            break
    if completed.returncode == 0 and report.get("renderer"):
        return ProbeResult(candidate, True, report)
    explained = completed.returncode == 1 and bool(report.get("error"))
    problem = report.get("error") or f"exit status {completed.returncode}"
    if stderr:
        problem += "\n" + stderr[-1500:]
    return ProbeResult(candidate, False, report, problem=problem, lasting=explained)


def cached(candidate: Candidate, cache: ProbeCache, key: str) -> ProbeResult | None:
    entry = cache.get(key)
    if entry is None:
        return None
    return ProbeResult(
        candidate,
        bool(entry.get("ok")),
        entry.get("report", {}),
        str(entry.get("problem", "")),
        cached=True,
    )


def remember(cache: ProbeCache, key: str, result: ProbeResult) -> None:
    """Keep a result for the next runs: a success, or a lasting failure."""
    if result.ok or result.lasting:
        cache.put(key, {"ok": result.ok, "report": dict(result.report), "problem": result.problem})


def first_accepted(
    candidates: Sequence[Candidate],
    env_of: Callable[[Candidate], Mapping[str, str]],
    cache: ProbeCache,
    key_of: Callable[[Candidate], str],
    server_up: Callable[[], bool],
) -> tuple[ProbeResult | None, list[ProbeResult]]:
    """Probe candidates in order, from the cache where it knows them; return the first
    accepted one and every attempt. A run never fails on cached failures alone: when none is
    accepted, those are probed again. A probe's failure is remembered only while the server
    is still up (`server_up()`): one that died meanwhile failed it, not the host."""

    def live(candidate: Candidate) -> ProbeResult:
        result = run_probe(candidate, env_of(candidate))
        if server_up():
            remember(cache, key_of(candidate), result)
        return result

    def cached_or_live(candidate: Candidate) -> ProbeResult:
        return cached(candidate, cache, key_of(candidate)) or live(candidate)

    try:
        chosen, attempts = _first(candidates, cached_or_live)
        # A cached result that worked but was not accepted (software, too old) is a fact.
        if chosen is None and any(attempt.cached and not attempt.ok for attempt in attempts):
            chosen, attempts = _first(candidates, live)
        return chosen, attempts
    finally:
        cache.save()


def _first(
    candidates: Sequence[Candidate], result_of: Callable[[Candidate], ProbeResult]
) -> tuple[ProbeResult | None, list[ProbeResult]]:
    attempts: list[ProbeResult] = []
    for candidate in candidates:
        result = result_of(candidate)
        attempts.append(result)
        if result.accepted:
            return result, attempts
    return None, attempts


def accepted_from_cache(
    candidates: Sequence[Candidate], cache: ProbeCache, key_of: Callable[[Candidate], str]
) -> list[ProbeResult] | None:
    """The attempts that first_accepted would make, ending with an accepted one, when the
    cache alone can tell them all; None when a probe would still be needed."""
    attempts: list[ProbeResult] = []
    for candidate in candidates:
        result = cached(candidate, cache, key_of(candidate))
        if result is None:
            return None
        attempts.append(result)
        if result.accepted:
            return attempts
    return None
