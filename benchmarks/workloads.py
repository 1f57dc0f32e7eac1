"""The workloads: what `make bench` runs under every contender, and how each reports itself.

A workload is anything with the `Workload` interface below; run.py's WORKLOADS lists them in
the order they run and are reported, so that a new one is added by one entry there. What W1-W4
measure, and why, is in README.md beside this file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from contenders import ANA_KEYS, Contender
from measure import BARE_XVFB, batch, median, rounds, summarize
from report import runs_text, timing_table
from runs import HERE, ROOT, Outcome, progress

from tests.leaks import KINDS

SCENE = ROOT / "examples" / "render_scene.py"
NOOP = HERE / "noop.py"
REPORT_DISPLAY = HERE / "report_display.py"
TRIANGLES = 100_000
SNAPSHOTS = 50
RATE = re.compile(r"([0-9.]+) snapshots/s")


class Workload(Protocol):
    """One workload of `make bench`, measured under every contender that can run it."""

    @property
    def key(self) -> str: ...

    @property
    def title(self) -> str: ...

    def runs(self, quick: bool, repeat: int | None) -> int:
        """How many runs to make (per contender, or at once): its own default, a short one
        for --quick, or --repeat N where that applies."""
        ...

    def measure(self, contenders: Sequence[Contender], runs: int, workdir: Path) -> dict[str, Any]:
        """The results, as JSON data, of running under `contenders` (those that can run here);
        its scratch files go to `workdir`."""
        ...

    def section(self, done: Mapping[str, Any], contenders: Sequence[Contender]) -> list[str]:
        """Its section of the Markdown report. `done` holds every measured workload's
        {"title", "runs", "results"} by key; `contenders` are all of them, the missing too."""
        ...

    def figures(self, done: Mapping[str, Any]) -> dict[str, float | None]:
        """Plain numbers for the report's summary: ratios to xvfb-run, overheads."""
        ...


@dataclass(frozen=True)
class Timed:
    """A script run under each contender in turn, a fresh process per run, timed."""

    key: str
    title: str
    # Runs per contender: by default, and with --quick.
    default_runs: int
    quick_runs: int
    # Per run; a run past it is killed and counts as a failure.
    timeout: float
    # 0: the no-op script; else the scene, saving this many frames.
    frames: int = 0
    # The no-op script's arguments.
    noop_args: tuple[str, ...] = ()
    # W1: plain python (the floor, no display) and a bare Xvfb (the reference) run too.
    floor: bool = False
    # The workload whose floor and bare Xvfb the launcher overhead is measured against.
    overhead_of: str = ""
    # Milliseconds shown with this many digits (snapshot rates with one).
    digits: int = 1

    def runs(self, quick: bool, repeat: int | None) -> int:
        return repeat or (self.quick_runs if quick else self.default_runs)

    @property
    def rates(self) -> bool:
        return self.frames > 1

    def command(self, png: Path) -> list[str]:
        """SCRIPT ARGS...; the scene runs behind report_display.py, which says (as noop.py
        does) which display and XAUTHORITY the run got, so that its debris can be told apart."""
        if not self.frames:
            return [str(NOOP), *self.noop_args]
        command = [str(REPORT_DISPLAY), str(SCENE), str(png), "--triangles", str(TRIANGLES)]
        return [*command, "--frames", str(self.frames)] if self.frames > 1 else command

    def check(self, outcome: Outcome, png: Path) -> Outcome:
        """A scene's run must print its PNG paths and (for several frames) its snapshot rate."""
        if outcome.problem or not self.frames:
            return outcome
        printed = [Path(line) for line in outcome.stdout.splitlines() if line.endswith(".png")]
        written = [path for path in printed if path.is_file()]
        if len(written) != self.frames:
            outcome.problem = (
                f"{len(written)} of {self.frames} PNGs written ({len(printed)} paths on stdout)"
            )
        elif self.rates:
            match = RATE.search(outcome.stderr)
            if match:
                outcome.rate = float(match.group(1))
            else:
                outcome.problem = "no snapshots/s on stderr"
        for image in (png, *written):
            image.unlink(missing_ok=True)
        return outcome

    def _runners(self, contenders: Sequence[Contender]) -> list[Contender]:
        """The contenders with a display, and (for W1) the floor without one."""
        return [c for c in contenders if c.x11 or self.floor]

    def measure(self, contenders: Sequence[Contender], runs: int, workdir: Path) -> dict[str, Any]:
        series = rounds(
            self,
            self._runners(contenders),
            runs,
            workdir,
            timeout=self.timeout,
            with_bare_xvfb=self.floor,
        )
        return summarize(series, rates=self.rates)

    def section(self, done: Mapping[str, Any], contenders: Sequence[Contender]) -> list[str]:
        unit = "snapshots/s, higher is better" if self.rates else "ms"
        extra = [("bare Xvfb ready (reference)", BARE_XVFB)] if self.floor else []
        lines = [
            f"## {self.key}: {self.title} ({unit}; {runs_text(done[self.key]['runs'])})",
            "",
            *timing_table(
                done[self.key]["results"],
                self._runners(contenders),
                1000,
                self.digits,
                rates=self.rates,
                extra=extra,
            ),
        ]
        for contender in (c for c in contenders if c.key in ANA_KEYS):
            overhead = self.launcher_overhead(done, contender.key)
            if overhead is not None:
                lines.append(
                    f"- Launcher overhead of {contender.label}: {self.key} median - "
                    f"(bare Xvfb ready median + python no-op median, from "
                    f"{self.overhead_of}) = **{overhead:.1f} ms**"
                )
        return lines

    def launcher_overhead(self, done: Mapping[str, Any], key: str) -> float | None:
        """This workload's median for `key` minus (bare Xvfb ready + plain python) medians of
        `overhead_of`, in ms: where the display is used, ana-headless must wait for its server."""
        if not self.overhead_of or self.overhead_of not in done:
            return None
        floor = done[self.overhead_of]["results"]
        launcher, bare, python = (
            median(done[self.key]["results"], key),
            median(floor, BARE_XVFB),
            median(floor, "python"),
        )
        if launcher is None or bare is None or python is None:
            return None
        return (launcher - bare - python) * 1000

    def figures(self, done: Mapping[str, Any]) -> dict[str, float | None]:
        ana = done[self.key]["results"].get(ANA_KEYS[0])
        ratio = ana["ratio_to_xvfb_run"] if ana else None
        named = {f"median ratio {ANA_KEYS[0]} / xvfb-run": ratio}
        if self.overhead_of:
            named |= {
                f"launcher overhead of {key}, ms": self.launcher_overhead(done, key)
                for key in ANA_KEYS
            }
        return named


