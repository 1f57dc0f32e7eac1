"""Directories that nobody else can swap under us, opened as descriptors.

A path is only as safe as every directory on it: whoever may rename an entry of one of them
(its owner, anybody when it is writable by others and not sticky) can replace what follows by
a link to anywhere, between our check and our use. So a directory is reached from / one
component at a time, each opened without following links and checked on its descriptor: owned
by root or by us, and writable by others only when sticky (as /tmp). A link on the way is
followed only when root or we made it; nobody else can have put it in a directory that passed
the check. What is made or removed in the directory afterwards goes through the descriptor.

Light on imports (os, stat, errno): the launcher opens its private directory before the X
server is started.
"""

from __future__ import annotations

import errno
import os
import stat

_OPEN_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# As the kernel's own limit on links followed in one lookup.
_MAX_LINKS = 40


class UnsafeDirectory(Exception):
    """A directory on the way may be swapped by somebody else; the message says which."""


def _why_unsafe(status: os.stat_result, *, private: bool) -> str:
    if status.st_uid not in (0, os.geteuid()) or (private and status.st_uid != os.geteuid()):
        return "another user's"
    if status.st_mode & 0o022:
        if private:
            return "writable by others"
        if not status.st_mode & stat.S_ISVTX:
            return "writable by others and not sticky"
    return ""


def _check(fd: int, where: str, *, private: bool) -> None:
    why = _why_unsafe(os.fstat(fd), private=private)
    if why:
        raise UnsafeDirectory(f"{where} is {why}")


def open_directory(path: str, *, private: bool = False, create: bool = False) -> int:
    """A descriptor of the directory `path`, reached safely (see the module's docstring).

    `private`: the directory itself must be ours and writable by nobody else. `create`: missing
    directories are made (mode 0700). UnsafeDirectory when a directory on the way is not safe;
    OSError when the path cannot be opened as a directory.
    """
    pending = [part for part in os.path.abspath(path).split("/") if part]
    fd = os.open("/", _OPEN_DIRECTORY)
    where = "/"
    links = 0
    try:
        _check(fd, where, private=private and not pending)
        while pending:
            name = pending.pop(0)
            try:
                child = os.open(name, _OPEN_DIRECTORY, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                # Made meanwhile by another run of ours, it is opened and checked below
                # (contextlib.suppress: an import, on the run's clock).
                try:  # noqa: SIM105
                    os.mkdir(name, 0o700, dir_fd=fd)
                except FileExistsError:
                    pass
                child = os.open(name, _OPEN_DIRECTORY, dir_fd=fd)
            except OSError as error:
                if error.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                target = _trusted_link(fd, name, os.path.join(where, name))
                links += 1
                if links > _MAX_LINKS:
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path) from error
                pending[:0] = [part for part in target.split("/") if part]
                if target.startswith("/"):
                    os.close(fd)
                    fd, where = os.open("/", _OPEN_DIRECTORY), "/"
                continue
            os.close(fd)
            fd, where = child, os.path.join(where, name)
            _check(fd, where, private=private and not pending)
        return fd
    except BaseException:
        os.close(fd)
        raise


def _trusted_link(directory_fd: int, name: str, where: str) -> str:
    """The target of the link `name`, which root or we must own; NotADirectoryError when it
    is no link (and so no directory)."""
    status = os.stat(name, dir_fd=directory_fd, follow_symlinks=False)
    if not stat.S_ISLNK(status.st_mode):
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), where)
    if status.st_uid not in (0, os.geteuid()):
        raise UnsafeDirectory(f"{where} is another user's link")
    return os.readlink(name, dir_fd=directory_fd)


def remove_contents(directory_fd: int) -> None:
    """Remove everything in the directory, never following a link: rm -rf through its
    descriptor, ignoring errors, without importing shutil (on the run's clock)."""
    with os.scandir(directory_fd) as entries:
        names = [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in entries]
    for name, is_directory in names:
        try:
            if is_directory:
                child = os.open(name, _OPEN_DIRECTORY, dir_fd=directory_fd)
                try:
                    remove_contents(child)
                finally:
                    os.close(child)
                os.rmdir(name, dir_fd=directory_fd)
            else:
                os.unlink(name, dir_fd=directory_fd)
        except OSError:
            continue


def open_private_subdirectory(parent_fd: int, name: str) -> int:
    """Make the directory `name` (mode 0700) in the directory `parent_fd`, and open it."""
    os.mkdir(name, 0o700, dir_fd=parent_fd)
    return os.open(name, _OPEN_DIRECTORY, dir_fd=parent_fd)
