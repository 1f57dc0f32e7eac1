"""The GL probe: run as a script, with exactly the environment and prefix the child will get.

It opens the display, creates a GLX context on a small pbuffer (no window, so no visual can
mismatch), clears it to a known colour and reads a pixel back: a context that cannot draw is
not "working". It prints one JSON object on stdout and exits 0 only when the pixel came back.

It imports nothing but the standard library, so any Python 3 can run it by path, and loads
`libGL.so.1` through the dynamic loader, so `LD_LIBRARY_PATH` and VirtualGL's `LD_PRELOAD`
apply to it exactly as they apply to the child. The in-process API imports it for
`mapped_libraries` only: ctypes and json are imported by the probe itself.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

GLX_VENDOR = 1
GLX_RENDER_TYPE = 0x8011
GLX_DRAWABLE_TYPE = 0x8010
GLX_RGBA_BIT = 0x1
GLX_PBUFFER_BIT = 0x4
GLX_RED_SIZE, GLX_GREEN_SIZE, GLX_BLUE_SIZE = 8, 9, 10
GLX_PBUFFER_WIDTH, GLX_PBUFFER_HEIGHT = 0x8041, 0x8040
GLX_RGBA_TYPE = 0x8014
GL_VENDOR, GL_RENDERER, GL_VERSION = 0x1F00, 0x1F01, 0x1F02
GL_CONTEXT_PROFILE_MASK = 0x9126
GL_CONTEXT_CORE_PROFILE_BIT = 0x1
GL_COLOR_BUFFER_BIT = 0x4000
GL_RGBA, GL_UNSIGNED_BYTE = 0x1908, 0x1401

# The colour the probe clears to, and reads back.
EXPECTED = (51, 102, 153)
# GL libraries, and VirtualGL's faker libraries, whose presence in the maps tells the path taken.
_GL_LIBRARY_NAMES = ("libGL", "libEGL", "libvglfaker", "libdlfaker", "libgefaker")
SOFTWARE_RENDERERS = ("llvmpipe", "softpipe", "swrast", "software rasterizer", "lavapipe")


def gl_version(version: str, profile_mask: int) -> tuple[str, str]:
    """MAJOR.MINOR and the profile (core or compatibility) of a GL_VERSION string such as
    "4.5 (Compatibility Profile) Mesa 22.3.6"; a context older than 3.2 has no profiles and
    all of OpenGL: compatibility."""
    number = version.split(" ", 1)[0]
    major, _, rest = number.partition(".")
    minor = rest.partition(".")[0]
    if not (major.isdigit() and minor.isdigit()):
        return "", ""
    core = "Core Profile" in version or bool(profile_mask & GL_CONTEXT_CORE_PROFILE_BIT)
    return f"{int(major)}.{int(minor)}", "core" if core else "compatibility"


def is_software(renderer: str) -> bool:
    """Whether a GL_RENDERER string names one of Mesa's software rasterisers."""
    return any(name in renderer.lower() for name in SOFTWARE_RENDERERS)


def _fail(result: dict[str, Any], why: str) -> None:
    import json

    result["error"] = why
    print(json.dumps(result))
    sys.exit(1)


def _int_list(*values: int) -> Any:
    import ctypes

    return (ctypes.c_int * (len(values) + 1))(*values, 0)


def mapped_libraries(prefixes: tuple[str, ...] = _GL_LIBRARY_NAMES) -> list[str]:
    """The libraries whose names start with `prefixes` that the loader actually mapped into
    this process: the proof of which libGL (and which faker) is in use."""
    found: dict[str, None] = {}
    with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
        for line in maps:
            path = line.rstrip("\n").partition("/")[2]
            if path and os.path.basename(path).startswith(prefixes):
                found["/" + path] = None
    return list(found)


