#!/usr/bin/env python3
"""W6: the real Anatomist at batch scale. Each subject has a mesh file of its own (a bumpy
sphere of its own resolution, generated); each gets one 256x256 snapshot in BrainVISA's
Anatomist, driven by pyanatomist's socket client, checked by the script, `--parallel` (2) at a
time. Needs the Anatomist that `make anatomist` builds (skips, saying so, without it).

    python benchmarks/anatomist_batch.py [--subjects N] [--parallel N] [--only a,b,...] [--out DIR]

The contenders:

- xvfb-run: one `xvfb-run -a python examples/anatomist_snapshot.py` per subject;
- ana-headless-run: one `ana-headless run examples/anatomist_snapshot.py` per subject;
- loop: one script (anatomist_loop.py) over all the subjects, on one Anatomist, under one
  `xvfb-run -a`: what a user writes to pay for the start once (one subject at a time);
- soma-workflow: a job per subject, each under `ana-headless exec` through the engine's
  CONTAINER_COMMAND, `--parallel` jobs at a time;
- dask-warm: a LocalCluster of `--parallel` ana_headless.daskworker.HeadlessWorker processes,
  one task per subject, each worker with its warm Anatomist (ana_headless.warmanatomist),
  each task drawing in the warm Anatomist's 3D window as the loop does in its one window.

Reported for each, from the first process's start to the last one's end: snapshots per
second, and the ratios to xvfb-run and to the loop; failures (a subject whose run failed, or
whose PNG is missing or fails the example's pixel check, done again here); what was left
behind (X servers, display files, ana-headless directories, `anatomist` programs); peak
memory (the PSS of every process the benchmark started, summed, sampled every 0.2 s). Results
go to anatomist-batch.md and .json under benchmarks/results/ (or --out), the table to stdout.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.append(str(Path(__file__).resolve().parent.parent))

from batch import Batch, accounted, one_process_per_subject, soma_workflow_home, through_driver
from batch_driver import dask_client, drive_soma_workflow
from contenders import contenders
from machine import machine_facts
from report import head, left_text, publish
from runs import progress
from workloads import REPORT_DISPLAY

from tests.leaks import ANATOMIST, stop_process, sweep, tagged

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
EXAMPLE = ROOT / "examples" / "anatomist_snapshot.py"
LOOP = HERE / "anatomist_loop.py"
# Where `make anatomist` builds it (tests/real_anatomist/conftest.py says the same).
ANATOMIST_ROOT = (
    Path(os.environ.get("ANA_VENDOR_CACHE") or Path.home() / ".cache" / "ana-headless-vendor")
    / "anatomist"
)
PREFIX = ANATOMIST_ROOT / "build"
PYANATOMIST = ANATOMIST_ROOT / "python"
# The build links against Debian's Qt: its scripts run with Debian's Python and apt's PyQt5.
DEBIAN_PYTHON = "/usr/bin/python3"
SUBJECTS = 200
PARALLEL = 2
SIZE = (256, 256)
CONTENDERS = ("xvfb-run", "ana-headless-run", "loop", "soma-workflow", "dask-warm")
LABELS = {
    "xvfb-run": "(a) `xvfb-run -a`, a script per subject",
    "ana-headless-run": "(b) `ana-headless run`, a script per subject",
    "loop": "(c) one script looping, one Anatomist, under `xvfb-run -a`",
    "soma-workflow": "(d) soma-workflow, `ana-headless exec` per job",
    "dask-warm": "(e) Dask `HeadlessWorker`s, a warm Anatomist each",
}


def environment(home: Path) -> dict[str, str]:
    """A BrainVISA user's environment for the build: the program on PATH, its libraries and
    shared files, pyanatomist; ana-headless runs scripts with Debian's Python; a HOME of its
    own (another Anatomist version's settings would open a modal dialog)."""
    return {
        **os.environ,
        "PATH": f"{PREFIX / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "LD_LIBRARY_PATH": os.pathsep.join(
            filter(None, [str(PREFIX / "lib"), os.environ.get("LD_LIBRARY_PATH")])
        ),
        "BRAINVISA_SHARE": str(PREFIX / "share"),
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(PYANATOMIST), str(HERE), os.environ.get("PYTHONPATH")])
        ),
        "ANA_HEADLESS_PYTHON": DEBIAN_PYTHON,
        "HOME": str(home),
    }


def load_example() -> Any:
    sys.path.insert(0, str(EXAMPLE.parent))
    import anatomist_snapshot

    return anatomist_snapshot


def make_meshes(meshdir: Path, subjects: int) -> None:
    example = load_example()
    meshdir.mkdir()
    for subject in range(subjects):
        example.write_sphere_mesh(meshdir / f"subject-{subject}.mesh", rings=12 + subject % 9)


