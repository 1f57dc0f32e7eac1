"""The DIRECT Anatomist under ana-headless: libanatomist draws in the script's own process
(BrainVISA's default implementation, and `ana_headless.HeadlessAnatomist()`'s), loads a mesh and
snapshots it; the PNG's pixels are checked here. There is no `anatomist` program: the process to
look at, for its GL libraries and its lifetime, is the script itself."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ANA_HEADLESS, MESA_LIB, leftovers
from tests.real_anatomist.conftest import (
    DEBIAN_PYTHON,
    TIMEOUT,
    assert_all_gone_within_3_seconds,
    assert_brainvisa_kept_the_runs_display,
    assert_program_used,
    assert_shows_the_mesh,
    gl_mode_options,
    run_concurrently,
    run_plain,
    run_under,
    script,
    start_waiting,
    without_display,
)

pytestmark = pytest.mark.anatomist_direct

DIRECT = ("--implementation", "direct")


@pytest.mark.parametrize("mode", ["server", "mesa", "virtualgl"])
def test_headless_anatomist_under_run_in_every_gl_mode(
    direct_env: dict[str, str], tmp_path: Path, mode: str, request: pytest.FixtureRequest
) -> None:
    """HeadlessAnatomist() (its default implementation is the direct one) in a script under
    `ana-headless run`: set up in place, on the run's display, and the script's process maps
    the mode's GL: the system's, the Mesa directory's under every name libanatomist asks for
    (it is linked the GLVND way), or VirtualGL's faker (`-d egl`, Mesa's software EGL device:
    this host has no GPU)."""
    env, launcher = gl_mode_options(mode, request, direct_env)
    starts, report = run_under(env, tmp_path, *DIRECT, "--how", "ana_headless", launcher=launcher)
    info = report["info"]
    assert len(starts) == 1 and not info["reexec"], "under the launcher: no re-exec"
    assert info["headless"] and info["server"] == "xvfb"
    assert info["display"] == report["display"] and report["qt_platform"] == "xcb"
    assert info["mode"] == report["mode"] == mode
    assert (info["virtualgl"], info["mesa"]) == (mode == "virtualgl", mode == "mesa")
    assert info["renderer"] == report["renderer"] and "llvmpipe" in info["renderer"]
    assert (report["vgl_isactive"] == "1") is (mode == "virtualgl")
    assert report["anatomist"]["pid"] == report["pid"], "Anatomist is the script's process"
    assert_program_used(mode, launcher, report["anatomist"]["gl"])


@pytest.mark.parametrize(
    "first, env",
    [
        (None, {}),
        ("PyQt5.QtOpenGL", {}),
        ("anatomist.direct.api", {}),
        (None, {"ANA_HEADLESS_GL": "mesa", "ANA_HEADLESS_MESA_DIR": str(MESA_LIB)}),
    ],
    ids=["in-place", "reexec-after-QtOpenGL", "reexec-after-direct-api", "reexec-for-mesa"],
)
def test_headless_anatomist_in_a_plain_script(
    direct_env: dict[str, str],
    tmp_path: Path,
    first: str | None,
    env: dict[str, str],
    request: pytest.FixtureRequest,
) -> None:
    """HeadlessAnatomist() in a script run by Python itself, without a display: in place when
    nothing has loaded Qt or GL yet; else, and for a mode that needs loader variables, the
    process becomes the launcher (os.execv, same pid), which runs the script again headless."""
    if env:
        request.getfixturevalue("mesa_dir")
    options = [*DIRECT, "--how", "ana_headless", *(["--import-first", first] if first else [])]
    starts, report = run_plain({**direct_env, **env}, tmp_path, *options)
    info = report["info"]
    reexec = bool(first or env)
    mode = env.get("ANA_HEADLESS_GL", "server")
    assert info["headless"] and info["server"] == "xvfb" and info["mode"] == mode
    assert info["original_display"] is None
    assert info["display"] == report["display"] and report["qt_platform"] == "xcb"
    assert info["reexec"] is reexec
    assert len(starts) == (2 if reexec else 1)
    if reexec:
        assert starts[1].split()[2] == starts[0].split()[1], "the launcher ran it again"
    assert_program_used(mode, ("--mesa-dir", str(MESA_LIB)), report["anatomist"]["gl"])


@pytest.mark.parametrize(
    "how, mode", [("soma", "server"), ("soma", "virtualgl"), ("upstream", "server")]
)
def test_brainvisa_headless_keeps_the_runs_display(
    direct_env: dict[str, str],
    tmp_path: Path,
    how: str,
    mode: str,
    request: pytest.FixtureRequest,
) -> None:
    """soma's setup_headless() and anatomist.headless.HeadlessAnatomist(), unchanged, with the
    direct implementation (both their defaults) under `ana-headless run`: soma keeps the run's
    display and starts no X server; Anatomist draws on Qt's offscreen platform, in the script's
    process, with the run's GL mode. (The mesa mode needs ana_headless's ensure_headless() or
    HeadlessAnatomist() in the script: see the README.)"""
    env, launcher = gl_mode_options(mode, request, direct_env)
    starts, report = run_under(env, tmp_path, *DIRECT, "--how", how, launcher=launcher)
    assert len(starts) == 1
    assert_brainvisa_kept_the_runs_display(report, mode, launcher)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_or_stopped_run_leaves_nothing(
    direct_env: dict[str, str], tmp_path: Path, sig: signal.Signals
) -> None:
    """SIGKILL of the launcher (its watcher stops the script and the server) or SIGTERM of
    the run (forwarded to the script, which dies of it with Anatomist open)."""
    before = leftovers()
    launcher, report = start_waiting(
        [ANA_HEADLESS, "run", *script(tmp_path, *DIRECT, "--end", "wait")], direct_env
    )
    assert_shows_the_mesh(tmp_path / "snap.png")
    launcher.send_signal(sig)
    status = launcher.wait(30)
    assert status == (-signal.SIGKILL if sig == signal.SIGKILL else 128 + signal.SIGTERM)
    assert_all_gone_within_3_seconds([report["pid"]], before)


@pytest.mark.parametrize("end, status", [("raise", 1), ("os_exit", 3)])
@pytest.mark.parametrize("under_run", [True, False], ids=["run", "in-place"])
def test_a_script_that_fails_with_anatomist_open_leaves_nothing(
    direct_env: dict[str, str], tmp_path: Path, under_run: bool, end: str, status: int
) -> None:
    """An exception (the interpreter ends with Anatomist's objects alive, atexit runs) or
    os._exit (nothing runs: the watcher stops the server of a set-up in place)."""
    before = leftovers()
    options = script(tmp_path, *DIRECT, "--how", "ana_headless", "--end", end)
    argv = [ANA_HEADLESS, "run", *options] if under_run else [DEBIAN_PYTHON, *options]
    result = subprocess.run(
        argv, env=without_display(direct_env), capture_output=True, timeout=TIMEOUT, check=False
    )
    assert result.returncode == status, result.stderr.decode()[-3000:]
    report = json.loads(
        next(line for line in result.stdout.decode().splitlines() if line.startswith("{"))
    )
    assert report["info"]["reexec"] is False
    assert_shows_the_mesh(tmp_path / "snap.png")
    assert_all_gone_within_3_seconds([report["pid"]], before)


RUNS = 6


def test_6_concurrent_snapshot_runs(direct_env: dict[str, str], tmp_path: Path) -> None:
    reports = run_concurrently(direct_env, tmp_path, RUNS, *DIRECT, "--how", "ana_headless")
    assert all(report["info"]["display"] == report["display"] for report in reports)
