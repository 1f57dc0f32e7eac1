"""The real Anatomist at batch scale: a warm program per worker process
(ana_headless.warmanatomist), its restart after a crash, two workers with two programs, the
pytest plugin's fixture under xdist, and pyanatomist's socket client connected as soon as its
program listens."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dask
import pytest
from dask.distributed import Client, LocalCluster

from ana_headless.daskworker import HeadlessWorker
from tests.conftest import ANA_HEADLESS, leftovers, run_ana
from tests.real_anatomist.conftest import (
    DEBIAN_PYTHON,
    PYANATOMIST,
    ROOT,
    SIZE,
    TIMEOUT,
    assert_shows_the_mesh,
    finished,
    script,
    without_display,
)

pytestmark = pytest.mark.anatomist

WARM_SCRIPT = Path(__file__).with_name("warm_script.py")
# How long after its program listens the client may connect (pyanatomist alone: up to 1 s).
CONNECTION_LAG = 0.3


def lines_of(result: subprocess.CompletedProcess[bytes]) -> list[dict[str, Any]]:
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    return [json.loads(line) for line in result.stdout.decode().splitlines() if line[:1] == "{"]


def run_loop(env: dict[str, str], outdir: Path, *options: str) -> list[dict[str, Any]]:
    result = run_ana(
        ["run", str(WARM_SCRIPT), str(outdir), "loop", *options], env=env, timeout=TIMEOUT * 2
    )
    return lines_of(result)


def test_the_socket_client_connects_as_soon_as_its_program_listens(
    anatomist_env: dict[str, str], tmp_path: Path
) -> None:
    """Measured in the socket tables, not by a clock around the call: when the program's port
    began to listen, and when the client's connection to it was established."""
    result = subprocess.run(
        [DEBIAN_PYTHON, str(WARM_SCRIPT), str(tmp_path), "connect", "--how", "ana_headless"],
        env=without_display(anatomist_env),
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
    )
    reports = lines_of(result)
    assert len(reports) == 3
    for report in reports:
        assert report["connected"] - report["listening"] < CONNECTION_LAG, report
    assert leftovers() == set()


def test_an_unchanged_script_connects_as_soon_as_its_program_listens(
    anatomist_env: dict[str, str], tmp_path: Path
) -> None:
    """`anatomist.api.Anatomist()` left to itself, under `ana-headless run`: the launcher's
    Python hook gives it the same."""
    result = run_ana(
        ["run", str(WARM_SCRIPT), str(tmp_path), "connect", "--how", "api"], env=anatomist_env
    )
    reports = lines_of(result)
    assert len(reports) == 3
    for report in reports:
        assert report["connected"] - report["listening"] < CONNECTION_LAG, report
        assert report["port"] != 50007, "a port of its own, not pyanatomist's first free one"


RUNS = 8


