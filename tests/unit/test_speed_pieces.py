"""The pieces that keep the launcher fast: the early server's guess, and the probe cache key."""

from __future__ import annotations

from pathlib import Path

import pytest

from ana_headless.display import Screen
from ana_headless.entry import _wanted_screen
from ana_headless.plan import Candidate
from ana_headless.probecache import ProbeCache, probe_key

DEFAULT = Screen(1280, 1024, 24)


@pytest.mark.parametrize("args, env, screen", [
    (["run", "s.py"], {}, DEFAULT),
    (["exec", "--screen", "640x480x16", "prog"], {}, Screen(640, 480, 16)),
    (["run", "--screen=800x600x24", "-v", "s.py", "--screen", "1x1x8"], {}, Screen(800, 600, 24)),
    (["./s.py", "x"], {"ANA_HEADLESS_SCREEN": "320x200x24"}, Screen(320, 200, 24)),
    (["run", "-m", "mod", "--screen", "1x1x8"], {}, DEFAULT),
])
def test_early_server_guesses_the_screen(args: list[str], env: dict[str, str],
                                         screen: Screen) -> None:
    assert _wanted_screen(args, env) == screen


@pytest.mark.parametrize("args, env", [
    (["doctor"], {}), (["--help"], {}), (["run", "--dry-run", "s.py"], {}),
    (["run", "--server", "xpra", "s.py"], {}), (["run", "s.py"], {"ANA_HEADLESS_SERVER": "xpra"}),
    (["run", "--screen", "bad", "s.py"], {}), ([], {}),
])
def test_no_early_server_when_it_would_not_be_used(args: list[str], env: dict[str, str]) -> None:
    assert _wanted_screen(args, env) is None


def test_probe_key_changes_with_what_the_probe_depends_on(tmp_path: Path) -> None:
    mesa = tmp_path / "mesa"
    mesa.mkdir()
    (mesa / "libGL.so.1").write_bytes(b"one")
    candidate = Candidate("mesa", "test", env_patch={"LD_LIBRARY_PATH": str(mesa)})
    key = probe_key(candidate, {}, "/usr/bin/Xvfb", 24, __file__)
    assert key == probe_key(candidate, {"HOME": "/elsewhere"}, "/usr/bin/Xvfb", 24, __file__)
    assert key != probe_key(candidate, {"LD_PRELOAD": "x.so"}, "/usr/bin/Xvfb", 24, __file__)
    assert key != probe_key(candidate, {}, "/usr/bin/Xvfb", 16, __file__)
    (mesa / "libGL.so.1").write_bytes(b"another build")
    assert key != probe_key(candidate, {}, "/usr/bin/Xvfb", 24, __file__)


def test_probe_cache_round_trip_and_bad_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "probes.json"
    cache = ProbeCache(str(path))
    cache.put("k", {"ok": True})
    cache.save()
    assert ProbeCache(str(path)).get("k") == {"ok": True}
    path.write_text("not json")
    assert ProbeCache(str(path)).get("k") is None
