#!/usr/bin/env python3
"""ana-headless side by side with the tools users pick today: xvfb-run, PyVirtualDisplay and
xvfbwrapper.

    python benchmarks/run.py [--quick] [--repeat N] [--only W1,W1c,W2,W3,W4] [--out DIR]

Each workload (WORKLOADS below; what each measures is in README.md beside this file) runs under
every contender that this machine has. After every run (and batch) the benchmark waits for the
run's X server to go, counts what the run left behind and removes what is provably the run's
(see Debris in tests/leaks.py), so that no contender inherits another's debris. The Markdown
report goes to stdout and to latest.md, the raw numbers (every sample, the first failure's
stderr) to latest.json, both under benchmarks/results/ (or --out); progress goes to stderr.
"""

from __future__ import annotations

import argparse
import datetime
import shlex
import shutil
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# What runs leave behind is counted as the test suite counts it (tests/leaks.py): the checkout's
# root goes last on the import path, so that ana_headless stays the installed one.
sys.path.append(str(Path(__file__).resolve().parent.parent))

from contenders import contenders
from machine import machine_facts
from report import markdown, publish
from runs import HERE, SCREEN, progress
from workloads import SNAPSHOTS, TRIANGLES, W1, W1C, W2, W3, W4, Timed, Workload

from tests.leaks import sweep

# The workloads, in the order they run and are reported: a new one is registered here.
WORKLOADS: tuple[Workload, ...] = (W1, W1C, W2, W3, W4)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    keys = [workload.key for workload in WORKLOADS]

    def counts(workloads: Sequence[Workload], quick: bool) -> str:
        return ", ".join(f"{w.key} {w.runs(quick, None)}" for w in workloads)

    timed = [workload for workload in WORKLOADS if isinstance(workload, Timed)]
    parser = argparse.ArgumentParser(
        description="Benchmark ana-headless against xvfb-run, PyVirtualDisplay and xvfbwrapper."
    )
    parser.add_argument(
        "--repeat",
        type=int,
        metavar="N",
        help="runs per contender of the workloads timed run by run (default: "
        f"{counts(timed, False)})",
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"a smoke test: {counts(WORKLOADS, True)} runs"
    )
    parser.add_argument(
        "--only",
        metavar=",".join(keys[:2]) + ",...",
        default=",".join(keys),
        help="the workloads to run (default: all)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=HERE / "results",
        metavar="DIR",
        help="where latest.md and latest.json go (default: benchmarks/results)",
    )
    args = parser.parse_args(argv)
    canonical = {key.upper(): key for key in keys}
    asked = [w.strip().upper() for w in args.only.split(",") if w.strip()]
    unknown = sorted(set(asked) - set(canonical))
    args.only = [canonical[w] for w in asked if w in canonical]
    if unknown or not args.only:
        parser.error(f"--only: {', '.join(unknown) or 'nothing'}: choose from {', '.join(keys)}")
    if args.repeat is not None and args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def _terminate(signum: int, _frame: object) -> None:
    # Unwind, so that the running contender is killed and the servers are stopped.
    sys.exit(128 + signum)


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    chosen = [workload for workload in WORKLOADS if workload.key in args.only]
    runs = {workload.key: workload.runs(args.quick, args.repeat) for workload in chosen}
    runners = contenders()
    usable = [c for c in runners if not c.missing]
    for contender in runners:
        if contender.missing:
            progress(f"{contender.label}: {contender.missing}")
    workdir = Path(tempfile.mkdtemp(prefix="ana-bench-"))
    done: dict[str, Any] = {}
    report: dict[str, Any] = {
        "command": shlex.join(["python", "benchmarks/run.py", *argv]),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "settings": {
            "runs": runs,
            "triangles": TRIANGLES,
            "snapshots": SNAPSHOTS,
            "screen": SCREEN,
            "only": args.only,
        },
        "contenders": {
            c.key: {"label": c.label, "command": c.shown, "missing": c.missing} for c in runners
        },
        "workloads": done,
    }
    try:
        progress("machine facts")
        report["machine"] = machine_facts(runners)
        for workload in chosen:
            results = workload.measure(usable, runs[workload.key], workdir)
            done[workload.key] = {
                "title": workload.title,
                "runs": runs[workload.key],
                "results": results,
            }
    finally:
        sweep()
        shutil.rmtree(workdir, ignore_errors=True)
    report["figures"] = {w.key: figures for w in chosen if (figures := w.figures(done))}
    text = markdown(report, [workload.section(done, runners) for workload in chosen], runners)
    publish(text, report, args.out, "latest")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
