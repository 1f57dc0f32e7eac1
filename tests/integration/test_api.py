"""HeadlessAnatomist() and ensure_headless() in a script (SPEC §6), with the pyanatomist
stand-in rendering real OpenGL through PyQt5 on the real Xvfb."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURES, ana_env, leftovers, run_ana, still_ours

SCRIPT = FIXTURES / "snapshot_script.py"
BACKGROUND, OBJECT = [20, 40, 80], [240, 160, 32]


def no_display_env(**extra: str) -> dict[str, str]:
    return ana_env(DISPLAY=None, ANA_HEADLESS_DISPLAY=None, **extra)


def python_c(code: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    """Run `python -c code` without a display; its stdout (it must exit 0)."""
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env or no_display_env(),
        capture_output=True,
        timeout=60,
        check=False,
        cwd=cwd,
    )
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def run_script(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, expect: int = 0
) -> tuple[list[str], dict[str, Any]]:
    """Run the snapshot script with plain python; its START lines and its report."""
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path / "snap.png"), *args],
        env=env or no_display_env(),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == expect, result.stderr.decode()
    lines = result.stdout.decode().splitlines()
    starts = [line for line in lines if line.startswith("START ")]
    report = json.loads(next(line for line in lines if line.startswith("{")))
    assert report["size"] == [120, 90]
    assert report["centre"] == OBJECT and report["corner"] == BACKGROUND
    return starts, report


@pytest.mark.parametrize(
    "implementation, cls",
    [
        ("direct", "anatomist.direct.api.Anatomist"),
        ("threaded", "anatomist.threaded.api.Anatomist"),
        ("anatomist.socket.api.Anatomist", "anatomist.socket.api.Anatomist"),
    ],
)
def test_headless_anatomist_in_place_without_display(
    tmp_path: Path, implementation: str, cls: str
) -> None:
    starts, report = run_script(tmp_path, "--implementation", implementation)
    assert len(starts) == 1, "set up in place: no re-exec"
    assert report["class"] == cls
    assert report["args"] == ["-b"], "the constructor's arguments reach Anatomist"
    info = report["info"]
    assert info["headless"] and info["mode"] == "server" and info["server"] == "xvfb"
    assert not info["reexec"] and info["original_display"] is None
    assert info["display"] == report["display"]
    assert "llvmpipe" in info["renderer"]


def test_qt_imported_first_reexecutes_exactly_once(tmp_path: Path) -> None:
    starts, report = run_script(tmp_path, "--qt-first")
    assert len(starts) == 2
    first_pid = starts[0].split()[1]
    assert starts[1].split()[2] == first_pid, (
        "the process became the launcher (os.execv, "
        "same pid), which ran the script again as its child"
    )
    assert report["info"]["reexec"] and report["info"]["headless"]
    assert report["args"] == ["-b"]


def test_under_the_launcher_no_second_server_and_no_reexec(tmp_path: Path) -> None:
    for extra in ([], ["--qt-first"]):
        result = run_ana(["run", str(SCRIPT), str(tmp_path / "snap.png"), *extra])
        assert result.returncode == 0, result.stderr.decode()
        lines = result.stdout.decode().splitlines()
        assert len([line for line in lines if line.startswith("START ")]) == 1
        report = json.loads(lines[-1])
        info = report["info"]
        assert info["headless"] and not info["reexec"]
        assert info["display"] == report["display"]
        assert report["centre"] == OBJECT


def test_python_c_with_qt_loaded_raises_naming_the_launcher() -> None:
    code = (
        "import PyQt5.QtWidgets, ana_headless\n"
        "try:\n    ana_headless.ensure_headless()\n"
        "except ana_headless.HeadlessError as e:\n    print(e.exit_status, e)\n"
    )
    out = python_c(code)
    assert out.startswith("125 ") and "`ana-headless run SCRIPT`" in out and "python -c" in out


def test_onscreen_fallback_warns_and_reports_it() -> None:
    code = (
        "import warnings, PyQt5.QtWidgets, ana_headless\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    info = ana_headless.ensure_headless(fallback='onscreen')\n"
        "print(info.headless, info.mode, len(caught), caught[0].message)\n"
    )
    assert python_c(code).startswith("False onscreen 1 ana-headless: not headless")


def test_ensure_headless_needs_no_anatomist_and_anatomist_missing_is_explained(
    tmp_path: Path,
) -> None:
    code = (
        "import os, ana_headless\n"
        "info = ana_headless.ensure_headless()\n"
        "print(info.headless, os.environ['DISPLAY'] == info.display)\n"
        "try:\n    ana_headless.HeadlessAnatomist()\n"
        "except ana_headless.HeadlessError as e:\n    print(e)\n"
    )
    env = no_display_env()
    env["PYTHONPATH"] = ""  # no stand-in: Anatomist is not importable
    first, second = python_c(code, env=env, cwd=tmp_path).splitlines()
    assert first == "True True"
    assert "pyanatomist" in second and "BrainVISA" in second and "ensure_headless()" in second


@pytest.mark.parametrize("end, status", [("raise", 1), ("os_exit", 3)])
def test_nothing_left_when_the_script_fails_or_exits_hard(
    tmp_path: Path, end: str, status: int
) -> None:
    run_script(tmp_path, "--end", end, expect=status)
    # The autouse leak check asserts that server, socket and private directory are gone.


def test_nothing_left_when_the_script_is_killed(tmp_path: Path) -> None:
    before = leftovers()
    code = (
        "import ana_headless, time, os\ninfo = ana_headless.ensure_headless()\n"
        "print(info.display, os.environ['XAUTHORITY'], flush=True)\ntime.sleep(60)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code], env=no_display_env(), stdout=subprocess.PIPE
    )
    assert process.stdout is not None
    display, xauthority = process.stdout.readline().decode().split()
    assert os.path.exists(xauthority)
    process.send_signal(signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 3
    while leftovers() - before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not still_ours(f"/tmp/.X11-unix/X{display.lstrip(':')}")
    assert not os.path.exists(os.path.dirname(xauthority))


def test_subprocesses_inherit_only_the_display(tmp_path: Path) -> None:
    _starts, report = run_script(tmp_path, "--subprocess-env")
    child = report["subprocess_env"]
    assert child["DISPLAY"] == report["info"]["display"]
    assert "LD_PRELOAD" not in child and "VGL_ISACTIVE" not in child
    assert not any(name.startswith("VGL_") for name in child)


def test_mesa_mode_reexecutes_under_the_launcher(tmp_path: Path, mesa_dir: str) -> None:
    """A mode that needs LD_LIBRARY_PATH cannot be set up in place: one re-exec."""
    starts, report = run_script(
        tmp_path, env=no_display_env(ANA_HEADLESS_GL="mesa", ANA_HEADLESS_MESA_DIR=mesa_dir)
    )
    assert len(starts) == 2
    assert report["info"]["mode"] == "mesa" and report["info"]["mesa"]
    assert report["info"]["reexec"]


def test_server_set_up_from_a_worker_thread_outlives_the_thread(tmp_path: Path) -> None:
    """The server lives as long as the process, not the thread that started it."""
    code = (
        "import subprocess, threading, ana_headless\n"
        "thread = threading.Thread(target=ana_headless.ensure_headless)\n"
        "thread.start(); thread.join()\n"
        "import time; time.sleep(0.5)\n"
        "print(subprocess.run(['xdpyinfo'], capture_output=True).returncode)\n"
    )
    assert python_c(code, cwd=tmp_path).strip() == "0", "the display is still up"


def test_a_forked_copy_that_exits_leaves_the_display_up(tmp_path: Path) -> None:
    code = (
        "import os, subprocess, sys, ana_headless\n"
        "ana_headless.ensure_headless()\n"
        "pid = os.fork()\n"
        "if pid == 0:\n    sys.exit(0)\n"
        "os.waitpid(pid, 0)\n"
        "print(subprocess.run(['xdpyinfo'], capture_output=True).returncode)\n"
    )
    assert python_c(code, cwd=tmp_path).strip() == "0", "the display is still up"


def test_a_script_that_ignores_sigchld_keeps_its_exit_status_through_the_restart(
    tmp_path: Path,
) -> None:
    """The restarted launcher is the console entry's, which takes SIGCHLD back from an
    ignoring parent before it starts anything (an ignored SIGCHLD is kept across exec)."""
    script = tmp_path / "script.py"
    script.write_text(
        "import signal, sys\n"
        "signal.signal(signal.SIGCHLD, signal.SIG_IGN)\n"
        "import PyQt5.QtGui  # too late for an in-place set-up: ensure_headless() restarts\n"
        "import ana_headless\n"
        "ana_headless.ensure_headless()\n"
        "sys.exit(3)\n"
    )
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(script)],
        env=no_display_env(),
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 3, result.stderr.decode()
    assert time.monotonic() - started < 8, "no wait on children the kernel reaped"
