"""Running one command, timed from spawn to exit, and reading what it reported: its output, its
display (see report_display.py), and what it left behind (see Debris in tests/leaks.py)."""

from __future__ import annotations

import contextlib
import fnmatch
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from tests.leaks import PRIVATE_DIRS, Debris, new_tag, tagged_env

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# The screen every contender gets: xvfb-run's and ana-headless's default (see _workload.py).
SCREEN = "1280x1024x24"
XVFB_READY_TIMEOUT = 10.0
# How long a run's X server may take to go once the run has ended before it counts as left behind
# (xvfb-run, for one, signals its server and exits without waiting for it).
SETTLE = 2.0
# How long a contender killed with SIGTERM gets to stop before SIGKILL.
STOP_WAIT = 3.0


def progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def tidy(text: str) -> str:
    """Paths relative to the checkout, so that the report says nothing about this machine."""
    return text.replace(f"{ROOT}{os.sep}", "")


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


def displays(stderr: str) -> list[str]:
    """The displays a run reported it got."""
    return [value for what, value in REPORT.findall(stderr) if what == "display"]


def spawn(
    argv: Sequence[str], env: dict[str, str], stdout: IO[bytes], stderr: IO[bytes]
) -> subprocess.Popen[bytes]:
    """A contender's run, in a session of its own so that all it started can be killed."""
    return subprocess.Popen(
        list(argv),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        start_new_session=True,
    )


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM first, so that the contender stops its server (which removes its files)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(STOP_WAIT)
            return
        except subprocess.TimeoutExpired:
            continue


def wait(process: subprocess.Popen[bytes], timeout: float) -> bool:
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


def run_once(argv: Sequence[str], tag: str, timeout: float) -> Outcome:
    """Run a command in its own session, timed from spawn to exit; kill it past `timeout`."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        process = spawn(argv, tagged_env(tag), out, err)
        try:
            ended = wait(process, timeout)
            seconds = time.perf_counter() - start
        finally:
            if process.returncode is None:
                kill_group(process)
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
    command = [
        "Xvfb",
        "-displayfd",
        str(write_end),
        "-nolisten",
        "tcp",
        "+extension",
        "GLX",
        "-screen",
        "0",
        SCREEN,
        "-noreset",
    ]
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        try:
            process = subprocess.Popen(
                command,
                pass_fds=(write_end,),
                env=tagged_env(tag),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,
            )
        finally:
            os.close(write_end)
        try:
            received = b""
            while not received.endswith(b"\n"):
                remaining = start + XVFB_READY_TIMEOUT - time.perf_counter()
                if remaining <= 0 or not select.select([read_end], [], [], remaining)[0]:
                    return Outcome(
                        time.perf_counter() - start,
                        f"no display number within {XVFB_READY_TIMEOUT:g} s",
                        stderr=_tail(err),
                    )
                chunk = os.read(read_end, 64)
                if not chunk:
                    return Outcome(
                        time.perf_counter() - start,
                        f"Xvfb exited with status {process.wait()} before it was ready",
                        stderr=_tail(err),
                    )
                received += chunk
            return Outcome(
                time.perf_counter() - start, claimed=claims(f"bench-display=:{int(received)}")
            )
        finally:
            os.close(read_end)
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def attempt(
    job: Callable[[str], Outcome], private_dirs: bool = False
) -> tuple[Outcome, Counter[str], list[str]]:
    """Run one job under a fresh tag: what it did, what it left behind, what was left in place."""
    tag = new_tag()
    debris = Debris(tag, private_dirs)
    try:
        outcome = job(tag)
    except OSError as error:
        # A contender that cannot even start is a failed run, not a failed benchmark.
        outcome = Outcome(0.0, f"cannot run: {error}")
    return outcome, *debris.collect(outcome.claimed, SETTLE)
