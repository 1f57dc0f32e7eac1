"""What a run of ana-headless (or of another tool) leaves behind, and whose it is.

Two users: the test suite's leak check (`leftovers()`, imported as `benchmarks.leaks`; the
checkout's root is on the tests' import path) and the benchmark, which counts and removes what
each run of each contender leaves (`Debris`). Standard library only, and no import of the
benchmark's other modules, so that it imports the same either way.

A run's processes are told apart from anyone else's on a shared machine by a tag that every
process the benchmark starts inherits in its environment (`tagged_env`).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import struct
import time
import uuid
from collections import Counter

X_LOCKS = "/tmp/.X*-lock"
X_SOCKETS = "/tmp/.X11-unix/X*"
# Where ana-headless makes its private directories: $TMPDIR, else /tmp (as its launcher does).
PRIVATE_DIRS = os.path.join(os.path.abspath(os.environ.get("TMPDIR") or "/tmp"), "ana-headless-*")
# What Debris counts, in the report's order.
KINDS = ("Xvfb", "lock", "socket", "dir")


# ---------------------------------------------------------------------------------------------
# Processes, through /proc


def pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def command_line(pid: int) -> list[bytes]:
    """The process's argv ([] when it is gone, or a zombie)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read().split(b"\0")
    except OSError:
        return []


def _state(pid: int) -> str | None:
    """The process's state letter (R, S, Z...), or None if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            data = stat.read()
    except OSError:
        return None
    # The command name in parentheses may itself hold spaces and parentheses.
    return data[data.rindex(b")") + 2 :][:1].decode()


def alive(pid: int) -> bool:
    return _state(pid) not in (None, "Z")


def xvfb_pids() -> list[int]:
    found = []
    for pid in pids():
        try:
            with open(f"/proc/{pid}/comm") as comm:
                if comm.read().strip() != "Xvfb":
                    continue
        except OSError:
            continue
        if alive(pid):
            found.append(pid)
    return found


def stop_process(pid: int, wait: float = 3.0) -> None:
    """SIGTERM (a server removes its own socket and lock), then SIGKILL, each given `wait`
    seconds; the process need not be our child: its end is polled for."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if not alive(pid):
            return


# ---------------------------------------------------------------------------------------------
# The test suite's check: everything of ana-headless's kind, whoever made it


def ours_running() -> set[int]:
    """Pids of X servers started by ana-headless (their -auth file is in our private dir)."""
    found = set()
    for pid in pids():
        argv = command_line(pid)
        if any(b"/ana-headless-" in arg for arg in argv) and argv[0].endswith((b"Xvfb", b"xpra")):
            found.add(pid)
    return found


def x_files() -> list[str]:
    """Every display lock, display socket and ana-headless private directory there is now."""
    return [*glob.glob(X_LOCKS), *glob.glob(X_SOCKETS), *glob.glob(PRIVATE_DIRS)]


def anatomist_running() -> set[int]:
    """Pids of the real Anatomist program (binary anatomist-bin, started as `anatomist`), the
    grandchild of a run whose script uses pyanatomist's socket implementation."""
    return {
        pid
        for pid in pids()
        if (argv := command_line(pid))
        and os.path.basename(argv[0]) in (b"anatomist", b"anatomist-bin")
    }


def leftovers() -> set[str]:
    """Everything of ours a run could leave: servers, Anatomist programs, locks, sockets,
    private directories."""
    return (
        {f"process {pid}" for pid in ours_running()}
        | {f"anatomist process {pid}" for pid in anatomist_running()}
        | set(x_files())
    )


# ---------------------------------------------------------------------------------------------
# Whose a file is


