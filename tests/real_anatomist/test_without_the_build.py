"""Where `make anatomist` has not run, the real-Anatomist tests skip and say how to run them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def test_the_group_skips_naming_make_anatomist(tmp_path: Path) -> None:
    env = dict(os.environ, ANA_VENDOR_CACHE=str(tmp_path))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-m",
            "anatomist",
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
            str(Path(__file__).parent),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    output = result.stdout.decode()
    assert result.returncode == 0, output
    summary = output.splitlines()[-1]
    assert " skipped" in summary and "passed" not in summary and "failed" not in summary
    skips = [line for line in output.splitlines() if line.startswith("SKIPPED")]
    assert skips and all("`make anatomist` builds it" in line for line in skips), skips
