"""Making sure nothing of ours outlives the process that started it, even after SIGKILL.

Two kernel-level guarantees, because no cleanup code runs after SIGKILL:

- processes we start get a parent-death signal (`PR_SET_PDEATHSIG`): the X server gets SIGTERM,
  so that it removes its own socket, the child gets SIGKILL;
- our private directory (cookie, runtime dir) is removed by a tiny `sh` watcher that waits for
  end-of-file on a pipe whose only writer is this process: the kernel closes it when we die.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable

PR_SET_PDEATHSIG = 1

# The signals the launcher forwards; a supervised child must start with them unblocked.
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)

_WATCHER_SCRIPT = (
    # Terminal signals must not stop the watcher before it has cleaned up.
    "trap '' INT TERM HUP QUIT; "
    "while read -r _; do :; done; "
    'rm -rf -- "$1"'
)


def die_with_parent(sig: signal.Signals) -> Callable[[], None]:
    """A `preexec_fn` for a process that must not outlive us: it gets `sig` when we die."""
    libc = ctypes.CDLL(None, use_errno=True)

    def preexec() -> None:
        libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        # We supervise with these signals blocked; the new process must not inherit the mask.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, (*FORWARDED_SIGNALS, signal.SIGCHLD))
        # An inherited "ignore SIGCHLD" makes the kernel reap grandchildren before they can be
        # waited for: Xvfb then fails to compile its keymap (xkbcomp) and exits.
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)

    return preexec


class PrivateDirectory:
    """A mode-0700 temporary directory, removed by `remove()` or, if we are killed, by a watcher."""

    def __init__(self) -> None:
        self.path = tempfile.mkdtemp(prefix="ana-headless-")
        read_end, self._write_end = os.pipe()
        try:
            self._watcher = subprocess.Popen(
                ["sh", "-c", _WATCHER_SCRIPT, "ana-headless-cleanup", self.path],
                stdin=read_end, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True)
        except BaseException:
            os.close(self._write_end)
            shutil.rmtree(self.path, ignore_errors=True)
            raise
        finally:
            os.close(read_end)

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        os.close(self._write_end)
        self._watcher.wait()
