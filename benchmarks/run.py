#!/usr/bin/env python3
"""ana-headless side by side with the tools users pick today: xvfb-run, PyVirtualDisplay and
xvfbwrapper.

    python benchmarks/run.py [--quick] [--repeat N] [--only W1,W1c,W2,W3,W4] [--out DIR]

Workloads, each run in a fresh process per run:

- W1: a no-op script: the launcher's and its display's own cost (plain python without X is the
  floor); a bare Xvfb started until ready is the reference;
- W1c: the same script, which also opens its display once and closes it: a display that is
  used must be up before the run can end (ana-headless does not wait for a server that the
  child ended without using). The launcher overhead is measured on it;
- W2: first frame: examples/render_scene.py with about 100k triangles, one grab saved as PNG,
  pixels checked by the script itself;
- W3: snapshot throughput: the same scene, 50 grabs and PNG saves in one process;
- W4: 40 concurrent W2 runs: wall time, failures, distinct displays, what is left behind.

Within each round every contender runs once (A, B, C, A, B, C, ...), so that drift in the
machine's load hits them all alike; round 0 of W1-W3 warms the caches and is not recorded.
After every run (and W4 batch) the benchmark waits for the run's X server to go, counts what
the run left behind (an Xvfb process, a /tmp/.X*-lock, a /tmp/.X11-unix/X* socket, an
ana-headless-* directory; see Debris), and removes what is provably the run's, so that no
contender inherits another's debris. The Markdown report goes to stdout and to latest.md, the
raw numbers (every sample, the first failure's stderr) to latest.json, both under
benchmarks/results/ (or --out); progress goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import fnmatch
import glob
import importlib.util
import json
import os
import platform
import re
import select
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import IO, Any

from ana_headless.ownership import listener_pid

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SCENE = ROOT / "examples" / "render_scene.py"
NOOP = HERE / "noop.py"
REPORT_DISPLAY = HERE / "report_display.py"

WORKLOADS = ("W1", "W1c", "W2", "W3", "W4")
REPEATS = {"W1": 40, "W1c": 40, "W2": 7, "W3": 3}
QUICK_REPEATS = {"W1": 3, "W1c": 3, "W2": 2, "W3": 1}
CONCURRENT = 40
QUICK_CONCURRENT = 8
TRIANGLES = 100_000
SNAPSHOTS = 50
SCREEN = "1280x1024x24"
# Per run (W4: per batch); a run past it is killed and counts as a failure.
TIMEOUTS = {"W1": 60.0, "W1c": 60.0, "W2": 120.0, "W3": 300.0, "W4": 600.0}
XVFB_READY_TIMEOUT = 10.0
# How long a run's X server may take to go once the run has ended before it counts as left behind
# (xvfb-run, for one, signals its server and exits without waiting for it).
SETTLE = 2.0
# An unheld file must still be there this much later to count: another launcher's directory
# lives unheld for a few milliseconds between its creation and its server's start.
GRACE = 0.3
# How long a contender killed with SIGTERM gets to stop before SIGKILL.
STOP_WAIT = 3.0
W4_SETTLE = 10.0
BASELINE = "xvfb-run"
# ana-headless's two ways in: the launcher, and the in-process API.
ANA_KEYS = ("ana-headless-run", "ensure-headless")
TAIL = 2000

# Every process a run starts inherits this variable, so that its X servers can be told apart from
# anyone else's on a shared machine.
TAG_VAR = "ANA_HEADLESS_BENCH_TAG"
INVOCATION = uuid.uuid4().hex[:12]
X_LOCKS = "/tmp/.X*-lock"
X_SOCKETS = "/tmp/.X11-unix/X*"
PRIVATE_DIRS = os.path.join(tempfile.gettempdir(), "ana-headless-*")
KINDS = ("Xvfb", "lock", "socket", "dir")


def progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def tidy(text: str) -> str:
    """Paths relative to the checkout, so that the report says nothing about this machine."""
    return text.replace(f"{ROOT}{os.sep}", "")


# ---------------------------------------------------------------------------------------------
# What a run leaves behind


def _state(pid: int) -> str | None:
    """The process's state letter (R, S, Z...), or None if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            data = stat.read()
    except OSError:
        return None
    # The command name in parentheses may itself hold spaces and parentheses.
    return data[data.rindex(b")") + 2:][:1].decode()


def _alive(pid: int) -> bool:
    return _state(pid) not in (None, "Z")


