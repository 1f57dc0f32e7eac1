#!/usr/bin/env python3
"""W5: a batch of QC snapshots, one per subject, the way people run them today and through
ana-headless on the engines they use.

    python benchmarks/batch.py [--subjects N] [--parallel N] [--only a,b,...] [--out DIR]

Each subject is examples/subject_snapshot.py: the demo scene turned by an angle of its own,
256x256, saved as PNG and checked by the script. The contenders, N at a time (default 2):

- xvfb-run: one `xvfb-run -a python SCRIPT` process per subject;
- ana-headless-run: one `ana-headless run SCRIPT` process per subject;
- dask: a LocalCluster (loopback) of N ana_headless.daskworker.HeadlessWorker processes, one
  thread each, one task per subject: each worker keeps Qt and its GL context between tasks;
- dask-pyvirtualdisplay: the same cluster of Dask's own worker processes, each given an Xvfb
  by a worker plugin that starts PyVirtualDisplay (what Dask users write without ana-headless):
  the same warm processes, another way to give them a display;
- soma-workflow: one job per subject in a workflow run by soma-workflow in light mode, N jobs
  at a time, each job under `ana-headless exec` through the engine's CONTAINER_COMMAND.

Reported for each, from the first process's start to the last one's end (the Dask cluster's
and the soma-workflow engine's start-up included): snapshots per second; peak memory, the
largest sum of the proportional set size (PSS) of all the processes this benchmark has
started, sampled every 0.2 s; failures, a subject whose run failed or whose PNG is missing or
fails the demo's pixel check (done again here); and what was left behind, counted (and
cleaned up) as run.py counts it. Results go to batch.md and batch.json under
benchmarks/results/ (or --out), and the table to stdout.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import queue
import shlex
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# What runs leave behind is counted as the test suite counts it (tests/leaks.py): the checkout's
# root goes last on the import path, so that ana_headless stays the installed one.
sys.path.append(str(Path(__file__).resolve().parent.parent))

from contenders import contenders
from machine import machine_facts
from memory import PeakMemory
from report import head, left_text, publish
from runs import claims, progress, run_once
from workloads import REPORT_DISPLAY

from tests.leaks import KINDS, Debris, new_tag, sweep

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parent / "examples"
SNAPSHOT = EXAMPLES / "subject_snapshot.py"
# Runs a batch through Dask or soma-workflow, in a process of its own.
DRIVER = HERE / "batch_driver.py"
SUBJECTS = 200
PARALLEL = 2
CONTENDERS = ("xvfb-run", "ana-headless-run", "dask", "dask-pyvirtualdisplay", "soma-workflow")
LABELS = {
    "xvfb-run": "xvfb-run -a python, a process per subject",
    "ana-headless-run": "ana-headless run, a process per subject",
    "dask": "Dask, ana-headless workers",
    "dask-pyvirtualdisplay": "Dask, a PyVirtualDisplay worker plugin",
    "soma-workflow": "soma-workflow, ana-headless exec per job",
}
# Per snapshot process, and per batch.
RUN_TIMEOUT = 120.0
BATCH_TIMEOUT = 1800.0
# How long the batch's servers may take to go before they count as left behind.
SETTLE = 10.0
# How much of a failed run's stderr is kept.
TAIL = 2000


# ---------------------------------------------------------------------------------------------
# Measuring


@dataclass
class Batch:
    seconds: float = 0.0
    startup_s: float | None = None
    peak_memory: int = 0
    # subject -> what went wrong
    failures: dict[int, str] = field(default_factory=dict)
    left_behind: Counter[str] = field(default_factory=Counter)
    left_in_place: list[str] = field(default_factory=list)

    def as_json(self, subjects: int) -> dict[str, Any]:
        return {
            "seconds": self.seconds,
            "snapshots_per_s": subjects / self.seconds,
            "startup_s": self.startup_s,
            "peak_memory_mib": self.peak_memory / 2**20,
            "failures": len(self.failures),
            "first_failures": {str(k): v for k, v in sorted(self.failures.items())[:3]},
            "left_behind": {kind: self.left_behind.get(kind, 0) for kind in KINDS},
            "left_in_place": self.left_in_place,
        }


def one_process_per_subject(
    command: Callable[[int], list[str]], subjects: int, parallel: int, tag: str
) -> tuple[dict[int, str], set[str]]:
    """Each subject in a process of its own (`command(subject)`), `parallel` at a time; the
    failures and the files the runs claimed."""
    todo: queue.SimpleQueue[int] = queue.SimpleQueue()
    for subject in range(subjects):
        todo.put(subject)
    failures: dict[int, str] = {}
    claimed: set[str] = set()

    def work() -> None:
        while True:
            try:
                subject = todo.get_nowait()
            except queue.Empty:
                return
            outcome = run_once(command(subject), tag, RUN_TIMEOUT)
            claimed.update(outcome.claimed)
            if outcome.problem:
                failures[subject] = f"{outcome.problem}: {outcome.stderr[-TAIL:]}"

    workers = [threading.Thread(target=work) for _ in range(parallel)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return failures, claimed


def through_driver(
    argv: list[str], subjects: int, tag: str, *, home: Path | None
) -> tuple[dict[int, str], set[str], float | None]:
    """A batch in a driver process (`argv`, which prints a JSON report on its last line:
    each subject's error or display, the engine's start-up), with its own HOME if given; the
    failures, the files the subjects' runs claimed, and the engine's start-up."""
    outcome = run_once(["env", f"HOME={home}", *argv] if home else argv, tag, BATCH_TIMEOUT)
    try:
        report = json.loads(outcome.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        problem = outcome.problem or "no report"
        return dict.fromkeys(range(subjects), f"{problem}: {outcome.stderr[-TAIL:]}"), set(), None
    failures, said = {}, []
    for result in report["results"]:
        if "error" in result:
            failures[result["subject"]] = result["error"]
        said.append(
            result.get("stderr")
            or f"bench-display={result['display']}\nbench-xauthority={result['xauthority']}\n"
        )
    return failures, claims("".join(said)), report["startup_s"]


# What runs a contender's batch under its tag: the failures, the files its runs claimed, and
# its engine's start-up (None where it has none).
BatchRun = Callable[[str], tuple[dict[int, str], set[str], float | None]]


def accounted(run: BatchRun, *, private_dirs: bool) -> tuple[Batch, str]:
    """Run a batch under a tag of its own, timed, its peak memory sampled, and what it left
    behind counted; the batch and its tag."""
    tag = new_tag()
    debris = Debris(tag, private_dirs=private_dirs)
    memory = PeakMemory()
    batch = Batch()
    memory.start()
    start = time.perf_counter()
    batch.failures, claimed, batch.startup_s = run(tag)
    batch.seconds = time.perf_counter() - start
    batch.peak_memory = memory.stop()
    batch.left_behind, batch.left_in_place = debris.collect(claimed, SETTLE)
    return batch, tag


def soma_workflow_home(workdir: Path, parallel: int, launcher: str) -> Path:
    """A HOME of its own for soma-workflow's configuration, database and logs, whose jobs run
    `parallel` at a time under `launcher`'s job prefix."""
    from ana_headless.somaworkflow import job_prefix, write_light_mode_configuration

    home = workdir / "soma-workflow-home"
    write_light_mode_configuration(home, parallel, job_prefix(launcher=launcher))
    return home


