"""What a run of ana-headless (or of another tool) leaves behind, and whose it is.

Two users: the test suite's leak check (tests/conftest.py), and the benchmark, which counts and
removes what each run of each contender leaves (`Debris`; its scripts put the checkout's root
on their import path). Standard library only, and no import of either user's modules.

On a shared machine other people run ana-headless too, so nothing is counted by its kind alone.
Each run (a benchmark run, a test) gives the processes it starts a tag that they, and every
process they start, inherit in their environment (`tagged_env`). A run answers for the X
servers and Anatomist programs that carry its tag, and for each display lock, display socket
and private directory that one of its processes holds, or that nobody holds any more (left
behind: by the run, or by somebody's crash, if it is a file of this user's); never for a file
that somebody else's live process holds.
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
from collections.abc import Iterable, Mapping

X_LOCKS = "/tmp/.X*-lock"
X_SOCKETS = "/tmp/.X11-unix/X*"
# Where ana-headless makes its private directories: $TMPDIR, else /tmp (as its launcher does).
PRIVATE_DIRS = os.path.join(os.path.abspath(os.environ.get("TMPDIR") or "/tmp"), "ana-headless-*")
# What Debris counts, in the report's order.
KINDS = ("Xvfb", "lock", "socket", "dir")
# The process names of what a run may leave running: its X server (xpra starts an Xvfb of its
# own; a rootful Xwayland runs on weston) and the real Anatomist program (binary anatomist-bin,
# started as `anatomist`), which is the grandchild of a run whose script uses pyanatomist's
# socket implementation.
SERVERS = ("Xvfb", "xpra", "Xwayland", "weston")
ANATOMIST = ("anatomist", "anatomist-bin")

# A file's identity: its inode and change time. A file made again under an old name (a server
# on a number whose stale socket was there) is another file.
Identity = tuple[int, int]


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


def named(names: Iterable[str]) -> list[int]:
    """The live processes whose name (what `ps` shows: the file it runs, even a script such as
    xpra, whose argv[0] is its interpreter) is one of `names`."""
    wanted = set(names)
    found = []
    for pid in pids():
        try:
            with open(f"/proc/{pid}/comm") as comm:
                if comm.read().strip() not in wanted:
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
# Tags: whose a process is

# Not in ana-headless's own namespace (ANA_HEADLESS_*), which the product reads and tests clear.
TAG_VAR = "ANA_LEAK_TAG"
# Every tag made by this process starts with it (see sweep).
INVOCATION = uuid.uuid4().hex[:12]
_tags_made = 0


def new_tag() -> str:
    global _tags_made
    _tags_made += 1
    return f"{INVOCATION}-{_tags_made}"


def tagged_env(tag: str) -> dict[str, str]:
    return {**os.environ, TAG_VAR: tag}


def tag_of(pid: int) -> str | None:
    """The tag in the environment the process started with (None: untagged, gone, or another
    user's, whose environment we may not read)."""
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


def tagged(names: Iterable[str], tag: str) -> set[int]:
    """The live processes called one of `names` that carry `tag`."""
    return {pid for pid in named(names) if tag_of(pid) == tag}


# ---------------------------------------------------------------------------------------------
# Files, and whose they are


def x_files() -> list[str]:
    """Every display lock, display socket and ana-headless private directory there is now."""
    return [*glob.glob(X_LOCKS), *glob.glob(X_SOCKETS), *glob.glob(PRIVATE_DIRS)]


def file_identities() -> dict[str, Identity]:
    """Each display lock, display socket and private directory there is now, with its
    identity."""
    found = {}
    for path in x_files():
        with contextlib.suppress(FileNotFoundError):
            status = os.lstat(path)
            found[path] = (status.st_ino, status.st_ctime_ns)
    return found


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


def holder(path: str) -> int | None:
    """The process that holds a lock, socket or private directory (None: nobody)."""
    kind = _kind(path)
    if kind == "lock":
        return _lock_holder(path)
    return listener_pid(path) if kind == "socket" else _dir_user(path)


def answers_for(path: str, owner: int | None, tag: str) -> bool:
    """Whether the run tagged `tag` answers for a file that `owner` holds: one of its own
    processes, or this process (which may claim a display itself), or, for a file of this
    user's, nobody (another user's stale file is never ours)."""
    if owner is not None:
        return owner == os.getpid() or tag_of(owner) == tag
    try:
        return os.lstat(path).st_uid == os.geteuid()
    except FileNotFoundError:
        return False


# ---------------------------------------------------------------------------------------------
# The test suite's check: what one tagged test left


def leftovers(tag: str, since: Mapping[str, Identity]) -> set[str]:
    """What of the run tagged `tag` is there now: its X servers and Anatomist programs, and the
    locks, sockets and private directories that are new since `since` (file_identities() taken
    as it started) and that it answers for."""
    found = {f"process {pid}" for pid in tagged(SERVERS, tag)}
    found |= {f"anatomist process {pid}" for pid in tagged(ANATOMIST, tag)}
    for path, identity in file_identities().items():
        if since.get(path) != identity and answers_for(path, holder(path), tag):
            found.add(path)
    return found


# ---------------------------------------------------------------------------------------------
# The benchmark's accounting: what one tagged run left behind


class Debris:
    """What one run (or one batch) leaves behind, told apart from other users' servers and files.

    Counted: an Xvfb process carrying the run's tag; a lock, socket or (for ana-headless, the
    only contender that makes them) private directory that is new since the run started, that
    the run answers for (answers_for), and that is still there a moment later (so that another
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
        self.before = file_identities()

    def find(self) -> tuple[dict[str, list[str]], bool]:
        """What is there now, and whether some of it is still held by a live process of ours
        (a server on its way out removes its own socket and lock)."""
        found: dict[str, list[str]] = {kind: [] for kind in KINDS}
        found["Xvfb"] = [str(pid) for pid in sorted(tagged(("Xvfb",), self.tag))]
        held = bool(found["Xvfb"])
        now = file_identities()
        for path in sorted(path for path in now if self.before.get(path) != now[path]):
            kind = _kind(path)
            if kind == "dir" and not self.private_dirs:
                continue
            owner = holder(path)
            if answers_for(path, owner, self.tag):
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
                elif os.path.lexists(path) and answers_for(path, holder(path), self.tag):
                    if kind == "dir":
                        shutil.rmtree(path, ignore_errors=True)
                    else:
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(path)
        return Counter({kind: len(items) for kind, items in found.items() if items}), kept


def sweep() -> None:
    """Stop any X server this invocation started that is still up (after ^C, say)."""
    for pid in named(("Xvfb",)):
        if (tag_of(pid) or "").startswith(INVOCATION):
            stop_process(pid)
