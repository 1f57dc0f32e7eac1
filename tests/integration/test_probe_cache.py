"""The GL probe is cached per host and probed again when a fact it depends on changes."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import ana_env, run_ana

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