def _tag(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/environ", "rb") as environ:
            entries = environ.read().split(b"\0")
    except OSError:
        return None
    prefix = f"{TAG_VAR}=".encode()
    for entry in entries:
        if entry.startswith(prefix):
            return entry[len(prefix):].decode()
    return None


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _xvfb_pids() -> list[int]:
    found = []
    for pid in _pids():
        try:
            with open(f"/proc/{pid}/comm") as comm:
                if comm.read().strip() != "Xvfb":
                    continue
        except OSError:
            continue
        if _alive(pid):
            found.append(pid)
    return found


def _lock_holder(path: str) -> int | None:
    try:
        with open(path) as lock:
            pid = int(lock.read().strip())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid) else None


def _dir_user(path: str) -> int | None:
    """A live process naming the directory on its command line (the server's -auth, a watcher)."""
    needle = path.encode()
    for pid in _pids():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                if needle in cmdline.read() and _alive(pid):
                    return pid
        except OSError:
            continue
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


def _debris() -> dict[str, tuple[int, int]]:
    """Each lock, socket and private directory, with its inode and change time: a file made
    again under an old name (a server on a number whose stale socket was there) is new."""
    found = {}
    for path in (*glob.glob(X_LOCKS), *glob.glob(X_SOCKETS), *glob.glob(PRIVATE_DIRS)):
        with contextlib.suppress(FileNotFoundError):
            status = os.lstat(path)
            found[path] = (status.st_ino, status.st_ctime_ns)
    return found


def _stop_process(pid: int) -> None:
    """SIGTERM (a server removes its own socket and lock), then SIGKILL; not our child: poll."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + STOP_WAIT
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if not _alive(pid):
            return


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

    def __init__(self, tag: str, private_dirs: bool) -> None:
        self.tag = tag
        self.private_dirs = private_dirs
        self.before = _debris()

    def _ours(self, path: str) -> bool:
        owner = _owner(path)
        return owner is None or _tag(owner) == self.tag

    def find(self) -> tuple[dict[str, list[str]], bool]:
        """What is there now, and whether some of it is still held by a live process of ours
        (a server on its way out removes its own socket and lock)."""
        found: dict[str, list[str]] = {kind: [] for kind in KINDS}
        found["Xvfb"] = [str(pid) for pid in _xvfb_pids() if _tag(pid) == self.tag]
        held = bool(found["Xvfb"])
        now = _debris()
        for path in sorted(path for path in now if self.before.get(path) != now[path]):
            kind = _kind(path)
            if kind == "dir" and not self.private_dirs:
                continue
            owner = _owner(path)
            if owner is None or _tag(owner) == self.tag:
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
            time.sleep(GRACE)
            again, _ = self.find()
            found = {kind: [item for item in found[kind] if item in again[kind]]
                     for kind in KINDS}
        return found

    def collect(self, claimed: set[str], wait: float = SETTLE) -> tuple[Counter[str], list[str]]:
        """Count what the run left behind and remove what is provably its own; the counts,
        and the paths left in place."""
        found = self.settle(wait)
        for pid in found["Xvfb"]:
            _stop_process(int(pid))
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
    for pid in _xvfb_pids():
        if (_tag(pid) or "").startswith(INVOCATION):
            _stop_process(pid)


# ---------------------------------------------------------------------------------------------
# Running


_counter = 0


def new_tag() -> str:
    global _counter
    _counter += 1
    return f"{INVOCATION}-{_counter}"


def tagged_env(tag: str) -> dict[str, str]:
    return {**os.environ, TAG_VAR: tag}


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM first, so that the contender stops its server (which removes its files)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(STOP_WAIT)
            return
        except subprocess.TimeoutExpired:
            continue


def _wait(process: subprocess.Popen[bytes], timeout: float) -> bool:
    """Wait for the process to end, at most `timeout` s; True if it did.

    A pidfd wakes us the moment it ends: Popen.wait(timeout) polls with sleeps of up to 50 ms,
    too coarse for W1.
    """
    pidfd = os.pidfd_open(process.pid)
    try:
        ended = bool(select.select([pidfd], [], [], max(0.0, timeout))[0])
    finally:
        os.close(pidfd)
    if ended:
        process.wait()
    return ended


def _tail(stream: IO[bytes]) -> str:
    stream.seek(0)
    return tidy(stream.read().decode(errors="replace"))


@dataclass
class Outcome:
    seconds: float
    # Empty when the run did what it should.
    problem: str = ""
    stdout: str = ""
    stderr: str = ""
    # W3: the snapshot rate the script reported.
    rate: float = 0.0
    # The lock, socket and private directory of the display the run reported it got.
    claimed: set[str] = field(default_factory=set)


REPORT = re.compile(r"^bench-(display|xauthority)=(.*)$", re.MULTILINE)


def claims(stderr: str) -> set[str]:
    """The files a run owns by its own report (see report_display.py): its display's lock and
    socket, and the ana-headless directory holding its XAUTHORITY."""
    owned = set()
    for what, value in REPORT.findall(stderr):
        number = re.fullmatch(r":(\d+)(?:\.\d+)?", value)
        if what == "display" and number:
            owned |= {f"/tmp/.X{number.group(1)}-lock", f"/tmp/.X11-unix/X{number.group(1)}"}
        elif what == "xauthority" and fnmatch.fnmatch(os.path.dirname(value), PRIVATE_DIRS):
            owned.add(os.path.dirname(value))
    return owned


def run_once(argv: Sequence[str], tag: str, timeout: float) -> Outcome:
    """Run a command in its own session, timed from spawn to exit; kill it past `timeout`."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        process = subprocess.Popen(list(argv), env=tagged_env(tag), stdin=subprocess.DEVNULL,
                                   stdout=out, stderr=err, start_new_session=True)
        try:
            ended = _wait(process, timeout)
            seconds = time.perf_counter() - start
        finally:
            if process.returncode is None:
                _kill_group(process)
        if not ended:
            problem = f"timed out after {timeout:g} s"
        elif process.returncode:
            problem = f"exit status {process.returncode}"
        else:
            problem = ""
        stderr = _tail(err)
        return Outcome(seconds, problem, _tail(out), stderr, claimed=claims(stderr))


