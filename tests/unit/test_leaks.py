"""The leak check's attribution (tests/leaks.py): a run answers for what its tagged processes
left, never for what somebody else's live process holds, nor for another user's stale file."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import leaks

SLEEP = shutil.which("sleep") or "/bin/sleep"
# Above the kernel's largest possible pid: no process has it.
DEAD = 2**22 + 1


@pytest.fixture
def display_files(tmp_path: Path) -> Iterator[Path]:
    """Locks and private directories are looked for in tmp_path, not in /tmp; in /tmp again
    for the suite's own leak check after the test."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(leaks, "X_LOCKS", str(tmp_path / ".X*-lock"))
        patch.setattr(leaks, "X_SOCKETS", str(tmp_path / "no-sockets" / "X*"))
        patch.setattr(leaks, "PRIVATE_DIRS", str(tmp_path / "ana-headless-*"))
        yield tmp_path


@pytest.fixture
def sleepers(tmp_path: Path) -> Iterator[dict[str, int]]:
    """Pids of sleeping processes, named `sleep` and `Xvfb`: ours (tagged `run`) and
    somebody else's (untagged), by "ours sleep", "theirs Xvfb"..."""
    xvfb = tmp_path / "bin" / "Xvfb"
    xvfb.parent.mkdir()
    shutil.copy(SLEEP, xvfb)
    theirs = {name: value for name, value in os.environ.items() if name != leaks.TAG_VAR}
    envs = {"ours": {**theirs, leaks.TAG_VAR: "run"}, "theirs": theirs}
    processes = {
        f"{owner} {os.path.basename(program)}": subprocess.Popen([program, "60"], env=env)
        for owner, env in envs.items()
        for program in (SLEEP, str(xvfb))
    }
    for process in processes.values():
        started(process.pid)
    try:
        yield {name: process.pid for name, process in processes.items()}
    finally:
        for process in processes.values():
            process.kill()
            process.wait()


def started(pid: int) -> None:
    """Wait until a process just started runs its program. Popen may return before the
    kernel has given it its name, command line and environment in /proc (seen here: 30 times in
    200 starts), and the check would then not know whose it is."""
    while leaks.alive(pid) and not any(leaks.command_line(pid)):
        time.sleep(0.001)


def lock(directory: Path, number: int, pid: int) -> str:
    path = directory / f".X{number}-lock"
    path.write_text(f"{pid:>10}\n")
    return str(path)


def test_a_run_answers_for_what_its_processes_hold_and_for_stale_files(
    display_files: Path, sleepers: dict[str, int]
) -> None:
    old = lock(display_files, 0, DEAD)
    since = leaks.file_identities()
    held_by_us = lock(display_files, 1, sleepers["ours sleep"])
    lock(display_files, 2, sleepers["theirs sleep"])
    stale = lock(display_files, 3, DEAD)
    stale_dir = display_files / "ana-headless-stale"
    stale_dir.mkdir()
    # Somebody else's live run names its private directory on a command line (its server's
    # -auth, its watcher).
    their_dir = display_files / "ana-headless-theirs"
    their_run = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", their_dir])
    started(their_run.pid)
    their_dir.mkdir()
    try:
        found = leaks.leftovers("run", since)
    finally:
        their_run.kill()
        their_run.wait()
    assert found == {f"process {sleepers['ours Xvfb']}", held_by_us, stale, str(stale_dir)}
    assert old in leaks.leftovers("run", {}), "stale too, but there before the run started"


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_another_users_stale_file_is_never_a_runs(display_files: Path) -> None:
    os.chown(lock(display_files, 4, DEAD), 65534, 65534)
    assert leaks.leftovers("run", {}) == set()
