"""The OpenGL version the probe saw, and requiring one (--require-gl) or a GPU (--require-gpu):
on this host's llvmpipe (OpenGL 4.5 compatibility, no GPU), for real."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ana_env, run_ana


def test_the_child_and_headless_info_are_told_the_gl_version_and_profile() -> None:
    result = run_ana(["exec", "sh", "-c", 'echo "$ANA_HEADLESS_GL_VERSION"'])
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().strip() == "4.5 compatibility"
    code = "import json, ana_headless; print(json.dumps(ana_headless.ensure_headless().as_dict()))"
    info = json.loads(
        subprocess.run(
            [sys.executable, "-c", code],
            env=ana_env(DISPLAY=None, ANA_HEADLESS_DISPLAY=None),
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
    )
    assert info["gl_version"] == "4.5 compatibility"
    explained = run_ana(["exec", "-v", "true"]).stderr.decode()
    assert "OpenGL 4.5 compatibility" in explained


def test_a_version_that_is_there_is_accepted() -> None:
    result = run_ana(["exec", "--require-gl", "3.3", "true"])
    assert result.returncode == 0, result.stderr.decode()


def test_a_newer_version_than_any_mode_gives_is_one_line_naming_what_it_got(
    tmp_path: Path, mesa_dir: str
) -> None:
    env = ana_env(ANA_HEADLESS_PROBE_CACHE=str(tmp_path / "probes.marshal"))
    for args in (["--require-gl", "4.6"], ["--gl", "mesa", "--mesa-dir", mesa_dir]):
        result = run_ana(["exec", "--require-gl", "4.6", *args, "true"], env=env)
        assert result.returncode == 125
        lines = result.stderr.decode().strip().splitlines()
        assert len(lines) == 1, lines
        assert lines[0].startswith("ana-headless: no GL mode gives OpenGL 4.6 (--require-gl): ")
        assert "gave OpenGL 4.5 compatibility on llvmpipe" in lines[0]


def test_require_gpu_on_a_host_without_one_is_one_line_with_a_warm_cache_too(
    tmp_path: Path,
) -> None:
    env = ana_env(
        ANA_HEADLESS_PROBE_CACHE=str(tmp_path / "probes.marshal"), ANA_HEADLESS_REQUIRE_GPU="1"
    )
    for _warm in range(2):
        result = run_ana(["exec", "true"], env=env)
        assert result.returncode == 125
        lines = result.stderr.decode().strip().splitlines()
        assert lines == [
            "ana-headless: no GL mode gives a hardware renderer (--require-gpu): server gave "
            "OpenGL 4.5 compatibility on llvmpipe (LLVM 15.0.6, 256 bits)"
        ] or (len(lines) == 1 and "(--require-gpu): server gave" in lines[0]), lines


def test_bad_versions_are_usage_errors() -> None:
    for value in ("x", "3", "3.3.1", "-1.0", ""):
        result = run_ana(["exec", "--require-gl", value, "true"])
        assert result.returncode == 2, (value, result.stderr.decode())
        assert "--require-gl" in result.stderr.decode().splitlines()[-1]
