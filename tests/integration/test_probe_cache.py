"""The GL probe is cached per host and probed again when a fact it depends on changes."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import ANA_HEADLESS, ana_env, run_ana

CACHED = "[cached probe]"


def probe_lines(args: list[str], env: dict[str, str]) -> list[str]:
    result = run_ana(["exec", "-v", *args, "true"], env=env)
    assert result.returncode == 0, result.stderr.decode()
    return [
        line for line in result.stderr.decode().splitlines() if line.startswith("ana-headless: GL ")
    ]


def test_second_run_skips_the_probe_and_a_changed_fact_probes_again(tmp_path: Path) -> None:
    env = ana_env(ANA_HEADLESS_PROBE_CACHE=str(tmp_path / "probes.marshal"))
    first = probe_lines([], env)
    assert first and not any(CACHED in line for line in first)
    assert all(CACHED in line for line in probe_lines([], env))
    # A new loader variable may change which libGL is loaded: probe again, then cache that.
    changed = {**env, "LD_LIBRARY_PATH": str(tmp_path)}
    assert not any(CACHED in line for line in probe_lines([], changed))
    assert all(CACHED in line for line in probe_lines([], changed))
    # Another screen depth has other GLX visuals.
    assert not any(CACHED in line for line in probe_lines(["--screen", "640x480x16"], env))


def test_another_mode_is_probed_on_its_own(tmp_path: Path, mesa_dir: str) -> None:
    env = ana_env(ANA_HEADLESS_PROBE_CACHE=str(tmp_path / "probes.marshal"))
    probe_lines([], env)
    mesa = probe_lines(["--gl", "mesa", "--mesa-dir", mesa_dir], env)
    assert mesa and "mesa: works" in mesa[0] and CACHED not in mesa[0]


def test_dry_run_says_where_a_probe_is_still_needed(tmp_path: Path) -> None:
    env = ana_env(ANA_HEADLESS_PROBE_CACHE=str(tmp_path / "probes.marshal"))
    before = run_ana(["exec", "--dry-run", "true"], env=env).stderr.decode()
    assert "probe: needed" in before
    probe_lines([], env)
    after = run_ana(["exec", "--dry-run", "true"], env=env).stderr.decode()
    assert "probe: server: works" in after and CACHED in after


def test_cache_can_be_turned_off(tmp_path: Path) -> None:
    env = ana_env(ANA_HEADLESS_PROBE_CACHE="0")
    probe_lines([], env)
    assert not any(CACHED in line for line in probe_lines([], env))


def _processes_marked(marker: str) -> list[tuple[int, bytes, bytes]]:
    """(pid, comm, cmdline) of the live processes whose environment holds `marker`."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as environ:
                if marker.encode() not in environ.read().split(b"\0"):
                    continue
            comm = Path(f"/proc/{name}/comm").read_bytes().strip()
            cmdline = Path(f"/proc/{name}/cmdline").read_bytes()
        except OSError:
            continue
        found.append((int(name), comm, cmdline))
    return found


def _run_killing_the_server_during_the_probe(env: dict[str, str], marker: str) -> bool:
    """Run once, and SIGKILL its Xvfb while its GL probe runs; whether the kill landed then."""
    launcher = subprocess.Popen(
        [ANA_HEADLESS, "exec", "--gl", "server", "true"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    killed = False
    deadline = time.monotonic() + 30
    while launcher.poll() is None and not killed and time.monotonic() < deadline:
        running = _processes_marked(marker)
        if any(b"glprobe.py" in cmdline for _pid, _comm, cmdline in running):
            for pid, comm, _cmdline in running:
                if comm == b"Xvfb":
                    os.kill(pid, signal.SIGKILL)
                    killed = True
    _, stderr = launcher.communicate(timeout=60)
    if not killed:
        return False
    assert launcher.returncode == 125, stderr.decode()
    assert "server ended while OpenGL was being checked" in stderr.decode()
    return True


def test_a_server_killed_during_the_probe_fails_that_run_only(tmp_path: Path) -> None:
    """A transient fault (the server killed, a memory limit) during the first probe is not
    remembered as "no working OpenGL": the next run probes again, and works."""
    marker = f"ANA_TESTS_PROBE_KILL={uuid.uuid4().hex}"
    name, value = marker.split("=")
    for attempt in range(10):
        env = ana_env(ANA_HEADLESS_PROBE_CACHE=str(tmp_path / f"probes-{attempt}.marshal"))
        env[name] = value
        if _run_killing_the_server_during_the_probe(env, marker):
            break
    else:
        pytest.fail("the probe was never caught running in 10 runs")
    again = run_ana(["exec", "-v", "--gl", "server", "true"], env=env)
    assert again.returncode == 0, again.stderr.decode()
    assert CACHED not in again.stderr.decode()