def snapshot_job(meshdir: Path, outdir: Path, subject: int) -> list[str]:
    """One subject's script, saying which display it got (report_display.py)."""
    return [
        str(REPORT_DISPLAY),
        str(EXAMPLE),
        str(outdir / f"subject-{subject}.png"),
        "--mesh",
        str(meshdir / f"subject-{subject}.mesh"),
        "--size",
        "x".join(map(str, SIZE)),
    ]


def warm_task(subject: int, meshdir: str, outdir: str) -> dict[str, Any]:
    """(e)'s task, in a Dask worker: the subject on the worker's warm Anatomist."""
    from ana_headless.warmanatomist import worker_anatomist

    example = load_example()
    anatomist = worker_anatomist("-b")

    def snapshot(a: Any, subject: int) -> None:
        png = Path(outdir) / f"subject-{subject}.png"
        mesh = Path(meshdir) / f"subject-{subject}.mesh"
        example.snapshot_in(a, anatomist.window("3D"), mesh, png, SIZE)
        example.check_snapshot(png, SIZE)

    outcome = anatomist.run(snapshot, subject)
    if not outcome.ok:
        return {"subject": subject, "error": outcome.error}
    return {
        "subject": subject,
        "display": os.environ.get("DISPLAY", ""),
        "xauthority": os.environ.get("XAUTHORITY", ""),
    }


def drive_dask(subjects: int, parallel: int, meshdir: Path, outdir: Path) -> dict[str, Any]:
    from ana_headless.daskworker import HeadlessWorker

    start = time.perf_counter()
    with dask_client(parallel, worker_class=HeadlessWorker) as client:
        ready = time.perf_counter() - start
        futures = client.map(
            warm_task, range(subjects), meshdir=str(meshdir), outdir=str(outdir), pure=False
        )
        results = client.gather(futures)
    return {"startup_s": ready, "results": results}


def check_pngs(subjects: int, outdir: Path, failures: dict[int, str]) -> None:
    """The example's own pixel check, again, on every subject that did not fail already."""
    example = load_example()
    for subject in range(subjects):
        png = outdir / f"subject-{subject}.png"
        if subject in failures:
            continue
        try:
            example.check_snapshot(png, SIZE)
        except example.SnapshotError as error:
            failures[subject] = str(error)


def measure(
    contender: str, subjects: int, parallel: int, workdir: Path, ana_headless: str
) -> tuple[Batch, int]:
    """The batch, and how many `anatomist` programs it left running."""
    meshdir, outdir = workdir / "meshes", workdir / contender
    outdir.mkdir()

    def run(tag: str) -> tuple[dict[int, str], set[str], float | None]:
        if contender in ("xvfb-run", "ana-headless-run"):
            prefix = (
                ["xvfb-run", "-a", DEBIAN_PYTHON]
                if contender == "xvfb-run"
                else [ana_headless, "run"]
            )
            failures, claimed = one_process_per_subject(
                lambda subject: [*prefix, *snapshot_job(meshdir, outdir, subject)],
                subjects,
                parallel,
                tag,
            )
            return failures, claimed, None
        if contender == "loop":
            command = ["xvfb-run", "-a", DEBIAN_PYTHON, str(REPORT_DISPLAY), str(LOOP)]
            failed, claimed = one_process_per_subject(
                lambda _: [*command, str(meshdir), str(outdir), str(subjects)], 1, 1, tag
            )
            # One run for all: a failed run fails every subject it did not write.
            failures = {
                subject: failed[0]
                for subject in range(subjects)
                if failed and not (outdir / f"subject-{subject}.png").exists()
            }
            return failures, claimed, None
        home = None
        if contender == "soma-workflow":
            home = soma_workflow_home(workdir, parallel, ana_headless)
        argv = [sys.executable, __file__, "--driver", contender, "--subjects", str(subjects)]
        argv += ["--parallel", str(parallel), "--out", str(workdir)]
        return through_driver(argv, subjects, tag, home=home)

    batch, tag = accounted(run, private_dirs=contender not in ("xvfb-run", "loop"))
    programs = tagged(ANATOMIST, tag)
    for pid in programs:
        stop_process(pid)
    check_pngs(subjects, outdir, batch.failures)
    shutil.rmtree(outdir, ignore_errors=True)
    return batch, len(programs)


