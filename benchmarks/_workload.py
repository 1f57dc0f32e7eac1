"""What the runner scripts share: the screen every contender gets, and two ways to run SCRIPT.

Light on imports: a runner's imports count in its contender's time, and a script that set up
its display itself would not pay for them (subprocess and runpy cost some 10 ms together).
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

# The screen of xvfb-run's and ana-headless's defaults, so that every contender draws the same.
WIDTH, HEIGHT, DEPTH = 1280, 1024, 24
# Xvfb 21 turns GLX on by default; naming it keeps the runners right on older servers too.
GLX_ARGS = ["+extension", "GLX"]


def run_child(env: Mapping[str, str]) -> int:
    """Run `python SCRIPT ARGS...` (our own argv) as a child; its status, 128+N for signal N."""
    # Here only: the runners that start a child use a library that imports it anyway.
    import subprocess

    status = subprocess.run([sys.executable, *sys.argv[1:]], env=dict(env)).returncode
    return 128 - status if status < 0 else status


def run_in_process() -> None:
    """Run SCRIPT ARGS... (our own argv) as __main__ in this interpreter, like `python SCRIPT`:
    in a fresh module that stands as __main__, as runpy.run_path would."""
    script = sys.argv[1]
    sys.argv = sys.argv[1:]
    # `python SCRIPT` puts the script's directory first on the import path.
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    module = type(sys)("__main__")
    module.__file__ = script
    runner, sys.modules["__main__"] = sys.modules["__main__"], module
    try:
        with open(script, "rb") as source:
            code = compile(source.read(), script, "exec")
        exec(code, module.__dict__)
    finally:
        sys.modules["__main__"] = runner
