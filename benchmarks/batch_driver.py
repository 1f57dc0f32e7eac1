#!/usr/bin/env python3
"""W5's driver: one batch of subjects through Dask or soma-workflow, in a process of its own,
its report (JSON) on the last line of stdout. batch.py runs it:

    python benchmarks/batch_driver.py ENGINE --subjects N --parallel N --out DIR

ENGINE: dask (ana-headless's HeadlessWorker), dask-pyvirtualdisplay (plain Dask workers, each
of which starts a PyVirtualDisplay Xvfb from a worker plugin: what a Dask user writes without
ana-headless) or soma-workflow.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# What runs leave behind is counted as the test suite counts it (tests/leaks.py): the checkout's
# root goes last on the import path, so that ana_headless stays the installed one.
sys.path.append(str(Path(__file__).resolve().parent.parent))

from distributed import WorkerPlugin
from workloads import REPORT_DISPLAY

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parent / "examples"
SNAPSHOT = EXAMPLES / "subject_snapshot.py"
RUN_TIMEOUT = 120.0
# How much of a failed job's stderr is kept.
TAIL = 2000


def snapshot_task(subject: int, outdir: str) -> dict[str, Any]:
    """One subject in a Dask worker, whose PYTHONPATH holds examples/."""
    import subject_snapshot

    try:
        subject_snapshot.snapshot(subject, os.path.join(outdir, f"subject-{subject}.png"))
    except Exception as error:  # a failed subject is counted, not fatal
        return {"subject": subject, "error": f"{type(error).__name__}: {error}"}
    return {
        "subject": subject,
        "display": os.environ.get("DISPLAY", ""),
        "xauthority": os.environ.get("XAUTHORITY", ""),
    }


class VirtualDisplayPlugin(WorkerPlugin):  # type: ignore[misc]
    """A Dask worker plugin that gives its worker a
    PyVirtualDisplay Xvfb with GLX, the screen of the other contenders, for the worker's life.
    The display is set in the worker's os.environ, where Qt finds it."""

    def setup(self, worker: Any) -> None:
        from _workload import DEPTH, GLX_ARGS, HEIGHT, WIDTH
        from pyvirtualdisplay import Display

        self.display = Display(
            backend="xvfb", size=(WIDTH, HEIGHT), color_depth=DEPTH, extra_args=GLX_ARGS
        )
        self.display.start()

    def teardown(self, worker: Any) -> None:
        self.display.stop()


@contextlib.contextmanager
def dask_client(parallel: int, **cluster_options: Any) -> Iterator[Any]:
    """A Dask client of a local cluster of `parallel` worker processes of one thread each,
    once they have all connected."""
    from dask.distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=parallel,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            **cluster_options,
        ) as cluster,
        Client(cluster) as client,
    ):
        client.wait_for_workers(parallel, timeout=RUN_TIMEOUT)
        yield client


def drive_dask(subjects: int, parallel: int, outdir: Path, *, plugin: bool) -> dict[str, Any]:
    """The subjects as tasks of `parallel` workers: HeadlessWorker processes, or, with
    `plugin`, Dask's own worker processes given a display by VirtualDisplayPlugin."""
    from ana_headless.daskworker import HeadlessWorker

    cluster_kwargs: dict[str, Any] = {}
    if plugin:
        # Dask's own workers are started by multiprocessing, with this process's sys.path (a
        # Nanny's `env` reaches their os.environ only once they run, too late for imports).
        sys.path.insert(0, str(EXAMPLES))
    else:
        cluster_kwargs = {"worker_class": HeadlessWorker, "env": {"PYTHONPATH": str(EXAMPLES)}}
    start = time.perf_counter()
    with dask_client(parallel, **cluster_kwargs) as client:
        if plugin:
            client.register_plugin(VirtualDisplayPlugin(), name="virtual-display")
        ready = time.perf_counter() - start
        futures = client.map(snapshot_task, range(subjects), outdir=str(outdir), pure=False)
        results = client.gather(futures)
    return {"startup_s": ready, "results": results}


def subject_command(subject: int, outdir: Path) -> list[str]:
    """W5's job for one subject: the demo scene, saying which display it got."""
    return [
        sys.executable,
        str(REPORT_DISPLAY),
        str(SNAPSHOT),
        str(outdir / f"subject-{subject}.png"),
        "--subject",
        str(subject),
    ]


def drive_soma_workflow(commands: list[list[str]], outdir: Path) -> dict[str, Any]:
    """A workflow of one job per subject (`commands[subject]`); HOME holds the configuration
    (the benchmark wrote it: light mode, CONTAINER_COMMAND, the jobs at a time)."""
    from soma_workflow.client import Helper, Job, Workflow, WorkflowController

    jobs = [
        Job(
            command=command,
            name=f"subject-{n}",
            stderr_file=str(outdir / f"subject-{n}.err"),
        )
        for n, command in enumerate(commands)
    ]
    start = time.perf_counter()
    controller = WorkflowController()
    ready = time.perf_counter() - start
    workflow_id = controller.submit_workflow(Workflow(jobs=jobs))
    Helper.wait_workflow(workflow_id, controller)
    failed = set(Helper.list_failed_jobs(workflow_id, controller))
    names = controller.jobs(
        [job_id for job_id, *_ in controller.workflow_elements_status(workflow_id)[0]]
    )
    results = []
    for job_id, (name, *_) in names.items():
        subject = int(name.rpartition("-")[2])
        stderr = Path(outdir / f"{name}.err")
        said = stderr.read_text(errors="replace") if stderr.exists() else "no stderr"
        if job_id in failed:
            results.append({"subject": subject, "error": f"job failed: {said[-TAIL:]}"})
        else:
            results.append({"subject": subject, "stderr": said})
    controller.delete_workflow(workflow_id)
    controller.stop_engine()
    return {"startup_s": ready, "results": results}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("engine", choices=("dask", "dask-pyvirtualdisplay", "soma-workflow"))
    parser.add_argument("--subjects", type=int, required=True)
    parser.add_argument("--parallel", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    # soma-workflow and dask talk on stdout: keep it for the report.
    stdout = sys.stdout
    sys.stdout = sys.stderr
    report = (
        drive_soma_workflow([subject_command(n, args.out) for n in range(args.subjects)], args.out)
        if args.engine == "soma-workflow"
        else drive_dask(
            args.subjects, args.parallel, args.out, plugin=args.engine == "dask-pyvirtualdisplay"
        )
    )
    print(json.dumps(report), file=stdout, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