def check_pngs(subjects: int, outdir: Path, failures: dict[int, str]) -> None:
    """The demo's own pixel check, again, on every subject that did not fail already."""
    spec = importlib.util.spec_from_file_location("render_scene", EXAMPLES / "render_scene.py")
    assert spec is not None and spec.loader is not None
    render_scene = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render_scene)
    for subject in range(subjects):
        png = outdir / f"subject-{subject}.png"
        if subject in failures:
            continue
        if not png.is_file():
            failures[subject] = "no PNG"
            continue
        try:
            render_scene.check_image(png)
        except render_scene.RenderError as error:
            failures[subject] = str(error)


def measure(
    contender: str, subjects: int, parallel: int, workdir: Path, ana_headless: str
) -> Batch:
    outdir = workdir / contender
    outdir.mkdir()

    def run(tag: str) -> tuple[dict[int, str], set[str], float | None]:
        if contender in ("xvfb-run", "ana-headless-run"):
            prefix = (
                ["xvfb-run", "-a", sys.executable]
                if contender == "xvfb-run"
                else [ana_headless, "run"]
            )

            def command(subject: int) -> list[str]:
                png = outdir / f"subject-{subject}.png"
                return [
                    *prefix,
                    str(REPORT_DISPLAY),
                    str(SNAPSHOT),
                    str(png),
                    "--subject",
                    str(subject),
                ]

            return (*one_process_per_subject(command, subjects, parallel, tag), None)
        home = None
        if contender == "soma-workflow":
            home = soma_workflow_home(workdir, parallel, ana_headless)
        argv = [sys.executable, str(DRIVER), contender, "--subjects", str(subjects)]
        argv += ["--parallel", str(parallel), "--out", str(outdir)]
        return through_driver(argv, subjects, tag, home=home)

    private_dirs = contender not in ("xvfb-run", "dask-pyvirtualdisplay")
    batch, _tag = accounted(run, private_dirs=private_dirs)
    check_pngs(subjects, outdir, batch.failures)
    shutil.rmtree(outdir, ignore_errors=True)
    return batch


