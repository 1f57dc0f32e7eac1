"""The GL probe cache: a probe's result is reused while nothing it depends on has changed.

A probe costs a Python start, a GL context and a read-back (100 ms and more); its answer only
changes when the host does. The key is everything the answer depends on: the candidate (mode,
prefix, environment patch), the server kind and depth, the loader variables, and the identity
(path, mtime, size) of the files involved — the server, vglrun, the software libGL, the
interpreter, the probe itself, and /etc/ld.so.cache, which changes whenever a library is
installed or upgraded. Any change gives another key, hence a new probe.

The file is in Python's marshal format, which needs no import: json would cost the launcher the
import of re before the child can start (import costs: benchmarks/README.md). `--dry-run` and
`doctor` show what it holds.

The cache is only a shortcut, so it is trusted no further than it must be: it is read and
written only in a directory of ours that nobody else can write to, reached through directories
that nobody else can swap (safedir.py), only as a regular file of ours (never through a symbolic
link, never a FIFO or a device), every entry is type-checked, and anything wrong with it costs a
probe, never the run. Every step works on the directory's descriptor, so that no path component
can be swapped between the check and the use.
"""

from __future__ import annotations

import marshal
import os
import stat
import sys

from ._version import __version__
from .environment import home_directory
from .messages import log
from .safedir import UnsafeDirectory, open_directory

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from .plan import Candidate

CACHE_VAR = "ANA_HEADLESS_PROBE_CACHE"
CACHE_FILE = "probes.marshal"
# What turns the cache off; /dev/null is what people type for "nowhere".
OFF_VALUES = ("0", "no", "off", os.devnull)
_MAX_ENTRIES = 64
# Far more than 64 entries take: a larger file is not ours.
_MAX_BYTES = 1 << 20
_LOADER_PREFIXES = ("LD_", "VGL_", "__GLX_", "__EGL_", "LIBGL_", "GALLIUM_", "MESA_", "EGL_")
_HOST_FILES = ("/etc/ld.so.cache", "/usr/share/glvnd/egl_vendor.d/10_nvidia.json")
_SCALARS = (str, bool, int, float, type(None))


def cache_path(env: Mapping[str, str]) -> str | None:
    """Where the cache lives; ANA_HEADLESS_PROBE_CACHE=0 (or /dev/null) turns it off, a path
    moves it."""
    setting = env.get(CACHE_VAR, "")
    if setting in OFF_VALUES:
        return None
    if setting:
        return os.path.abspath(setting)
    base = env.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        home = home_directory(env)
        if home is None:
            return None
        base = os.path.join(home, ".cache")
    return os.path.join(base, "ana-headless", CACHE_FILE)


def _identity(path: str | None) -> tuple[Any, ...]:
    """What changes when a file is replaced or upgraded."""
    if not path:
        return ()
    try:
        status = os.stat(path)
    except OSError:
        return (path, None)
    return (path, status.st_mtime_ns, status.st_size)


def probe_key(
    candidate: Candidate,
    env: Mapping[str, str],
    server_binary: str | None,
    depth: int,
    probe_script: str,
) -> str:
    files = [*_HOST_FILES, sys.executable, probe_script, server_binary]
    files += [part for part in candidate.prefix if part.startswith("/")]
    files += [
        os.path.join(value.split(":")[0], "libGL.so.1")
        for name, value in candidate.env_patch.items()
        if name == "LD_LIBRARY_PATH" and value
    ]
    key = (
        ("version", __version__),
        ("mode", candidate.mode),
        ("prefix", tuple(candidate.prefix)),
        ("env_patch", tuple(sorted(candidate.env_patch.items()))),
        ("links", candidate.links),
        ("depth", depth),
        (
            "loader",
            tuple(
                sorted(
                    (name, value)
                    for name, value in env.items()
                    if name.startswith(_LOADER_PREFIXES)
                )
            ),
        ),
        ("files", tuple(_identity(path) for path in files)),
        ("devices", tuple(sorted(os.listdir("/dev/dri"))) if os.path.isdir("/dev/dri") else ()),
    )
    # The repr of nested tuples of str, int and None is exact and stable: a fine key.
    return repr(key)


def _valid_entry(entry: object) -> bool:
    """An entry as `probe.remember` writes it: anything else was not written by us."""
    if not (
        isinstance(entry, dict)
        and isinstance(entry.get("ok"), bool)
        and isinstance(entry.get("problem", ""), str)
    ):
        return False
    report = entry.get("report", {})
    return isinstance(report, dict) and all(
        isinstance(name, str)
        and (
            isinstance(value, _SCALARS)
            or (isinstance(value, list) and all(isinstance(item, _SCALARS) for item in value))
        )
        for name, value in report.items()
    )


