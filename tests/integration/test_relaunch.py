"""The command line that our code starts the launcher with (relaunch.launcher_command) imports
nothing from the working directory, where `python -m ana_headless` would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ana_headless.relaunch import launcher_command
from tests.conftest import ROOT, ana_env
from tests.integration.planted import imported, plant


def test_the_launcher_imports_nothing_from_the_working_directory(tmp_path: Path) -> None:
    markers = plant(tmp_path)
    result = subprocess.run(
        [*launcher_command(), "exec", "--dry-run", "true"],
        cwd=tmp_path,
        env=ana_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "ana-headless: command: " in result.stderr
    assert not imported(markers)


def test_the_checkouts_own_script_imports_nothing_from_the_working_directory(
    tmp_path: Path,
) -> None:
    markers = plant(tmp_path)
    result = subprocess.run(
        [str(ROOT / "bin" / "ana-headless"), "exec", "sh", "-c", 'echo "display $DISPLAY"'],
        cwd=tmp_path,
        env=ana_env(ANA_HEADLESS_PYTHON=sys.executable),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("display :")
    assert not imported(markers)
