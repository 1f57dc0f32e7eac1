"""The launcher on Debian 13 ("trixie": Python 3.13, Qt 5.15 and Mesa from apt), in the two
roots that `make debian13` builds: with Xvfb, where it must do what it does on Debian 12; and
without Xvfb but with weston and Xwayland, the stand-in for RHEL 10, where `auto` must choose
weston. Each test runs the checkout's ana_headless with the root's own Python, in namespaces of
its own (inroot.py), and looks inside before they end (scenario.py) at what the runs left: no
server, and nothing in the root's /tmp but the empty directory of X sockets that X servers
make and keep."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from tests.conftest import VENDOR_CACHE, check_snapshot
from tests.distros import inroot

pytestmark = pytest.mark.distro

# Where `make debian13` builds the roots (scripts/debian-root.sh), and its mark of a whole one.
MARKER = ".ana-headless-root"
SCENARIO = f"{inroot.MOUNT_POINT}/tests/distros/scenario.py"
DEMO = f"{inroot.MOUNT_POINT}/examples/render_scene.py"
# What a run may leave in /tmp: the directory of X sockets, which an X server makes when it is
# missing, as Debian's tmpfiles.d makes it at boot, and which stays (the sockets do not).
X11_UNIX = "/tmp/.X11-unix"


def debian13(flavour: str) -> Path:
    root = VENDOR_CACHE / f"debian13-{flavour}"
    if not (root / MARKER).exists():
        pytest.skip(f"no Debian 13 root in {root}: `make debian13` builds it (a few minutes, once)")
    if os.geteuid() != 0:
        pytest.skip("entering a Debian root (unshare, chroot) needs root")
    return root


@pytest.fixture
def xvfb_root() -> Path:
    return debian13("xvfb")


@pytest.fixture
def weston_root() -> Path:
    root = debian13("weston")
    assert not list((root / "usr" / "bin").glob("X[vo]*")), "the weston root has another X server"
    return root


def scenario(
    root: Path, *commands: list[str], parallel: int = 1, out: Path | None = None
) -> list[list[dict[str, object]]]:
    """The launcher's runs in the root, each command `parallel` times at once; asserts that they
    left nothing, and returns them."""
    argv = ["python3", SCENARIO, "--parallel", str(parallel), *map(json.dumps, commands)]
    result = inroot.run(root, argv, out=out, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["servers"] == [], f"left running: {report['servers']}"
    assert set(report["tmp"]) <= {X11_UNIX}, f"left in /tmp: {report['tmp']}"
    runs: list[list[dict[str, object]]] = report["runs"]
    return runs


def succeeded(run: dict[str, object]) -> str:
    assert run["status"] == 0, run["stderr"]
    return str(run["stdout"])


def test_exec_gives_a_display_and_llvmpipe_glx_on_debian13_with_xvfb(xvfb_root: Path) -> None:
    [[run]] = scenario(
        xvfb_root, ["exec", "sh", "-c", 'echo "$DISPLAY $ANA_HEADLESS_SERVER_KIND"; glxinfo -B']
    )
    display, *glxinfo = succeeded(run).splitlines()
    assert re.fullmatch(r":\d+ xvfb", display), display
    assert "direct rendering: Yes" in glxinfo
    assert any(re.match(r"OpenGL renderer string: llvmpipe", line) for line in glxinfo), glxinfo


def test_the_demo_scene_on_debian13_with_xvfb(xvfb_root: Path, tmp_path: Path) -> None:
    [[run]] = scenario(xvfb_root, ["run", DEMO, "/mnt/scene.png"], out=tmp_path)
    assert succeeded(run) == "/mnt/scene.png\n"
    check_snapshot(tmp_path / "scene.png")


def test_a_gl_clients_exit_status_on_debian13_with_xvfb(xvfb_root: Path) -> None:
    [exited], [killed] = scenario(
        xvfb_root,
        ["exec", "sh", "-c", "glxinfo -B > /dev/null && exit 42"],
        ["exec", "sh", "-c", "glxinfo -B > /dev/null && kill -TERM $$"],
    )
    assert exited["status"] == 42, exited["stderr"]
    assert killed["status"] == 128 + 15, killed["stderr"]


def test_auto_chooses_weston_and_renders_the_demo_scene_on_debian13_without_xvfb(
    weston_root: Path, tmp_path: Path
) -> None:
    [kind], [demo] = scenario(
        weston_root,
        ["exec", "sh", "-c", "echo $ANA_HEADLESS_SERVER_KIND"],
        ["run", DEMO, "/mnt/scene.png"],
        out=tmp_path,
    )
    assert succeeded(kind) == "weston\n"
    assert succeeded(demo) == "/mnt/scene.png\n"
    check_snapshot(tmp_path / "scene.png")


# Each run holds its display until all twenty have theirs, so that all are up at once: a run
# that ends before another starts may rightly see its number given again.
HOLD_UNTIL_ALL_UP = """
xdpyinfo > /dev/null && mkdir -p /run/held && touch /run/held/$$ || exit 1
echo "$DISPLAY $ANA_HEADLESS_SERVER_KIND"
for i in $(seq 300); do [ "$(ls /run/held | wc -l)" -ge 20 ] && break; sleep 0.1; done
[ "$(ls /run/held | wc -l)" -ge 20 ] && xdpyinfo > /dev/null
"""


def test_twenty_parallel_runs_get_distinct_displays_on_debian13_without_xvfb(
    weston_root: Path,
) -> None:
    [runs] = scenario(weston_root, ["exec", "sh", "-c", HOLD_UNTIL_ALL_UP], parallel=20)
    displays = [succeeded(run).split() for run in runs]
    assert {kind for _, kind in displays} == {"weston"}
    assert len({display for display, _ in displays}) == 20, displays