def bare_xvfb_ready(tag: str) -> Outcome:
    """Time from spawning Xvfb -displayfd until its display number arrives; then stop it."""
    read_end, write_end = os.pipe()
    command = ["Xvfb", "-displayfd", str(write_end), "-nolisten", "tcp", "+extension", "GLX",
               "-screen", "0", SCREEN, "-noreset"]
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        try:
            process = subprocess.Popen(command, pass_fds=(write_end,), env=tagged_env(tag),
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=err, start_new_session=True)
        finally:
            os.close(write_end)
        try:
            received = b""
            while not received.endswith(b"\n"):
                remaining = start + XVFB_READY_TIMEOUT - time.perf_counter()
                if remaining <= 0 or not select.select([read_end], [], [], remaining)[0]:
                    return Outcome(time.perf_counter() - start,
                                   f"no display number within {XVFB_READY_TIMEOUT:g} s",
                                   stderr=_tail(err))
                chunk = os.read(read_end, 64)
                if not chunk:
                    return Outcome(time.perf_counter() - start,
                                   f"Xvfb exited with status {process.wait()} before it was ready",
                                   stderr=_tail(err))
                received += chunk
            return Outcome(time.perf_counter() - start,
                           claimed=claims(f"bench-display=:{int(received)}"))
        finally:
            os.close(read_end)
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# ---------------------------------------------------------------------------------------------
# Contenders and workloads


@dataclass(frozen=True)
class Contender:
    key: str
    label: str
    # What comes before SCRIPT ARGS...
    prefix: tuple[str, ...]
    # The command as its users type it, for the report.
    shown: str
    # False for the floor (plain python), which has no display and runs W1 only.
    x11: bool = True
    # Why it cannot run here; empty when it can.
    missing: str = ""


def _ana_headless_command() -> str | None:
    beside = Path(sys.executable).parent / "ana-headless"
    return str(beside) if beside.exists() else shutil.which("ana-headless")


def _importable(statement: str) -> bool:
    # In a fresh interpreter: the package may be changing under us.
    return subprocess.run([sys.executable, "-c", statement], capture_output=True).returncode == 0


