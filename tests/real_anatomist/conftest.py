"""The real Anatomist (BrainVISA's C++ viewer and its Python API, pyanatomist), as `make
anatomist` builds it from the vendored sources: where it is, and the environment a user of it
has. Tests that need it skip, naming `make anatomist`, where it is not built."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import ANA_HEADLESS, ROOT, VENDOR_CACHE, VGL_BIN, ana_env, leftovers, run_ana

ANATOMIST_ROOT = VENDOR_CACHE / "anatomist"
# The build tree is the runtime prefix: bin/anatomist, lib/, share/.
PREFIX = ANATOMIST_ROOT / "build"
# The pure-Python `anatomist` (pyanatomist) and `soma` packages of the same sources.
PYANATOMIST = ANATOMIST_ROOT / "python"
# click, for ana_headless in the interpreter below (a re-exec runs its launcher there).
SITE = ANATOMIST_ROOT / "site"
# soma-base as BrainVISA users get it from PyPI, for the tests of BrainVISA's own scripts.
SOMA_BASE_PYPI = ANATOMIST_ROOT / "soma-base-pypi"
# The build links against Debian's Qt, so its client is Debian's Python with apt's PyQt5.
DEBIAN_PYTHON = "/usr/bin/python3"
NEEDED = (PREFIX / "bin" / "anatomist", PYANATOMIST / "anatomist" / "info.py", SITE / "click")


def skip_unless_built(
    *paths: Path,
    what: str = "the real Anatomist is not built",
    how: str = "`make anatomist` builds it from ../shared/vendor (about 1.5 hours, once)",
) -> None:
    missing = [path for path in paths if not path.exists()]
    if missing:
        pytest.skip(f"{what} ({missing[0]} is missing): {how}")


@pytest.fixture
def anatomist_env(tmp_path: Path) -> dict[str, str]:
    """What a BrainVISA user's environment gives Anatomist: the program on PATH, its libraries
    and shared files, pyanatomist (not the stand-in) and ana_headless importable by Debian's
    Python, which `ana-headless run` uses; and a fresh HOME, because a settings file of another
    Anatomist version makes it open a modal "What's new" dialog at start-up."""
    skip_unless_built(*NEEDED)
    home = tmp_path / "home"
    home.mkdir()
    return ana_env(
        PATH=f"{PREFIX / 'bin'}{os.pathsep}{os.environ['PATH']}",
        LD_LIBRARY_PATH=os.pathsep.join(
            filter(None, [str(PREFIX / "lib"), os.environ.get("LD_LIBRARY_PATH")])
        ),
        BRAINVISA_SHARE=str(PREFIX / "share"),
        PYTHONPATH=os.pathsep.join(map(str, (ROOT, SITE, PYANATOMIST))),
        ANA_HEADLESS_PYTHON=DEBIAN_PYTHON,
        HOME=str(home),
    )


@pytest.fixture
def soma_env(anatomist_env: dict[str, str]) -> dict[str, str]:
    """The same, with soma-base from PyPI before the soma of the Anatomist sources."""
    skip_unless_built(SOMA_BASE_PYPI / "soma")
    return {
        **anatomist_env,
        "PYTHONPATH": f"{SOMA_BASE_PYPI}{os.pathsep}{anatomist_env['PYTHONPATH']}",
    }


SCRIPT = Path(__file__).with_name("snapshot_script.py")
EXAMPLE = ROOT / "examples" / "anatomist_snapshot.py"
SIZE = (160, 120)
TIMEOUT = 180


def load_example() -> ModuleType:
    """examples/anatomist_snapshot.py, for its pixel check."""
    spec = importlib.util.spec_from_file_location("anatomist_snapshot", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


example = load_example()


def assert_shows_the_mesh(png: Path) -> None:
    """The snapshot's pixels: the lit mesh on the view's background (the example's check)."""
    try:
        example.check_snapshot(png, SIZE)
    except example.SnapshotError as error:
        pytest.fail(str(error))


def script(tmp_path: Path, *options: str) -> list[str]:
    return [str(SCRIPT), str(tmp_path / "snap.png"), "--size", "x".join(map(str, SIZE)), *options]


def finished(
    result: subprocess.CompletedProcess[bytes], tmp_path: Path
) -> tuple[list[str], dict[str, Any]]:
    """The script's START lines and its report, once it has exited 0 with a correct PNG."""
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    lines = result.stdout.decode().splitlines()
    report = json.loads(next(line for line in lines if line.startswith("{")))
    assert_shows_the_mesh(tmp_path / "snap.png")
    return [line for line in lines if line.startswith("START ")], report


def without_display(env: dict[str, str]) -> dict[str, str]:
    return {
        name: value
        for name, value in env.items()
        if name not in ("DISPLAY", "ANA_HEADLESS_DISPLAY")
    }


def run_plain(
    env: dict[str, str], tmp_path: Path, *options: str
) -> tuple[list[str], dict[str, Any]]:
    """The script run by Debian's Python itself, without a display."""
    result = subprocess.run(
        [DEBIAN_PYTHON, *script(tmp_path, *options)],
        env=without_display(env),
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
    )
    return finished(result, tmp_path)


def run_under(
    env: dict[str, str], tmp_path: Path, *options: str, launcher: tuple[str, ...] = ()
) -> tuple[list[str], dict[str, Any]]:
    result = run_ana(["run", *launcher, *script(tmp_path, *options)], env=env, timeout=TIMEOUT)
    return finished(result, tmp_path)


def gl_mode_options(
    mode: str, request: pytest.FixtureRequest, env: dict[str, str]
) -> tuple[dict[str, str], tuple[str, ...]]:
    """The environment and launcher options that ask for a GL mode, with the vendored tool it
    needs (the mode's fixture skips where that is not built). VirtualGL renders through its
    EGL back end: this host has no GPU, and no 3D X server."""
    if mode == "mesa":
        return env, ("--gl", "mesa", "--mesa-dir", request.getfixturevalue("mesa_dir"))
    if mode == "virtualgl":
        request.getfixturevalue("vglrun_path")
        return (
            {**env, "PATH": f"{VGL_BIN}{os.pathsep}{env['PATH']}"},
            ("--gl", "virtualgl", "--vgl-display", "egl"),
        )
    return env, ("--gl", "server")


def assert_program_used(mode: str, launcher: tuple[str, ...], libraries: list[str]) -> None:
    """The GL libraries that Anatomist (the `anatomist` program, or the script's own process
    with the direct implementation) mapped are the mode's: VirtualGL's faker, the Mesa
    directory's libGL (also under GLVND's names: libanatomist draws through libOpenGL.so.0),
    or the system's."""
    fakers = [lib for lib in libraries if os.path.basename(lib) == "libvglfaker.so"]
    gl = [
        lib
        for lib in libraries
        if os.path.basename(lib).startswith(("libGL.so", "libGLX", "libOpenGL"))
    ]
    assert bool(fakers) is (mode == "virtualgl"), libraries
    expected = launcher[-1] + "/" if mode == "mesa" else "/usr/lib/"
    assert gl and all(lib.startswith(expected) for lib in gl), libraries


def assert_brainvisa_kept_the_runs_display(
    report: dict[str, Any], mode: str, launcher: tuple[str, ...]
) -> None:
    """soma's set-up, under the run: it kept the run's display (no X server of its own) and
    chose Qt's offscreen platform; Anatomist used the run's GL mode, which ana-headless tells."""
    soma = report["info"]
    assert soma["headless"] and soma["qt_offscreen"], "soma chose Qt's offscreen platform"
    assert not soma["started_xvfb"] and soma["display"] is None, "and started no X server"
    assert report["qt_platform"] == "offscreen"
    ours = soma["ana_headless"]
    assert ours["display"] == report["display"]
    assert ours["mode"] == mode and ours["renderer"] == report["renderer"]
    assert_program_used(mode, launcher, report["anatomist"]["gl"])


def run_concurrently(
    env: dict[str, str], tmp_path: Path, runs: int, *options: str
) -> list[dict[str, Any]]:
    """`runs` snapshot runs started at once, each in a folder of its own: their reports, once
    each has exited 0 with a correct PNG, on displays all distinct."""
    env = {**env, "LP_NUM_THREADS": "1"}
    folders = [tmp_path / str(index) for index in range(runs)]
    started = []
    for folder in folders:
        folder.mkdir()
        started.append(
            subprocess.Popen(
                [ANA_HEADLESS, "run", "--timeout", "120", *script(folder, *options)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        )
    reports = []
    for folder, run in zip(folders, started, strict=True):
        out, err = run.communicate(timeout=TIMEOUT * 2)
        result = subprocess.CompletedProcess(run.args, run.returncode, out, err)
        reports.append(finished(result, folder)[1])
    assert len({report["display"] for report in reports}) == runs
    return reports


def start_waiting(
    argv: list[str], env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """A run whose script has snapshotted and now waits; its report."""
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE)
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith(b"{"):
            return process, json.loads(line)
    process.wait()
    pytest.fail(f"the script ended with {process.returncode} before its report")


def alive(pid: int) -> bool:
    """Running: not gone, and not a zombie (whose command line is empty)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return bool(cmdline.read())
    except OSError:
        return False


def assert_all_gone_within_3_seconds(pids: list[int], before: set[str]) -> None:
    deadline = time.monotonic() + 3
    while (any(map(alive, pids)) or leftovers() - before) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in pids if alive(pid)], "a process outlived the run"
    assert not leftovers() - before
