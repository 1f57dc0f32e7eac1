"""soma-workflow's jobs headless (README "Many subjects, many machines"): its real engine, in
light mode, runs a workflow of QC snapshots 2 jobs at a time, each job under the launcher."""

from __future__ import annotations

import glob
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from soma_workflow.client import BarrierJob, Job, Workflow

from ana_headless.somaworkflow import job_prefix, make_headless, write_light_mode_configuration
from tests.conftest import ANA_HEADLESS, FIXTURES, ana_env, check_snapshot

SUBJECTS = 8
BATCH = FIXTURES / "somaworkflow_batch.py"
# What soma-workflow itself may leave in the shared temporary directory.
ITS_TMP = str(Path(tempfile.gettempdir()) / "soma-workflow*")


@pytest.mark.parametrize("applied_by", ["engine configuration", "workflow"])
def test_every_job_gets_a_display_of_its_own_and_keeps_its_status(
    tmp_path: Path, applied_by: str
) -> None:
    home, out = tmp_path / "home", tmp_path / "out"
    out.mkdir()
    by_engine = applied_by == "engine configuration"
    write_light_mode_configuration(
        home, 2, job_prefix(launcher=ANA_HEADLESS) if by_engine else None
    )
    theirs_before = set(glob.glob(ITS_TMP))
    argv = [sys.executable, str(BATCH), str(out), str(SUBJECTS)]
    # No display of the user's: a job that was not wrapped could not render at all.
    env = ana_env(HOME=str(home), DISPLAY=None, XAUTHORITY=None)
    result = subprocess.run(
        argv if by_engine else [*argv, "--wrap", ANA_HEADLESS],
        env=env,
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    report = json.loads(result.stdout)

    jobs = report["jobs"]
    assert report["workflow"] == "workflow_done"
    subjects = [f"subject-{n}" for n in range(SUBJECTS)]
    for name in subjects:
        assert (jobs[name]["status"], jobs[name]["exit_value"], jobs[name]["failed"]) == (
            "done",
            0,
            False,
        ), (name, jobs[name], (out / f"{name}.err").read_text())
    # The failing job's own status reaches the engine, which then does not run what follows.
    assert (jobs["no-such-dir"]["exit_value"], jobs["no-such-dir"]["failed"]) == (1, True)
    assert "cannot write" in (out / "no-such-dir.err").read_text()
    assert jobs["after-failure"]["exit_status"] == "aborted_before_running"

    for name in subjects:
        check_snapshot(out / f"{name}.png")
    pictures = {(out / f"{name}.png").read_bytes() for name in subjects}
    assert len(pictures) == SUBJECTS, "every subject has a picture of its own"
    said = [
        re.search(
            r"^display=(:\d+) xauthority=(\S+) started=([\d.]+)$",
            (out / f"{name}.err").read_text(),
            re.MULTILINE,
        )
        for name in [*subjects, "no-such-dir"]
    ]
    assert all(said), "every job ran under the launcher"
    cookies = {match.group(2) for match in said if match}
    assert len(cookies) == SUBJECTS + 1, "each job had a private display and cookie"
    # From each job's start to its PNG: never more than 2 at a time, and 2 at some time.
    spans = [
        (float(match.group(3)), (out / f"{name}.png").stat().st_mtime)
        for name, match in zip(subjects, said, strict=False)
        if match
    ]
    assert max(sum(start <= moment < end for start, end in spans) for moment, _ in spans) == 2
    # soma-workflow (light mode: an engine in the driver, no daemon) kept its files in HOME.
    assert set(glob.glob(ITS_TMP)) == theirs_before


def test_make_headless_wraps_commands_once_and_leaves_engine_jobs() -> None:
    render = Job(command=["python", "snap.py", "out.png"], name="render")
    barrier = BarrierJob(name="barrier")
    workflow = Workflow(jobs=[render, barrier], dependencies=[(render, barrier)])
    make_headless(workflow, "--gl", "mesa")
    make_headless(workflow)
    assert render.command == [
        "ana-headless",
        "exec",
        "--gl",
        "mesa",
        "--",
        "python",
        "snap.py",
        "out.png",
    ]
    assert barrier.command == []