# ---------------------------------------------------------------------------------------------
# Report


def markdown(report: dict[str, Any]) -> str:
    settings = report["settings"]
    results = report["results"]
    base = results.get("xvfb-run")
    out = [
        *head("ana-headless batch benchmark (W5)", report),
        "",
        f"## W5: {settings['subjects']} subjects, a snapshot each (256x256, the demo scene "
        f"turned by the subject's angle), {settings['parallel']} at a time",
        "",
        "| contender | snapshots/s | ratio to xvfb-run | wall s | of which start-up s | "
        "peak memory MiB (PSS) | failures | left behind |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key in CONTENDERS:
        result = results.get(key)
        if result is None:
            continue
        ratio = f"{result['snapshots_per_s'] / base['snapshots_per_s']:.1f}" if base else "n/a"
        startup = "" if result["startup_s"] is None else f"{result['startup_s']:.1f}"
        out.append(
            f"| {LABELS[key]} | {result['snapshots_per_s']:.2f} | {ratio} | "
            f"{result['seconds']:.1f} | {startup} | {result['peak_memory_mib']:.0f} | "
            f"{result['failures']} | {left_text(result['left_behind'])} |"
        )
    out += [
        "",
        "Start-up: until the Dask workers were connected, or soma-workflow's engine "
        "ready; included in the wall time. Peak memory: all the processes the contender "
        "ran at that moment (launchers, X servers, interpreters, workers, the engine). "
        "Left behind: an Xvfb, /tmp/.X*-lock, /tmp/.X11-unix/X* or ana-headless-* "
        "directory still there once the batch had ended.",
    ]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="W5: QC snapshots of many subjects, by process, by Dask and by soma-workflow."
    )
    parser.add_argument(
        "--subjects",
        type=int,
        default=SUBJECTS,
        metavar="N",
        help=f"subjects, a snapshot each (default: {SUBJECTS})",
    )
    parser.add_argument(
        "--parallel",
        type=int,
        default=PARALLEL,
        metavar="N",
        help=f"processes, workers or jobs at a time (default: {PARALLEL})",
    )
    parser.add_argument(
        "--only",
        default=",".join(CONTENDERS),
        metavar="A,B",
        help=f"contenders (default: all of {', '.join(CONTENDERS)})",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=HERE / "results",
        metavar="DIR",
        help="where batch.md and batch.json go (default: benchmarks/results)",
    )
    args = parser.parse_args(argv)
    args.only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(args.only) - set(CONTENDERS))
    if unknown or not args.only:
        parser.error(
            f"--only: {', '.join(unknown) or 'nothing'}: choose from {', '.join(CONTENDERS)}"
        )
    if args.subjects < 1 or args.parallel < 1:
        parser.error("--subjects and --parallel must be at least 1")
    return args


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    runners = contenders()
    ana = next(c for c in runners if c.key == "ana-headless-run")
    if ana.missing:
        progress(f"ana-headless: {ana.missing}")
        return 1
    report: dict[str, Any] = {
        "command": shlex.join(["python", "benchmarks/batch.py", *argv]),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "settings": {"subjects": args.subjects, "parallel": args.parallel, "only": args.only},
        "results": {},
    }
    workdir = Path(tempfile.mkdtemp(prefix="ana-bench-batch-"))
    try:
        progress("machine facts")
        report["machine"] = machine_facts(runners)
        for contender in (c for c in CONTENDERS if c in args.only):
            progress(
                f"W5: {LABELS[contender]}: {args.subjects} subjects, {args.parallel} at a time"
            )
            batch = measure(contender, args.subjects, args.parallel, workdir, ana.prefix[0])
            report["results"][contender] = batch.as_json(args.subjects)
            progress(
                f"  {args.subjects / batch.seconds:.2f} snapshots/s, {len(batch.failures)} failures"
            )
    finally:
        sweep()
        shutil.rmtree(workdir, ignore_errors=True)
    publish(markdown(report), report, args.out, "batch")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
