"""The truth about the GPU, on fake GPU trees (this host has no GPU): fake /dev trees whose
"device nodes" are plain files, fake GLVND vendor directories, and GL driver libraries that are
built here to fail to load for real (a missing dependency; a glibc version this system does not
have, as a driver injected from a newer host has)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from ana_headless.doctor import diagnose, render_text
from ana_headless.facts import gpu_devices
from ana_headless.gpucheck import INJECTED_LIBS, explain_load_error
from tests.conftest import ana_env


def fake_dev(root: Path, *names: str) -> str:
    """A fake /dev: plain files named like device nodes (never real devices)."""
    dev = root / "fake-dev"
    (dev / "dri").mkdir(parents=True)
    for name in names:
        (dev / name).touch()
    return str(dev)


def vendor_file(directory: Path, name: str, library: str) -> None:
    directory.mkdir(exist_ok=True)
    icd = {"file_format_version": "1.0.0", "ICD": {"library_path": library}}
    (directory / name).write_text(json.dumps(icd))


def build(directory: Path, name: str, source: str, *args: str) -> Path:
    """A shared library compiled here from `source`."""
    if not shutil.which("cc"):
        pytest.skip("needs a C compiler (cc) to build libraries that fail to load")
    directory.mkdir(parents=True, exist_ok=True)
    c_file = directory / f"{name}.c"
    c_file.write_text(source)
    output = directory / name
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(output), str(c_file), *args], check=True)
    return output


def library_missing_a_dependency(root: Path) -> Path:
    """libEGL_fake.so.0, which needs libghost.so: there at build time, gone at run time."""
    ghost = build(root / "build", "libghost.so", "int ghost(void) { return 1; }\n")
    library = build(
        root / "libs",
        "libEGL_fake.so.0",
        "int ghost(void);\nint fake(void) { return ghost(); }\n",
        f"-L{ghost.parent}",
        "-lghost",
    )
    ghost.unlink()
    return library


def library_needing_a_newer_glibc(directory: Path) -> Path:
    """libGLX_fake.so.0, which needs symbol version GLIBC_2.99 from libc.so.6: linked against a
    stand-in libc that has it, loaded against this system's, which has not."""
    stub_dir = directory.parent / "stub-libc"
    stub_dir.mkdir(parents=True, exist_ok=True)
    (stub_dir / "v.map").write_text("GLIBC_2.99 { global: future_call; };\n")
    stub = build(
        stub_dir,
        "libc.so.6",
        "int future_call(void) { return 0; }\n",
        "-nostdlib",
        "-Wl,-soname,libc.so.6",
        f"-Wl,--version-script={stub_dir / 'v.map'}",
    )
    return build(
        directory,
        "libGLX_fake.so.0",
        "int future_call(void);\nint fake(void) { return future_call(); }\n",
        str(stub),
    )


def test_gpu_devices_are_found_in_a_fake_dev_tree(tmp_path: Path) -> None:
    dev = fake_dev(tmp_path, "nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm", "dri/renderD128")
    render, nvidia = gpu_devices(dev)
    assert render == (f"{dev}/dri/renderD128",)
    assert nvidia == (f"{dev}/nvidia0", f"{dev}/nvidia1")


def test_doctor_on_a_fake_nvidia_tree_without_the_vendor_file_names_that_file(
    tmp_path: Path,
) -> None:
    dev = fake_dev(tmp_path, "nvidia0", "nvidiactl")
    vendor_dir = tmp_path / "fake-egl_vendor.d"
    vendor_file(vendor_dir, "50_mesa.json", "libEGL_mesa.so.0")
    report = diagnose(ana_env(), dev=dev, egl_vendor_dirs=(str(vendor_dir),))
    assert report["gpu"]["devices"] == [f"{dev}/nvidia0"]
    note = report["gpu"]["note"]
    assert "/usr/share/glvnd/egl_vendor.d/10_nvidia.json" in note
    assert "__EGL_VENDOR_LIBRARY_FILENAMES" in note and "--nv" in note
    text = render_text(report)
    assert "10_nvidia.json" in text.split("Next steps:")[1]
    # The GLX vendor library for NVIDIA is not on this host: doctor says so.
    glx = next(
        lib for lib in report["gpu"]["vendor_libraries"] if lib["named_by"] == "GLX vendor 'nvidia'"
    )
    assert "libGLX_nvidia.so.0 is not found" in glx["problem"]


def test_doctor_says_which_driver_library_does_not_load_and_why(tmp_path: Path) -> None:
    missing = library_missing_a_dependency(tmp_path)
    injected = library_needing_a_newer_glibc(tmp_path / ".singularity.d" / "libs")
    vendor_dir = tmp_path / "fake-egl_vendor.d"
    vendor_file(vendor_dir, "10_nvidia.json", str(missing))
    vendor_file(vendor_dir, "50_mesa.json", "libEGL_mesa.so.0")
    dev = fake_dev(tmp_path, "nvidia0")
    env = ana_env(__GLX_VENDOR_LIBRARY_NAME="fake", LD_LIBRARY_PATH=str(injected.parent))
    report = diagnose(env, dev=dev, egl_vendor_dirs=(str(vendor_dir),))
    problems = {lib["named_by"]: lib["problem"] for lib in report["gpu"]["vendor_libraries"]}
    assert problems[str(vendor_dir / "50_mesa.json")] == ""
    assert "libghost.so is not found" in problems[str(vendor_dir / "10_nvidia.json")]
    glibc = problems["GLX vendor 'fake'"]
    assert "version `GLIBC_2.99' not found" in glibc
    assert f"injected from the host ({INJECTED_LIBS})" in glibc
    assert "use an image with glibc 2.99 or newer" in glibc
    # The vendor file is there: the note points at the libraries instead.
    assert "did not give a hardware renderer" in report["gpu"]["note"]


def test_load_errors_are_explained() -> None:
    said = (
        "/.singularity.d/libs/libGLX.so.0: version `GLIBC_2.38' not found "
        "(required by /.singularity.d/libs/libGLX.so.0)"
    )
    assert "use an image with glibc 2.38 or newer" in explain_load_error(said)
    plain = "libfoo.so.1: cannot open shared object file: No such file or directory"
    assert explain_load_error(plain).startswith("libfoo.so.1 is not found")
