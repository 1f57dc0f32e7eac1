"""Directories reached safely: every directory on the way is checked on its descriptor, and a
link is followed only when root or we made it. The "other user" is uid 65534 (nobody), given
to files with chown: the tests run as root."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ana_headless.safedir import UnsafeDirectory, open_directory, remove_contents

NOBODY = 65534


@pytest.fixture(autouse=True)
def as_root() -> Iterator[None]:
    if os.geteuid() != 0:
        pytest.skip("needs root, to give files to another user")
    yield


def _inode(fd: int) -> int:
    try:
        return os.fstat(fd).st_ino
    finally:
        os.close(fd)


def test_a_safe_path_is_opened_through_our_own_links(tmp_path: Path) -> None:
    target = tmp_path / "real" / "dir"
    target.mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    (tmp_path / "relative").symlink_to("real/dir")
    for path in (target, tmp_path / "link" / "dir", tmp_path / "relative"):
        assert _inode(open_directory(str(path))) == target.stat().st_ino


@pytest.mark.parametrize(
    ("setup", "said"),
    [
        (lambda base: base.chmod(0o777), "writable by others and not sticky"),
        (lambda base: os.chown(base, NOBODY, NOBODY), "another user's"),
    ],
)
def test_a_directory_others_may_change_is_refused_on_the_way(
    tmp_path: Path, setup: object, said: str
) -> None:
    base = tmp_path / "base"
    (base / "inner").mkdir(parents=True)
    setup(base)  # type: ignore[operator]
    with pytest.raises(UnsafeDirectory, match=said):
        os.close(open_directory(str(base / "inner")))


def test_another_users_link_is_not_followed(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "real")
    os.chown(link, NOBODY, NOBODY, follow_symlinks=False)
    with pytest.raises(UnsafeDirectory, match="another user's link"):
        os.close(open_directory(str(link)))


def test_a_private_directory_must_be_ours_and_closed_to_others(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    os.close(open_directory(str(private), private=True))
    private.chmod(0o1777)  # sticky is no excuse for a directory that must be private
    with pytest.raises(UnsafeDirectory, match="writable by others"):
        os.close(open_directory(str(private), private=True))


def test_missing_directories_are_made_private(tmp_path: Path) -> None:
    wanted = tmp_path / "a" / "b"
    os.close(open_directory(str(wanted), private=True, create=True))
    assert wanted.is_dir() and wanted.stat().st_mode & 0o777 == 0o700
    with pytest.raises(FileNotFoundError):
        open_directory(str(tmp_path / "missing"))
    (tmp_path / "file").touch()
    with pytest.raises(NotADirectoryError):
        open_directory(str(tmp_path / "file"))


def test_remove_contents_removes_links_not_what_they_point_to(tmp_path: Path) -> None:
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "file").write_text("x")
    tree = tmp_path / "tree"
    (tree / "a" / "b").mkdir(parents=True)
    (tree / "a" / "b" / "f").write_text("y")
    (tree / "link").symlink_to(kept)
    fd = open_directory(str(tree))
    try:
        remove_contents(fd)
    finally:
        os.close(fd)
    assert list(tree.iterdir()) == []
    assert (kept / "file").read_text() == "x"


def test_a_display_file_is_removed_only_while_it_is_still_ours(tmp_path: Path) -> None:
    """A killed server's socket and lock are removed after it (it cannot): only while each is
    still the file it made, and never when another user's file has taken the name."""
    from ana_headless.claim import inode_of, unlink_if_inode

    ours = tmp_path / "X5"
    ours.touch()
    inode = inode_of(str(ours))
    assert inode is not None
    # Replaced meanwhile by another server's file (ours moved away, so that its inode cannot
    # be given to the new one): the name is not ours any more.
    ours.rename(tmp_path / "X5.moved")
    ours.touch()
    unlink_if_inode(str(ours), inode)
    assert ours.exists()
    # Another user's file under that name, with the very inode we noted: never removed.
    theirs_inode = inode_of(str(ours))
    assert theirs_inode is not None
    os.chown(ours, NOBODY, NOBODY)
    assert inode_of(str(ours)) is None
    unlink_if_inode(str(ours), theirs_inode)
    assert ours.exists()
    os.chown(ours, 0, 0)
    unlink_if_inode(str(ours), theirs_inode)
    assert not ours.exists()
