"""Measuring a script under each contender: timed rounds, a concurrent batch, and the figures
(medians, ratios to xvfb-run) made of their samples."""

from __future__ import annotations

import shlex
import statistics
import subprocess
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from contenders import BASELINE, Contender
from runs import (
    Outcome,
    attempt,
    bare_xvfb_ready,
    claims,
    displays,
    kill_group,
    progress,
    run_once,
    spawn,
    tidy,
    wait,
)

from tests.leaks import KINDS, Debris, new_tag, tagged_env

# How much of a failed run's stderr the report keeps.
TAIL = 2000
# The key of the reference row: a bare Xvfb, timed until it is ready.
BARE_XVFB = "bare-xvfb"


class Script(Protocol):
    """What a workload runs under each contender, and how it tells a good run."""

    @property
    def key(self) -> str: ...

    def command(self, png: Path) -> list[str]:
        """SCRIPT ARGS..., writing its image (if any) to `png`."""
        ...

    def check(self, outcome: Outcome, png: Path) -> Outcome:
        """The outcome, with a problem set if the run did not do its job."""
        ...


@dataclass
class Series:
    seconds: list[float] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)
    failures: int = 0
    first_failure: dict[str, str] | None = None
    left_behind: Counter[str] = field(default_factory=Counter)
    left_in_place: list[str] = field(default_factory=list)

    def record(self, outcome: Outcome, command: str, left: Counter[str], kept: list[str]) -> None:
        self.left_behind.update(left)
        self.left_in_place += kept
        if not outcome.problem:
            self.seconds.append(outcome.seconds)
            if outcome.rate:
                self.rates.append(outcome.rate)
            return
        self.failures += 1
        if self.first_failure is None:
            self.first_failure = {
                "problem": outcome.problem,
                "command": command,
                "stderr_tail": outcome.stderr[-TAIL:],
            }


def rounds(
    script: Script,
    runners: Sequence[Contender],
    repeats: int,
    workdir: Path,
    *,
    timeout: float,
    with_bare_xvfb: bool = False,
) -> dict[str, Series]:
    """Round-robin: each round runs every contender once (A, B, C, A, B, C, ...), so that drift
    in the machine's load hits them all alike; round 0 warms caches and is not recorded."""
    series = {c.key: Series() for c in runners}
    if with_bare_xvfb:
        series[BARE_XVFB] = Series()
    for round_ in range(repeats + 1):
        progress(f"{script.key} round {round_}/{repeats}" + (" (warm-up)" if not round_ else ""))
        for contender in runners:
            png = workdir / f"{script.key}-{contender.key}.png"
            argv = [*contender.prefix, *script.command(png)]
            outcome, left, kept = attempt(
                partial(run_once, argv, timeout=timeout), private_dirs=contender.makes_private_dirs
            )
            outcome = script.check(outcome, png)
            if round_:
                series[contender.key].record(outcome, tidy(shlex.join(argv)), left, kept)
        if with_bare_xvfb:
            outcome, left, kept = attempt(bare_xvfb_ready)
            if round_:
                series[BARE_XVFB].record(outcome, "Xvfb -displayfd ...", left, kept)
    return series


def batch(
    script: Script, contender: Contender, runs: int, workdir: Path, *, timeout: float, settle: float
) -> dict[str, Any]:
    """`runs` runs of the script started at once; wall time from the first spawn to the last
    exit, failures, distinct displays, and what the batch left behind after `settle` s."""
    tag = new_tag()
    debris = Debris(tag, private_dirs=contender.makes_private_dirs)
    env = tagged_env(tag)
    processes: list[tuple[subprocess.Popen[bytes], Path, Path]] = []
    start = time.perf_counter()
    try:
        for index in range(runs):
            png = workdir / f"{script.key}-{contender.key}-{index}.png"
            argv = [*contender.prefix, *script.command(png)]
            err_path = workdir / f"{script.key}-{index}.err"
            with open(err_path.with_suffix(".out"), "wb") as out, open(err_path, "wb") as err:
                processes.append((spawn(argv, env, out, err), png, err_path))
        deadline = start + timeout
        timed_out = {id(p) for p, _, _ in processes if not wait(p, deadline - time.perf_counter())}
        wall = time.perf_counter() - start
    finally:
        for process, _, _ in processes:
            if process.returncode is None:
                kill_group(process)
    failures = 0
    first_failure: dict[str, str] | None = None
    seen: set[str] = set()
    claimed: set[str] = set()
    for process, png, err_path in processes:
        stdout = err_path.with_suffix(".out").read_text(errors="replace")
        stderr = tidy(err_path.read_text(errors="replace"))
        claimed |= claims(stderr)
        outcome = Outcome(0.0, stdout=stdout, stderr=stderr)
        if id(process) in timed_out:
            outcome.problem = f"timed out after {timeout:g} s"
        elif process.returncode:
            outcome.problem = f"exit status {process.returncode}"
        outcome = script.check(outcome, png)
        if outcome.problem:
            failures += 1
            if first_failure is None:
                first_failure = {"problem": outcome.problem, "stderr_tail": stderr[-TAIL:]}
            continue
        seen.update(displays(stderr)[:1])
    left, kept = debris.collect(claimed, settle)
    return {
        "runs": runs,
        "wall_s": wall,
        "failures": failures,
        "distinct_displays": len(seen),
        "left_behind": {kind: left.get(kind, 0) for kind in KINDS},
        "left_in_place": kept,
        "first_failure": first_failure,
    }


def _stats(values: Sequence[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarize(series: dict[str, Series], rates: bool = False) -> dict[str, Any]:
    """Each contender's samples and their median, min and max (seconds, or with `rates` also
    snapshots per second), failures, what it left, and its median's ratio to xvfb-run's."""
    results: dict[str, Any] = {}
    for key, one in series.items():
        results[key] = {
            "samples_s": one.seconds,
            "seconds": _stats(one.seconds),
            "failures": one.failures,
            "first_failure": one.first_failure,
            "left_behind": {kind: one.left_behind.get(kind, 0) for kind in KINDS},
            "left_in_place": one.left_in_place,
        }
        if rates:
            results[key]["samples_snapshots_per_s"] = one.rates
            results[key]["snapshots_per_s"] = _stats(one.rates)
    metric = "snapshots_per_s" if rates else "seconds"
    base = (results.get(BASELINE) or {}).get(metric)
    for result in results.values():
        mine = result[metric]
        result["ratio_to_xvfb_run"] = mine["median"] / base["median"] if mine and base else None
    return results


def median(results: dict[str, Any], key: str) -> float | None:
    """A contender's median seconds in summarize()'s results, if it has one."""
    result = results.get(key)
    return result["seconds"]["median"] if result and result["seconds"] else None
