"""Making sure nothing of ours outlives the process that started it, even after SIGKILL.

No cleanup code of ours runs after a SIGKILL, so one helper does it: a tiny `sh` watcher, in a
session of its own and deaf to terminal signals, that waits for end-of-file on a pipe whose
only writer is this process. The kernel closes that pipe when we die, however we die; the
watcher then kills the processes we told it about (the X server gets SIGTERM and ends as it
would on any stop, the child SIGKILL) and removes our private directory and the display's
socket and lock files.

Why not the kernel's parent-death signal (`PR_SET_PDEATHSIG`)? It needs a helper exec before
each process (setpriv, before the server can start) or ctypes (imports before the child; see
benchmarks/README.md), and it fires when the *thread* that started the process ends, not the
process: a server started by ensure_headless() from a worker thread would stop with it.

A process the watcher knows is forgotten before it is reaped, so that the watcher can never
signal a pid the kernel has given to somebody else. Light on imports (os only): the launcher
uses this before the X server is started. The process primitives are process.py's.
"""

from __future__ import annotations

import os

from .errors import SetupError
from .process import FORWARDED_SIGNALS, exited, signals, spawn, wait_pid
from .safedir import UnsafeDirectory, open_directory, open_private_subdirectory, remove_contents

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

# $1 is the private directory; the lines read tell what else to do if we die:
# "kill PID SIGNAL", "remove PATH INODE" (a file of ours, removed only while it is still that
# inode: after our release, the name may be somebody else's), "forget PID|PATH". Paths are
# ours, without spaces or colons. The kills come first: a server goes before its files.
_WATCHER_SCRIPT = """\
trap '' INT TERM HUP QUIT
held=
while read -r verb key arg; do
  case $verb in
    kill|remove) held="$held $verb:$key:$arg" ;;
    forget) left=
            for h in $held; do rest=${h#*:}; [ "${rest%:*}" = "$key" ] || left="$left $h"; done
            held=$left ;;
  esac
done
for h in $held; do
  rest=${h#kill:}; [ "$rest" = "$h" ] && continue
  kill -s "${rest#*:}" "${rest%:*}" 2>/dev/null
done
for h in $held; do
  rest=${h#remove:}; [ "$rest" = "$h" ] && continue
  [ "$(stat -c %i -- "${rest%:*}" 2>/dev/null)" = "${rest#*:}" ] && rm -f -- "${rest%:*}"
done
rm -rf -- "$1"
"""


