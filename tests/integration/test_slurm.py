"""Inside a SLURM job, VirtualGL's default device is the allocated GPU's (ana_headless.slurmgpu,
unit-tested from fake trees); here, the launcher reads the job's variables on a host without
a GPU and says why it falls back to VirtualGL's first EGL device."""

from __future__ import annotations

import pytest

from tests.conftest import ana_env, run_ana


@pytest.mark.vendor
def test_a_slurm_job_gpu_that_is_not_here_is_reported_in_the_plan(vglrun_path: str) -> None:
    env = ana_env(PATH=vglrun_path, SLURM_JOB_ID="7", SLURM_JOB_GPUS="0", VGL_DISPLAY=None)
    result = run_ana(["exec", "--dry-run", "--gl", "virtualgl", "true"], env=env)
    err = result.stderr.decode()
    assert result.returncode == 0, err
    assert "SLURM_JOB_GPUS=0, but no NVIDIA GPU has device minor 0" in err
    assert "vglrun -d egl" in err
