"""Run a Python script on an xvfbwrapper Xvfb, the way that library's users do.

    python with_xvfbwrapper.py SCRIPT [ARGS]...

Starts `xvfbwrapper.Xvfb` with GLX, runs SCRIPT in a child Python with DISPLAY set, then stops
the server; exits with the script's status.
"""

from __future__ import annotations

import os
import sys

from _workload import DEPTH, GLX_ARGS, HEIGHT, WIDTH, run_child
from xvfbwrapper import Xvfb


def main() -> int:
    # A copy of the environment for Xvfb to set DISPLAY in; the child gets that copy.
    env = dict(os.environ)
    xvfb = Xvfb(width=WIDTH, height=HEIGHT, colordepth=DEPTH, environ=env, extra_args=GLX_ARGS)
    xvfb.start()
    try:
        return run_child(env)
    finally:
        xvfb.stop()


if __name__ == "__main__":
    sys.exit(main())
