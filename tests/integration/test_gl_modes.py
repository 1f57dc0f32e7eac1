"""GL modes that tell the truth, with the real VirtualGL and the real software Mesa built from
the vendored sources (these tests skip, saying why, where they are not built)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from ana_headless.doctor import SCHEMA_FILE
from tests.conftest import FIXTURES, GL_CLIENT, ana_env, frame, run_ana

SOFTWARE_EGL_NOTE = "where VirtualGL only adds cost"


def doctor_json(env: dict[str, str]) -> dict[str, Any]:
    result = run_ana(["doctor", "--json"], env=env)
    report = json.loads(result.stdout)
    with open(SCHEMA_FILE, encoding="utf-8") as schema:
        jsonschema.validate(report, json.load(schema))
    assert result.returncode == (0 if report["chosen"] else 1)
    return report


def test_without_virtualgl_auto_uses_the_server_glx_and_doctor_says_why() -> None:
    env = ana_env()
    report, err = frame([], env)
    assert report["env"]["ANA_HEADLESS_MODE"] == "server"
    assert "GLX vendor 'Mesa Project and SGI'" in err
    doctor = doctor_json(env)
    assert doctor["chosen"]["mode"] == "server" and doctor["chosen"]["software"]
    assert any("vglrun not found" in why for why in doctor["skipped"])
    text = run_ana(["doctor"], env=env).stdout.decode()
    assert "=> server: works" in text and "vglrun not found" in text


def test_virtualgl_egl_back_end_renders(vglrun_path: str) -> None:
    report, err = frame(["--gl", "virtualgl"], ana_env(PATH=vglrun_path))
    assert report["env"]["ANA_HEADLESS_MODE"] == "virtualgl"
    assert report["env"]["VGL_ISACTIVE"] == "1"
    assert any(lib.endswith("libvglfaker.so") for lib in report["libraries"])
    assert "GLX vendor 'VirtualGL'" in err


def test_on_a_software_egl_device_auto_keeps_the_server_glx(vglrun_path: str) -> None:
    env = ana_env(PATH=vglrun_path)
    report, err = frame([], env)
    assert report["env"]["ANA_HEADLESS_MODE"] == "server"
    assert report["env"]["VGL_ISACTIVE"] is None
    assert SOFTWARE_EGL_NOTE in err
    doctor = doctor_json(env)
    assert doctor["chosen"]["mode"] == "server"
    virtualgl = next(c for c in doctor["candidates"] if c["mode"] == "virtualgl")
    assert virtualgl["probe"]["ok"] and not virtualgl["probe"]["accepted"]
    assert SOFTWARE_EGL_NOTE in virtualgl["probe"]["summary"]


def test_force_virtualgl_uses_the_software_egl_device(vglrun_path: str) -> None:
    report, _err = frame(["--force-virtualgl"], ana_env(PATH=vglrun_path))
    assert report["env"]["ANA_HEADLESS_MODE"] == "virtualgl"
    assert report["env"]["VGL_ISACTIVE"] == "1"


def test_no_virtualgl_never_uses_it(vglrun_path: str) -> None:
    env = ana_env(PATH=vglrun_path)
    report, _err = frame(["--no-virtualgl", "--force-virtualgl"], env)
    assert report["env"]["ANA_HEADLESS_MODE"] == "server"
    result = run_ana(
        ["exec", "--gl", "virtualgl", "true"], env={**env, "ANA_HEADLESS_ALLOW_VIRTUALGL": "0"}
    )
    assert result.returncode == 125
    assert "not allowed" in result.stderr.decode()


@pytest.fixture
def second_xvfb(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A second Xvfb with its own cookie, playing a GPU host's 3D X server."""
    auth = tmp_path / "user-xauthority"
    cookie = os.urandom(16).hex()
    read_end, write_end = os.pipe()
    server = subprocess.Popen(
        [
            "Xvfb",
            "-displayfd",
            str(write_end),
            "-nolisten",
            "tcp",
            "-auth",
            str(auth),
            "+extension",
            "GLX",
        ],
        pass_fds=(write_end,),
        stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    subprocess.run(["xauth", "-f", str(auth), "add", ":0", ".", cookie], check=True)
    with os.fdopen(read_end) as pipe:
        display = ":" + pipe.readline().strip()
    subprocess.run(["xauth", "-f", str(auth), "add", display, ".", cookie], check=True)
    try:
        yield display, str(auth)
    finally:
        server.terminate()
        server.wait()


def test_virtualgl_glx_back_end_on_a_3d_x_server(
    vglrun_path: str, second_xvfb: tuple[str, str]
) -> None:
    display, auth = second_xvfb
    # The user's own cookie for the 3D server reaches VirtualGL through our cookie file.
    env = ana_env(PATH=vglrun_path, XAUTHORITY=auth)
    for args, extra in (
        (["--gl", "virtualgl", "--vgl-display", display], {}),
        (["--gl", "virtualgl"], {"VGL_DISPLAY": display}),
        (["--gl", "virtualgl"], {"DISPLAY": display}),
    ):
        result = run_ana(["run", "--explain", *args, str(GL_CLIENT)], env={**env, **extra})
        assert result.returncode == 0, result.stderr.decode()
        report = json.loads(result.stdout)
        assert report["centre"] == [230, 120, 20] and report["corner"] == [30, 60, 90]
        assert report["env"]["VGL_ISACTIVE"] == "1"
        assert report["env"]["DISPLAY"] != display
        assert f"vglrun -d {display}" in result.stderr.decode()


def test_mesa_dir_renders_through_that_libgl(mesa_dir: str) -> None:
    report, err = frame(["--gl", "mesa", "--mesa-dir", mesa_dir], ana_env())
    assert report["env"]["ANA_HEADLESS_MODE"] == "mesa"
    assert report["env"]["LD_LIBRARY_PATH"].split(":")[0] == mesa_dir
    # The Qt child itself went through that Mesa, not through EGL or the system libGL.
    libgl = [lib for lib in report["libraries"] if os.path.basename(lib).startswith("libGL.so")]
    assert libgl and all(lib.startswith(mesa_dir + "/") for lib in libgl)
    assert not any("libEGL" in lib for lib in report["libraries"])
    assert "GLX vendor 'Brian Paul'" in err


def test_mesa_dir_that_is_missing_or_empty_is_named(tmp_path: Path) -> None:
    missing = run_ana(["exec", "--gl", "mesa", "--mesa-dir", str(tmp_path / "no"), "true"])
    assert missing.returncode == 2
    assert str(tmp_path / "no") in missing.stderr.decode()
    empty = run_ana(["exec", "--gl", "mesa", "--mesa-dir", str(tmp_path), "true"])
    assert empty.returncode == 125
    assert f"no libGL.so.1 in {tmp_path}" in empty.stderr.decode()


def test_forced_broken_mesa_is_125_with_the_probe_output(tmp_path: Path) -> None:
    (tmp_path / "libGL.so.1").write_bytes(b"not a library")
    result = run_ana(["exec", "--gl", "mesa", "--mesa-dir", str(tmp_path), "true"])
    assert result.returncode == 125
    err = result.stderr.decode()
    assert "no working OpenGL" in err and "cannot load libGL.so.1" in err


def test_broken_virtualgl_is_skipped_in_auto_and_fatal_when_forced(vglrun_path: str) -> None:
    # There is no DRI device here: VirtualGL's EGL back end really fails on it.
    env = ana_env(PATH=vglrun_path, VGL_DISPLAY="/dev/dri/card0")
    report, err = frame(["--force-virtualgl"], env)
    assert report["env"]["ANA_HEADLESS_MODE"] == "server"
    assert "virtualgl: failed" in err
    forced = run_ana(["exec", "--gl", "virtualgl", "true"], env=env)
    assert forced.returncode == 125
    assert "virtualgl: failed" in forced.stderr.decode()


def test_xpra_server_renders_and_leaves_nothing() -> None:
    xpra_dirs = [Path.home() / ".xpra", Path("/run/user") / str(os.getuid()) / "xpra"]
    before = {d: set(d.iterdir()) if d.is_dir() else set() for d in xpra_dirs}
    report, err = frame(["--server", "xpra", "--timeout", "60"], ana_env())
    assert "starting xpra" in err
    assert report["env"]["ANA_HEADLESS_MODE"] == "server"
    for directory in xpra_dirs:
        after = set(directory.iterdir()) if directory.is_dir() else set()
        assert after <= before[directory], f"xpra left files in {directory}"


def test_dry_run_starts_no_server(tmp_path: Path) -> None:
    """A fake Xvfb that records being started: the only way to observe "never started"."""
    fake_dir = tmp_path / "bin"
    fake_dir.mkdir()
    marker = tmp_path / "started"
    fake = fake_dir / "Xvfb"
    fake.write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
    fake.chmod(0o755)
    env = ana_env(PATH=f"{fake_dir}:{os.environ['PATH']}")
    result = run_ana(
        ["exec", "--dry-run", "--gl", "server", "touch", str(tmp_path / "ran")], env=env
    )
    assert result.returncode == 0
    assert "server: xvfb" in result.stderr.decode()
    assert not marker.exists() and not (tmp_path / "ran").exists()


def test_mesa_mode_reaches_programs_that_draw_through_glvnd(mesa_dir: str) -> None:
    """A program linked against GLVND's libOpenGL.so.0 (as CMake links by default), or one that
    opens any other name a loader asks for (PyOpenGL opens the unversioned libOpenGL.so and
    libGLX.so first), draws through the Mesa too, not through the system's GLVND, where no
    context is current."""
    names = ["libOpenGL.so.0", "libOpenGL.so", "libGLX.so.0", "libGLX.so", "libGL.so", "libGL.so.1"]
    result = run_ana(
        ["run", "--gl", "mesa", "--mesa-dir", mesa_dir, str(FIXTURES / "glvnd_client.py"), *names]
    )
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    report = json.loads(result.stdout)
    assert set(report["renderers"]) == set(names)
    assert all("llvmpipe" in renderer for renderer in report["renderers"].values()), report
    assert report["libraries"]
    assert all(lib.startswith(mesa_dir + "/") for lib in report["libraries"])


def test_mesa_mode_reaches_pyopengl_imported_after_a_qt_context(mesa_dir: str) -> None:
    """PyOpenGL imported once Qt's context exists answers from the Mesa (it asked the system's
    GLVND, which answered nothing, and the program drew black)."""
    result = run_ana(
        ["run", "--gl", "mesa", "--mesa-dir", mesa_dir, str(FIXTURES / "pyopengl_client.py")]
    )
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    assert "llvmpipe" in result.stdout.decode()


GLOBAL_LOOKUP = """\
import ctypes
import json

import ana_headless

# libGL as an extension module gets it: loaded in a scope of its own (ctypes' default mode).
ctypes.CDLL("libGL.so.1")
main = ctypes.CDLL(None)
before = hasattr(main, "glActiveTexture")
ana_headless.ensure_headless()
print(json.dumps({"before": before, "after": hasattr(main, "glActiveTexture")}))
"""


def test_mesa_mode_gl_functions_are_found_in_the_global_scope(
    tmp_path: Path, mesa_dir: str
) -> None:
    """BrainVISA's direct Anatomist, an extension module, looks its GL functions up with
    dlsym(dlopen(NULL)): in the mesa mode it found none (in the server mode GLVND makes its
    vendor library global, in the virtualgl mode the preloaded faker brings libGL), and
    snapshotted the wrong part of its view. ensure_headless() (and
    so HeadlessAnatomist()) makes the Mesa global, even once loaded."""
    script = tmp_path / "lookup.py"
    script.write_text(GLOBAL_LOOKUP)
    result = run_ana(["run", "--gl", "mesa", "--mesa-dir", mesa_dir, str(script)])
    assert result.returncode == 0, result.stderr.decode()
    assert json.loads(result.stdout) == {"before": False, "after": True}
