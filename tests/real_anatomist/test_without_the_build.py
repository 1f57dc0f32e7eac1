"""Where `make anatomist` (or `make anatomist-direct`) has not run, the real-Anatomist tests
skip and say how to run them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT


@pytest.mark.parametrize(
    "marker, folder, how",
    [
        ("anatomist", "real_anatomist", "`make anatomist` builds it"),
        ("anatomist_direct", "real_anatomist_direct", "`make anatomist-direct` builds them"),
    ],
)
def test_the_group_skips_naming_its_make_target(
    tmp_path: Path, marker: str, folder: str, how: str
) -> None:
    env = dict(os.environ, ANA_VENDOR_CACHE=str(tmp_path))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-m",
            marker,
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
            str(ROOT / "tests" / folder),
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
    assert skips and all(how in line for line in skips), skips