def markdown(report: dict[str, Any]) -> str:
    settings, results = report["settings"], report["results"]
    out = [
        *head("ana-headless benchmark W6: the real Anatomist at batch scale", report),
        "",
        f"## W6: {settings['subjects']} subjects, a mesh file and a {SIZE[0]}x{SIZE[1]} "
        f"Anatomist snapshot each, {settings['parallel']} at a time",
        "",
        "| contender | snapshots/s | ratio to (a) | ratio to (c) | wall s | of which start-up s "
        "| peak memory MiB (PSS) | failures | left behind |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def ratio(result: dict[str, Any], key: str) -> str:
        base = results.get(key)
        return f"{result['snapshots_per_s'] / base['snapshots_per_s']:.1f}" if base else "n/a"

    for key in CONTENDERS:
        result = results.get(key)
        if result is None:
            continue
        startup = "" if result["startup_s"] is None else f"{result['startup_s']:.1f}"
        left = left_text(result["left_behind"])
        if result["anatomist_left"]:
            left = f"{result['anatomist_left']} anatomist" + ("" if left == "0" else f", {left}")
        out.append(
            f"| {LABELS[key]} | {result['snapshots_per_s']:.2f} | {ratio(result, 'xvfb-run')} | "
            f"{ratio(result, 'loop')} | {result['seconds']:.1f} | {startup} | "
            f"{result['peak_memory_mib']:.0f} | {result['failures']} | {left} |"
        )
    out += [
        "",
        f"Load average: {report['load_before']} before, {report['load_after']} after. "
        "Start-up: until the Dask workers were connected, or soma-workflow's engine ready; "
        "included in the wall time. Left behind: an `anatomist` program, an Xvfb, "
        "/tmp/.X*-lock, /tmp/.X11-unix/X* or ana-headless-* directory still there once the "
        "batch had ended.",
    ]
    return "\n".join(out) + "\n"


def load_average() -> str:
    return " ".join(f"{load:.1f}" for load in os.getloadavg())


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="W6: Anatomist snapshots of many subjects.")
    parser.add_argument("--subjects", type=int, default=SUBJECTS, metavar="N")
    parser.add_argument("--parallel", type=int, default=PARALLEL, metavar="N")
    parser.add_argument("--only", default=",".join(CONTENDERS), metavar="A,B")
    parser.add_argument("--out", type=Path, default=HERE / "results", metavar="DIR")
    # The Dask and soma-workflow batches run in a process of their own (batch.through_driver).
    parser.add_argument("--driver", choices=("soma-workflow", "dask-warm"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.only = [name.strip() for name in args.only.split(",") if name.strip()]
    if set(args.only) - set(CONTENDERS) or not args.only:
        parser.error(f"--only: choose from {', '.join(CONTENDERS)}")
    if args.subjects < 1 or args.parallel < 1:
        parser.error("--subjects and --parallel must be at least 1")
    return args


def drive(engine: str, subjects: int, parallel: int, workdir: Path) -> None:
    """The driver process: the batch through Dask or soma-workflow, its report on stdout."""
    stdout, sys.stdout = sys.stdout, sys.stderr
    meshdir, outdir = workdir / "meshes", workdir / engine
    if engine == "dask-warm":
        report = drive_dask(subjects, parallel, meshdir, outdir)
    else:
        commands = [
            [DEBIAN_PYTHON, *snapshot_job(meshdir, outdir, subject)] for subject in range(subjects)
        ]
        report = drive_soma_workflow(commands, outdir)
    print(json.dumps(report), file=stdout, flush=True)


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    if args.driver:
        drive(args.driver, args.subjects, args.parallel, args.out)
        return 0
    if not (PREFIX / "bin" / "anatomist").exists() or not PYANATOMIST.is_dir():
        progress(f"W6 skipped: no Anatomist in {ANATOMIST_ROOT} (`make anatomist` builds it)")
        return 0
    runners = contenders()
    ana = next(c for c in runners if c.key == "ana-headless-run")
    if ana.missing:
        progress(f"ana-headless: {ana.missing}")
        return 1
    workdir = Path(tempfile.mkdtemp(prefix="ana-bench-anatomist-"))
    os.environ.update(environment(workdir / "home"))
    (workdir / "home").mkdir()
    report: dict[str, Any] = {
        "command": shlex.join(["python", "benchmarks/anatomist_batch.py", *argv]),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "settings": {"subjects": args.subjects, "parallel": args.parallel, "only": args.only},
        "load_before": load_average(),
        "results": {},
    }
    try:
        report["machine"] = machine_facts(runners)
        make_meshes(workdir / "meshes", args.subjects)
        for contender in (c for c in CONTENDERS if c in args.only):
            progress(f"W6: {LABELS[contender]}: {args.subjects} subjects")
            batch, programs = measure(
                contender, args.subjects, args.parallel, workdir, ana.prefix[0]
            )
            result = batch.as_json(args.subjects)
            result["anatomist_left"] = programs
            report["results"][contender] = result
            progress(
                f"  {args.subjects / batch.seconds:.2f} snapshots/s, {len(batch.failures)} failures"
            )
    finally:
        sweep()
        shutil.rmtree(workdir, ignore_errors=True)
    report["load_after"] = load_average()
    publish(markdown(report), report, args.out, "anatomist-batch")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