def contenders() -> list[Contender]:
    python = sys.executable
    ana = _ana_headless_command()

    def module_missing(name: str) -> str:
        return "" if importlib.util.find_spec(name) else f"n/a ({name} not installed)"

    def program_missing(name: str) -> str:
        return "" if shutil.which(name) else f"n/a ({name} not found)"

    return [
        Contender("python", "python (no X, floor)", (python,), "python SCRIPT", x11=False),
        Contender(BASELINE, "xvfb-run -a", ("xvfb-run", "-a", python),
                  "xvfb-run -a python SCRIPT", missing=program_missing("xvfb-run")),
        Contender("pyvirtualdisplay", "PyVirtualDisplay",
                  (python, str(HERE / "with_pyvirtualdisplay.py")),
                  "python benchmarks/with_pyvirtualdisplay.py SCRIPT",
                  missing=module_missing("pyvirtualdisplay")),
        Contender("xvfbwrapper", "xvfbwrapper", (python, str(HERE / "with_xvfbwrapper.py")),
                  "python benchmarks/with_xvfbwrapper.py SCRIPT",
                  missing=module_missing("xvfbwrapper")),
        Contender("ana-headless-run", "ana-headless run", (ana or "ana-headless", "run"),
                  "ana-headless run SCRIPT", missing="" if ana else "n/a (not installed)"),
        Contender("ensure-headless", "ana_headless.ensure_headless()",
                  (python, str(HERE / "with_ensure_headless.py")),
                  "python benchmarks/with_ensure_headless.py SCRIPT",
                  missing="" if _importable("from ana_headless import ensure_headless")
                  else "n/a (not available)"),
    ]


@dataclass(frozen=True)
class Workload:
    key: str
    title: str
    # 0: the no-op script; else the scene, saving this many frames.
    frames: int = 0
    # The no-op script's arguments.
    noop_args: tuple[str, ...] = ()

    def command(self, png: Path) -> list[str]:
        """SCRIPT ARGS...; the scene runs behind report_display.py, which says (as noop.py
        does) which display and XAUTHORITY the run got, so that its debris can be told apart."""
        if not self.frames:
            return [str(NOOP), *self.noop_args]
        command = [str(REPORT_DISPLAY), str(SCENE), str(png), "--triangles", str(TRIANGLES)]
        return [*command, "--frames", str(self.frames)] if self.frames > 1 else command


W1 = Workload("W1", "no-op script")
W1C = Workload("W1c", "no-op script that opens its display once", noop_args=("--connect",))
W2 = Workload("W2", f"first frame, {TRIANGLES // 1000}k triangles, one grab saved as PNG",
              frames=1)
W3 = Workload("W3", f"snapshot throughput, {SNAPSHOTS} grabs + PNG saves in one process",
              frames=SNAPSHOTS)

RATE = re.compile(r"([0-9.]+) snapshots/s")


def check(workload: Workload, outcome: Outcome, png: Path) -> Outcome:
    """A W2/W3 run must print its PNG paths and (W3) its snapshot rate."""
    if outcome.problem or not workload.frames:
        return outcome
    printed = [Path(line) for line in outcome.stdout.splitlines() if line.endswith(".png")]
    written = [path for path in printed if path.is_file()]
    if len(written) != workload.frames:
        outcome.problem = (f"{len(written)} of {workload.frames} PNGs written "
                           f"({len(printed)} paths on stdout)")
    elif workload.frames > 1:
        match = RATE.search(outcome.stderr)
        if match:
            outcome.rate = float(match.group(1))
        else:
            outcome.problem = "no snapshots/s on stderr"
    for image in (png, *written):
        image.unlink(missing_ok=True)
    return outcome


# ---------------------------------------------------------------------------------------------
# Measuring


@dataclass
class Series:
    seconds: list[float] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)
    failures: int = 0
    first_failure: dict[str, str] | None = None
    left_behind: Counter[str] = field(default_factory=Counter)
    left_in_place: list[str] = field(default_factory=list)

    def record(self, outcome: Outcome, command: str, left: Counter[str], kept: list[str]) -> None:
        self.left_behind.update(left)
        self.left_in_place += kept
        if not outcome.problem:
            self.seconds.append(outcome.seconds)
            if outcome.rate:
                self.rates.append(outcome.rate)
            return
        self.failures += 1
        if self.first_failure is None:
            self.first_failure = {"problem": outcome.problem, "command": command,
                                  "stderr_tail": outcome.stderr[-TAIL:]}


def attempt(job: Callable[[str], Outcome], private_dirs: bool = False
            ) -> tuple[Outcome, Counter[str], list[str]]:
    """Run one job under a fresh tag: what it did, what it left behind, what was left in place."""
    tag = new_tag()
    debris = Debris(tag, private_dirs)
    try:
        outcome = job(tag)
    except OSError as error:
        # A contender that cannot even start is a failed run, not a failed benchmark.
        outcome = Outcome(0.0, f"cannot run: {error}")
    return outcome, *debris.collect(outcome.claimed)


