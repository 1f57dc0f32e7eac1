"""Shared test helpers: how to run the installed CLI, and the leak check around every test
that starts a server."""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from ana_headless.environment import apply_patch
from tests import leaks

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
GL_CLIENT = FIXTURES / "gl_client.py"
# The demo scene and its per-subject snapshot, which the batch tests render.
EXAMPLES = ROOT / "examples"
# Where `make vendor` builds the real VirtualGL and software Mesa from the vendored sources.
VENDOR_CACHE = Path(
    os.environ.get("ANA_VENDOR_CACHE") or Path.home() / ".cache" / "ana-headless-vendor"
)
VGL_BIN = VENDOR_CACHE / "virtualgl" / "bin"
MESA_LIB = VENDOR_CACHE / "mesa" / "lib"
# The installed console script, beside the interpreter running the tests.
ANA_HEADLESS = str(Path(sys.executable).parent / "ana-headless")


# The tests' own probe cache, apart from the user's (SPEC: cached per host).
# Named, not made: the first run that saves a probe creates it (a collection alone leaves none).
PROBE_CACHE = Path(tempfile.gettempdir()) / f"ana-tests-cache-{os.getpid()}" / "probes.marshal"


def ana_env(**overrides: str | None) -> dict[str, str]:
    """The environment a user would have: the fixtures importable (the anatomist stand-in)."""
    env = dict(os.environ, ANA_HEADLESS_PROBE_CACHE=str(PROBE_CACHE))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(FIXTURES), env.get("PYTHONPATH")]))
    return apply_patch(env, overrides)


def run_ana(
    args: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    **kwargs: object,
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [ANA_HEADLESS, *args],
        env=env or ana_env(),
        capture_output=True,
        timeout=timeout,
        check=False,
        **kwargs,
    )  # type: ignore[call-overload]


def frame(args: Sequence[str], env: dict[str, str]) -> tuple[dict[str, Any], str]:
    """Run the GL client (fixtures/gl_client.py) through `ana-headless run -v ARGS`: its
    report, whose frame it checks, and the launcher's stderr."""
    result = run_ana(["run", "-v", *args, str(GL_CLIENT)], env=env)
    err = result.stderr.decode()
    assert result.returncode == 0, err
    report = json.loads(result.stdout)
    assert report["centre"] == [230, 120, 20] and report["corner"] == [30, 60, 90]
    return report, err


@functools.cache
def _render_scene() -> ModuleType:
    # Loaded on first use: it imports PyQt5, which most tests do not need.
    spec = importlib.util.spec_from_file_location("render_scene", EXAMPLES / "render_scene.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_snapshot(path: Path) -> None:
    """The demo's own check of a saved frame: the lit, shaded mesh on the clear colour
    (render_scene.check_image); raises AssertionError with what is wrong."""
    render_scene = _render_scene()
    try:
        render_scene.check_image(path)
    except render_scene.RenderError as error:
        raise AssertionError(str(error)) from None


@pytest.fixture(scope="session", autouse=True)
def remove_probe_cache() -> Iterator[None]:
    shutil.rmtree(PROBE_CACHE.parent, ignore_errors=True)
    yield
    shutil.rmtree(PROBE_CACHE.parent, ignore_errors=True)


@pytest.fixture
def vglrun_path() -> str:
    """A PATH with the real, built VirtualGL first."""
    if not (VGL_BIN / "vglrun").exists():
        pytest.skip(
            f"VirtualGL is not built in {VGL_BIN} (`make vendor` builds it from ../shared/vendor)"
        )
    return f"{VGL_BIN}:{os.environ['PATH']}"


@pytest.fixture
def mesa_dir() -> str:
    """The real, built software Mesa (xlib GLX) library directory."""
    if not (MESA_LIB / "libGL.so.1").exists():
        pytest.skip(
            f"the software Mesa is not built in {MESA_LIB} (`make vendor` builds it "
            "from ../shared/vendor)"
        )
    return str(MESA_LIB)


# The running test's tag, which every process it starts inherits, and the display files there
# were as it started (no_leaks sets both): what it answers for (tests/leaks.py).
_running: tuple[str, dict[str, leaks.Identity]] = ("", {})


def leftovers() -> set[str]:
    """What the running test has left so far: the servers and Anatomist programs it started,
    and the display locks, sockets and private directories it answers for."""
    return leaks.leftovers(*_running)


def still_ours(path: str) -> bool:
    """Whether a display file of the running test's is still there. Display numbers are
    machine-wide: another run may have made a file of that name since, which is not ours."""
    return os.path.lexists(path) and leaks.answers_for(path, leaks.holder(path), _running[0])


def ours_running() -> set[int]:
    """The X servers that the running test started and that are still up."""
    return leaks.tagged(leaks.SERVERS, _running[0])


@pytest.fixture(autouse=True)
def no_leaks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """After every test, whatever its outcome, nothing that it started remains (SPEC §5).
    Only what it started: the machine may be running other people's ana-headless, or another
    checkout's test suite, at the same time."""
    global _running
    tag = leaks.new_tag()
    monkeypatch.setenv(leaks.TAG_VAR, tag)
    _running = (tag, leaks.file_identities())
    yield
    # A killed launcher's watcher cleans up asynchronously: give it a moment.
    deadline = time.monotonic() + 5
    while (new := leftovers()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not new, f"left behind: {sorted(new)}"
