"""Peak memory of a contender's processes: the proportional set size (PSS) of all the
descendants of this process, summed, sampled in a thread."""

from __future__ import annotations

import os
import threading

from tests.leaks import pids

# Seconds between two samples.
MEMORY_INTERVAL = 0.2


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid in pids():
        try:
            with open(f"/proc/{pid}/stat", "rb") as stat:
                data = stat.read()
        except OSError:
            continue
        # The command name in parentheses may itself hold spaces and parentheses.
        parent = int(data[data.rindex(b")") + 2 :].split()[1])
        children.setdefault(parent, []).append(pid)
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def pss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


class PeakMemory(threading.Thread):
    """The largest total PSS of this process's descendants (the contender's processes: one
    contender runs at a time), sampled every MEMORY_INTERVAL seconds."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = 0
        self._done = threading.Event()

    def run(self) -> None:
        me = os.getpid()
        while not self._done.wait(MEMORY_INTERVAL):
            self.peak = max(self.peak, sum(pss_bytes(pid) for pid in descendants(me)))

    def stop(self) -> int:
        self._done.set()
        self.join()
        return self.peak
