"""Process and file helpers of the launcher: the spawn's fd placement, the private directory."""

from __future__ import annotations

import os
from pathlib import Path

from ana_headless.lifetime import PrivateDirectory, Watcher
from ana_headless.process import FORWARDED_SIGNALS, spawn, wait_pid


def test_spawn_places_the_passed_fds_at_3_and_up() -> None:
    """Whatever numbers our fds have (here, some clash with the targets), the new process
    finds them at 3, 4, ... in order."""
    pipes = [os.pipe() for _ in range(3)]
    write_ends = [write_end for _read, write_end in pipes]
    passed = [write_ends[2], write_ends[0], write_ends[1]]
    pid = spawn(["/bin/sh", "-c", "echo three >&3; echo four >&4; echo five >&5"], pass_fds=passed)
    for fd in write_ends:
        os.close(fd)
    assert wait_pid(pid, None) == 0
    received = []
    for read_end, _write in pipes:
        with os.fdopen(read_end, "rb") as pipe:
            received.append(pipe.read())
    assert received == [b"four\n", b"five\n", b"three\n"]


def test_the_private_directory_is_removed_without_following_links(tmp_path: Path) -> None:
    """Its removal goes through its descriptor: a link inside it is removed, not followed;
    and when somebody renamed it away and put a link to a victim's directory in its place,
    nothing of the victim's is touched."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "file").write_text("x")
    directory = PrivateDirectory(str(tmp_path))
    directory.write("auth", b"cookie")
    directory.make_directory("runtime")
    Path(directory.make_directory("nested"), "deep").write_text("y")
    directory.link("to-victim", str(victim))
    path = Path(directory.path)
    moved = tmp_path / "moved-away"
    path.rename(moved)
    path.symlink_to(victim)
    directory.remove()
    assert (victim / "file").read_text() == "x"
    assert path.is_symlink()
    # What was ours is gone, wherever it was moved to.
    assert list(moved.iterdir()) == []


def test_an_unsafe_tmpdir_is_not_used(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # writable by all, not sticky: anybody can rename our directory away
    directory = PrivateDirectory(str(shared))
    try:
        assert Path(directory.path).parent == Path("/tmp")
        assert "writable by others and not sticky" in directory.note
        assert list(shared.iterdir()) == []
    finally:
        directory.remove()
    sticky = tmp_path / "sticky"
    sticky.mkdir()
    sticky.chmod(0o1777)
    directory = PrivateDirectory(str(sticky))
    try:
        assert Path(directory.path).parent == sticky and not directory.note
    finally:
        directory.remove()
    assert list(sticky.iterdir()) == []


def test_the_watcher_is_deaf_to_a_group_signal_from_its_first_instant(tmp_path: Path) -> None:
    """A signal to our whole process group (GNU timeout's) could kill the watcher before it
    has a session of its own and its `trap ''`: it is born with those signals blocked, and
    they stay blocked (the review's 4 leaks in 150 runs are too rare to catch by timing)."""
    watcher = Watcher(str(tmp_path / "gone"))
    try:
        assert watcher.pid is not None
        status = Path(f"/proc/{watcher.pid}/status").read_text()
        blocked = int(
            next(line for line in status.splitlines() if line.startswith("SigBlk:"))[7:], 16
        )
        assert all(blocked & (1 << (sig - 1)) for sig in FORWARDED_SIGNALS)
    finally:
        watcher.close()
