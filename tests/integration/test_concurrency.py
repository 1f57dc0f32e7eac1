"""Many launchers at once never take each other's display (SPEC §5)."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import ANA_HEADLESS, GL_CLIENT, ana_env

RUNS = 50


@pytest.mark.slow
def test_50_concurrent_gl_runs_get_50_displays_and_correct_frames() -> None:
    env = ana_env(LP_NUM_THREADS="1")
    launchers = [
        subprocess.Popen(
            [ANA_HEADLESS, "run", "--timeout", "120", str(GL_CLIENT)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for _ in range(RUNS)
    ]
    results = [(launcher.communicate(timeout=300), launcher.returncode) for launcher in launchers]
    failures = [err.decode() for (_out, err), status in results if status != 0]
    assert failures == [], failures[:3]
    reports = [json.loads(out) for (out, _err), _status in results]
    assert len({report["env"]["DISPLAY"] for report in reports}) == RUNS
    assert all(r["centre"] == [230, 120, 20] and r["corner"] == [30, 60, 90] for r in reports)
