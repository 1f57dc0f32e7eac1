"""The real Anatomist under ana-headless: BrainVISA's C++ `anatomist`, driven from Python by
pyanatomist's socket implementation, loads a mesh and snapshots it; the PNG's pixels are checked
here. The program is the script's child (a grandchild of the launcher), so the leak check also
looks for `anatomist` processes."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ANA_HEADLESS, leftovers
from tests.real_anatomist.conftest import (
    DEBIAN_PYTHON,
    EXAMPLE,
    SIZE,
    TIMEOUT,
    assert_all_gone_within_3_seconds,
    assert_program_used,
    assert_shows_the_mesh,
    example,
    gl_mode_options,
    run_concurrently,
    run_plain,
    run_under,
    script,
    start_waiting,
    without_display,
)

pytestmark = pytest.mark.anatomist


def test_run_form_renders_on_the_runs_display(
    anatomist_env: dict[str, str], tmp_path: Path
) -> None:
    starts, report = run_under(anatomist_env, tmp_path)
    assert len(starts) == 1
    program = report["anatomist"]
    assert program["display"] == report["display"], "Anatomist drew on the run's display"
    assert program["argv"][1:3] == ["-s", program["argv"][2]] and "-b" in program["argv"]
    assert report["mode"] == "server" and "llvmpipe" in report["renderer"]
    assert report["qt_platform"] == "", (
        "the socket client makes no Qt application: only its program uses the display"
    )


def test_shebang_form_of_the_example(anatomist_env: dict[str, str], tmp_path: Path) -> None:
    body = EXAMPLE.read_text().split("\n", 1)[1]
    runnable = tmp_path / "snapshot"
    runnable.write_text(f"#!{ANA_HEADLESS}\n{body}")
    runnable.chmod(0o755)
    png = tmp_path / "snap.png"
    result = subprocess.run(
        [str(runnable), str(png), "--size", "x".join(map(str, SIZE))],
        env=anatomist_env,
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    assert str(png) in result.stdout.decode().splitlines()
    assert_shows_the_mesh(png)


@pytest.mark.parametrize("qt_first", [False, True], ids=["in-place", "reexec-after-QtGui"])
def test_headless_anatomist_without_a_display(
    anatomist_env: dict[str, str], tmp_path: Path, qt_first: bool
) -> None:
    options = ["--how", "ana_headless", *(["--import-first", "PyQt5.QtGui"] if qt_first else [])]
    starts, report = run_plain(anatomist_env, tmp_path, *options)
    info = report["info"]
    assert info["headless"] and info["server"] == "xvfb" and info["mode"] == "server"
    assert info["original_display"] is None
    assert info["display"] == report["display"] == report["anatomist"]["display"]
    assert "-b" in report["anatomist"]["argv"], "the constructor's arguments reach Anatomist"
    assert info["reexec"] is qt_first
    assert len(starts) == (2 if qt_first else 1)
    if qt_first:
        assert starts[1].split()[2] == starts[0].split()[1], (
            "the process became the "
            "launcher (os.execv, same pid), which ran the script again as its child"
        )


@pytest.mark.parametrize("mode", ["server", "mesa", "virtualgl"])
def test_every_gl_mode_reaches_the_anatomist_program(
    anatomist_env: dict[str, str], tmp_path: Path, mode: str, request: pytest.FixtureRequest
) -> None:
    env, launcher = gl_mode_options(mode, request, anatomist_env)
    starts, report = run_under(env, tmp_path, "--how", "ana_headless", launcher=launcher)
    info = report["info"]
    assert len(starts) == 1 and not info["reexec"], "under the launcher: no re-exec"
    assert info["mode"] == report["mode"] == mode
    assert (info["virtualgl"], info["mesa"]) == (mode == "virtualgl", mode == "mesa")
    assert info["renderer"] == report["renderer"] and "llvmpipe" in info["renderer"]
    assert report["anatomist"]["display"] == info["display"]
    assert_program_used(mode, launcher, report["anatomist"]["gl"])


CLIENT = """\
import sys
import anatomist
anatomist.setDefaultImplementation(anatomist.SOCKET)
import anatomist.api as ana
sys.path.insert(0, {examples!r})
import anatomist_snapshot as example
a = ana.Anatomist(host="localhost", port={port}, newanatomist=False)
example.snapshot(a, example.Path({mesh!r}), example.Path({png!r}), {size!r})
a.execute("Exit")
"""


def test_exec_of_the_program_driven_over_its_socket(
    anatomist_env: dict[str, str], tmp_path: Path
) -> None:
    """`ana-headless exec anatomist -s PORT`, and a client without any display connecting."""
    port = example.free_port()
    mesh, png = tmp_path / "sphere.mesh", tmp_path / "snap.png"
    example.write_sphere_mesh(mesh, rings=12)
    program = subprocess.Popen(
        [ANA_HEADLESS, "exec", "anatomist", "-b", "-s", str(port)],
        env=anatomist_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    code = CLIENT.format(
        examples=str(EXAMPLE.parent), port=port, mesh=str(mesh), png=str(png), size=SIZE
    )
    client = subprocess.run(
        [DEBIAN_PYTHON, "-c", code],
        env=without_display(anatomist_env),
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert client.returncode == 0, client.stderr.decode()[-3000:]
    assert_shows_the_mesh(png)
    _out, err = program.communicate(timeout=30)
    assert program.returncode == 0, err.decode()[-3000:]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_or_stopped_run_leaves_no_anatomist(
    anatomist_env: dict[str, str], tmp_path: Path, sig: signal.Signals
) -> None:
    """SIGKILL of the launcher (its watcher cleans up) or SIGTERM of the run (forwarded to the
    script, which dies of it without closing Anatomist)."""
    before = leftovers()
    launcher, report = start_waiting(
        [ANA_HEADLESS, "run", *script(tmp_path, "--end", "wait")], anatomist_env
    )
    assert_shows_the_mesh(tmp_path / "snap.png")
    launcher.send_signal(sig)
    status = launcher.wait(30)
    assert status == (-signal.SIGKILL if sig == signal.SIGKILL else 128 + signal.SIGTERM)
    assert_all_gone_within_3_seconds([report["pid"], report["anatomist"]["pid"]], before)


@pytest.mark.parametrize("under_run", [True, False], ids=["run", "in-place"])
def test_a_script_that_dies_without_close_leaves_no_anatomist(
    anatomist_env: dict[str, str], tmp_path: Path, under_run: bool
) -> None:
    before = leftovers()
    options = script(tmp_path, "--how", "ana_headless", "--end", "os_exit")
    argv = [ANA_HEADLESS, "run", *options] if under_run else [DEBIAN_PYTHON, *options]
    result = subprocess.run(
        argv, env=without_display(anatomist_env), capture_output=True, timeout=TIMEOUT, check=False
    )
    assert result.returncode == 3, result.stderr.decode()[-3000:]
    report = json.loads(
        next(line for line in result.stdout.decode().splitlines() if line.startswith("{"))
    )
    assert_shows_the_mesh(tmp_path / "snap.png")
    assert_all_gone_within_3_seconds([report["anatomist"]["pid"]], before)


RUNS = 10


@pytest.mark.slow
def test_10_concurrent_snapshot_runs(anatomist_env: dict[str, str], tmp_path: Path) -> None:
    reports = run_concurrently(anatomist_env, tmp_path, RUNS, "--how", "ana_headless")
    assert all(report["anatomist"]["display"] == report["display"] for report in reports)
    # Each script drove its own program: ten ports, not pyanatomist's 50007 for all.
    assert len({report["anatomist"]["argv"][2] for report in reports}) == RUNS