def measure(workload: Workload, runners: Sequence[Contender], repeats: int, workdir: Path,
            with_bare_xvfb: bool = False) -> dict[str, Series]:
    """Round-robin: each round runs every contender once; round 0 warms caches, unrecorded."""
    series = {c.key: Series() for c in runners}
    if with_bare_xvfb:
        series["bare-xvfb"] = Series()
    for round_ in range(repeats + 1):
        progress(f"{workload.key} round {round_}/{repeats}" + (" (warm-up)" if not round_ else ""))
        for contender in runners:
            png = workdir / f"{workload.key}-{contender.key}.png"
            argv = [*contender.prefix, *workload.command(png)]
            outcome, left, kept = attempt(
                lambda tag, argv=argv: run_once(argv, tag, TIMEOUTS[workload.key]),
                private_dirs=contender.key in ANA_KEYS)
            outcome = check(workload, outcome, png)
            if round_:
                series[contender.key].record(outcome, tidy(shlex.join(argv)), left, kept)
        if with_bare_xvfb:
            outcome, left, kept = attempt(bare_xvfb_ready)
            if round_:
                series["bare-xvfb"].record(outcome, "Xvfb -displayfd ...", left, kept)
    return series


def concurrent_batch(contender: Contender, runs: int, workdir: Path) -> dict[str, Any]:
    """W4: `runs` W2 runs started at once; wall time from the first spawn to the last exit."""
    tag = new_tag()
    debris = Debris(tag, private_dirs=contender.key in ANA_KEYS)
    env = tagged_env(tag)
    processes: list[tuple[subprocess.Popen[bytes], Path, Path]] = []
    start = time.perf_counter()
    try:
        for index in range(runs):
            png = workdir / f"W4-{contender.key}-{index}.png"
            argv = [*contender.prefix, *W2.command(png)]
            err_path = workdir / f"W4-{index}.err"
            with open(workdir / f"W4-{index}.out", "wb") as out, open(err_path, "wb") as err:
                process = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                           stderr=err, start_new_session=True)
            processes.append((process, png, err_path))
        deadline = start + TIMEOUTS["W4"]
        timed_out = {id(p) for p, _, _ in processes
                     if not _wait(p, deadline - time.perf_counter())}
        wall = time.perf_counter() - start
    finally:
        for process, _, _ in processes:
            if process.returncode is None:
                _kill_group(process)
    failures = 0
    first_failure: dict[str, str] | None = None
    displays: set[str] = set()
    claimed: set[str] = set()
    for process, png, err_path in processes:
        stdout = (err_path.with_suffix(".out")).read_text(errors="replace")
        stderr = tidy(err_path.read_text(errors="replace"))
        claimed |= claims(stderr)
        outcome = Outcome(0.0, stdout=stdout, stderr=stderr)
        if id(process) in timed_out:
            outcome.problem = f"timed out after {TIMEOUTS['W4']:g} s"
        elif process.returncode:
            outcome.problem = f"exit status {process.returncode}"
        outcome = check(W2, outcome, png)
        if outcome.problem:
            failures += 1
            if first_failure is None:
                first_failure = {"problem": outcome.problem, "stderr_tail": stderr[-TAIL:]}
            continue
        found = re.search(r"^bench-display=(\S*)$", stderr, re.MULTILINE)
        if found:
            displays.add(found.group(1))
    left, kept = debris.collect(claimed, W4_SETTLE)
    return {"runs": runs, "wall_s": wall, "failures": failures,
            "distinct_displays": len(displays),
            "left_behind": {kind: left.get(kind, 0) for kind in KINDS},
            "left_in_place": kept, "first_failure": first_failure}


# ---------------------------------------------------------------------------------------------
# Facts about the machine


def _xvfb_version() -> str:
    try:
        answer = subprocess.run(["Xvfb", "-version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"unknown ({error})"
    found = re.search(r"X\.Org X Server \S+", answer.stdout + answer.stderr)
    if found:
        return found.group(0)
    # Debian's Xvfb rejects -version; its package manager still knows.
    if shutil.which("dpkg-query"):
        package = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "xvfb"],
                                 capture_output=True, text=True)
        if package.returncode == 0:
            return f"xvfb package {package.stdout.strip()} (Xvfb -version is not supported)"
    return "unknown (Xvfb -version is not supported)"


def _under_display(argv: Sequence[str]) -> str:
    outcome, _, _ = attempt(lambda tag: run_once(argv, tag, 60.0), private_dirs=True)
    return outcome.stdout if not outcome.problem else f"failed: {outcome.problem}"


