"""The pytest plugin, run as users run it: real pytest, pytest-xdist and pytest-qt on a sample
suite (tests/fixtures/pytest_suite) of Qt and VTK tests that check pixels on real Xvfb."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ana_headless.glprobe import is_software
from tests.conftest import FIXTURES, ana_env
from tests.integration.planted import imported, plant
from tests.integration.test_exit_status import fake_server

SUITE = FIXTURES / "pytest_suite"
PYTEST = str(Path(sys.executable).parent / "pytest")
GL_TESTS = ["sample_frames.py", "sample_vtk.py"]


def suite_env(**overrides: str | None) -> dict[str, str]:
    """A user's environment without a display, outside any pytest-xdist run of our own."""
    env = ana_env(DISPLAY=None, ANA_HEADLESS_DISPLAY=None, **overrides)
    return {name: value for name, value in env.items() if not name.startswith("PYTEST_XDIST")}


def run_suite(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, cwd: Path = SUITE
) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    """pytest ARGS in the sample suite (or in `cwd`); its result, and the records its tests
    left."""
    records = tmp_path / "records"
    records.mkdir(exist_ok=True)
    result = subprocess.run(
        [PYTEST, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={**(env or suite_env()), "SAMPLE_RECORDS": str(records)},
    )
    entries = [
        json.loads(line)
        for path in sorted(records.glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]
    return result, entries


def summary(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout.strip().splitlines()[-1]


def test_four_xdist_workers_get_four_displays_of_their_own(tmp_path: Path) -> None:
    result, records = run_suite(tmp_path, "-p", "ana_headless", "-n", "4", *GL_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 8 passed" in summary(result)
    assert "ana-headless: a private display for each xdist worker" in result.stdout
    assert len(records) == 8
    displays = {entry["worker"]: entry["display"] for entry in records}
    assert sorted(displays) == ["gw0", "gw1", "gw2", "gw3"]
    assert len(set(displays.values())) == 4, displays
    for entry in records:
        assert entry["display"] == displays[entry["worker"]], "a worker keeps its display"
        assert entry["mode"] == "server"
    qtbot_tests = [entry for entry in records if "test_frame_with_qtbot" in entry["test"]]
    assert len(qtbot_tests) == 3, "pytest-qt's qtbot drew on our displays"
    assert "XIO" not in result.stderr and "fatal IO error" not in result.stderr


def test_xdist_workers_import_nothing_from_the_working_directory(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    # Not select.py: pytest-xdist's own worker, started by execnet as `python -c`, imports
    # select from its working directory before it takes the controller's sys.path, with or
    # without ana-headless. The launcher imports mmap.
    markers = plant(project, names=("mmap",))
    result, records = run_suite(
        tmp_path,
        "-p",
        "ana_headless",
        "-n",
        "2",
        f"{SUITE / 'sample_frames.py'}::test_frame",
        cwd=project,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 3 passed" in summary(result)
    assert {entry["worker"] for entry in records} <= {"gw0", "gw1"} and records
    assert not imported(markers)


def test_without_the_plugin_the_same_suite_fails_for_want_of_a_display(tmp_path: Path) -> None:
    # Qt aborts each worker as the suite is collected; no restart, to keep this short, and no
    # capture (-s), for Qt's own message to reach stderr.
    result, records = run_suite(tmp_path, "-n", "4", "--max-worker-restart", "0", "-s", *GL_TESTS)
    assert result.returncode != 0
    assert "could not connect to display" in result.stderr
    assert " passed" not in summary(result) and not records


def test_one_process_fixture_marker_and_the_report_of_a_failure(tmp_path: Path) -> None:
    result, records = run_suite(
        tmp_path,
        "-o",
        "ana_headless=true",
        "-rs",
        "sample_features.py",
        "sample_failing.py",
        "sample_frames.py::test_frame_with_qtbot",
    )
    out = result.stdout
    header = next(line for line in out.splitlines() if line.startswith("ana-headless: display"))
    mode = header.split("GL mode ")[1].split(":")[0]
    renderer = header.split(": ", 2)[2]
    hardware = not is_software(renderer)
    assert result.returncode == 1, out + result.stderr
    assert f" 1 failed, {5 + hardware + (mode == 'mesa')} passed" in summary(result)
    if not hardware:
        assert (
            f"needs a hardware OpenGL renderer; the probe found only the software {renderer}" in out
        )
    if mode != "mesa":
        assert f"needs the GL mode mesa; these tests run with {mode}" in out
    # The failure carries the display and renderer, and the server's log, which says why.
    failure = out.split("test_keyboard_layout ___")[1]
    shown = failure.split(" ana-headless display ")[1].split(" ana-headless xvfb log ")
    assert shown[0].strip("-\n") == header.removeprefix("ana-headless: ")
    assert 'Can\'t find file "no_such_layout"' in shown[1]
    assert {entry["display"] for entry in records} == {header.split()[2]}
    assert not any(entry["reexec"] for entry in records), "the server mode is set up in place"
    # Stopped at exit, after Qt's own clean-up: no X client loses its server.
    assert "XIO" not in result.stderr and "fatal IO error" not in result.stderr


def test_qt_loaded_before_the_plugin_restarts_pytest_under_the_launcher(tmp_path: Path) -> None:
    env = suite_env(PYTHONPATH=os.pathsep.join([str(SUITE), str(FIXTURES)]))
    result, records = run_suite(
        tmp_path,
        "-p",
        "qt_first",
        "--ana-headless",
        "sample_features.py::test_headless_info",
        "sample_frames.py::test_frame",
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 4 passed" in summary(result)
    assert result.stdout.count("test session starts") == 1, "nothing printed before the exec"
    assert {entry["reexec"] for entry in records} == {"1"}


def test_pytest_xvfb_stands_aside_through_its_own_hook(tmp_path: Path) -> None:
    # The sample suite turns pytest-xvfb off in its addopts; without them it is active, and
    # would give the tests a display of its own.
    result, records = run_suite(
        tmp_path,
        "-o",
        "addopts=-p no:cacheprovider",
        "-p",
        "ana_headless",
        "sample_features.py::test_headless_info",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    header = next(line for line in lines if line.startswith("ana-headless: display"))
    assert {entry["display"] for entry in records} == {header.split()[2]}


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one-process", "xdist"])
def test_a_server_that_never_gets_ready_is_one_error_at_the_deadline(
    tmp_path: Path, workers: list[str]
) -> None:
    env = fake_server(tmp_path, "echo 'stuck' >&2; exec sleep 60")
    env = suite_env(
        PATH=env["PATH"],
        ANA_HEADLESS_TIMEOUT="0.5",
        ANA_HEADLESS_PROBE_CACHE=str(tmp_path / "probes.marshal"),
    )
    result, records = run_suite(
        tmp_path, "-p", "ana_headless", *workers, "sample_features.py", env=env
    )
    assert result.returncode == 4
    err = result.stderr
    assert "Xvfb was not ready within 0.5 s" in err and "stuck" in err
    assert "ERROR: ana-headless:" in err
    assert "Traceback" not in err and "INTERNALERROR" not in result.stdout + err
    assert not records


def test_installed_but_not_asked_for_it_does_nothing(tmp_path: Path) -> None:
    result, _records = run_suite(tmp_path, "sample_features.py::test_headless_info")
    assert result.returncode == 1
    assert not any(line.startswith("ana-headless:") for line in result.stdout.splitlines()), (
        "no display, so no header line"
    )
    assert "the ana-headless plugin is not active" in result.stdout


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one-process", "xdist"])
def test_mesa_mode_gets_its_loader_path_from_the_process_start(
    tmp_path: Path, mesa_dir: str, workers: list[str]
) -> None:
    result, records = run_suite(
        tmp_path,
        "-p",
        "ana_headless",
        *workers,
        "sample_frames.py::test_frame",
        env=suite_env(ANA_HEADLESS_GL="mesa", ANA_HEADLESS_MESA_DIR=mesa_dir),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert records and {entry["mode"] for entry in records} == {"mesa"}
    for entry in records:
        libgl = [lib for lib in entry["libraries"] if os.path.basename(lib).startswith("libGL.so")]
        assert libgl and all(lib.startswith(mesa_dir + "/") for lib in libgl), libgl
    assert bool(records[0]["reexec"]) == (not workers), (
        "one process is re-executed; workers are started under the launcher"
    )


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one-process", "xdist"])
def test_virtualgl_mode_preloads_its_faker_from_the_process_start(
    tmp_path: Path, vglrun_path: str, workers: list[str]
) -> None:
    result, records = run_suite(
        tmp_path,
        "-p",
        "ana_headless",
        *workers,
        "sample_frames.py::test_frame",
        env=suite_env(ANA_HEADLESS_GL="virtualgl", PATH=vglrun_path),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert records and {entry["mode"] for entry in records} == {"virtualgl"}
    for entry in records:
        assert any(lib.endswith("libvglfaker.so") for lib in entry["libraries"])