class UntrustedCache(Exception):
    """The cache's directory or file is not one we may use; the message says why."""


def _open_private_directory(directory: str, *, create: bool = False) -> int:
    """A descriptor of `directory`, which must be ours and writable by nobody else, and
    reached through directories that nobody else can swap (safedir.py)."""
    try:
        return open_directory(directory, private=True, create=create)
    except UnsafeDirectory as error:
        where = (
            "its directory"
            if str(error).startswith(f"{directory} ")
            else (f"the way to its directory {directory}:")
        )
        raise UntrustedCache(f"{where} {error}") from error


def _check_file(status: os.stat_result, path: str) -> None:
    if not stat.S_ISREG(status.st_mode):
        raise UntrustedCache(f"{path} is not a regular file")
    if status.st_uid != os.geteuid() or status.st_mode & 0o022:
        raise UntrustedCache(f"{path} is another user's, or writable by others")
    if status.st_size > _MAX_BYTES:
        raise UntrustedCache(f"{path} is larger than a probe cache can be")


def _read(path: str) -> dict[str, Any]:
    """The entries in the cache file (none if it is missing); UntrustedCache if it is not ours."""
    directory, name = os.path.split(path)
    try:
        directory_fd = _open_private_directory(directory)
    except FileNotFoundError:
        return {}
    try:
        # Looked at before it is opened: opening a device or a FIFO can block or act.
        _check_file(os.stat(name, dir_fd=directory_fd, follow_symlinks=False), path)
        fd = os.open(
            name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=directory_fd
        )
    except FileNotFoundError:
        return {}
    finally:
        os.close(directory_fd)
    with os.fdopen(fd, "rb") as data:
        _check_file(os.fstat(data.fileno()), path)
        loaded = marshal.loads(data.read(_MAX_BYTES))
    return loaded if isinstance(loaded, dict) else {}


class ProbeCache:
    """A small file of probe results, read once and written back atomically.

    `problem` says why the cache is not used, when it is not (the launcher logs it with -v).
    """

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.problem = ""
        self._entries: dict[str, Any] = {}
        self._dirty = False
        if path:
            try:
                self._entries = _read(path)
            except UntrustedCache as error:
                self._distrust(str(error))
            except (OSError, EOFError, ValueError, TypeError):
                # Unreadable, or written by a Python that marshals differently: probe again.
                return

    def _distrust(self, reason: str) -> None:
        self.problem = f"probe cache not used: {reason}"
        log.info("%s", self.problem)
        self.path = None

    def get(self, key: str) -> Mapping[str, Any] | None:
        entry = self._entries.get(key)
        return entry if _valid_entry(entry) else None

    def put(self, key: str, value: Mapping[str, Any]) -> None:
        self._entries.pop(key, None)
        self._entries[key] = dict(value)
        self._dirty = True

    def save(self) -> None:
        """Keep the newest entries; a failure to write only costs a probe next time."""
        if not (self.path and self._dirty):
            return
        self._dirty = False
        entries = {
            key: entry
            for key, entry in list(self._entries.items())[-_MAX_ENTRIES:]
            if _valid_entry(entry)
        }
        try:
            _write(self.path, marshal.dumps(entries))
        except UntrustedCache as error:
            self._distrust(str(error))
        except OSError as error:
            log.info("probe cache not saved: %s: %s", self.path, error.strerror)


def _write(path: str, data: bytes) -> None:
    """Replace the cache file by `data` atomically, in a private directory, never through a
    link and never over anything but a regular file of ours."""
    import contextlib  # after a probe: off the launcher's way to the child

    directory, name = os.path.split(path)
    directory_fd = _open_private_directory(directory, create=True)
    try:
        with contextlib.suppress(FileNotFoundError):
            _check_file(os.stat(name, dir_fd=directory_fd, follow_symlinks=False), path)
        temporary = f".{name}.{os.urandom(6).hex()}"
        fd = os.open(
            temporary,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o600,
            dir_fd=directory_fd,
        )
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(temporary, name, src_dir_fd=directory_fd, dst_dir_fd=directory_fd)
        except BaseException:
            os.unlink(temporary, dir_fd=directory_fd)
            raise
    finally:
        os.close(directory_fd)
