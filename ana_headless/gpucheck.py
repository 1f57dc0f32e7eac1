"""What `doctor` says about a GPU that a probe did not reach: the GLVND vendor files that name
the GL drivers, and whether each driver library loads.

The most common failure on GPU clusters and in containers is silent: NVIDIA's EGL vendor file
is not bound into the container, or its libraries are injected only in part, or were built for
a newer glibc than the image's, and GLVND quietly falls back to Mesa's software renderer. Each
library is loaded in a process of its own (a driver that fails to load may take its loader
down), and what the dynamic loader said is turned into what to do.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sh

from .facts import EGL_VENDOR_DIRS, egl_vendor_files

if TYPE_CHECKING:
    from collections.abc import Mapping

# Where apptainer (singularity) injects the host's driver libraries with --nv.
INJECTED_LIBS = "/.singularity.d/libs/"
_LOAD = """\
import ctypes, sys
try:
    ctypes.CDLL(sys.argv[1])
except OSError as error:
    sys.exit(str(error))
"""
_LOAD_DEADLINE = 30.0


@dataclass(frozen=True)
class VendorLibrary:
    """A GL driver library that GLVND would load, and what is wrong with it (empty: it loads)."""

    named_by: str
    library: str
    problem: str


def vendor_library(vendor_file: str) -> str | None:
    """The library an EGL vendor file names (its ICD's library_path)."""
    try:
        with open(vendor_file, encoding="utf-8") as file:
            icd = json.load(file).get("ICD", {})
    except (OSError, ValueError, AttributeError):
        return None
    library = icd.get("library_path") if isinstance(icd, dict) else None
    return library if isinstance(library, str) and library else None


def load_problem(library: str, env: Mapping[str, str]) -> str:
    """Why `library` does not load here, in words that say what to do; empty when it loads."""
    try:
        loaded = sh.Command(sys.executable)(
            "-c",
            _LOAD,
            library,
            _env=dict(env),
            _timeout=_LOAD_DEADLINE,
            _ok_code=list(range(256)),
            _return_cmd=True,
        )
    except sh.TimeoutException:
        return f"loading {library} did not end within {_LOAD_DEADLINE:g} s"
    if loaded.exit_code == 0:
        return ""
    stderr = loaded.stderr.decode(errors="replace").strip()
    said = (stderr.splitlines() or [f"exit status {loaded.exit_code}"])[-1]
    return explain_load_error(said)


def explain_load_error(said: str) -> str:
    """The dynamic loader's message, with what it means for a GL driver."""
    glibc = re.search(r"version `GLIBC_([0-9.]+)' not found \(required by ([^)]+)\)", said)
    if glibc:
        needed, needer = glibc.groups()
        where = (
            f": {needer} was injected from the host ({INJECTED_LIBS}) and needs a newer glibc "
            "than this image has; use an image with glibc "
            f"{needed} or newer, or do not inject that library"
            if INJECTED_LIBS in needer
            else ""
        )
        return f"{said} (this system's glibc is {_glibc()}){where}"
    missing = re.search(r"^([^:]+): cannot open shared object file", said)
    if missing:
        injected = (
            f"; the driver was injected only in part ({INJECTED_LIBS} lacks it)"
            if INJECTED_LIBS in said or os.path.isdir(INJECTED_LIBS)
            else ""
        )
        return f"{missing.group(1)} is not found{injected}: {said}"
    return said


def _glibc() -> str:
    import platform

    return platform.libc_ver()[1] or "unknown"


def check(
    env: Mapping[str, str], nvidia: bool, dirs: tuple[str, ...] = EGL_VENDOR_DIRS
) -> list[VendorLibrary]:
    """Every EGL vendor file GLVND would read, and whether the library it names loads; and
    GLX's vendor library for NVIDIA where NVIDIA devices are (`nvidia`), or the one that
    __GLX_VENDOR_LIBRARY_NAME names (GLX finds them by name, not by a file)."""
    named: list[tuple[str, str | None]] = [
        (vendor_file, vendor_library(vendor_file)) for vendor_file in egl_vendor_files(env, dirs)
    ]
    glx = env.get("__GLX_VENDOR_LIBRARY_NAME") or ("nvidia" if nvidia else "")
    if glx:
        named.append((f"GLX vendor {glx!r}", f"libGLX_{glx}.so.0"))
    return [
        VendorLibrary(
            source,
            library or "",
            load_problem(library, env)
            if library
            else "names no library (not a GLVND EGL vendor file?)",
        )
        for source, library in named
    ]
