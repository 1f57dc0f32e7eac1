"""Runs inside a Debian root (inroot.py), with that root's Python: the launcher as a user there
runs it, then what the runs left behind, looked at before the root's namespaces (and its /tmp)
go. Standard library only.

    python3 scenario.py [--parallel N] ARGS_JSON...

Each ARGS_JSON is a JSON list of arguments for `python3 -m ana_headless`; they run one after the
other, each N times at once. Prints one JSON object: "runs", for each ARGS_JSON the list of its
runs' status, stdout and stderr; "servers", the X servers and compositors still running that
carry the root's marker; "tmp", every path under /tmp.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

SERVERS = ("Xvfb", "weston", "Xwayland")
MARKER = "ANA_HEADLESS_TEST_ROOT"
# As the suite's leak check: a server's last moments after its launcher has returned.
GRACE = 5.0


def launch(args: list[str]) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-m", "ana_headless", *args], capture_output=True, text=True, timeout=120
    )
    return {"status": result.returncode, "stdout": result.stdout, "stderr": result.stderr}


def servers() -> list[str]:
    """The servers alive in this PID namespace with the root's marker (a zombie has no
    environment left to read)."""
    marker = f"{MARKER}={os.environ[MARKER]}".encode()
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/comm") as comm:
                name = comm.read().strip()
            with open(f"/proc/{pid}/environ", "rb") as environ:
                tagged = marker in environ.read().split(b"\0")
        except OSError:
            continue
        if name in SERVERS and tagged:
            found.append(f"{name} {pid}")
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("commands", nargs="+", type=json.loads)
    args = parser.parse_args()
    runs = []
    with ThreadPoolExecutor(args.parallel) as pool:
        for command in args.commands:
            runs.append(list(pool.map(launch, [command] * args.parallel)))
    deadline = time.monotonic() + GRACE
    while (left := servers()) and time.monotonic() < deadline:
        time.sleep(0.05)
    tmp = sorted(
        os.path.join(directory, name)
        for directory, subdirectories, files in os.walk("/tmp")
        for name in subdirectories + files
    )
    json.dump({"runs": runs, "servers": left, "tmp": tmp}, sys.stdout)


if __name__ == "__main__":
    main()