@pytest.mark.slow
def test_8_unchanged_scripts_at_once(anatomist_env: dict[str, str], tmp_path: Path) -> None:
    """Left to itself, each would take port 50007, and all would drive one program."""
    env = {**anatomist_env, "LP_NUM_THREADS": "1"}
    folders = [tmp_path / str(index) for index in range(RUNS)]
    runs = []
    for folder in folders:
        folder.mkdir()
        argv = [ANA_HEADLESS, "run", "--timeout", "120", *script(folder, "--how", "unchanged")]
        runs.append(subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    reports = []
    for folder, run in zip(folders, runs, strict=True):
        out, err = run.communicate(timeout=TIMEOUT * 2)
        result = subprocess.CompletedProcess(run.args, run.returncode, out, err)
        reports.append(finished(result, folder)[1])
    assert len({report["anatomist"]["argv"][2] for report in reports}) == RUNS, "8 ports"
    assert all(report["anatomist"]["display"] == report["display"] for report in reports)
    assert leftovers() == set()


def test_20_tasks_on_one_warm_program(anatomist_env: dict[str, str], tmp_path: Path) -> None:
    subjects = run_loop(anatomist_env, tmp_path, "20")
    assert len(subjects) == 20
    assert all(subject["ok"] and subject["attempts"] == 1 for subject in subjects), subjects
    assert len({subject["pid"] for subject in subjects}) == 1, "one program for all 20"
    # Nothing of a task is left after it: no object, and one window, the one that keeps the
    # program up between tasks.
    assert all(subject["held"] == subjects[0]["held"] for subject in subjects)
    objects, windows = subjects[0]["held"]
    assert objects == [] and len(windows) == 1
    for number in range(20):
        assert_shows_the_mesh(tmp_path / f"subject-{number}.png")
    assert leftovers() == set()


def test_tasks_in_the_warm_window(anatomist_env: dict[str, str], tmp_path: Path) -> None:
    subjects = run_loop(anatomist_env, tmp_path, "5", "--window")
    assert all(subject["ok"] and subject["attempts"] == 1 for subject in subjects), subjects
    assert len({subject["pid"] for subject in subjects}) == 1
    # The 3D window stays, empty, beside the one that keeps the program up.
    objects, windows = subjects[0]["held"]
    assert objects == [] and len(windows) == 2
    assert all(subject["held"] == subjects[0]["held"] for subject in subjects)
    for number in range(5):
        assert_shows_the_mesh(tmp_path / f"subject-{number}.png")
    assert leftovers() == set()


def test_tasks_that_keep_what_they_made_get_a_fresh_program_each(
    anatomist_env: dict[str, str], tmp_path: Path
) -> None:
    subjects = run_loop(anatomist_env, tmp_path, "3", "--keep")
    assert all(subject["ok"] and subject["attempts"] == 1 for subject in subjects), subjects
    assert len({subject["pid"] for subject in subjects}) == 3
    # After each task, its program was stopped (no program to look into until the next task).
    assert all(subject["held"] is None for subject in subjects)
    assert leftovers() == set()


def test_a_program_killed_mid_task_is_restarted_and_the_task_retried(
    anatomist_env: dict[str, str], tmp_path: Path
) -> None:
    subjects = run_loop(anatomist_env, tmp_path, "6", "--kill", "2")
    assert all(subject["ok"] for subject in subjects), subjects
    assert [subject["attempts"] for subject in subjects] == [1, 1, 2, 1, 1, 1]
    pids = [subject["pid"] for subject in subjects]
    assert pids[0] == pids[1] != pids[2] == pids[3] == pids[4] == pids[5]
    for number in range(6):
        assert_shows_the_mesh(tmp_path / f"subject-{number}.png")
    assert leftovers() == set()


def test_a_task_that_closes_the_client_leaves_the_next_a_fresh_program(
    anatomist_env: dict[str, str], tmp_path: Path
) -> None:
    subjects = run_loop(anatomist_env, tmp_path, "3", "--close", "1")
    assert all(subject["ok"] and subject["attempts"] == 1 for subject in subjects), subjects
    pids = [subject["pid"] for subject in subjects]
    assert pids[0] == pids[1] != pids[2]
    assert leftovers() == set()


def test_a_subject_that_fails_twice_is_reported_and_the_batch_goes_on(
    anatomist_env: dict[str, str], tmp_path: Path
) -> None:
    subjects = run_loop(anatomist_env, tmp_path, "4", "--bad", "1")
    assert [subject["ok"] for subject in subjects] == [True, False, True, True]
    assert subjects[1]["attempts"] == 2 and "Error" in subjects[1]["error"]
    for number in (0, 2, 3):
        assert_shows_the_mesh(tmp_path / f"subject-{number}.png")
    assert leftovers() == set()


@pytest.fixture
def cluster_env(anatomist_env: dict[str, str], tmp_path: Path) -> Iterator[dict[str, str]]:
    """The workers' environment: this interpreter (it has dask), with pyanatomist, the task
    module (warm_script.py) and the `anatomist` program."""
    env = {
        **anatomist_env,
        "PYTHONPATH": os.pathsep.join(map(str, (ROOT, PYANATOMIST, WARM_SCRIPT.parent))),
        "DASK_TEMPORARY_DIRECTORY": str(tmp_path),
    }
    with dask.config.set({"temporary-directory": str(tmp_path)}):
        yield env


def test_two_dask_workers_two_programs_on_two_displays(
    cluster_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(WARM_SCRIPT.parent))
    monkeypatch.syspath_prepend(str(PYANATOMIST))
    import warm_script

    subjects = [warm_script.make_subject(tmp_path, number) for number in range(12)]
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            worker_class=HeadlessWorker,
            env=cluster_env,
        ) as cluster,
        Client(cluster) as client,
    ):
        client.wait_for_workers(2, timeout=120)
        reports = client.gather(client.map(warm_script.dask_task, subjects))
    assert all(report["ok"] for report in reports), reports
    workers = {report["worker"] for report in reports}
    programs = {report["pid"] for report in reports}
    assert len(workers) == len(programs) == 2, reports
    for report in reports:
        assert report["program_display"] == report["display"]
    assert len({report["display"] for report in reports}) == 2
    for number in range(12):
        assert_shows_the_mesh(tmp_path / f"subject-{number}.png")
    assert leftovers() == set()


SUITE = """\
import json, os, sys
sys.path.insert(0, {examples!r})
import anatomist_snapshot as example

def snap(a, tmp_path, number):
    mesh, png = tmp_path / "sphere.mesh", {outdir!r} + f"/subject-{{number}}.png"
    example.write_sphere_mesh(mesh, rings=8 + number)
    example.snapshot(a, mesh, example.Path(png), {size!r})
    example.check_snapshot(example.Path(png), {size!r})
    from ana_headless.warmanatomist import worker_anatomist

    report = {{"worker": os.getpid(), "display": os.environ["DISPLAY"],
               "program": worker_anatomist().pid}}
    with open(png + ".json", "w") as output:
        json.dump(report, output)

{tests}
"""


def test_the_pytest_fixture_one_program_per_xdist_worker(
    anatomist_env: dict[str, str], tmp_path: Path
) -> None:
    outdir = tmp_path / "out"
    outdir.mkdir()
    tests = "\n".join(
        f"def test_{number}(headless_anatomist, tmp_path):\n"
        f"    snap(headless_anatomist, tmp_path, {number})\n"
        for number in range(6)
    )
    suite = tmp_path / "test_suite.py"
    suite.write_text(
        SUITE.format(examples=str(ROOT / "examples"), outdir=str(outdir), size=SIZE, tests=tests)
    )
    env = {
        **without_display(anatomist_env),
        "PYTHONPATH": os.pathsep.join(map(str, (ROOT, PYANATOMIST))),
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "ana_headless",
            "-n",
            "2",
            "-p",
            "no:cacheprovider",
            "-q",
            str(suite),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=TIMEOUT * 2,
        check=False,
    )
    assert result.returncode == 0, result.stdout.decode()[-3000:]
    reports = [json.loads(path.read_text()) for path in sorted(outdir.glob("*.json"))]
    assert len(reports) == 6
    for key in ("worker", "display", "program"):
        assert len({report[key] for report in reports}) == 2, reports
    for number in range(6):
        assert_shows_the_mesh(outdir / f"subject-{number}.png")
    assert leftovers() == set()