@dataclass(frozen=True)
class Concurrent:
    """Many runs of a timed workload's script started at once, one batch per contender."""

    key: str
    of: Timed
    default_runs: int
    quick_runs: int
    # Per batch; a batch past it is killed, its unfinished runs count as failures.
    timeout: float
    # How long the batch's servers may take to go once its last run has ended.
    settle: float

    @property
    def title(self) -> str:
        return f"concurrent {self.of.key} runs"

    def runs(self, quick: bool, repeat: int | None) -> int:
        return self.quick_runs if quick else self.default_runs

    def measure(self, contenders: Sequence[Contender], runs: int, workdir: Path) -> dict[str, Any]:
        batches = {}
        for contender in (c for c in contenders if c.x11):
            progress(f"{self.key}: {contender.label}: {runs} concurrent runs")
            batches[contender.key] = batch(
                self.of, contender, runs, workdir, timeout=self.timeout, settle=self.settle
            )
        return batches

    def section(self, done: Mapping[str, Any], contenders: Sequence[Contender]) -> list[str]:
        lines = [
            f"## {self.key}: {done[self.key]['runs']} {self.title} (one batch per contender)",
            "",
            "| contender | wall s | failures | distinct displays | left behind: Xvfb | "
            "locks | sockets | dirs |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for contender in (c for c in contenders if c.x11):
            result = done[self.key]["results"].get(contender.key)
            if result is None:
                lines.append(f"| {contender.label} | {contender.missing} | | | | | | |")
                continue
            left = result["left_behind"]
            lines.append(
                f"| {contender.label} | {result['wall_s']:.1f} | {result['failures']} "
                f"| {result['distinct_displays']} | "
                + " | ".join(str(left[kind]) for kind in KINDS)
                + " |"
            )
        return lines

    def figures(self, done: Mapping[str, Any]) -> dict[str, float | None]:
        return {}


W1 = Timed("W1", "no-op script", default_runs=40, quick_runs=3, timeout=60.0, floor=True)
W1C = Timed(
    "W1c",
    "no-op script that opens its display once",
    default_runs=40,
    quick_runs=3,
    timeout=60.0,
    noop_args=("--connect",),
    overhead_of="W1",
)
W2 = Timed(
    "W2",
    f"first frame, {TRIANGLES // 1000}k triangles, one grab saved as PNG",
    default_runs=7,
    quick_runs=2,
    timeout=120.0,
    frames=1,
    digits=0,
)
W3 = Timed(
    "W3",
    f"snapshot throughput, {SNAPSHOTS} grabs + PNG saves in one process",
    default_runs=3,
    quick_runs=1,
    timeout=300.0,
    frames=SNAPSHOTS,
)
W4 = Concurrent("W4", W2, default_runs=40, quick_runs=8, timeout=600.0, settle=10.0)
