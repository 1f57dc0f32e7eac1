"""W2-W4's job: say on stderr which display and XAUTHORITY this run got, then run
SCRIPT ARGS... as __main__ (the benchmark counts displays with it, and tells a run's leftovers
from other users' files).

    python report_display.py SCRIPT [ARGS]...
"""

from __future__ import annotations

import os
import sys

from _workload import run_in_process

sys.stderr.write(
    f"bench-display={os.environ.get('DISPLAY', '')}\n"
    f"bench-xauthority={os.environ.get('XAUTHORITY', '')}\n"
)
sys.stderr.flush()
run_in_process()