def _cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _os_name() -> str:
    with contextlib.suppress(OSError), open("/etc/os-release") as release:
        for line in release:
            if line.startswith("PRETTY_NAME="):
                return f"{line.split('=', 1)[1].strip().strip(chr(34))}, Linux {platform.release()}"
    return platform.platform()


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_facts(runners: Sequence[Contender]) -> dict[str, str]:
    facts = {"Xvfb": _xvfb_version()}
    if shutil.which("xvfb-run") and shutil.which("glxinfo"):
        glxinfo = _under_display(["xvfb-run", "-a", "glxinfo", "-B"])
        found = re.search(r"OpenGL renderer string: (.*)", glxinfo)
        facts["renderer (glxinfo -B under xvfb-run)"] = found.group(1) if found else glxinfo[-200:]
    ana = next(c for c in runners if c.key == ANA_KEYS[0])
    if not ana.missing:
        chosen = _under_display([ana.prefix[0], "exec", "sh", "-c",
                                 'printf "%s: %s" "$ANA_HEADLESS_MODE" "$ANA_HEADLESS_RENDERER"'])
        facts["ana-headless GL mode: renderer"] = chosen.strip()
    usable = len(os.sched_getaffinity(0))
    facts["CPU"] = f"{os.cpu_count()} logical CPUs ({usable} usable), {_cpu_model()}"
    facts["memory"] = f"{os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.0f} GiB"
    facts["OS"] = _os_name()
    facts["Python"] = f"{platform.python_implementation()} {platform.python_version()}"
    facts["packages"] = ", ".join(
        f"{name} {_version(name)}"
        for name in ("ana-headless", "PyVirtualDisplay", "xvfbwrapper", "PyQt5"))
    facts["load average at start"] = " ".join(f"{load:.2f}" for load in os.getloadavg())
    return facts


# ---------------------------------------------------------------------------------------------
# Report


