"""What the runner scripts share: the screen every contender gets, and two ways to run SCRIPT."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from collections.abc import Mapping

# The screen of xvfb-run's and ana-headless's defaults, so that every contender draws the same.
WIDTH, HEIGHT, DEPTH = 1280, 1024, 24
# Xvfb 21 turns GLX on by default; naming it keeps the runners right on older servers too.
GLX_ARGS = ["+extension", "GLX"]


def run_child(env: Mapping[str, str]) -> int:
    """Run `python SCRIPT ARGS...` (our own argv) as a child; its status, 128+N for signal N."""
    status = subprocess.run([sys.executable, *sys.argv[1:]], env=dict(env)).returncode
    return 128 - status if status < 0 else status


def run_in_process() -> None:
    """Run SCRIPT ARGS... (our own argv) as __main__ in this interpreter, like `python SCRIPT`."""
    script = sys.argv[1]
    sys.argv = sys.argv[1:]
    # `python SCRIPT` puts the script's directory first on the import path.
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    runpy.run_path(script, run_name="__main__")
