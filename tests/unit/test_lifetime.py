"""Process and file helpers of the launcher: the spawn's fd placement, the tree removal."""

from __future__ import annotations

import os
from pathlib import Path

from ana_headless.lifetime import remove_tree, spawn, wait_pid


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


def test_remove_tree_removes_links_not_what_they_point_to(tmp_path: Path) -> None:
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "file").write_text("x")
    tree = tmp_path / "tree"
    (tree / "a" / "b").mkdir(parents=True)
    (tree / "a" / "b" / "f").write_text("y")
    (tree / "link").symlink_to(kept)
    remove_tree(str(tree))
    assert not tree.exists()
    assert (kept / "file").read_text() == "x"