class PrivateDirectory:
    """A mode-0700 directory of ours in TMPDIR (or /tmp), for the cookies, the server's log
    and the client's Xauthority; `remove()` removes it with everything in it.

    Everything in it is made, and removed, through its descriptor, in a parent that nobody
    else can rename entries of (safedir.py): a TMPDIR that another user owns or may write to
    without the sticky bit is not used. Otherwise the directory could be renamed away and a
    link put in its place, and our files written, or our cleanup's removals made, through it.
    """

    def __init__(self, tmpdir: str | None) -> None:
        # Why TMPDIR was not used, if it was not: said with -v, once logging is set up.
        self.note = ""
        parent, self._parent_fd = self._parent(tmpdir)
        self._name = f"ana-headless-{os.urandom(6).hex()}"
        # Absolute: the child gets paths in it (XAUTHORITY) and may change directory.
        self.path = os.path.join(parent, self._name)
        try:
            self._fd = open_private_subdirectory(self._parent_fd, self._name)
        except OSError as error:
            os.close(self._parent_fd)
            raise cannot_write(parent, error) from error

    def _parent(self, tmpdir: str | None) -> tuple[str, int]:
        """Where the directory goes, and its descriptor: TMPDIR when it is safe, else /tmp."""
        for given in filter(None, (tmpdir, "/tmp")):
            parent = os.path.abspath(given)
            try:
                return parent, open_directory(parent)
            except UnsafeDirectory as unsafe:
                self.note = f"TMPDIR not used for the private directory: {unsafe}"
            except OSError as error:
                raise cannot_write(parent, error) from error
        raise SetupError(
            "no safe directory for the display's private files: TMPDIR and /tmp may be "
            f"changed by other users ({self.note.partition(': ')[2]}; TMPDIR chooses another)"
        )

    def file_path(self, name: str) -> str:
        return os.path.join(self.path, name)

    def create(self, name: str, data: bytes = b"") -> int:
        """A new file `name` of ours holding `data`, open for writing; SetupError when it
        cannot be made."""
        try:
            fd = os.open(
                name,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o600,
                dir_fd=self._fd,
            )
        except OSError as error:
            raise self.cannot_write(error) from error
        try:
            while data:
                data = data[os.write(fd, data) :]
        except OSError as error:
            os.close(fd)
            raise self.cannot_write(error) from error
        return fd

    def write(self, name: str, data: bytes) -> str:
        """A new file `name` holding `data`; its path."""
        os.close(self.create(name, data))
        return self.file_path(name)

    def make_directory(self, name: str) -> str:
        """A new mode-0700 directory `name`; its path."""
        try:
            os.mkdir(name, 0o700, dir_fd=self._fd)
        except OSError as error:
            raise self.cannot_write(error) from error
        return self.file_path(name)

    def link(self, name: str, target: str) -> None:
        """A symbolic link `name` to `target` (a path of the directory's, such as "glvnd/x")."""
        try:
            os.symlink(target, name, dir_fd=self._fd)
        except OSError as error:
            raise self.cannot_write(error) from error

    def cannot_write(self, error: OSError) -> SetupError:
        """The error for a private file that cannot be made: it names the directory to fix."""
        return cannot_write(os.path.dirname(self.path), error)

    def remove(self) -> None:
        if self._fd < 0:
            return
        remove_contents(self._fd)
        os.close(self._fd)
        self._fd = -1
        try:
            # Only an empty directory is removed by name, and never through a link.
            os.rmdir(self._name, dir_fd=self._parent_fd)
        except OSError:
            pass
        finally:
            os.close(self._parent_fd)


def cannot_write(parent: str, error: OSError) -> SetupError:
    return SetupError(
        f"cannot make the display's private files in {parent}: "
        f"{error.strerror} (TMPDIR chooses another directory)"
    )


class Watcher:
    """The helper that cleans up after us if we die: it removes `directory`, and kills and
    removes what it is told about; `close()` ends it, with nothing left to do."""

    def __init__(self, directory: str) -> None:
        read_end, self._pipe = os.pipe()
        try:
            # Born with the terminating signals blocked, until its `trap ''` ignores them: a
            # signal to our whole process group (GNU timeout's, a hang-up) would otherwise kill
            # it before it has a session of its own, and then nobody cleans up after us.
            self._watcher: int | None = spawn(
                ["/bin/sh", "-c", _WATCHER_SCRIPT, "ana-headless-cleanup", directory],
                stdin=read_end,
                new_session=True,
                sigmask=FORWARDED_SIGNALS,
            )
        except BaseException:
            os.close(self._pipe)
            raise
        finally:
            os.close(read_end)

    @property
    def pid(self) -> int | None:
        """The watcher's process (None once closed)."""
        return self._watcher

    def _tell(self, line: str) -> None:
        if self._watcher is None:
            return
        try:
            os.write(self._pipe, f"{line}\n".encode())
        except BrokenPipeError:
            # Somebody killed the watcher: the run goes on, without its safety net.
            return

    def kill_on_death(self, pid: int, signal_name: str) -> None:
        """If we die, `pid` gets SIG`signal_name` (TERM, KILL...)."""
        self._tell(f"kill {pid} {signal_name}")

    def remove_on_death(self, files: Iterable[tuple[str, int]]) -> None:
        """If we die, each path is removed if it is still the inode given with it."""
        for path, inode in files:
            self._tell(f"remove {path} {inode}")

    def forget(self, key: int | str) -> None:
        """A process reaped, or a file released: no longer ours to act on."""
        self._tell(f"forget {key}")

    def reap(self, pid: int, timeout: float | None) -> int | None:
        """wait_pid for a process the watcher was told about: forgotten there first."""
        if not exited(pid, timeout):
            return None
        self.forget(pid)
        return wait_pid(pid, None)

    def close(self) -> None:
        if self._watcher is not None:
            pid, self._watcher = self._watcher, None
            os.kill(pid, signals.SIGKILL)
            os.close(self._pipe)
            wait_pid(pid, None)
