"""What README promises: the demo renders, and a fresh clone passes the test command."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from PyQt5.QtGui import QImage

from tests.conftest import ROOT, run_ana

# Set by the fresh-clone test for the suite it runs, which must not clone again.
INNER_RUN = "ANA_HEADLESS_INNER_CLONE_RUN"


def test_demo_scene_renders_a_lit_mesh(tmp_path: Path) -> None:
    png = tmp_path / "scene.png"
    result = run_ana(["run", str(ROOT / "examples" / "render_scene.py"), str(png)])
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().strip() == str(png)
    image = QImage(str(png))
    assert (image.width(), image.height()) == (512, 512)
    corner, centre = image.pixelColor(0, 0), image.pixelColor(256, 256)
    assert (corner.red(), corner.green(), corner.blue()) == (40, 48, 60)
    assert centre.red() > 100 and centre.red() > centre.blue(), "the orange mesh is in the centre"


@pytest.mark.slow
def test_fresh_clone_passes_the_readme_test_command(tmp_path: Path) -> None:
    if os.environ.get(INNER_RUN):
        pytest.skip("this is the suite the fresh-clone test runs")
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    readme = (ROOT / "README.md").read_text()
    command = "make test"
    assert f"{command}    #" in readme, "README's test command changed: update this test"
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    # The clone sees the vendored sources where the checkout does, so it uses the same cache.
    env = dict(
        os.environ,
        **{INNER_RUN: "1"},
        VENDOR_DIR=str((ROOT / ".." / "shared" / "vendor").resolve()),
    )
    env.pop("VIRTUAL_ENV", None)
    result = subprocess.run(
        ["make", "-C", str(clone), "test"], env=env, capture_output=True, timeout=900, check=False
    )
    output = result.stdout.decode(errors="replace")
    assert result.returncode == 0, inner_failure(output, result.stderr.decode(errors="replace"))
    assert " passed" in output


def inner_failure(stdout: str, stderr: str) -> str:
    """What failed in the clone's run, its pytest summary first: a CI log shows only a part of
    the message, which pip's warnings on stderr would otherwise fill."""
    summary = stdout.rpartition("short test summary info")[2]
    failures = stdout.partition("= FAILURES =")[2]
    return "\n".join(
        [
            "the clone's `make test` failed:",
            summary.strip()[-3000:],
            "--- its first failure:",
            failures[:4000],
            "--- the end of its stderr:",
            stderr[-1500:],
        ]
    )
