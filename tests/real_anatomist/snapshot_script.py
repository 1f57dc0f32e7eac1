"""A QC-snapshot script against the REAL Anatomist, for the tests marked `anatomist` and
`anatomist_direct`.

    python snapshot_script.py OUT.png [--size WxH] [--implementation IMPL] [--how HOW]
                              [--import-first MODULE] [--end END]

IMPL is pyanatomist's implementation: `socket` (the `anatomist` program, a child of this
process, driven over a socket) or `direct` (BrainVISA's default: libanatomist and its OpenGL
drawn in this very process, through the C++ bindings that `make anatomist-direct` builds).
HOW is how the script gets its Anatomist, each the way its users write it:
  api            pyanatomist's API of IMPL (the socket one on a port the kernel found free, as
                 examples/anatomist_snapshot.py does), as under `ana-headless run`;
  unchanged      `anatomist.api` (socket implementation) left to choose its port, as most
                 scripts are written;
  ana_headless   `ana_headless.HeadlessAnatomist('-b')`, with `implementation='socket'` for
                 the socket one (the direct one is its default);
  upstream       BrainVISA's `anatomist.headless.HeadlessAnatomist()`, likewise;
  soma           BrainVISA's `soma.qt_gui.headless.setup_headless()`, then the API of IMPL.
MODULE (e.g. PyQt5.QtGui) is imported first, before the display: too early for a set-up in
place. The script prints a START line each time it starts (to count re-executions), snapshots
a mesh into OUT.png through examples/anatomist_snapshot.py's functions (the tests check its
pixels), and prints one JSON line: what the script and its Anatomist (the `anatomist` program,
or the script's own process) got. END is what happens next: `close` (a.close(), exit 0),
`os_exit` (os._exit(3): no close, no atexit), `raise` (an exception ends the script, without
close) or `wait` (sleep until a signal comes).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

print(f"START {os.getpid()} {os.getppid()}", flush=True)
parser = argparse.ArgumentParser()
parser.add_argument("output", type=Path)
parser.add_argument("--size", default="160x120")
parser.add_argument("--implementation", choices=["socket", "direct"], default="socket")
parser.add_argument(
    "--how", choices=["api", "unchanged", "ana_headless", "upstream", "soma"], default="api"
)
parser.add_argument("--import-first", metavar="MODULE")
parser.add_argument("--end", choices=["close", "os_exit", "raise", "wait"], default="close")
arguments = parser.parse_args()
direct = arguments.implementation == "direct"

if arguments.import_first:
    # Loads Qt, and so OpenGL, before the display: too early.
    importlib.import_module(arguments.import_first)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
import anatomist_snapshot as example  # noqa: E402

GL_LIBRARIES = ("libGL.so", "libGLX", "libOpenGL", "libEGL", "libvglfaker", "libdlfaker")


def plain(result: Any) -> dict[str, Any]:
    """The JSON-able fields of a headless result object (ana_headless's or soma's)."""
    fields = result.as_dict() if hasattr(result, "as_dict") else vars(result)
    return {
        name: value
        for name, value in fields.items()
        if isinstance(value, str | int | float | bool | None)
    }


def libraries(pid: int) -> list[str]:
    """The GL libraries mapped into process `pid`: which libGL it really uses."""
    with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as maps:
        paths = {line.split(maxsplit=5)[-1].strip() for line in maps if "/" in line}
    return sorted(path for path in paths if os.path.basename(path).startswith(GL_LIBRARIES))


def display_of(pid: int) -> str | None:
    """The DISPLAY in process `pid`'s environment: where it opened its windows."""
    with open(f"/proc/{pid}/environ", "rb") as environ:
        variables = dict(item.partition(b"=")[::2] for item in environ.read().split(b"\0"))
    value = variables.get(b"DISPLAY")
    return value.decode() if value is not None else None


# The direct implementation is the default of both HeadlessAnatomist()s: it is left implicit.
implementation = {} if direct else {"implementation": "socket"}
info: dict[str, Any] = {}
if arguments.how == "ana_headless":
    import ana_headless

    a = ana_headless.HeadlessAnatomist("-b", **implementation)
    info = plain(a.headless_info)
elif arguments.how == "upstream":
    import anatomist.headless

    a = anatomist.headless.HeadlessAnatomist(**implementation)
    info = plain(a.headless_info)
elif arguments.how == "soma":
    from soma.qt_gui.headless import setup_headless

    info = plain(setup_headless())
elif arguments.how == "unchanged":
    import anatomist

    anatomist.setDefaultImplementation(anatomist.SOCKET)
    import anatomist.api as ana

    a = ana.Anatomist("-b")
if arguments.how in ("soma", "api"):
    a = example.start_anatomist("-b", implementation=arguments.implementation)
if arguments.how in ("upstream", "soma"):
    from soma.qt_gui import headless

    import ana_headless

    # Whether soma started an X server of its own, and what ana-headless says it set up.
    info["started_xvfb"] = headless.virtual_display_proc is not None
    info["ana_headless"] = ana_headless.ensure_headless().as_dict()

with tempfile.TemporaryDirectory() as scratch:
    mesh = Path(scratch) / "sphere.mesh"
    example.write_sphere_mesh(mesh, rings=12)
    example.snapshot(a, mesh, arguments.output, example.parse_size(arguments.size))

if direct:
    from ana_headless.glprobe import mapped_libraries

    # Anatomist is this very process, on its display: what it drew with is in its own maps.
    anatomist_process = {"pid": os.getpid(), "gl": sorted(mapped_libraries(GL_LIBRARIES))}
else:
    process = a.anaServerProcess.processId()
    with open(f"/proc/{process}/cmdline", "rb") as cmdline:
        argv = [arg.decode() for arg in cmdline.read().split(b"\0")[:-1]]
    anatomist_process = {
        "pid": process,
        "argv": argv,
        "display": display_of(process),
        "gl": libraries(process),
    }

from PyQt5.QtGui import QGuiApplication  # noqa: E402

report = {
    "pid": os.getpid(),
    "display": os.environ.get("DISPLAY"),
    "mode": os.environ.get("ANA_HEADLESS_MODE"),
    "renderer": os.environ.get("ANA_HEADLESS_RENDERER"),
    # vglrun's mark that this process runs under VirtualGL's faker.
    "vgl_isactive": os.environ.get("VGL_ISACTIVE"),
    "qt_platform": QGuiApplication.platformName(),
    "info": info,
    "anatomist": anatomist_process,
}
print(json.dumps(report), flush=True)
if arguments.end == "os_exit":
    os._exit(3)
if arguments.end == "raise":
    raise RuntimeError("the script failed after its snapshot")
if arguments.end == "wait":
    while True:
        time.sleep(1)
a.close()