def listener_pid(address: str) -> int | None:
    """The pid of the process that made a Unix socket listen, or None if nobody listens."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(address)
        except OSError:
            return None
        credentials = probe.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, _uid, _gid = struct.unpack("3i", credentials)
    return int(pid)


def _lock_holder(path: str) -> int | None:
    try:
        with open(path) as lock:
            pid = int(lock.read().strip())
    except (OSError, ValueError):
        return None
    return pid if alive(pid) else None


def _dir_user(path: str) -> int | None:
    """A live process naming the directory on its command line (the server's -auth, a watcher)."""
    needle = path.encode()
    for pid in pids():
        if any(needle in arg for arg in command_line(pid)) and alive(pid):
            return pid
    return None


def _kind(path: str) -> str:
    if path.endswith("-lock"):
        return "lock"
    return "socket" if path.startswith("/tmp/.X11-unix/") else "dir"


def _owner(path: str) -> int | None:
    kind = _kind(path)
    if kind == "lock":
        return _lock_holder(path)
    return listener_pid(path) if kind == "socket" else _dir_user(path)


# ---------------------------------------------------------------------------------------------
# The benchmark's accounting: what one tagged run left behind

TAG_VAR = "ANA_HEADLESS_BENCH_TAG"
# Every tag of this benchmark invocation starts with it (see sweep).
INVOCATION = uuid.uuid4().hex[:12]
_tags_made = 0


def new_tag() -> str:
    global _tags_made
    _tags_made += 1
    return f"{INVOCATION}-{_tags_made}"


def tagged_env(tag: str) -> dict[str, str]:
    return {**os.environ, TAG_VAR: tag}


def tag_of(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/environ", "rb") as environ:
            entries = environ.read().split(b"\0")
    except OSError:
        return None
    prefix = f"{TAG_VAR}=".encode()
    for entry in entries:
        if entry.startswith(prefix):
            return entry[len(prefix) :].decode()
    return None


def _identities() -> dict[str, tuple[int, int]]:
    """Each lock, socket and private directory, with its inode and change time: a file made
    again under an old name (a server on a number whose stale socket was there) is new."""
    found = {}
    for path in x_files():
        with contextlib.suppress(FileNotFoundError):
            status = os.lstat(path)
            found[path] = (status.st_ino, status.st_ctime_ns)
    return found


class Debris:
    """What one run (or one batch) leaves behind, told apart from other users' servers and files.

    Counted: an Xvfb process carrying the run's tag; a lock, socket or (for ana-headless, the
    only contender that makes them) private directory that is new since the run started, that no
    live process of someone else's holds, and that is still there a moment later (so that another
    launcher's directory caught between its creation and its first use is not counted).

    Removed: the tagged servers, and the files the run itself claimed by reporting its display
    and XAUTHORITY; a counted file that nothing ties to the run is left where it is, in case it
    is someone else's on a shared machine.
    """

    # An unheld file must still be there this much later to count: another launcher's directory
    # lives unheld for a few milliseconds between its creation and its server's start.
    GRACE = 0.3

    def __init__(self, tag: str, private_dirs: bool) -> None:
        self.tag = tag
        self.private_dirs = private_dirs
        self.before = _identities()

    def _ours(self, path: str) -> bool:
        owner = _owner(path)
        return owner is None or tag_of(owner) == self.tag

    def find(self) -> tuple[dict[str, list[str]], bool]:
        """What is there now, and whether some of it is still held by a live process of ours
        (a server on its way out removes its own socket and lock)."""
        found: dict[str, list[str]] = {kind: [] for kind in KINDS}
        found["Xvfb"] = [str(pid) for pid in xvfb_pids() if tag_of(pid) == self.tag]
        held = bool(found["Xvfb"])
        now = _identities()
        for path in sorted(path for path in now if self.before.get(path) != now[path]):
            kind = _kind(path)
            if kind == "dir" and not self.private_dirs:
                continue
            owner = _owner(path)
            if owner is None or tag_of(owner) == self.tag:
                found[kind].append(path)
                held = held or owner is not None
        return found, held

    def settle(self, wait: float) -> dict[str, list[str]]:
        """What is still there once the run's live processes have had `wait` seconds to go;
        files that nobody holds will not go by themselves, so they are not waited for."""
        deadline = time.monotonic() + wait
        while True:
            found, held = self.find()
            if not held or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        if any(found[kind] for kind in KINDS[1:]):
            time.sleep(self.GRACE)
            again, _ = self.find()
            found = {kind: [item for item in found[kind] if item in again[kind]] for kind in KINDS}
        return found

    def collect(self, claimed: set[str], wait: float) -> tuple[Counter[str], list[str]]:
        """Count what the run left behind once its processes have had `wait` seconds to go,
        and remove what is provably its own; the counts, and the paths left in place."""
        found = self.settle(wait)
        for pid in found["Xvfb"]:
            stop_process(int(pid))
        kept = []
        for kind in KINDS[1:]:
            for path in found[kind]:
                if path not in claimed:
                    kept.append(path)
                elif os.path.lexists(path) and self._ours(path):
                    if kind == "dir":
                        shutil.rmtree(path, ignore_errors=True)
                    else:
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(path)
        return Counter({kind: len(items) for kind, items in found.items() if items}), kept


def sweep() -> None:
    """Stop any X server this invocation started that is still up (after ^C, say)."""
    for pid in xvfb_pids():
        if (tag_of(pid) or "").startswith(INVOCATION):
            stop_process(pid)
