"""The probe cache's key and file."""

from __future__ import annotations

from pathlib import Path

from ana_headless.plan import Candidate
from ana_headless.probecache import ProbeCache, probe_key


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
    path = tmp_path / "sub" / "probes.marshal"
    cache = ProbeCache(str(path))
    cache.put("k", {"ok": True, "report": {"libraries": ["libGL.so.1"]}})
    cache.save()
    assert ProbeCache(str(path)).get("k") == {"ok": True, "report": {"libraries": ["libGL.so.1"]}}
    path.write_text("not marshal")
    assert ProbeCache(str(path)).get("k") is None
