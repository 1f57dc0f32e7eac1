"""W1: a script that does nothing but say which display it got (as report_display.py does, so
that the benchmark can tell what the run left behind), so that a run costs only the launcher."""

import os
import sys

sys.stderr.write(f"bench-display={os.environ.get('DISPLAY', '')}\n"
                 f"bench-xauthority={os.environ.get('XAUTHORITY', '')}\n")
