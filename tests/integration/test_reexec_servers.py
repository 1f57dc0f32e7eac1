"""A process that must restart under the launcher (its GL mode needs loader variables from its
start) starts one X server, not two: the decision is taken from the plan, or from the probe
cache, before any server starts. The servers are counted by a wrapper around the real Xvfb
that notes each start (a counting wrapper: the server itself is real)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ana_env

SCRIPT = """\
import json, sys
import ana_headless

info = ana_headless.ensure_headless(force_virtualgl="--force-virtualgl" in sys.argv)
print(json.dumps(info.as_dict()))
"""


def _counting_xvfb(tmp_path: Path) -> tuple[Path, Path]:
    """A directory whose Xvfb notes each start in a file, then execs the real one."""
    directory, starts = tmp_path / "bin", tmp_path / "starts"
    directory.mkdir()
    wrapper = directory / "Xvfb"
    wrapper.write_text(f'#!/bin/sh\necho started >> "{starts}"\nexec /usr/bin/Xvfb "$@"\n')
    wrapper.chmod(0o755)
    return directory, starts


def _run(script: Path, env: dict[str, str], *args: str) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, str(script), *args], env=env, capture_output=True, timeout=120
    )
    assert result.returncode == 0, result.stderr.decode()
    return dict(json.loads(result.stdout.decode().splitlines()[-1]))


def _servers_started(starts: Path) -> int:
    count = len(starts.read_text().splitlines()) if starts.exists() else 0
    starts.unlink(missing_ok=True)
    return count


def test_a_mode_the_plan_says_needs_a_fresh_process_starts_one_server(
    tmp_path: Path, mesa_dir: str
) -> None:
    bin_dir, starts = _counting_xvfb(tmp_path)
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    env = ana_env(
        PATH=f"{bin_dir}:/usr/bin:/bin",
        DISPLAY=None,
        ANA_HEADLESS_DISPLAY=None,
        ANA_HEADLESS_GL="mesa",
        ANA_HEADLESS_MESA_DIR=mesa_dir,
        ANA_HEADLESS_PROBE_CACHE=str(tmp_path / "probes.marshal"),
    )
    info = _run(script, env)
    assert info["mode"] == "mesa" and info["reexec"]
    assert _servers_started(starts) == 1


def test_a_cached_choice_that_needs_a_fresh_process_starts_one_server(
    tmp_path: Path, vglrun_path: str
) -> None:
    """auto: only a probe can tell the first time (two servers then); the cache tells after."""
    bin_dir, starts = _counting_xvfb(tmp_path)
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    env = ana_env(
        PATH=f"{bin_dir}:{vglrun_path}",
        DISPLAY=None,
        ANA_HEADLESS_DISPLAY=None,
        ANA_HEADLESS_PROBE_CACHE=str(tmp_path / "probes.marshal"),
    )
    first = _run(script, env, "--force-virtualgl")
    assert first["mode"] == "virtualgl" and first["reexec"]
    assert _servers_started(starts) == 2
    again = _run(script, env, "--force-virtualgl")
    assert again["mode"] == "virtualgl" and again["reexec"]
    assert _servers_started(starts) == 1
