"""W1 and W1c: a script that does nothing but say which display it got (as report_display.py
does, so that the benchmark can tell what the run left behind), so that a run costs only the
launcher and its display. With --connect (W1c) it also opens its display once, as any X client
does (libX11's XOpenDisplay), and closes it: then the display must be up before it can end."""

import os
import sys

sys.stderr.write(
    f"bench-display={os.environ.get('DISPLAY', '')}\n"
    f"bench-xauthority={os.environ.get('XAUTHORITY', '')}\n"
)
if sys.argv[1:] == ["--connect"]:
    import ctypes

    xlib = ctypes.CDLL("libX11.so.6")
    xlib.XOpenDisplay.restype = ctypes.c_void_p
    xlib.XCloseDisplay.argtypes = [ctypes.c_void_p]
    display = xlib.XOpenDisplay(None)
    if not display:
        sys.exit(f"noop.py: cannot open display {os.environ.get('DISPLAY', '')!r}")
    xlib.XCloseDisplay(display)
