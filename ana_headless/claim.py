"""Claiming a free display number ourselves, before the X server starts.

A display `:N` is three things that every X server and display-number scanner looks at: the
abstract socket `@/tmp/.X11-unix/XN` (its bind is atomic: the one arbiter between servers that
pick their own number, `Xvfb -displayfd` among them), the lock file `/tmp/.XN-lock` (what
xvfb-run and servers started on a fixed number check), and the socket file `/tmp/.X11-unix/XN`.
We take all three, in that order, skipping any number where one is taken, stale or not:
nothing of anybody else's is ever removed.

The bound, listening sockets are then handed to Xvfb by systemd-style socket activation
(`LISTEN_FDS`), which Debian's Xvfb accepts. So the display is known, and ours, before the
server has even started: a client that connects early waits in the socket's backlog until the
server accepts it, so the child can start while the server initialises.

Light on imports: this runs before the server is started. `_socket` is the C core of `socket`,
which would also import enum and selectors (import costs: benchmarks/README.md).
"""

from __future__ import annotations

import _socket
import errno
import os

from .safedir import UnsafeDirectory, open_directory

X11_SOCKET_DIR = "/tmp/.X11-unix"
# Xvfb -displayfd tries numbers up from 0 too, up to the last one with a TCP port.
_LAST_NUMBER = 65535 - 6000
# How many connections may wait for a server that is still initialising.
_BACKLOG = 128


def socket_path(number: int | str) -> str:
    return f"{X11_SOCKET_DIR}/X{number}"


def lock_path(number: int) -> str:
    return f"/tmp/.X{number}-lock"


def _usable_socket_dir() -> bool:
    """Whether a display's socket file may go in /tmp/.X11-unix, made as X servers make it
    (world-writable, sticky) when it is missing. Not when another user owns it, or it is
    writable by others and not sticky: they could swap our socket file for theirs. The
    abstract socket alone then serves local clients."""
    try:
        os.mkdir(X11_SOCKET_DIR, 0o1777)
        os.chmod(X11_SOCKET_DIR, 0o1777)
    except OSError:
        pass  # it exists, or cannot be made
    try:
        os.close(open_directory(X11_SOCKET_DIR))
    except (OSError, UnsafeDirectory):
        return False
    return True


def _bound(address: str | bytes) -> _socket.socket:
    """A Unix stream socket bound to `address` (OSError EADDRINUSE when it is taken)."""
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def _take_lock(number: int) -> int | None:
    """Create the display's lock file holding our pid, as X servers write it: its inode when
    taken, None when /tmp takes no lock file from us; FileExistsError when somebody else's
    lock is there."""
    # Written in full under another name, then linked: a reader never sees an empty lock,
    # which an X server would take for a stale one and remove. The name is random, so that
    # nobody can take it in advance and so turn our locks off.
    for _attempt in range(8):
        draft = f"/tmp/.tX{number}-lock-{os.urandom(6).hex()}"
        try:
            fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o444)
        except FileExistsError:
            continue
        except OSError:
            return None
        break
    else:
        return None
    try:
        try:
            os.write(fd, f"{os.getpid():10d}\n".encode())
            inode = os.fstat(fd).st_ino
        finally:
            os.close(fd)
        os.link(draft, lock_path(number))
        return inode
    except FileExistsError:
        raise
    except OSError:
        return None
    finally:
        unlink_if_there(draft)


class DisplayClaim:
    """A display number that is ours: its listening sockets, and the files we created."""

    def __init__(
        self,
        number: int,
        sockets: list[_socket.socket],
        socket_inode: int | None,
        lock_inode: int | None,
    ) -> None:
        self.number = number
        # The abstract socket first, then the socket file's, when there is one.
        self.sockets = sockets
        # The inodes of the socket file we bound and the lock we linked: a file of that name
        # is ours to remove only while it is still that inode.
        self._socket_inode = socket_inode
        self._lock_inode = lock_inode

    @property
    def has_socket_file(self) -> bool:
        return self._socket_inode is not None

    @property
    def files(self) -> list[tuple[str, int]]:
        """What must be removed once the server is gone (also by the watcher, if we die),
        each path with the inode it must still have."""
        found = []
        if self._lock_inode is not None:
            found.append((lock_path(self.number), self._lock_inode))
        if self._socket_inode is not None:
            found.append((socket_path(self.number), self._socket_inode))
        return found

    def close_sockets(self) -> None:
        """Our copies of the sockets, once the server has its own: connections must fail,
        not queue, when the server is gone."""
        for sock in self.sockets:
            sock.close()

    def release(self) -> None:
        """Close the sockets and remove our files (the server is gone)."""
        self.close_sockets()
        for path, inode in self.files:
            # Once our server is gone, another may have made a new file under this name.
            unlink_if_inode(path, inode)
        self._socket_inode = self._lock_inode = None


def inode_of(path: str) -> int | None:
    """The inode of `path` itself (a link is not followed), if it is there and ours: a file
    of another user's is never ours to remove."""
    try:
        status = os.lstat(path)
    except OSError:
        return None
    return status.st_ino if status.st_uid == os.geteuid() else None


def unlink_if_inode(path: str, inode: int) -> None:
    """Remove `path` if it is still the file `inode` of ours."""
    if inode_of(path) == inode:
        unlink_if_there(path)


def unlink_if_there(path: str) -> None:
    """os.unlink, for a file that may be gone already (without importing contextlib)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return


def claim_display() -> DisplayClaim | None:
    """The lowest free display number, claimed; None when abstract sockets cannot be bound
    here (then the server must pick its number itself)."""
    socket_dir_usable = _usable_socket_dir()
    lock_usable = True
    for number in range(_LAST_NUMBER + 1):
        path = socket_path(number)
        try:
            abstract = _bound(b"\0" + path.encode())
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                continue
            return None
        lock_inode = None
        if lock_usable:
            try:
                lock_inode = _take_lock(number)
            except FileExistsError:
                abstract.close()
                continue
            lock_usable = lock_inode is not None
        sockets = [abstract]
        inode = None
        if socket_dir_usable:
            try:
                file_socket = _bound(path)
            except OSError as error:
                if error.errno == errno.EADDRINUSE:
                    # A socket file is there (a live server elsewhere, or a stale file).
                    DisplayClaim(number, sockets, None, lock_inode).release()
                    continue
                socket_dir_usable = False
            else:
                sockets.append(file_socket)
                inode = os.lstat(path).st_ino
        for sock in sockets:
            sock.listen(_BACKLOG)
        return DisplayClaim(number, sockets, inode, lock_inode)
    return None
