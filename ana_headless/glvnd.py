"""GLVND's library names for a software Mesa libGL, so that the mesa mode reaches every program.

Programs built against GLVND (CMake's FindOpenGL prefers it since CMake 3.11: OpenGL::OpenGL,
OpenGL::GLX) call OpenGL through libOpenGL.so.0 and GLX through libGLX.so.0, not through
libGL.so.1. A Mesa built with `glx=xlib` is one libGL.so.1 that does both and knows nothing of
GLVND's dispatch. Put first on the library path alone, it serves the GLX calls a toolkit makes
through libGL.so.1 (Qt makes its contexts current that way), while the program's own drawing
still goes through the system's libOpenGL.so.0, to which no context is current: every call is
lost (BrainVISA's Anatomist then says "Unrecognized OpenGL version" and draws nothing).
Links named like GLVND's libraries, next on the path, send those calls to the Mesa as well.
"""

from __future__ import annotations

import os

# Every name a loader may ask for: GLVND's front libraries, versioned and not (PyOpenGL opens
# the unversioned libOpenGL.so and libGLX.so first, which Debian's libopengl-dev provides), and
# the unversioned libGL.so, which a Mesa directory may lack.
GLVND_FRONT_LIBRARIES = (
    "libOpenGL.so.0",
    "libOpenGL.so",
    "libGLX.so.0",
    "libGLX.so",
    "libGL.so",
)
# The directory of the links, in the run's private directory.
GLVND_LINKS = "glvnd"


def glvnd_links(mesa_dir: str) -> tuple[tuple[str, str], ...]:
    """The links (name in the private directory, target) that lead GLVND's names to the Mesa
    libGL.so.1 in `mesa_dir`; their directory goes right after the Mesa's on the path."""
    target = os.path.join(mesa_dir, "libGL.so.1")
    return tuple((f"{GLVND_LINKS}/{name}", target) for name in GLVND_FRONT_LIBRARIES)
