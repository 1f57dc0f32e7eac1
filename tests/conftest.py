"""Shared test helpers: how to run the installed CLI, and the leak check around every test
that starts a server."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from ana_headless.environment import apply_patch

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
GL_CLIENT = FIXTURES / "gl_client.py"
# Where `make vendor` builds the real VirtualGL and software Mesa from the vendored sources.
VENDOR_CACHE = Path(os.environ.get("ANA_VENDOR_CACHE")
                    or Path.home() / ".cache" / "ana-headless-vendor")
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


def run_ana(args: Sequence[str], *, env: dict[str, str] | None = None, timeout: float = 120,
            **kwargs: object) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([ANA_HEADLESS, *args], env=env or ana_env(), capture_output=True,
                          timeout=timeout, check=False, **kwargs)  # type: ignore[call-overload]


def command_lines() -> Iterator[tuple[int, list[bytes]]]:
    """(pid, argv) of every process that is not a zombie."""
    for entry in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            with open(entry, "rb") as handle:
                argv = handle.read().split(b"\0")
        except OSError:
            continue
        if argv != [b""]:
            yield int(entry.split("/")[2]), argv


def ours_running() -> set[int]:
    """Pids of X servers started by ana-headless (their -auth file is in our private dir)."""
    return {pid for pid, argv in command_lines()
            if any(b"/ana-headless-" in arg for arg in argv)
            and argv[0].endswith((b"Xvfb", b"xpra"))}


def anatomist_running() -> set[int]:
    """Pids of the real Anatomist program (binary anatomist-bin, started as `anatomist`), the
    grandchild of a run whose script uses pyanatomist's socket implementation."""
    return {pid for pid, argv in command_lines()
            if os.path.basename(argv[0]) in (b"anatomist", b"anatomist-bin")}


def leftovers() -> set[str]:
    """Everything of ours a run could leave: servers, Anatomist programs, locks, sockets,
    private directories."""
    return ({f"process {pid}" for pid in ours_running()}
            | {f"anatomist process {pid}" for pid in anatomist_running()}
            | set(glob.glob("/tmp/.X*-lock")) | set(glob.glob("/tmp/.X11-unix/X*"))
            | set(glob.glob("/tmp/ana-headless-*")))


@pytest.fixture(scope="session", autouse=True)
def remove_probe_cache() -> Iterator[None]:
    shutil.rmtree(PROBE_CACHE.parent, ignore_errors=True)
    yield
    shutil.rmtree(PROBE_CACHE.parent, ignore_errors=True)


@pytest.fixture
def vglrun_path() -> str:
    """A PATH with the real, built VirtualGL first."""
    if not (VGL_BIN / "vglrun").exists():
        pytest.skip(f"VirtualGL is not built in {VGL_BIN} (`make vendor` builds it from "
                    "../shared/vendor)")
    return f"{VGL_BIN}:{os.environ['PATH']}"


@pytest.fixture
def mesa_dir() -> str:
    """The real, built software Mesa (xlib GLX) library directory."""
    if not (MESA_LIB / "libGL.so.1").exists():
        pytest.skip(f"the software Mesa is not built in {MESA_LIB} (`make vendor` builds it "
                    "from ../shared/vendor)")
    return str(MESA_LIB)


@pytest.fixture(autouse=True)
def no_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """After every test, whatever its outcome, nothing new of ours remains (SPEC §5)."""
    before = leftovers()
    yield
    # A killed launcher's watcher cleans up asynchronously: give it a moment.
    deadline = time.monotonic() + 5
    while (new := leftovers() - before) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not new, f"left behind: {sorted(new)}"
