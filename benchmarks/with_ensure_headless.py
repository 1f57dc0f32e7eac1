"""Run a Python script in this process after `ana_headless.ensure_headless()`.

    python with_ensure_headless.py SCRIPT [ARGS]...

The in-process API: no launcher process and no second interpreter; SCRIPT runs as __main__
here, as if its first lines called ensure_headless() themselves.
"""

from __future__ import annotations

from _workload import run_in_process

import ana_headless

ana_headless.ensure_headless()
run_in_process()
