"""weston + a rootful Xwayland as the virtual X server, for hosts without Xvfb (RHEL 10): every
GL mode over it with pixels checked, `auto` choosing it where Xvfb is missing, the in-process
API, nothing left after SIGKILL, parallel runs on distinct displays, and no server at all. A
host without Xvfb is this one with a PATH that has no Xvfb on it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import ANA_HEADLESS, EXAMPLES, ana_env, check_snapshot, frame, run_ana

pytestmark = pytest.mark.skipif(
    not (shutil.which("weston") and shutil.which("Xwayland")),
    reason="weston and Xwayland are not installed (make install installs them)",
)

# The tools a run needs besides an X server, for a PATH that has no Xvfb.
TOOLS = ("weston", "Xwayland", "xdpyinfo", "sh", "cat", "sleep", "seq", "true", "env")


def without_xvfb(tmp_path: Path, *extra: str) -> str:
    """A PATH with these tools and no Xvfb (nor xpra): a RHEL 10 host, as far as we can see."""
    directory = tmp_path / "no-xvfb-bin"
    directory.mkdir(exist_ok=True)
    for tool in (*TOOLS, *extra):
        found = shutil.which(tool)
        assert found, tool
        (directory / tool).symlink_to(found)
    return str(directory)


def test_auto_chooses_weston_where_there_is_no_xvfb_and_renders_the_demo_scene(
    tmp_path: Path,
) -> None:
    env = ana_env(PATH=without_xvfb(tmp_path))
    png = tmp_path / "scene.png"
    explained = run_ana(["run", "--dry-run", str(EXAMPLES / "render_scene.py"), str(png)], env=env)
    assert "server: weston (Xvfb not found; weston and Xwayland found" in explained.stderr.decode()
    result = run_ana(["run", str(EXAMPLES / "render_scene.py"), str(png)], env=env)
    assert result.returncode == 0, result.stderr.decode()
    check_snapshot(png)


def test_the_servers_glx_over_weston(tmp_path: Path) -> None:
    report, err = frame(["--server", "weston", "--gl", "server"], ana_env())
    env = report["env"]
    assert isinstance(env, dict)
    assert env["ANA_HEADLESS_MODE"] == "server"
    assert "llvmpipe" in str(env["ANA_HEADLESS_RENDERER"])
    assert "(weston pid" in err


def test_the_software_mesa_over_weston(mesa_dir: str) -> None:
    report, err = frame(["--server", "weston", "--gl", "mesa", "--mesa-dir", mesa_dir], ana_env())
    libraries = report["libraries"]
    assert isinstance(libraries, list)
    assert any(str(lib).startswith(mesa_dir + "/") for lib in libraries)
    assert "GLX vendor 'Brian Paul'" in err


def test_virtualgls_egl_back_end_over_weston(vglrun_path: str) -> None:
    report, err = frame(["--server", "weston", "--gl", "virtualgl"], ana_env(PATH=vglrun_path))
    env = report["env"]
    assert isinstance(env, dict) and env["VGL_ISACTIVE"] == "1"
    assert "GLX vendor 'VirtualGL'" in err


def test_ensure_headless_in_place_over_weston(tmp_path: Path) -> None:
    code = "import json, ana_headless; print(json.dumps(ana_headless.ensure_headless().as_dict()))"
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=ana_env(DISPLAY=None, ANA_HEADLESS_DISPLAY=None, ANA_HEADLESS_SERVER="weston"),
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr.decode()
    info = json.loads(result.stdout)
    assert info["server"] == "weston" and info["mode"] == "server" and not info["reexec"]


def _ours(marker: str) -> dict[str, list[int]]:
    """The weston and Xwayland processes whose environment holds `marker`."""
    found: dict[str, list[int]] = {"weston": [], "Xwayland": []}
    for entry in Path("/proc").iterdir():
        try:
            if marker.encode() not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            name = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if name in found:
            found[name].append(int(entry.name))
    return found


def test_sigkill_of_the_launcher_leaves_neither_weston_nor_xwayland(tmp_path: Path) -> None:
    marker = f"ANA_TESTS_WESTON={os.getpid()}-{time.monotonic_ns()}"
    env = ana_env()
    env[marker.split("=", maxsplit=1)[0]] = marker.split("=")[1]
    ready = tmp_path / "ready"
    launcher = subprocess.Popen(
        [ANA_HEADLESS, "exec", "--server", "weston", "sh", "-c", f"touch {ready}; exec sleep 60"],
        env=env,
    )
    deadline = time.monotonic() + 30
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    started = _ours(marker)
    assert started["weston"] and started["Xwayland"], started
    launcher.send_signal(signal.SIGKILL)
    launcher.wait()
    deadline = time.monotonic() + 5
    while any(_ours(marker).values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_ours(marker).values()), "weston or Xwayland outlived the launcher"


def test_twenty_parallel_runs_get_distinct_displays(tmp_path: Path) -> None:
    env = ana_env(PATH=without_xvfb(tmp_path, "touch", "ls", "wc"))
    up = tmp_path / "up"
    up.mkdir()
    # Each run holds its display until all 20 are up: a run that ended may rightly have its
    # number taken again by a later one.
    hold = (
        f'xdpyinfo > /dev/null && touch "{up}/$$" && '
        f'for i in $(seq 600); do [ "$(ls "{up}" | wc -l)" -ge 20 ] && break; sleep 0.05; done; '
        "echo $DISPLAY"
    )

    def one(_index: int) -> str:
        result = run_ana(["exec", "sh", "-c", hold], env=env)
        assert result.returncode == 0, result.stderr.decode()
        return result.stdout.decode().strip()

    with ThreadPoolExecutor(20) as pool:
        displays = list(pool.map(one, range(20)))
    assert len(set(displays)) == 20


def test_no_server_at_all_is_one_line_naming_what_to_install(tmp_path: Path) -> None:
    directory = tmp_path / "bare-bin"
    directory.mkdir()
    (directory / "true").symlink_to(shutil.which("true") or "/bin/true")
    env = ana_env(PATH=str(directory))
    # Known from the plan alone, so at once: a dry run, which starts nothing, says it too.
    for args in (["exec", "true"], ["exec", "--dry-run", "true"]):
        result = run_ana(args, env=env)
        assert result.returncode == 125
        lines = result.stderr.decode().strip().splitlines()
        assert len(lines) == 1, lines
        assert "no virtual X server: neither Xvfb nor weston and Xwayland" in lines[0]
        assert "apt-get install xvfb, or weston xwayland" in lines[0]
