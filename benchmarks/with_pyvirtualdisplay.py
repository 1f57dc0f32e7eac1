"""Run a Python script on a PyVirtualDisplay Xvfb, the way that library's users do.

    python with_pyvirtualdisplay.py SCRIPT [ARGS]...

Starts `Display(backend="xvfb")` with GLX, runs SCRIPT in a child Python with the display's
environment, then stops the display; exits with the script's status.
"""

from __future__ import annotations

import sys

from _workload import DEPTH, GLX_ARGS, HEIGHT, WIDTH, run_child
from pyvirtualdisplay import Display


def main() -> int:
    # manage_global_env=False: the child gets display.env(); our own os.environ stays as it was.
    display = Display(
        backend="xvfb",
        size=(WIDTH, HEIGHT),
        color_depth=DEPTH,
        extra_args=GLX_ARGS,
        manage_global_env=False,
    )
    display.start()
    try:
        return run_child(display.env())
    finally:
        display.stop()


if __name__ == "__main__":
    sys.exit(main())