def _stats(values: Sequence[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _left_text(left: Counter[str] | dict[str, int]) -> str:
    parts = [f"{left[kind]} {kind}" for kind in KINDS if left.get(kind)]
    return ", ".join(parts) or "0"


def summarize(series: dict[str, Series], rates: bool = False) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for key, one in series.items():
        results[key] = {
            "samples_s": one.seconds, "seconds": _stats(one.seconds),
            "failures": one.failures, "first_failure": one.first_failure,
            "left_behind": {kind: one.left_behind.get(kind, 0) for kind in KINDS},
            "left_in_place": one.left_in_place,
        }
        if rates:
            results[key]["samples_snapshots_per_s"] = one.rates
            results[key]["snapshots_per_s"] = _stats(one.rates)
    metric = "snapshots_per_s" if rates else "seconds"
    base = (results.get(BASELINE) or {}).get(metric)
    for result in results.values():
        mine = result[metric]
        result["ratio_to_xvfb_run"] = mine["median"] / base["median"] if mine and base else None
    return results


def _fmt(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def timing_table(results: dict[str, Any], runners: Sequence[Contender], scale: float,
                 digits: int, *, rates: bool = False, extra: Sequence[tuple[str, str]] = ()
                 ) -> list[str]:
    metric = "snapshots_per_s" if rates else "seconds"
    head = ("| contender | median | min | max | ratio to xvfb-run | "
            + ("wall s (median) | " if rates else "") + "failures | left behind |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    rows = [(c.label, c.key, c.missing) for c in runners] + [(label, key, "")
                                                            for label, key in extra]
    for label, key, missing in rows:
        result = results.get(key)
        if result is None:
            lines.append(f"| {label} | {missing or 'n/a'} |" + " |" * (head.count("|") - 3))
            continue
        stats = result[metric]
        factor = 1.0 if rates else scale
        cells = [_fmt(stats and stats[name] * factor, digits) for name in ("median", "min", "max")]
        cells.append(_fmt(result["ratio_to_xvfb_run"], 2))
        if rates:
            cells.append(_fmt(result["seconds"] and result["seconds"]["median"], 2))
        cells += [str(result["failures"]), _left_text(result["left_behind"])]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


@dataclass
class Target:
    name: str
    measured: str
    passed: bool | None

    def line(self) -> str:
        verdict = {True: "PASS", False: "FAIL", None: "not measured"}[self.passed]
        return f"- **{verdict}** {self.name}: {self.measured}"


def _median(results: dict[str, Any], workload: str, key: str) -> float | None:
    result = results.get(workload, {}).get("results", {}).get(key)
    return result["seconds"]["median"] if result and result["seconds"] else None


def launcher_overhead(results: dict[str, Any], key: str) -> float | None:
    """W1c median of `key` minus (bare Xvfb ready median + plain python no-op median), in ms:
    on W1c, where the display is used, ana-headless must wait for its server."""
    parts = [_median(results, *where) for where in
             (("W1c", key), ("W1", "bare-xvfb"), ("W1", "python"))]
    if any(part is None for part in parts):
        return None
    launcher, bare, floor = parts
    assert launcher is not None and bare is not None and floor is not None
    return (launcher - bare - floor) * 1000


def targets(results: dict[str, Any]) -> list[Target]:
    ana = ANA_KEYS[0]
    found: list[Target] = []
    for workload, limit in (("W1", 0.9), ("W2", 1.0)):
        result = results.get(workload, {}).get("results", {}).get(ana)
        ratio = result and result["ratio_to_xvfb_run"]
        found.append(Target(
            f"{workload} median ratio ana-headless run / xvfb-run <= {limit}",
            _fmt(ratio, 2), None if ratio is None else ratio <= limit))
    batch = results.get("W4", {}).get("results", {}).get(ana)
    if batch:
        leaks = sum(batch["left_behind"].values())
        found.append(Target("W4 ana-headless run: 0 failures and 0 leaks",
                            f"{batch['failures']} failures, {leaks} leaks",
                            batch["failures"] == 0 and leaks == 0))
    else:
        found.append(Target("W4 ana-headless run: 0 failures and 0 leaks", "n/a", None))
    overhead = launcher_overhead(results, ana)
    found.append(Target("launcher overhead < 20 ms (median)",
                        "n/a" if overhead is None else f"{overhead:.1f} ms",
                        None if overhead is None else overhead < 20))
    return found


def markdown(report: dict[str, Any], runners: Sequence[Contender]) -> str:
    out = ["# ana-headless benchmark", "",
           f"`{report['command']}` on {report['date']}", "",
           "| machine | |", "|---|---|"]
    out += [f"| {name} | {value} |" for name, value in report["machine"].items()]
    results = report["workloads"]
    repeats = report["settings"]["repeats"]
    x11 = [c for c in runners if c.x11]

    def runs(workload: str) -> str:
        count = repeats[workload]
        return f"{count} run{'' if count == 1 else 's'} each, a fresh process per run"

    if "W1" in results:
        out += ["", f"## W1: {W1.title} (ms; {runs('W1')})", "",
                *timing_table(results["W1"]["results"], runners, 1000, 1,
                              extra=[("bare Xvfb ready (reference)", "bare-xvfb")]), ""]
    if "W1c" in results:
        out += ["", f"## W1c: {W1C.title} (ms; {runs('W1c')})", "",
                *timing_table(results["W1c"]["results"], x11, 1000, 1), ""]
        for contender in (c for c in runners if c.key in ANA_KEYS):
            overhead = launcher_overhead(results, contender.key)
            if overhead is not None:
                out.append(f"- Launcher overhead of {contender.label}: W1c median - (bare "
                           f"Xvfb ready median + python no-op median, from W1) = "
                           f"**{overhead:.1f} ms**")
    if "W2" in results:
        out += ["", f"## W2: {W2.title} (ms; {runs('W2')})", "",
                *timing_table(results["W2"]["results"], x11, 1000, 0)]
    if "W3" in results:
        out += ["", f"## W3: {W3.title} (snapshots/s, higher is better; {runs('W3')})", "",
                *timing_table(results["W3"]["results"], x11, 1, 1, rates=True)]
    if "W4" in results:
        out += ["", f"## W4: {report['settings']['concurrent']} concurrent W2 runs "
                "(one batch per contender)", "",
                "| contender | wall s | failures | distinct displays | left behind: Xvfb | "
                "locks | sockets | dirs |", "|---|---|---|---|---|---|---|---|"]
        for contender in x11:
            batch = results["W4"]["results"].get(contender.key)
            if batch is None:
                out.append(f"| {contender.label} | {contender.missing} | | | | | | |")
                continue
            left = batch["left_behind"]
            out.append(f"| {contender.label} | {batch['wall_s']:.1f} | {batch['failures']} | "
                       f"{batch['distinct_displays']} | "
                       + " | ".join(str(left[kind]) for kind in KINDS) + " |")
    out += ["", "## Targets", "", *(Target(**t).line() for t in report["targets"])]
    reference = results.get("W1c", {}).get("results", {}).get(ANA_KEYS[0])
    if reference:
        out.append(f"- (no target) W1c median ratio ana-headless run / xvfb-run: "
                   f"{_fmt(reference['ratio_to_xvfb_run'], 2)}")
    out += ["", "## Contenders", "", *(f"- {c.label}: `{c.shown}`" for c in runners), "",
            "Left behind: an Xvfb process, /tmp/.X*-lock, /tmp/.X11-unix/X* or ana-headless-* "
            "directory of the run's that is still there once the run has ended (counted; then "
            "removed when provably the run's, so that the next run starts clean)."]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark ana-headless against xvfb-run, PyVirtualDisplay and xvfbwrapper.")
    parser.add_argument("--repeat", type=int, metavar="N",
                        help="runs per contender for W1-W3 (default: W1 and W1c 40, W2 7, "
                             "W3 3)")
    parser.add_argument("--quick", action="store_true",
                        help=f"a smoke test: W1 3, W1c 3, W2 2, W3 1 runs, W4 {QUICK_CONCURRENT} "
                             "concurrent runs")
    parser.add_argument("--only", metavar="W1,W1c,...", default=",".join(WORKLOADS),
                        help="the workloads to run (default: all)")
    parser.add_argument("--out", type=Path, default=HERE / "results", metavar="DIR",
                        help="where latest.md and latest.json go (default: benchmarks/results)")
    args = parser.parse_args(argv)
    canonical = {key.upper(): key for key in WORKLOADS}
    asked = [w.strip().upper() for w in args.only.split(",") if w.strip()]
    unknown = sorted(set(asked) - set(canonical))
    args.only = [canonical[w] for w in asked if w in canonical]
    if unknown or not args.only:
        parser.error(f"--only: {', '.join(unknown) or 'nothing'}: choose from "
                     f"{', '.join(WORKLOADS)}")
    if args.repeat is not None and args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def _terminate(signum: int, _frame: object) -> None:
    # Unwind, so that the running contender is killed and the servers are stopped.
    sys.exit(128 + signum)


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    repeats = dict(QUICK_REPEATS if args.quick else REPEATS)
    if args.repeat is not None:
        repeats = dict.fromkeys(repeats, args.repeat)
    concurrent = QUICK_CONCURRENT if args.quick else CONCURRENT
    runners = contenders()
    usable = [c for c in runners if not c.missing]
    for contender in runners:
        if contender.missing:
            progress(f"{contender.label}: {contender.missing}")
    workdir = Path(tempfile.mkdtemp(prefix="ana-bench-"))
    workloads: dict[str, Any] = {}
    report: dict[str, Any] = {
        "command": shlex.join(["python", "benchmarks/run.py", *argv]),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "settings": {"repeats": repeats, "concurrent": concurrent, "triangles": TRIANGLES,
                     "snapshots": SNAPSHOTS, "screen": SCREEN, "only": args.only},
        "contenders": {c.key: {"label": c.label, "command": c.shown, "missing": c.missing}
                       for c in runners},
        "workloads": workloads,
    }
    try:
        progress("machine facts")
        report["machine"] = machine_facts(runners)
        if "W1" in args.only:
            series = measure(W1, usable, repeats["W1"], workdir, with_bare_xvfb=True)
            workloads["W1"] = {"title": W1.title, "results": summarize(series)}
        for workload in (W1C, W2, W3):
            if workload.key in args.only:
                series = measure(workload, [c for c in usable if c.x11],
                                 repeats[workload.key], workdir)
                workloads[workload.key] = {
                    "title": workload.title,
                    "results": summarize(series, rates=workload is W3)}
        if "W4" in args.only:
            batches = {}
            for contender in (c for c in usable if c.x11):
                progress(f"W4: {contender.label}: {concurrent} concurrent runs")
                batches[contender.key] = concurrent_batch(contender, concurrent, workdir)
            workloads["W4"] = {"title": f"{concurrent} concurrent W2 runs", "results": batches}
    finally:
        sweep()
        shutil.rmtree(workdir, ignore_errors=True)
    report["launcher_overhead_ms"] = {key: launcher_overhead(workloads, key) for key in ANA_KEYS}
    report["targets"] = [vars(t) for t in targets(workloads)]
    text = markdown(report, runners)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.md").write_text(text)
    (args.out / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    print(text, end="")
    progress(f"wrote {tidy(str(args.out / 'latest.md'))} and latest.json")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