def probe() -> None:
    import ctypes
    import json

    result: dict[str, Any] = {"display": os.environ.get("DISPLAY", "")}
    x11 = ctypes.CDLL("libX11.so.6")
    try:
        gl = ctypes.CDLL("libGL.so.1")
    except OSError as error:
        _fail(result, f"cannot load libGL.so.1: {error}")
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XDefaultScreen.argtypes = [ctypes.c_void_p]
    gl.glXChooseFBConfig.restype = ctypes.POINTER(ctypes.c_void_p)
    gl.glXChooseFBConfig.argtypes = [
        ctypes.c_void_p,
        ctypes.c_int,
        ctypes.c_void_p,
        ctypes.POINTER(ctypes.c_int),
    ]
    gl.glXCreatePbuffer.restype = ctypes.c_ulong
    gl.glXCreatePbuffer.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    gl.glXCreateNewContext.restype = ctypes.c_void_p
    gl.glXCreateNewContext.argtypes = [
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_int,
        ctypes.c_void_p,
        ctypes.c_int,
    ]
    gl.glXMakeContextCurrent.argtypes = [
        ctypes.c_void_p,
        ctypes.c_ulong,
        ctypes.c_ulong,
        ctypes.c_void_p,
    ]
    gl.glXIsDirect.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    gl.glXGetClientString.restype = ctypes.c_char_p
    gl.glXGetClientString.argtypes = [ctypes.c_void_p, ctypes.c_int]
    gl.glXQueryServerString.restype = ctypes.c_char_p
    gl.glXQueryServerString.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
    gl.glGetString.restype = ctypes.c_char_p
    gl.glGetString.argtypes = [ctypes.c_uint]
    gl.glClearColor.argtypes = [ctypes.c_float] * 4
    gl.glReadPixels.argtypes = [
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.c_void_p,
    ]

    dpy = x11.XOpenDisplay(None)
    if not dpy:
        _fail(result, f"cannot open display {result['display']!r}")
    screen = x11.XDefaultScreen(dpy)
    result["glx_client_vendor"] = (gl.glXGetClientString(dpy, GLX_VENDOR) or b"").decode()
    result["glx_server_vendor"] = (gl.glXQueryServerString(dpy, screen, GLX_VENDOR) or b"").decode()
    count = ctypes.c_int(0)
    configs = gl.glXChooseFBConfig(
        dpy,
        screen,
        _int_list(
            GLX_DRAWABLE_TYPE,
            GLX_PBUFFER_BIT,
            GLX_RENDER_TYPE,
            GLX_RGBA_BIT,
            GLX_RED_SIZE,
            8,
            GLX_GREEN_SIZE,
            8,
            GLX_BLUE_SIZE,
            8,
        ),
        ctypes.byref(count),
    )
    if not configs or count.value == 0:
        _fail(result, "no GLX framebuffer configuration (is GLX missing on this display?)")
    pbuffer = gl.glXCreatePbuffer(
        dpy, configs[0], _int_list(GLX_PBUFFER_WIDTH, 8, GLX_PBUFFER_HEIGHT, 8)
    )
    context = gl.glXCreateNewContext(dpy, configs[0], GLX_RGBA_TYPE, None, 1)
    if not pbuffer or not context:
        _fail(result, "cannot create a GLX pbuffer and context")
    if not gl.glXMakeContextCurrent(dpy, pbuffer, pbuffer, context):
        _fail(result, "cannot make the GLX context current")
    for key, name in (("vendor", GL_VENDOR), ("renderer", GL_RENDERER), ("version", GL_VERSION)):
        result[key] = (gl.glGetString(name) or b"").decode(errors="replace")
    mask = ctypes.c_int(0)
    if not result["version"].startswith(("1.", "2.", "3.0", "3.1")):
        gl.glGetIntegerv(GL_CONTEXT_PROFILE_MASK, ctypes.byref(mask))
    result["gl_version"], result["profile"] = gl_version(result["version"], mask.value)
    result["direct"] = bool(gl.glXIsDirect(dpy, context))
    result["software"] = is_software(result["renderer"])
    gl.glClearColor(*(c / 255 for c in EXPECTED), 1.0)
    gl.glClear(GL_COLOR_BUFFER_BIT)
    gl.glFinish()
    pixel = (ctypes.c_ubyte * 4)()
    gl.glReadPixels(0, 0, 1, 1, GL_RGBA, GL_UNSIGNED_BYTE, pixel)
    result["pixel"] = list(pixel[:3])
    result["libraries"] = mapped_libraries()
    if any(abs(got - want) > 1 for got, want in zip(pixel[:3], EXPECTED, strict=False)):
        _fail(result, f"read back {list(pixel[:3])} instead of {list(EXPECTED)}")
    print(json.dumps(result))


if __name__ == "__main__":
    probe()
