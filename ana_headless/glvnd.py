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

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from .lifetime import PrivateDirectory

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


def with_glvnd_names(
    env_patch: Mapping[str, str | None], directory: PrivateDirectory
) -> dict[str, str | None]:
    """The mesa mode's patch, with a directory of GLVND-named links to its libGL.so.1 (made
    in our private directory, removed with it) right after the Mesa directory on the path.
    SetupError when they cannot be made (a full TMPDIR)."""
    library_path = env_patch.get("LD_LIBRARY_PATH") or ""
    mesa_dir, _, rest = library_path.partition(os.pathsep)
    links = directory.make_directory("glvnd")
    for name in GLVND_FRONT_LIBRARIES:
        directory.link(f"glvnd/{name}", os.path.join(mesa_dir, "libGL.so.1"))
    return {**env_patch, "LD_LIBRARY_PATH": os.pathsep.join(filter(None, (mesa_dir, links, rest)))}
